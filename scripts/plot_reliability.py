"""Draw the reliability diagram of clip verdicts from an evaluation's JSON (``scripts/eval_clip_heldapart.py``).

    python scripts/plot_reliability.py docs/clip_heldapart.json docs/clip_emodb.json --out docs/clip_reliability.png

For each file and each of its clip sets (clean, degraded voice): the decided clips' mean P(inconsistent) per bin
against the share of them that are inconsistent; the diagonal is perfect calibration, marker area is the bin's size.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from crossemo_core.paths import atomic_writer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/clip_reliability.png"))
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(5.2, 5.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="perfect calibration")
    for path in args.results:
        result = json.loads(path.read_text())
        for part in ("clean", "degraded_voice"):
            if part not in result:
                continue
            cal = result[part]["calibration_decided"]
            x = [b["mean_p"] for b in cal["bins"]]
            y = [b["share_inconsistent"] for b in cal["bins"]]
            label = f"{path.stem.replace('clip_', '')}, {part.replace('_', ' ')} (ECE {cal['ece']:.3f})"
            ax.plot(x, y, marker="o", lw=1.2, label=label)
            ax.scatter(x, y, s=[4 * b["n"] for b in cal["bins"]], alpha=0.25)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean P(inconsistent) in the bin", ylabel="share of clips inconsistent",
           title="Clip verdicts: reliability (10 bins)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    with atomic_writer(args.out) as f:
        fig.savefig(f, format=args.out.suffix.lstrip(".") or "png")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
