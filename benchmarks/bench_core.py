"""Core speed benchmark (issue: crossemo_core). Prints a table; targets are informative, never asserted.

    python benchmarks/bench_core.py [--epochs 1] [--threads N]

Rows: seconds per training epoch on a MOSEI-size synthetic set (16,326 pairs, L = 50, 35/74-d, batch 32),
scoring throughput (pairs/s), the same two on 5,400 pairs whose sequences last 5-50 steps, loss speed-up over the
loop reference at B = 64, BetaMixture fit on 1e6 scores.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from crossemo_core.config import preset_config  # noqa: E402
from crossemo_core.data.loaders.synthetic import MOSEI_SIZE, make_synthetic  # noqa: E402
from crossemo_core.data.protocol import make_abnormal_pairs  # noqa: E402
from crossemo_core.mixture import BetaMixture  # noqa: E402
from crossemo_core.training import Trainer, describe_device, resolve_device  # noqa: E402


def machine() -> str:
    device = resolve_device("auto")
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
           f"{describe_device(device)}"


VARIABLE_LENGTHS = {**MOSEI_SIZE, "n_speakers": 300, "face_length": (5, 50), "voice_length": (5, 50)}
"""5,400 pairs whose sequences last 5-50 steps, as real corpora's do (the LSTMs' padded batches then hold
sequences of different lengths)."""


def bench_epoch(epochs: int, size: dict = MOSEI_SIZE) -> tuple[float, float]:
    corpus = make_synthetic(**size, seed=0)
    pairs, _ = make_abnormal_pairs(corpus, 0.5, seed=0)
    valid, _ = make_abnormal_pairs(make_synthetic(**{**size, "n_speakers": 20}, seed=1), 0.5, seed=1)
    config = preset_config("paper", pairs.face_dim, pairs.voice_dim, batch_size=32, epochs=epochs, patience=epochs)
    result = Trainer(config).fit(pairs, valid)
    per_epoch = float(np.mean([e.seconds for e in result.history]))
    start = time.perf_counter()
    result.detector.similarity(pairs)
    throughput = len(pairs) / (time.perf_counter() - start)
    return per_epoch, throughput


def bench_losses() -> float:
    from bench_losses import measure_loss_speedup  # benchmarks/bench_losses.py

    return measure_loss_speedup(batch_size=64)["total (fwd+bwd)"]["speedup"]


def bench_mixture() -> float:
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.beta(8, 2, 600_000), rng.beta(2, 6, 400_000)])
    labels = np.r_[np.zeros(600_000, int), np.ones(400_000, int)]
    start = time.perf_counter()
    BetaMixture().fit(scores, init_labels=labels)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    print(f"machine: {machine()}")
    per_epoch, throughput = bench_epoch(args.epochs)
    varied_epoch, varied_throughput = bench_epoch(args.epochs, VARIABLE_LENGTHS)
    rows = [
        ("seconds per epoch, MOSEI-size synthetic (16,326 pairs, L=50, batch 32)", f"{per_epoch:.1f} s", "<= 30 s"),
        ("scoring throughput (eval mode, batch 1024)", f"{throughput:,.0f} pairs/s", ">= 20,000 pairs/s"),
        ("seconds per epoch, 5,400 synthetic pairs of 5-50 steps, batch 32", f"{varied_epoch:.1f} s", ""),
        ("scoring throughput, the same pairs", f"{varied_throughput:,.0f} pairs/s", ""),
        ("loss speed-up over loop reference, B = 64 (total, fwd+bwd)", f"{bench_losses():.0f}x", ">= 50x"),
        ("BetaMixture fit, 1e6 scores", f"{bench_mixture():.2f} s", "<= 1 s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | {'measured':>18} | {'target':>18} |")
    print(f"|{'-' * (width + 2)}|{'-' * 20}|{'-' * 20}|")
    for name, value, target in rows:
        print(f"| {name:<{width}} | {value:>18} | {target:>18} |")


if __name__ == "__main__":
    main()
