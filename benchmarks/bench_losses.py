"""Time the vectorised SIR-HCL losses against the loop reference of tests/loss_reference.py.

    python benchmarks/bench_losses.py [--batch-size 64] [--dim 256] [--repeats 30]

Prints, per component and for the total (eq. 18), the median wall time of the vectorised code and of the reference
(forward only, and forward + backward for the total) and the speed-up. CPU, float32, C = 3, k = 6, tau = 1.
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


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure_loss_speedup(batch_size: int = 64, dim: int = 256, repeats: int = 30, seed: int = 0) -> dict:
    """{row name: {"vectorised_ms", "reference_ms", "speedup"}} for random labels with about half the pairs abnormal."""
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
    results = {}
    for name, (fast, slow) in rows.items():
        fast_ms, slow_ms = median_ms(fast, repeats), median_ms(slow, max(3, repeats // 5))
        results[name] = {"vectorised_ms": fast_ms, "reference_ms": slow_ms, "speedup": slow_ms / fast_ms}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: less noise)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = measure_loss_speedup(args.batch_size, args.dim, args.repeats)
    print(f"B={args.batch_size} D={args.dim} C={N_CLASSES} k={K} float32 CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} (reference: {max(3, args.repeats // 5)})")
    print(f"{'term':<24}{'vectorised ms':>15}{'reference ms':>15}{'speed-up':>10}")
    for name, r in results.items():
        print(f"{name:<24}{r['vectorised_ms']:>15.3f}{r['reference_ms']:>15.2f}{r['speedup']:>9.0f}x")


if __name__ == "__main__":
    main()
