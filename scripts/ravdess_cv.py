"""SIR-HCL on RAVDESS: speaker-disjoint cross-validation over the actors present, end to end.

    python scripts/ravdess_cv.py --root ../shared/data/ravdess --json /tmp/ravdess_cv.json

Loads RAVDESS with the voice preprocessing given (default: the loader's), runs
:func:`crossemo_core.experiment.cross_validate` (5 speaker folds: test 4 actors, valid 4, train 12; abnormal pairs
at rate 0.5 made inside each part; the epoch count chosen by early stopping on the validation AUC of the pair
cosine, then a fresh network trained on train + valid for that many epochs (``refit``); normalisation and the
verdict's Beta mixture from train + valid, never from the test actors), and prints per seed and
mean +- sd over seeds: AUC / TPR / FPR / accuracy, overall and per anomaly type. Per-seed numbers are the mean over
that seed's folds (as in ``cross_validate``). Settings that are ours are listed in ``DEFAULTS`` and in
docs/notes/ravdess.md; every one can be overridden with ``--set name=value``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.data.loaders.ravdess import VOICE_PREPROCESSING, load_ravdess
from crossemo_core.evaluation import mean_sd
from crossemo_core.experiment import cross_validate

METRICS = ("auc", "tpr", "fpr", "accuracy")
DEFAULTS: dict[str, Any] = {  # [ours] on top of the "fast" preset; see docs/notes/ravdess.md
    "mixture_var_floor": 3e-3,
    "training_labels": "emotions",  # the losses see the 8 acted emotions; anomalies stay valence mismatches
    "refit": True,  # epochs chosen on the 4 validation actors, then a fresh network trained on all 16 non-test actors
}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _row(label: str, m: dict[str, Any]) -> str:
    def cell(key: str) -> str:
        v = m.get(key)
        if isinstance(v, dict):
            return f"{v['mean']:.3f} +- {v['sd']:.3f}"
        return f"{v:.3f}" if isinstance(v, float) else "-"
    return f"{label:<28}" + "".join(f"{cell(k):>18}" for k in METRICS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/ravdess"))
    parser.add_argument("--cache-dir", type=Path, default=None, help="voice feature cache ($CROSSEMO_CACHE if unset)")
    parser.add_argument("--voice-preprocessing", default=VOICE_PREPROCESSING)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="config override (any ModelConfig/LossConfig/TrainConfig field), repeatable")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (on the loaded 2-core dev host, 2 threads finished no fold in 15 min; "
                             "1 thread took ~40-90 s per fold)")
    parser.add_argument("--json", type=Path, help="write settings, per-fold, per-seed and summary metrics here")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    overrides = dict(DEFAULTS)
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name.strip()] = _value(value.strip())

    started = time.perf_counter()
    report: list[str] = []
    corpus = load_ravdess(args.root, cache_dir=args.cache_dir, voice_preprocessing=args.voice_preprocessing,
                          report=report)
    for line in report:
        print(f"note: {line}")
    print(f"{len(corpus)} pairs, {len(set(corpus.speaker))} actors; voice extractor {corpus.extractor['voice']}; "
          f"preset {args.preset}; overrides {overrides}", flush=True)

    folds: list[dict[str, Any]] = []

    def on_run(seed: int, fold: int, metrics: dict[str, Any]) -> None:
        folds.append({"seed": seed, "fold": fold, **metrics})
        print(f"seed {seed} fold {fold}: " + "  ".join(f"{k} {metrics[k]:.3f}" for k in METRICS)
              + f"  ({time.perf_counter() - started:.0f} s)", flush=True)

    result = cross_validate(corpus, args.preset, seeds=args.seeds, n_folds=args.folds, on_run=on_run, **overrides)

    types = sorted({t for f in folds for t in f["per_type"]})
    per_seed = []
    for seed, overall in zip(args.seeds, result["per_seed"]):
        runs = [f for f in folds if f["seed"] == seed]
        per_type = {t: {k: float(np.nanmean([r["per_type"][t][k] for r in runs if t in r["per_type"]]))
                        for k in METRICS} for t in types}
        per_seed.append({**{k: overall[k] for k in METRICS}, "per_type": per_type})
    summary = mean_sd(per_seed)
    seconds = time.perf_counter() - started

    print(f"\nSIR-HCL on RAVDESS, {args.folds}-fold speaker-disjoint CV, seeds {args.seeds} "
          f"(per seed: mean over folds; summary: mean +- sd over seeds)")
    print(f"{'':<28}" + "".join(f"{k:>18}" for k in METRICS))
    for seed, m in zip(args.seeds, per_seed):
        print(_row(f"seed {seed}", m))
    print(_row("mean +- sd", summary))
    for t in types:
        print(_row(f"  {t}", summary["per_type"][t]))
    print(f"total wall time {seconds:.0f} s ({os.cpu_count()} CPU(s) visible, {args.threads} torch thread(s))")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "dataset": corpus.name, "n_pairs": len(corpus), "actors": sorted(set(corpus.speaker.tolist())),
            "voice_extractor": corpus.extractor["voice"], "preset": args.preset, "overrides": overrides,
            "folds": args.folds, "seeds": args.seeds, "per_fold": folds, "per_seed": per_seed,
            "summary": summary, "wall_seconds": seconds}, indent=2, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
