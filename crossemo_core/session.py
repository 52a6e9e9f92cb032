"""Background jobs for interactive front ends: training and slow computations run in a thread that a page polls.

Nothing here imports a user-interface library. A front end (the Streamlit app) starts a job, keeps the job object
(e.g. in its per-user session state), and on each refresh reads :meth:`BackgroundJob.snapshot` /
:meth:`TrainingJob.snapshot`, which return copies taken under a lock, so the page never sees a list being appended
to. :meth:`BackgroundJob.stop` only *asks*: a training job finishes the current step, restores the weights of the
best validation epoch, fits the verdict and keeps that result (state ``"stopped"``).

Errors inside the thread never escape it: the job ends in state ``"failed"`` with a one-line ``error`` written for
the user (:class:`~crossemo_core.errors.CrossemoError` messages as they are; anything else prefixed with its type)
and the full traceback in ``error_detail`` (logged, for developers).
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import torch

from crossemo_core.config import RUNS_NEED_EVALUATION, ExperimentConfig
from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector
from crossemo_core.errors import CrossemoError
from crossemo_core.experiment import RunResult, run
from crossemo_core.runs import RunComparison, RunStore, StoredRun, compare_models
from crossemo_core.training import (EpochEvent, StepEvent, TrainingControl, TrainingResult, describe_device,
                                    resolve_device)

__all__ = ["JOB_STATES", "BackgroundJob", "JobSnapshot", "TrainingJob", "TrainingSnapshot", "user_message"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``pending`` (created, not started), ``running``, ``done``, ``stopped`` (asked to stop; a result is kept),
#: ``failed`` (see ``error``).
JOB_STATES = ("pending", "running", "done", "stopped", "failed")
FINISHED = ("done", "stopped", "failed")


def user_message(exc: BaseException) -> str:
    """One line for a person: a :class:`CrossemoError`'s own message, else ``"<Type>: <message>"``."""
    if isinstance(exc, CrossemoError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class JobSnapshot(Generic[T]):
    """A consistent copy of a job's state at one moment."""

    name: str
    state: str
    done: int
    total: int
    message: str
    elapsed: float
    result: T | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (0 when the total is not known yet)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class BackgroundJob(Generic[T]):
    """Runs ``fn(job)`` once in a daemon thread and keeps its result or its error.

    ``fn`` may call :meth:`report_progress` and should check :attr:`stop_requested` between units of work.
    ``on_finish`` (optional) is called in the job's thread with the job after it ends, whatever the outcome.
    """

    def __init__(self, fn: Callable[["BackgroundJob[T]"], T], name: str = "job",
                 on_finish: Callable[["BackgroundJob[T]"], None] | None = None) -> None:
        self.name = name
        self._fn = fn
        self._on_finish = on_finish
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "pending"
        self._done = 0
        self._total = 0
        self._message = ""
        self._result: T | None = None
        self._error: str | None = None
        self.error_detail: str | None = None
        self._started: float | None = None
        self._ended: float | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> "BackgroundJob[T]":
        """Start the thread (once); returns the job."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"job {self.name!r} was already started")
            self._state = "running"
            self._started = time.perf_counter()
            self._thread = threading.Thread(target=self._run, name=f"crossemo-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to end early (thread-safe; returns at once)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` seconds pass); True when it has ended."""
        return self._finished.wait(timeout)

    def report_progress(self, done: int, total: int, message: str | None = None) -> None:
        """Called from inside ``fn``: ``done`` of ``total`` units, with an optional status line."""
        with self._lock:
            self._done, self._total = int(done), int(total)
            if message is not None:
                self._message = message

    # ------------------------------------------------------------------ reading
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def result(self) -> T | None:
        with self._lock:
            return self._result

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    def snapshot(self) -> JobSnapshot[T]:
        with self._lock:
            return JobSnapshot(self.name, self._state, self._done, self._total, self._message, self._elapsed(),
                               self._result, self._error)

    # ------------------------------------------------------------------ internals
    def _elapsed(self) -> float:
        if self._started is None:
            return 0.0
        return (self._ended if self._ended is not None else time.perf_counter()) - self._started

    def _final_state(self) -> str:
        return "stopped" if self._stop.is_set() else "done"

    def _run(self) -> None:
        try:
            result = self._fn(self)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape the thread
            detail = traceback.format_exc()
            log.warning("background job %s failed:\n%s", self.name, detail)
            with self._lock:
                self._state, self._error, self.error_detail = "failed", user_message(exc), detail
                self._ended = time.perf_counter()
        else:
            with self._lock:
                self._result = result
                self._state = self._final_state()
                self._ended = time.perf_counter()
        finally:
            if self._on_finish is not None:
                try:
                    self._on_finish(self)
                except Exception:  # noqa: BLE001
                    log.exception("on_finish of job %s failed", self.name)
            self._finished.set()


# ---------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished training job keeps: the run (:class:`~crossemo_core.experiment.RunResult`), its training
    result (None for a method that does not train a SIR-HCL-network detector), test metrics and the file."""

    training: TrainingResult | None
    test_metrics: dict[str, Any]
    checkpoint: Path | None
    run: RunResult | None = None
    comparison: RunComparison | None = None
    stored: StoredRun | None = None
    store_error: str | None = None


@dataclass(frozen=True)
class TrainingSnapshot:
    """A consistent copy of a training job: every step and epoch event so far, progress and the outcome."""

    state: str
    device: str
    n_epochs: int
    steps: list[StepEvent]
    epochs: list[EpochEvent]
    elapsed: float
    message: str
    error: str | None
    outcome: TrainingOutcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def fraction(self) -> float:
        """Share of the planned optimiser steps done, in [0, 1]."""
        if self.state in ("done", "stopped"):
            return 1.0
        if not self.steps:
            return 0.0
        last = self.steps[-1]
        return min(1.0, ((last.epoch - 1) + last.step / max(last.n_steps, 1)) / max(self.n_epochs, 1))

    @property
    def best_epoch(self) -> int | None:
        best = [e.epoch for e in self.epochs if e.is_best]
        return best[-1] if best else None

    @property
    def kept_network(self) -> str:
        """Which network the run keeps, in words: the best epoch's, or the one refit on train + valid."""
        training = None if self.outcome is None else self.outcome.training
        refit = None if training is None else training.detector.metadata.get("refit")
        if refit is None:
            return f"best epoch: {self.best_epoch} (its weights are kept)"
        if refit["completed"]:
            return (f"best epoch: {self.best_epoch}, then {refit['epochs']} epoch(s) on train + valid "
                    "(that network is kept)")
        return f"best epoch: {self.best_epoch} (its weights are kept; the refit on train + valid was stopped)"


class TrainingJob:
    """Trains a detector in a background thread; a page polls :meth:`snapshot` and may call :meth:`stop`.

    The run is assembled by :func:`crossemo_core.experiment.run`, as on the command line: the corpus is split by
    ``config.train.seed`` and ``abnormal_rate`` (its official folds where it has them), ``method`` trains on the
    train part selecting on the valid part, and the test part is scored.

    Args:
        config: the run's configuration (validated here, so a bad setting fails before a thread starts).
        corpus: the pairs to split, train on and test on.
        method: SIR-HCL (default) or a baseline of :data:`crossemo_core.baselines.METHODS`; every one has live
            curves and stop.
        metadata: stored in the checkpoint beside the split record.
        checkpoint_path: when given, the final detector is written there atomically when the run completes; a run
            stopped by :meth:`stop` writes nothing there (its best weights stay in the outcome, for the caller to
            keep or drop), like ``train`` on the command line after a Ctrl-C.
        num_threads: CPU threads for torch's operators, set process-wide when the job starts (None: leave as is).
            The SIR-HCL LSTMs are small; on a busy 2-core machine one thread measured 6x faster than two
            (2.3 s vs 13.7 s for a demo epoch), because the threads spin-wait for each other on every tiny op.
        compare_with: the model in use; a finished SIR-HCL run is compared with it on the run's test pairs
            (:func:`~crossemo_core.runs.compare_models`, in the outcome's ``comparison``). Nothing is replaced.
        store: when given, the finished run (settings, history, metrics, comparison, model) is kept there
            (``outcome.stored``); a failure to write is reported in ``outcome.store_error``, the run stays.
        data_kind: the corpus's kind (e.g. ``ravdess``), recorded with the stored run.
    """

    def __init__(self, config: ExperimentConfig, corpus: PairDataset, method: str = "sir-hcl",
                 metadata: dict[str, Any] | None = None, checkpoint_path: str | Path | None = None,
                 num_threads: int | None = None, compare_with: Detector | None = None, store: RunStore | None = None,
                 data_kind: str = "") -> None:
        from crossemo_core.baselines import METHODS

        self.config = config.validate()
        if config.train.runs > 1:
            raise ValueError(RUNS_NEED_EVALUATION)
        if num_threads is not None and num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        self.num_threads = num_threads
        self.method = method
        self.device = describe_device(resolve_device(config.train.device))
        self._corpus = corpus
        self._metadata = dict(metadata or {})
        self._checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self._compare_with = compare_with
        self._store = store
        self._data_kind = data_kind
        self._lock = threading.Lock()
        self._steps: list[StepEvent] = []
        self._epochs: list[EpochEvent] = []
        self._job: BackgroundJob[TrainingOutcome] = BackgroundJob(self._work, name="training")

    # callbacks (called from the training thread)
    def on_step(self, event: StepEvent) -> None:
        with self._lock:
            self._steps.append(event)
        where = (f"refit on train + valid, epoch {event.epoch}" if event.phase == "refit"
                 else f"epoch {event.epoch}/{self.config.train.epochs}")
        self._job.report_progress(event.step, event.n_steps, f"{where}, step {event.step}/{event.n_steps}")

    def on_epoch(self, event: EpochEvent) -> None:
        with self._lock:
            self._epochs.append(event)

    def _work(self, job: BackgroundJob[TrainingOutcome]) -> TrainingOutcome:
        job.report_progress(0, 1, "preparing tensors")
        outcome = run(self._corpus, self.config, method=self.method, metadata=self._metadata,
                      control=TrainingControl([self], job.stop_event))
        result = outcome.training
        keep = self._checkpoint_path is not None and result is not None and not result.interrupted
        path = result.detector.save(self._checkpoint_path) if keep else None
        comparison = None
        if result is not None:
            job.report_progress(1, 1, "comparing with the model in use")
            comparison = compare_models(result.detector, self._compare_with, outcome.parts["test"])
        stored, store_error = self._keep(job, outcome, comparison)
        return TrainingOutcome(result, outcome.test_metrics, path, outcome, comparison, stored, store_error)

    def _keep(self, job: BackgroundJob[TrainingOutcome], outcome: RunResult,
              comparison: RunComparison | None) -> tuple[StoredRun | None, str | None]:
        """Write the finished run to the workspace store (when there is one); an OS error is kept as a message."""
        if self._store is None:
            return None, None
        with self._lock:
            steps, epochs = list(self._steps), list(self._epochs)
        try:
            stored = self._store.save(
                method=self.method,
                state="stopped" if job.stop_requested or getattr(outcome.training, "interrupted", False) else "done",
                data_name=self._corpus.display_name, data_kind=self._data_kind,
                elapsed=job.snapshot().elapsed, settings=self.config.to_dict(), test_metrics=outcome.test_metrics,
                epochs=epochs, steps=steps, comparison=comparison,
                detector=None if outcome.training is None else outcome.training.detector)
            return stored, None
        except OSError as exc:
            from crossemo_core.paths import os_error_message

            return None, f"the run could not be kept in the workspace ({os_error_message(exc)})"

    # control
    def start(self) -> "TrainingJob":
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
            self.device = describe_device(resolve_device(self.config.train.device))
        self._job.start()
        return self

    def stop(self) -> None:
        """Finish after the current step; the best epoch so far is kept."""
        self._job.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self._job.wait(timeout)

    @property
    def state(self) -> str:
        return self._job.state

    @property
    def finished(self) -> bool:
        return self._job.finished

    @property
    def stop_requested(self) -> bool:
        return self._job.stop_requested

    @property
    def outcome(self) -> TrainingOutcome | None:
        return self._job.result

    @property
    def error_detail(self) -> str | None:
        return self._job.error_detail

    def snapshot(self) -> TrainingSnapshot:
        with self._lock:
            steps, epochs = list(self._steps), list(self._epochs)
        job = self._job.snapshot()
        planned = max([self.config.train.epochs] + [e.n_epochs for e in epochs])  # a refit adds epochs
        return TrainingSnapshot(state=job.state, device=self.device, n_epochs=planned,
                                steps=steps, epochs=epochs, elapsed=job.elapsed, message=job.message,
                                error=job.error, outcome=job.result)
