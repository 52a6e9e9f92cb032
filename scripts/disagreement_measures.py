"""Test AUC of each of the disagreement rule's four measures (JS / 1 - sum p_f p_v, on valence / on 7 emotions), on
the RAVDESS cross-validation folds, for a given voice input; and which measure validation chose.

    OMP_NUM_THREADS=1 python scripts/disagreement_measures.py --root ../shared/data/ravdess --voice-features reader
    OMP_NUM_THREADS=1 python scripts/disagreement_measures.py --root ../shared/data/ravdess \
        --voice-features reader-folds:$HOME/.cache/crossemo/fold_readers --seeds 0

Same splits, settings (the RAVDESS profile, refit) and abnormal pairs as ``benchmark --suite paper``.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.protocols import DataSpec, corpus_for, fold_data  # noqa: E402
from crossemo_core.baselines.disagreement import MEASURES  # noqa: E402
from crossemo_core.experiment import config_for, run  # noqa: E402
from crossemo_core.profiles import resolve_settings  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--voice-features", default="librosa")
    p.add_argument("--voice", default="auto", choices=("auto", "reader", "fit"))
    p.add_argument("--calibration", default="none", choices=("none", "neutral", "all"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    preset, overrides = resolve_settings("ravdess", None, {})
    options = () if args.voice_features == "librosa" else (("voice_features", args.voice_features),)
    data = DataSpec("ravdess", args.root, 3, args.calibration, options)
    per_seed: dict[str, list[float]] = {m: [] for m in MEASURES + ("chosen",)}
    chosen: Counter[str] = Counter()
    for seed in args.seeds:
        folds: dict[str, list[float]] = {m: [] for m in MEASURES + ("chosen",)}
        for fold in range(5):
            corpus = corpus_for(fold_data(data, seed, fold))
            config = config_for(corpus, preset, seed=seed, **overrides)
            result = run(corpus, config, method="disagreement", method_settings={"voice": args.voice}, fold=fold,
                         n_folds=5)
            test = result.parts["test"]
            for m, s in result.scorer.scores(test).items():
                folds[m].append(roc_auc_score(test.is_abnormal, s))
            folds["chosen"].append(result.test_metrics["auc"])
            chosen[result.scorer.measure] += 1
        for m, v in folds.items():
            per_seed[m].append(float(np.mean(v)))
    print(f"voice features {args.voice_features}, voice {args.voice}, calibration {args.calibration}, "
          f"seeds {args.seeds}")
    for m, v in per_seed.items():
        sd = f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else ""
        print(f"  {m:12s} AUC {np.mean(v):.3f}{sd}  (per seed {' / '.join(f'{x:.3f}' for x in v)})")
    print(f"  chosen on validation: {dict(chosen)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
