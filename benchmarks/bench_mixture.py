"""Benchmark: BetaMixture fit time on 1e6 scores (target <= 1 s) and predict_proba throughput.

Usage: python benchmarks/bench_mixture.py [--n 1000000] [--repeats 5] [--seed 0]

Scores are drawn from 0.6 Beta(8, 2) (normal) + 0.4 Beta(2, 6) (abnormal). Every row reports the median and the
minimum wall time over ``--repeats`` runs (after one warm-up run); the machine's load average is printed because
other processes on a shared machine slow every row. Also compares the Beta log-pdf forms (gammaln/xlogy vs
scipy.stats.beta.logpdf) that the implementation chose between.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy
from scipy import stats
from scipy.special import betaln, xlogy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crossemo_core.mixture import BetaMixture  # noqa: E402

TARGET_FIT_S = 1.0


def _timed(fn, repeats: int):
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times)), result


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    n = args.n
    abnormal = rng.random(n) < 0.4
    x = np.where(abnormal, rng.beta(2, 6, n), rng.beta(8, 2, n))
    labels = abnormal.astype(np.int64)

    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}; "
          f"cpus {os.cpu_count()}; load average before: {_load()}")
    print(f"n = {n:,} scores from 0.6 Beta(8,2) + 0.4 Beta(2,6); {args.repeats} repeats after 1 warm-up\n")

    rows = []

    def fit_row(name, make, init_labels):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return make().fit(x, init_labels=init_labels)
        med, best, m = _timed(run, args.repeats)
        per_iter = med / max(m.n_iter_, 1) * 1e3
        status = "ok" if med <= TARGET_FIT_S else "OVER"
        rows.append((name, f"{med:.3f} s", f"{best:.3f} s", f"{m.n_iter_}", f"{per_iter:.1f} ms",
                     f"{'yes' if m.converged_ else 'no'}", status))
        return m

    m = fit_row("fit, init_labels (method.md)", BetaMixture, labels)
    fit_row("fit, no labels, init_split=otsu", BetaMixture, None)
    fit_row("fit, no labels, init_split=median", lambda: BetaMixture(init_split="median"), None)
    fit_row("fit, 200 iterations forced (tol=0)", lambda: BetaMixture(tol=0.0), labels)

    print(f"{'BetaMixture.fit':38s} {'median':>9s} {'min':>9s} {'iters':>6s} {'total/iter':>10s} {'conv':>5s}  "
          f"target <= {TARGET_FIT_S:g} s")
    for r in rows:
        print(f"{r[0]:38s} {r[1]:>9s} {r[2]:>9s} {r[3]:>6s} {r[4]:>10s} {r[5]:>5s}  {r[6]}")

    print(f"\n{'inference on n scores':38s} {'median':>9s} {'min':>9s} {'throughput (median)':>22s}")
    for name, fn in [("predict_proba", lambda: m.predict_proba(x)),
                     ("posterior_abnormal", lambda: m.posterior_abnormal(x)),
                     ("predict (threshold 0.5)", lambda: m.predict(x)),
                     ("score_samples", lambda: m.score_samples(x))]:
        med, best, _ = _timed(fn, args.repeats)
        print(f"{name:38s} {med:8.3f}s {best:8.3f}s {n / med / 1e6:17.1f} M/s")

    a, b = 8.0, 2.0
    xc = np.clip(x, 1e-4, 1 - 1e-4)
    print(f"\n{'Beta log-pdf on n scores (one component)':38s} {'median':>9s} {'min':>9s}")
    for name, fn in [("scipy.stats.beta.logpdf", lambda: stats.beta.logpdf(xc, a, b)),
                     ("xlogy + betaln", lambda: xlogy(a - 1, xc) + xlogy(b - 1, 1 - xc) - betaln(a, b)),
                     ("(a-1) log x + (b-1) log1p(-x) - betaln",
                      lambda: (a - 1) * np.log(xc) + (b - 1) * np.log1p(-xc) - betaln(a, b))]:
        med, best, _ = _timed(fn, args.repeats)
        print(f"{name:38s} {med:8.3f}s {best:8.3f}s")
    print(f"\nload average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
