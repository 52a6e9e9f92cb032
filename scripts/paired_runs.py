"""Pair benchmark runs by (seed, fold) and compare SIR-HCL with every other method of the same data setting.

    python scripts/paired_runs.py runs/i14/folds-cal/paper-ravdess.json runs/i14/folds-cal-baselines/paper-ravdess.json

Reads the benchmark's JSON outputs (each run's spec and metrics), keeps the runs whose data setting (calibration,
loader options) matches the first SIR-HCL run's, and prints per method: mean AUC over seeds (mean of per-seed fold
means, as the benchmark reports it), the mean paired difference SIR-HCL - method with its sd over the per-seed
means, and in how many (seed, fold) runs SIR-HCL is ahead.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="paper-<dataset>.json files written by `benchmark`")
    args = ap.parse_args()
    runs = [r for path in args.results for r in json.load(open(path, encoding="utf-8"))["runs"]]
    setting = next(json.dumps(r["spec"]["data"], sort_keys=True) for r in runs if r["spec"]["method"] == "sir-hcl")
    auc: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    for r in runs:
        if json.dumps(r["spec"]["data"], sort_keys=True) == setting:
            auc[r["spec"]["method"]][(r["spec"]["seed"], r["spec"]["fold"])] = float(r["metrics"]["auc"])
    ours = auc.pop("sir-hcl")
    print(f"data setting: {setting}")
    print("| method | AUC (mean ± sd over seeds) | SIR-HCL - method (paired) | SIR-HCL ahead |")
    print("|---|---|---|---|")
    for method, values in [("sir-hcl", ours), *sorted(auc.items())]:
        keys = sorted(set(values) & set(ours))
        seeds = sorted({s for s, _ in keys})
        per_seed = [np.mean([values[k] for k in keys if k[0] == s]) for s in seeds]
        diff = [np.mean([ours[k] - values[k] for k in keys if k[0] == s]) for s in seeds]
        ahead = sum(ours[k] > values[k] for k in keys)
        print(f"| {method} | {np.mean(per_seed):.3f} ± {np.std(per_seed, ddof=1):.3f} | "
              f"{np.mean(diff):+.3f} ± {np.std(diff, ddof=1):.3f} | {ahead}/{len(keys)} |")


if __name__ == "__main__":
    main()
