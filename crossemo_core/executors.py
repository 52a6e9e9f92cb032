"""Where independent tasks run: in this process, in local worker processes, or on a Ray cluster.

Cross-validation folds, benchmark runs and clip files are independent tasks. An :class:`Executor` runs
``fn(shared, item)`` for every item and returns the results in item order, whatever order they finish in:

    with make_executor("ray", address=None) as executor:        # a local Ray instance starts and stops
        results = executor.map(run_fold, folds, shared=corpus, on_done=print_progress)

- ``local``: this process (``jobs=1``) or ``jobs`` spawned worker processes.
- ``ray``: one Ray task per item; ``address`` joins an existing cluster (``ray start --head`` on one machine,
  ``ray start --address=HEAD:6379`` on the others, then ``--ray-address HEAD:6379``); without it a local instance
  is started for the call and stopped afterwards. ``shared`` is put in the object store once.

Both set torch's thread count to ``threads`` inside every task, so the same task gives the same numbers on either.
A task that raises (or whose worker dies) is retried up to ``retries`` times, each retry reported through
``on_retry``, unless what it raised is a :class:`~crossemo_core.errors.CrossemoError` (bad data or settings, which
fail the same way every time); one that still fails does not stop the others, and :class:`TaskFailed` then names
every failed item (the results of the others were already handed to ``on_done``, e.g. cached). Workers ignore
Ctrl-C: the caller gets it and the workers are stopped.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

from crossemo_core.errors import CrossemoError
from crossemo_core.settings import option_number

T = TypeVar("T")
R = TypeVar("R")
EXECUTORS = ("local", "ray")


class TaskFailed(CrossemoError):
    """One or more tasks still failed after their retries."""


@dataclass
class _Attempt(Generic[T]):
    index: int
    item: T
    tries: int = 1


@dataclass
class Executor(ABC):
    """Runs ``fn(shared, item)`` for many items (see the module docstring)."""

    threads: int = 1
    retries: int = 2
    on_retry: Callable[[Any, int, str], None] | None = None
    """Called as ``on_retry(item, next_try, error)`` before a failed task is tried again."""
    failures: list[tuple[int, Any, str]] = field(default_factory=list, init=False)
    """``(index, item, error)`` of the tasks that failed for good in the last :meth:`map`."""

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None,
            on_done: Callable[[int, R], None] | None = None) -> list[R]:
        """``[fn(shared, item) for item in items]``, run by this executor; ``on_done(index, result)`` as each
        finishes. Raises :class:`TaskFailed` after all tasks ended when some failed for good (naming them in the
        items' order, whatever order they ended in)."""
        self.failures = []
        results: dict[int, R] = {}

        def done(index: int, result: R) -> None:
            results[index] = result
            if on_done is not None:
                on_done(index, result)

        self._run(fn, list(items), shared, done)
        if self.failures:
            listed = "; ".join(f"{item!r}: {error}" for _, item, error in sorted(self.failures, key=lambda f: f[0])[:5])
            raise TaskFailed(f"{len(self.failures)} of {len(items)} task(s) failed ({listed}"
                             f"{'; ...' if len(self.failures) > 5 else ''}); the others finished.")
        return [results[i] for i in range(len(items))]

    def _failed(self, attempt: _Attempt[T], error: BaseException | str) -> bool:
        """Record a failed try; True when it should be tried again (not for a :class:`CrossemoError`: bad data or
        settings fail the same way every time)."""
        message = _one_line(error)
        if attempt.tries <= self.retries and not isinstance(error, CrossemoError):
            attempt.tries += 1
            if self.on_retry is not None:
                self.on_retry(attempt.item, attempt.tries, message)
            return True
        self.failures.append((attempt.index, attempt.item,
                              message + (f", after {attempt.tries} tries" if attempt.tries > 1 else "")))
        return False

    @abstractmethod
    def _run(self, fn: Callable[[Any, T], R], items: list[T], shared: Any,
             done: Callable[[int, R], None]) -> None: ...

    def close(self) -> None:
        """Release what the executor started (worker processes, a local Ray instance)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------- local
_SHARED: Any = None


def _init_local_worker(shared: Any) -> None:
    global _SHARED
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops the pool
    _SHARED = shared


def _call_in_worker(fn: Callable[[Any, T], R], item: T, threads: int) -> R:
    return _call(fn, _SHARED, item, threads)


def _call(fn: Callable[[Any, T], R], shared: Any, item: T, threads: int) -> R:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(shared, item)
    finally:
        torch.set_num_threads(previous)


@dataclass
class LocalExecutor(Executor):
    """This process (``jobs=1``) or ``jobs`` spawned worker processes on this machine."""

    jobs: int = 1

    def _run(self, fn: Callable[[Any, T], R], items: list[T], shared: Any,
             done: Callable[[int, R], None]) -> None:
        if self.jobs <= 1 or len(items) <= 1:
            for index, item in enumerate(items):
                attempt = _Attempt(index, item)
                while True:
                    try:
                        done(index, _call(fn, shared, item, self.threads))
                        break
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as exc:  # a task's own failure: retried, then reported
                        if not self._failed(attempt, exc):
                            break
            return
        # spawn, not fork: the parent holds torch threads, which forked children can deadlock on. Leaving the
        # ``with`` block terminates the workers, so Ctrl-C stops at once.
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(self.jobs, len(items)), initializer=_init_local_worker, initargs=(shared,)) as pool:
            pending = {}
            for index, item in enumerate(items):
                pending[index] = (_Attempt(index, item), pool.apply_async(_call_in_worker, (fn, item, self.threads)))
            while pending:
                finished = [i for i, (_, result) in pending.items() if result.ready()]
                if not finished:
                    time.sleep(0.05)
                    continue
                for index in finished:
                    attempt, result = pending.pop(index)
                    try:
                        done(index, result.get())
                    except Exception as exc:
                        if self._failed(attempt, exc):
                            pending[index] = (attempt, pool.apply_async(_call_in_worker,
                                                                        (fn, attempt.item, self.threads)))


# ---------------------------------------------------------------------------------------------------- ray
RAY_CONNECT_TIMEOUT_S = 10.0
"""How long :class:`RayExecutor` waits for a cluster's address to answer before ``ray.init`` (which, given an
address where nothing answers, retries for minutes and prints C++ warnings)."""


def _check_ray_address(address: str) -> None:
    """Raise :class:`CrossemoError` when nothing accepts a TCP connection at a ``host:port`` or ``ray://host:port``
    address within :data:`RAY_CONNECT_TIMEOUT_S`; other forms (``auto``, ``local``) are left to Ray."""
    import socket

    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except socket.gaierror:
        raise CrossemoError(f"could not join the Ray cluster at {address}: there is no host {host!r}; check "
                            f"--ray-address.") from None
    except OSError as exc:
        reason = (f"no answer within {RAY_CONNECT_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError)
                  else exc.strerror or str(exc) or type(exc).__name__)
        raise CrossemoError(f"could not join the Ray cluster at {address}: nothing answers there ({reason}); start "
                            f"it with 'ray start --head' or check --ray-address.") from None


@dataclass
class RayExecutor(Executor):
    """One Ray task per item, on the cluster at ``address`` or on a local instance started for this executor."""

    address: str | None = None
    num_cpus: int | None = None
    """CPUs of a local instance (default: all); ignored when joining a cluster."""
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        try:
            import ray
        except ImportError:
            raise CrossemoError("--executor ray needs the 'ray' package (pip install -r requirements-dev.txt).") \
                from None
        if not ray.is_initialized():
            options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                                           configure_logging=True)
            if self.address:
                _check_ray_address(self.address)
            try:
                if self.address:
                    ray.init(address=self.address, **options)
                else:
                    ray.init(num_cpus=self.num_cpus, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise CrossemoError(f"could not start or join {where}: {_one_line(exc)}") from None
            self._started = True

    def _run(self, fn: Callable[[Any, T], R], items: list[T], shared: Any,
             done: Callable[[int, R], None]) -> None:
        import ray

        remote = ray.remote(max_retries=0)(_call)  # retries are ours, so that each one is reported
        shared_ref = ray.put(shared)
        attempts = {}
        for index, item in enumerate(items):
            attempts[remote.remote(fn, shared_ref, item, self.threads)] = _Attempt(index, item)
        try:
            while attempts:
                ready, _ = ray.wait(list(attempts), num_returns=1)
                attempt = attempts.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayError as exc:  # the task raised, or its worker or node died
                    if self._failed(attempt, getattr(exc, "cause", None) or exc):
                        attempts[remote.remote(fn, shared_ref, attempt.item, self.threads)] = attempt
                    continue
                done(attempt.index, result)
        except KeyboardInterrupt:
            for ref in attempts:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def make_executor(name: str = "local", *, jobs: int = 1, threads: int = 1, address: str | None = None,
                  retries: int = 2, on_retry: Callable[[Any, int, str], None] | None = None) -> Executor:
    """An executor by name (``local`` or ``ray``); ``address`` only with ``ray``."""
    if name not in EXECUTORS:
        raise CrossemoError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}.")
    if name == "local":
        if address:
            raise CrossemoError("--ray-address goes with --executor ray.")
        return LocalExecutor(threads=threads, retries=retries, on_retry=on_retry, jobs=jobs)
    return RayExecutor(threads=threads, retries=retries, on_retry=on_retry, address=address)


def add_executor_args(p: argparse.ArgumentParser, default_jobs: int) -> None:
    """``--executor local|ray``, ``--ray-address``, ``--jobs`` and ``--threads`` (see :mod:`crossemo_core.executors`)."""
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where the independent tasks (folds x seeds, runs) run: local processes or a Ray cluster")
    p.add_argument("--ray-address", help="join the Ray cluster at this address (e.g. HEAD:6379); without it "
                                         "--executor ray starts a local Ray instance and stops it at the end")
    p.add_argument("--jobs", type=option_number("--jobs", minimum=1, whole=True), default=default_jobs,
                   help=f"local worker processes (default {default_jobs}; with --executor local)")
    p.add_argument("--threads", type=option_number("--threads", minimum=1, whole=True), default=1,
                   help="torch threads per task (default 1: the small networks train fastest so on 2 cores)")


def executor_from(args: argparse.Namespace) -> Executor:
    """The executor the command line asks for; failed tasks' retries are reported on stderr."""
    def on_retry(item: Any, attempt: int, error: str) -> None:
        print(f"note: a task failed ({error}); trying it again (try {attempt})", file=sys.stderr)

    return make_executor(args.executor, jobs=args.jobs, threads=args.threads, address=args.ray_address,
                         on_retry=on_retry)


def _one_line(error: BaseException | str) -> str:
    text = str(error).strip() if not isinstance(error, str) else error.strip()
    first = text.splitlines()[0] if text else ""
    name = type(error).__name__ if isinstance(error, BaseException) else "error"
    return f"{name}: {first}"[:300] if first else name
