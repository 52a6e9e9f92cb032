"""Time the vectorised SIR-HCL losses against the loop reference of tests/loss_reference.py.

    python benchmarks/bench_losses.py [--batch-size 64] [--dim 256] [--repeats 10] [--threads 1]

Prints, per component and for the total (eq. 18), the wall time of the vectorised code and of the reference
(forward only, and forward + backward for the total) and the speed-up, as medians and as best (minimum) times; the
two are timed interleaved so that both see the same machine load. CPU, float32, C = 3, k = 6, tau = 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import loss_reference as ref  # noqa: E402

from crossemo_core.losses import (  # noqa: E402
    CrossModalLoss,
    HardSampleLoss,
    HardSampleMiner,
    HybridContrastiveLoss,
    IntraModalLoss,
)

N_CLASSES = 3
K = 6


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_pair(fast: Callable[[], object], slow: Callable[[], object], rounds: int) -> dict[str, float]:
    """Interleave the two so that both see the same machine load: each round runs slow once and fast 10 times.

    Returns the median and the best (minimum) time of each, in ms, and the speed-ups slow / fast of both.
    """
    fast(), slow()  # warm-up
    fast_s: list[float] = []
    slow_s: list[float] = []
    for _ in range(rounds):
        slow_s.append(_seconds(slow))
        fast_s.extend(_seconds(fast) for _ in range(10))
    out = {
        "vectorised_ms": 1e3 * statistics.median(fast_s),
        "reference_ms": 1e3 * statistics.median(slow_s),
        "vectorised_best_ms": 1e3 * min(fast_s),
        "reference_best_ms": 1e3 * min(slow_s),
    }
    out["speedup"] = out["reference_ms"] / out["vectorised_ms"]
    out["speedup_best"] = out["reference_best_ms"] / out["vectorised_best_ms"]
    return out


def measure_loss_speedup(
    batch_size: int = 64, dim: int = 256, repeats: int = 10, seed: int = 0, threads: int = 1
) -> dict[str, dict[str, float]]:
    """{row: `time_pair` result} over `repeats` rounds on `threads` torch threads (restored afterwards); random
    labels with about half the pairs abnormal."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(batch_size, dim, repeats, seed)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(batch_size: int, dim: int, repeats: int, seed: int) -> dict[str, dict[str, float]]:
    gen = torch.Generator().manual_seed(seed)
    face = torch.randn(batch_size, dim, generator=gen).requires_grad_(True)
    voice = torch.randn(batch_size, dim, generator=gen).requires_grad_(True)
    face_logits = torch.randn(batch_size, N_CLASSES, generator=gen).requires_grad_(True)
    voice_logits = torch.randn(batch_size, N_CLASSES, generator=gen).requires_grad_(True)
    y_face = torch.randint(0, N_CLASSES, (batch_size,), generator=gen)
    flip = torch.rand(batch_size, generator=gen) < 0.5
    y_voice = torch.where(flip, torch.randint(0, N_CLASSES, (batch_size,), generator=gen), y_face)
    emb = (face, voice, y_face, y_voice)
    miner, hard = HardSampleMiner(K), HardSampleLoss("bce")
    hybrid = HybridContrastiveLoss(k=K)
    full_args = (face, voice, face_logits, voice_logits, y_face, y_voice)

    def ref_total() -> torch.Tensor:
        return ref.ref_total(*full_args, k=K)["total"]

    rows: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "L_intra (fwd)": (lambda: IntraModalLoss()(*emb), lambda: ref.ref_intra(*emb)),
        "L_cross (fwd)": (lambda: CrossModalLoss()(*emb), lambda: ref.ref_cross(*emb)),
        "L_hard miner+bce (fwd)": (lambda: hard(face, voice, miner(*emb)), lambda: ref.ref_hard(*emb, K)),
        "total (fwd)": (lambda: hybrid(*full_args).total, ref_total),
        "total (fwd+bwd)": (lambda: hybrid(*full_args).total.backward(), lambda: ref_total().backward()),
    }
    return {name: time_pair(fast, slow, repeats) for name, (fast, slow) in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10, help="rounds: 1 reference + 10 vectorised runs each")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: less noise)")
    args = parser.parse_args()
    results = measure_loss_speedup(args.batch_size, args.dim, args.repeats, threads=args.threads)
    print(f"B={args.batch_size} D={args.dim} C={N_CLASSES} k={K} tau=1 float32 CPU, torch {torch.__version__}, "
          f"{args.threads} thread(s); {args.repeats} reference and {10 * args.repeats} vectorised runs")
    print(f"{'term':<24}{'vectorised ms':>15}{'reference ms':>14}{'speed-up':>10}{'best vec ms':>13}"
          f"{'best ref ms':>13}{'best speed-up':>15}")
    for name, r in results.items():
        print(f"{name:<24}{r['vectorised_ms']:>15.3f}{r['reference_ms']:>14.1f}{r['speedup']:>9.0f}x"
              f"{r['vectorised_best_ms']:>13.3f}{r['reference_best_ms']:>13.1f}{r['speedup_best']:>14.0f}x")
    print("vectorised / reference ms: medians; best: minimum over the runs. Target: speed-up >= 50x.")


if __name__ == "__main__":
    main()
