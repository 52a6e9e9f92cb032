"""Run a suite: compute the runs that the cache does not hold yet (in ``jobs`` worker processes), then write the
tables, JSON and plots from every finished run.

Threads: each run uses ``threads`` torch threads (default 1). On the shared 2-core development host one epoch of
SIR-HCL on RAVDESS took 3.5 s with 1 thread and 22-93 s with 2 threads while other jobs kept the cores busy
(oversubscribed intra-op threads wait on each other); two 1-thread jobs use two cores without that risk.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crossemo_core.benchmark.cache import RunCache
from crossemo_core.benchmark.protocols import RunSpec, describe_data, execute, is_run_record
from crossemo_core.benchmark.report import RENDERERS, write_outputs
from crossemo_core.benchmark.suites import Profile, suite_runs
from crossemo_core.executors import Executor, LocalExecutor, TaskFailed

ProgressFn = Callable[[RunSpec, dict[str, Any]], None]


def machine_description(threads: int | None = None) -> str:
    """E.g. ``"x86_64, 2 cores, 1 torch thread(s), no GPU, torch 2.3.1"``."""
    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    n = threads or torch.get_num_threads()
    return f"{platform.machine()}, {os.cpu_count()} cores, {n} torch thread(s), {gpu}, torch {torch.__version__}"


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` did and wrote."""

    computed: int
    cached: int
    missing: int
    files: list[Path]


def _quiet_run(_: Any, spec: RunSpec) -> dict[str, Any]:
    """One run as an executor task (``shared`` unused: a run loads its data through the data cache)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of the mixtures would break the progress bar
        return execute(spec)


def pending_runs(specs: Sequence[RunSpec], cache: RunCache, max_runs: int | None = None) -> list[RunSpec]:
    """The distinct specs without a cached result, in order, at most ``max_runs``."""
    pending = list({s.key(): s for s in specs if cache.get(s.key()) is None}.values())
    return pending if max_runs is None else pending[:max_runs]


def compute_runs(specs: Sequence[RunSpec], cache: RunCache, executor: Executor, max_runs: int | None = None,
                 on_done: ProgressFn | None = None) -> int:
    """Compute the specs missing from ``cache`` (at most ``max_runs`` of them), each one a task of ``executor``
    and cached as it finishes. Returns how many were computed; :class:`~crossemo_core.executors.TaskFailed` when
    some failed after their retries (the others are cached)."""
    pending = pending_runs(specs, cache, max_runs)

    def done(index: int, record: dict[str, Any]) -> None:
        cache.put(pending[index].key(), record)
        if on_done:
            on_done(pending[index], record)

    executor.map(_quiet_run, pending, on_done=done)
    return len(pending)


def run_benchmark(suite: str, profile: Profile, out_dir: str | Path, *, jobs: int = 1, threads: int = 1,
                  max_runs: int | None = None, on_done: ProgressFn | None = None,
                  command: str | None = None, executor: Executor | None = None) -> BenchmarkResult:
    """Compute what is missing of ``suite`` on ``profile`` and write ``<suite>-<dataset>.{md,json,html}``.

    The run cache lives in ``out_dir/cache``; an interrupted call loses only the runs in progress, and the same call
    again computes only what is missing. ``max_runs`` caps the runs computed by this call (the tables then say how
    many runs each cell has). Runs are tasks of ``executor`` (default: ``jobs`` local processes with ``threads``
    torch threads each); when some fail after their retries the tables are still written (the cells say how many
    runs they have) and :class:`~crossemo_core.executors.TaskFailed` is raised.
    """
    out_dir = Path(out_dir)
    specs = suite_runs(suite, profile)
    cache = RunCache(out_dir / "cache", valid=is_run_record)
    unique = {s.key() for s in specs}
    cached_before = sum(cache.get(k) is not None for k in unique)
    failed: TaskFailed | None = None
    computed = 0

    def count(spec: RunSpec, record: dict[str, Any]) -> None:
        nonlocal computed
        computed += 1
        if on_done:
            on_done(spec, record)

    with contextlib.nullcontext(executor) if executor is not None else LocalExecutor(jobs=jobs, threads=threads) as ex:
        try:
            compute_runs(specs, cache, ex, max_runs=max_runs, on_done=count)
        except TaskFailed as exc:
            failed = exc
    records = {k: r for k in unique if (r := cache.get(k)) is not None}
    rendered = RENDERERS[suite](specs, records, profile.dataset)
    data = describe_data(profile.data())
    seconds = sum(r["fit_seconds"] + r["score_seconds"] for r in records.values())
    header = _header(suite, profile, data, command, len(records), len(unique), computed, seconds, threads, jobs)
    extra = {"suite": suite, "dataset": data, "profile": _profile_dict(profile), "command": command,
             "machine": machine_description(threads), "written": _now(), "runs": sorted(
                 ({k: v for k, v in r.items() if k != "roc_tpr"} for r in records.values()), key=lambda r: r["key"])}
    files = write_outputs(out_dir, f"{suite}-{profile.dataset}", header, rendered, extra)
    if failed is not None:
        raise failed
    return BenchmarkResult(computed=computed, cached=cached_before, missing=len(unique) - len(records), files=files)


def _profile_dict(profile: Profile) -> dict[str, Any]:
    return {"seeds": list(profile.seeds), "n_folds": profile.n_folds, "preset": profile.preset,
            "overrides": dict(profile.overrides), "options": dict(profile.options), "methods": list(profile.methods),
            "fine_grained": profile.fine_grained, "calibration": profile.calibration}


def _calibration_text(calibration: str) -> str:
    if calibration == "none":
        return "none"
    clips = "its neutral clips" if calibration == "neutral" else "all of its clips"
    return f"every speaker (test speakers too) standardised by {clips}, for every method"


def _header(suite: str, profile: Profile, data: dict[str, Any], command: str | None, done: int, total: int,
            computed: int, seconds: float, threads: int, jobs: int) -> str:
    split = (f"{profile.n_folds} speaker folds per seed (each fold's speakers are the test part once, the next fold "
             f"the validation part)" if profile.n_folds else "one 3:1:1 speaker-disjoint split per seed (or the "
                                                               "corpus's official folds)")
    overrides = ", ".join(f"{k}={v}" for k, v in profile.overrides) or "none"
    options = ", ".join(f"{k}={v}" for k, v in profile.options) or "none"
    lines = [
        f"# Benchmark `{suite}` on {data['name']}",
        "",
        f"- data: {data['name']}, {data['pairs']} clips, {data['speakers']} speakers"
        + (" (**synthetic**)" if data["synthetic"] else "") + (f"; {profile.note}" if profile.note else ""),
        (f"- protocol: {split}; seeds {', '.join(map(str, profile.seeds))}; abnormal pairs made inside each part "
         "by the same-speaker protocol (rate 0.5 unless the table says otherwise); mean ± sd over seeds of the "
         "per-seed mean over folds."),
        (f"- training: preset `{profile.preset}`, overrides: {overrides}; loader options: {options}; every method "
         "gets the same encoders and optimiser settings."),
        f"- per-person normalisation: {_calibration_text(profile.calibration)}.",
        (f"- runs: {done} of {total} done ({computed} computed by the last call); compute {seconds / 60:.1f} min "
         f"in total; {jobs} job(s) x {threads} thread(s) on {machine_description(threads)}."),
        f"- written {_now()}" + (f" by `{command}`" if command else ""),
    ]
    if data["repaired"]:
        lines.append(f"- **repaired features** (every method saw them as repaired: NaN -> 0, inf -> +-1e6): "
                     f"{'; '.join(data['repaired'])}.")
    if done < total:
        lines.append(f"- **incomplete**: {total - done} run(s) missing; the same command computes them.")
    return "\n".join(lines)


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def command_line() -> str:
    return "python -m crossemo_core " + " ".join(sys.argv[1:])
