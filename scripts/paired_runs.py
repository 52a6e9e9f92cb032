"""Pair benchmark runs by (seed, fold) and compare SIR-HCL with every other method of the same data setting, or
(``--against``) every method with itself in another benchmark (another setting, e.g. ``--set runs=3``).

    python scripts/paired_runs.py runs/i14/folds-cal/paper-ravdess.json runs/i14/folds-cal-baselines/paper-ravdess.json
    python scripts/paired_runs.py runs/ens3/paper-ravdess.json --against runs/one/paper-ravdess.json

Reads the benchmark's JSON outputs (each run's spec and metrics), keeps the runs whose data setting (calibration,
loader options) matches the first SIR-HCL run's, and prints per method: mean AUC over seeds (mean of per-seed fold
means, as the benchmark reports it), the mean paired difference SIR-HCL - method with its sd over the per-seed
means, and in how many (seed, fold) runs SIR-HCL is ahead. With ``--against``: per method, its AUC in the first
files and in the ``--against`` files, the paired difference (first minus against) and in how many runs the first
is ahead.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="paper-<dataset>.json files written by `benchmark`")
    ap.add_argument("--against", nargs="+", help="compare each method with its own runs in these files instead")
    args = ap.parse_args()
    runs = [r for path in args.results for r in json.load(open(path, encoding="utf-8"))["runs"]]
    if args.against:
        against = [r for path in args.against for r in json.load(open(path, encoding="utf-8"))["runs"]]
        return compare_settings(by_method(runs), by_method(against))
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


def by_method(runs: list[dict]) -> dict[str, dict[tuple[int, int], float]]:
    """Test AUC per method and (seed, fold), of runs that share one setting (data and overrides)."""
    settings = {json.dumps([r["spec"]["data"], r["spec"]["overrides"]], sort_keys=True) for r in runs}
    if len(settings) > 1:
        raise SystemExit(f"--against compares two settings, one per side; one side holds {len(settings)}: "
                         + " / ".join(sorted(settings)))
    auc: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    for r in runs:
        auc[r["spec"]["method"]][(r["spec"]["seed"], r["spec"]["fold"])] = float(r["metrics"]["auc"])
    return auc


def _sd(values: list[float] | np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def compare_settings(first: dict[str, dict], against: dict[str, dict]) -> None:
    """Each method's runs in ``first`` paired with its runs in ``against`` on the same (seed, fold)."""
    print("| method | AUC, first (mean ± sd over seeds) | AUC, against | first - against (paired) | first ahead |")
    print("|---|---|---|---|---|")
    for method in sorted(set(first) & set(against)):
        a, b = first[method], against[method]
        keys = sorted(set(a) & set(b))
        seeds = sorted({s for s, _ in keys})
        mean_a = [np.mean([a[k] for k in keys if k[0] == s]) for s in seeds]
        mean_b = [np.mean([b[k] for k in keys if k[0] == s]) for s in seeds]
        diff = np.array(mean_a) - np.array(mean_b)
        print(f"| {method} | {np.mean(mean_a):.3f} ± {_sd(mean_a):.3f} | {np.mean(mean_b):.3f} ± {_sd(mean_b):.3f} | "
              f"{diff.mean():+.3f} ± {_sd(diff):.3f} | {sum(a[k] > b[k] for k in keys)}/{len(keys)} |")
    for method in sorted(set(first) ^ set(against)):
        print(f"({method}: only in {'the first files' if method in first else '--against'}, not compared)")


if __name__ == "__main__":
    main()
