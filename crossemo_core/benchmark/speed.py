"""The ``speed`` suite: how long the expensive steps take on this machine. Every row names the machine it ran on.

Rows (full size; ``tiny=True`` shrinks every input for smoke tests, and its numbers mean nothing):

- seconds per SIR-HCL training epoch on the MOSEI-size synthetic set (16,326 pairs, L = 50, batch 32, paper preset);
- scoring throughput of the trained detector (eval mode, batches of 1024);
- loss speed-up of the vectorised L_all over the loop reference at B = 64 (needs the repository's ``tests/`` and
  ``benchmarks/``; not measured from an installed package);
- BetaMixture fit on 1e6 scores;
- t-SNE and UMAP of 4,000 embeddings (2,000 pairs x 2 modalities); UMAP's first call includes numba compilation;
- clip verdict latency (decode, face, voice, windows, model) of one clip file (default: the bundled demo clip
  ``assets/clips/smile_upbeat.mp4``), when the clip model (``crossemo_core.clip``) and its checkpoints are present.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossemo_core.benchmark.report import markdown_table
from crossemo_core.benchmark.runner import machine_description
from crossemo_core.errors import CrossemoError

REPO = Path(__file__).resolve().parents[2]
DEMO_CLIP = REPO / "assets" / "clips" / "smile_upbeat.mp4"


@dataclass
class SpeedRow:
    measure: str
    value: str
    detail: str
    machine: str


def median_seconds(fn: Callable[[], Any], repeats: int, warmups: int = 1) -> float:
    """Median wall time (seconds) of ``repeats`` calls of ``fn`` after ``warmups`` untimed ones."""
    for _ in range(warmups):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_speed(tiny: bool = False, threads: int = 1, clip: str | Path | None = None,
              progress: Callable[[str], None] | None = None) -> list[SpeedRow]:
    """Measure every row (see the module docstring) with ``threads`` torch threads."""
    from crossemo_core.config import preset_config
    from crossemo_core.data.loaders.synthetic import MOSEI_SIZE, make_synthetic
    from crossemo_core.data.protocol import make_abnormal_pairs
    from crossemo_core.mixture import BetaMixture
    from crossemo_core.projection import project, umap_available
    from crossemo_core.training import Trainer

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    machine = machine_description(threads)
    rows: list[SpeedRow] = []

    def step(name: str) -> None:
        if progress:
            progress(name)

    try:
        step("training epoch")
        size = (dict(n_speakers=12, clips_per_speaker=10, face_dim=35, voice_dim=74, face_length=(50, 50),
                     voice_length=(50, 50)) if tiny else MOSEI_SIZE)
        pairs, _ = make_abnormal_pairs(make_synthetic(**size, seed=0), 0.5, seed=0)
        valid, _ = make_abnormal_pairs(make_synthetic(**{**size, "n_speakers": 4 if tiny else 20}, seed=1), 0.5, 1)
        config = preset_config("paper", pairs.face_dim, pairs.voice_dim, batch_size=32, epochs=1, patience=1)
        result = Trainer(config).fit(pairs, valid)
        rows.append(SpeedRow("seconds per training epoch", f"{result.history[0].seconds:.1f} s",
                             f"{len(pairs):,} pairs, L = 50, 35/74-d, batch 32, paper preset", machine))

        step("scoring throughput")
        seconds, _ = _timed(lambda: result.detector.similarity(pairs))
        rows.append(SpeedRow("scoring throughput", f"{len(pairs) / seconds:,.0f} pairs/s",
                             f"{len(pairs):,} pairs, eval mode, batch 1024", machine))

        step("loss speed-up")
        rows.append(_loss_speedup(tiny, threads, machine))

        step("BetaMixture fit")
        n = 10_000 if tiny else 1_000_000
        rng = np.random.default_rng(0)
        scores = np.concatenate([rng.beta(8, 2, n * 6 // 10), rng.beta(2, 6, n - n * 6 // 10)])
        labels = np.r_[np.zeros(n * 6 // 10, int), np.ones(n - n * 6 // 10, int)]
        seconds, _ = _timed(lambda: BetaMixture().fit(scores, init_labels=labels))
        rows.append(SpeedRow("BetaMixture fit", f"{seconds:.2f} s", f"{n:,} scores, 0.6 Beta(8,2) + 0.4 Beta(2,6)",
                             machine))

        n_pairs = 30 if tiny else 2000
        face, voice = result.detector.embed(pairs.subset(np.arange(n_pairs)))
        points = np.concatenate([face, voice])
        for method in ("tsne", "umap"):
            step(method)
            if method == "umap" and (tiny or not umap_available()):
                rows.append(SpeedRow("UMAP 2-D map", "not measured", "skipped in the tiny suite (numba compilation "
                                     "takes tens of seconds)" if tiny else "umap-learn is not installed", machine))
                continue
            seconds, _ = _timed(lambda m=method: project(points, m, seed=0))
            detail = f"{len(points):,} points of {points.shape[1]} dims"
            if method == "umap":
                warm, _ = _timed(lambda m=method: project(points, m, seed=0))
                detail += f"; first call {seconds:.1f} s incl. numba compilation"
                seconds = warm
            rows.append(SpeedRow(f"{'t-SNE' if method == 'tsne' else 'UMAP'} 2-D map", f"{seconds:.1f} s", detail,
                                 machine))

        step("clip verdict")
        if tiny:
            rows.append(SpeedRow("clip verdict latency", "not measured", "skipped in the tiny suite", machine))
        else:
            rows.append(_clip_latency(clip or (DEMO_CLIP if DEMO_CLIP.is_file() else None), machine))
    finally:
        torch.set_num_threads(previous)
    return rows


def _loss_speedup(tiny: bool, threads: int, machine: str) -> SpeedRow:
    bench = REPO / "benchmarks" / "bench_losses.py"
    if not bench.is_file() or not (REPO / "tests" / "loss_reference.py").is_file():
        return SpeedRow("loss speed-up over the loop reference", "not measured",
                        "needs the repository's benchmarks/ and tests/ (installed package)", machine)
    for folder in (REPO / "benchmarks", REPO / "tests"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    from bench_losses import measure_loss_speedup

    batch = 16 if tiny else 64
    result = measure_loss_speedup(batch_size=batch, repeats=2 if tiny else 10, threads=threads)
    total = result["total (fwd+bwd)"]
    return SpeedRow("loss speed-up over the loop reference", f"{total['speedup']:.0f}x",
                    f"L_all forward + backward, B = {batch}, 256-d", machine)


def _clip_latency(clip: str | Path | None, machine: str) -> SpeedRow:
    name = "clip verdict latency"
    if clip is None:
        return SpeedRow(name, "not measured", "no clip file (--clip FILE)", machine)
    try:
        from crossemo_core.clip.verdict import ClipScorer

        scorer = ClipScorer()
        cold, verdict = _timed(lambda: scorer.score(str(clip)))
    except (ImportError, CrossemoError, OSError) as exc:
        return SpeedRow(name, "not measured", f"the clip path is not available ({exc})", machine)
    warm, _ = _timed(lambda: scorer.score(str(clip)))
    scorer.close()
    summary = verdict.summary() if hasattr(verdict, "summary") else ""
    return SpeedRow(name, f"{warm:.2f} s", f"{Path(clip).name}; first call {cold:.2f} s (loads the models); "
                                          f"{summary[:80]}", machine)


def speed_markdown(rows: list[SpeedRow], command: str | None = None) -> str:
    head = "# Benchmark `speed`\n\n" + (f"Written by `{command}`.\n\n" if command else "")
    return head + markdown_table(("measure", "value", "detail", "machine"),
                                 [(r.measure, r.value, r.detail, r.machine) for r in rows]) + "\n"
