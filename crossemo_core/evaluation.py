"""Detection metrics (abnormal = positive), per anomaly type (Table IV), and mean +- sd over seeds."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def detection_metrics(abnormal: np.ndarray, p_abnormal: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """AUC, TPR, FPR and accuracy.

    Args:
        abnormal: ``(N,)`` bool, true when face and voice classes differ.
        p_abnormal: ``(N,)`` score, higher = more likely abnormal (the posterior of inconsistency).
        predicted: ``(N,)`` bool verdicts.
    AUC is NaN when only one class is present (it is undefined there), never an exception.
    """
    y = np.asarray(abnormal, dtype=bool)
    pred = np.asarray(predicted, dtype=bool)
    score = np.asarray(p_abnormal, dtype=np.float64)
    if not (len(y) == len(pred) == len(score)):
        raise ValueError(f"metric inputs differ in length: {len(y)}, {len(score)}, {len(pred)}")
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    both = 0 < n_pos < len(y)
    return {
        "auc": float(roc_auc_score(y, score)) if both else float("nan"),
        "tpr": tp / n_pos if n_pos else float("nan"),
        "fpr": fp / n_neg if n_neg else float("nan"),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "n_pairs": int(len(y)),
        "n_abnormal": n_pos,
    }


def per_type_metrics(types: np.ndarray, p_abnormal: np.ndarray, predicted: np.ndarray) -> dict[str, dict[str, Any]]:
    """Table IV: for each anomaly type, the metrics on all normal pairs plus the abnormal pairs of that type.

    ``types`` holds "normal" or a type name per pair (see :func:`crossemo_core.data.labels.anomaly_type`).
    """
    types = np.asarray(types)
    normal = types == "normal"
    out = {}
    for name in sorted(set(types.tolist()) - {"normal"}):
        keep = normal | (types == name)
        out[name] = detection_metrics(types[keep] != "normal", np.asarray(p_abnormal)[keep],
                                      np.asarray(predicted)[keep])
    return out


def mean_sd(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation of every numeric metric over runs (e.g. seeds); nested dicts recurse."""
    if not runs:
        raise ValueError("mean_sd needs at least one run")
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs if key in r]
        if isinstance(first, dict):
            out[key] = mean_sd(values)
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            arr = np.asarray(values, dtype=np.float64)
            finite = arr[np.isfinite(arr)]
            out[key] = {"mean": float(finite.mean()) if len(finite) else float("nan"),
                        "sd": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0, "n": int(len(finite))}
    return out


def format_mean_sd(summary: dict[str, Any], keys: Sequence[str] = ("auc", "tpr", "fpr", "accuracy")) -> str:
    """One line such as ``AUC 0.812 +- 0.021 | TPR ...``."""
    parts = []
    for k in keys:
        if k in summary:
            parts.append(f"{k.upper() if k != 'accuracy' else 'Acc'} {summary[k]['mean']:.3f} +- {summary[k]['sd']:.3f}")
    return " | ".join(parts)


def calibration_metrics(inconsistent: np.ndarray, p_inconsistent: np.ndarray, n_bins: int = 10,
                        n_draws: int = 1000, seed: int = 0) -> dict[str, Any]:
    """How far probabilities are from observed frequencies: expected calibration error over ``n_bins`` equal-width
    bins (the bins' |mean p - share inconsistent| weighted by their size), the bins themselves (a reliability
    diagram), and the share of saturated probabilities (< 0.02 or > 0.98).

    ``ece_if_calibrated``: the ECE a perfectly calibrated model would show on these probabilities, from ``n_draws``
    label sets drawn with P(inconsistent) = p (5th, 50th and 95th percentile). On a few hundred clips it is not near
    0 (about 0.05 for 360 clips with probabilities between 0.1 and 0.9): the floor below which a measured ECE says
    nothing more."""
    y = np.asarray(inconsistent, dtype=np.float64)
    p = np.asarray(p_inconsistent, dtype=np.float64)
    if len(y) != len(p) or len(y) == 0:
        raise ValueError(f"calibration needs as many labels as probabilities (> 0); got {len(y)} and {len(p)}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()) or n_draws < 1:
        raise ValueError("calibration needs probabilities in [0, 1] (no NaN) and at least one draw")
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        m = which == b
        if m.any():
            bins.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int(m.sum()),
                         "mean_p": float(p[m].mean()), "share_inconsistent": float(y[m].mean())})
    rng = np.random.default_rng(seed)
    floor = [_binned_ece(p, (rng.random(len(p)) < p).astype(np.float64), which, n_bins) for _ in range(n_draws)]
    return {"ece": _binned_ece(p, y, which, n_bins), "saturated": float(np.mean((p < 0.02) | (p > 0.98))),
            "bins": bins, "n": int(len(y)),
            "ece_if_calibrated": dict(zip(("p5", "median", "p95"), np.percentile(floor, [5, 50, 95]).tolist()))}


def _binned_ece(p: np.ndarray, y: np.ndarray, which: np.ndarray, n_bins: int) -> float:
    """ECE of probabilities ``p`` against labels ``y`` whose bins are ``which`` (see :func:`calibration_metrics`)."""
    gap = np.abs(np.bincount(which, p, n_bins) - np.bincount(which, y, n_bins))  # = count * |mean p - share|
    return float(gap.sum() / len(p))


def intervals_over_groups(inconsistent: np.ndarray, p_inconsistent: np.ndarray, groups: Sequence[Any],
                          n_bins: int = 10, n_draws: int = 1000, seed: int = 0) -> dict[str, Any]:
    """95 % intervals of AUC and ECE (:func:`calibration_metrics`' bins) from ``n_draws`` resamplings of the
    ``groups`` with replacement, each drawn group bringing all its items.

    Items of one group are not independent draws (clips sharing one voice take share its voice reading), so the
    group, not the item, is what is resampled: repeating every item of a group leaves the intervals as they were.
    Dependence across groups (in the clip evaluation, one face drawn for clips of several takes) is not modelled, so
    the intervals can still be somewhat narrow.
    ``inconsistent``, ``p_inconsistent`` and ``groups`` are ``(N,)``; an AUC draw with one class only is skipped."""
    y = np.asarray(inconsistent, dtype=np.float64)
    p = np.asarray(p_inconsistent, dtype=np.float64)
    if not (len(y) == len(p) == len(groups)) or len(y) == 0:
        raise ValueError(f"intervals need as many labels, probabilities and groups (> 0); got {len(y)}, {len(p)}, "
                         f"{len(groups)}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("intervals need probabilities in [0, 1] (no NaN)")
    names, group_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    members = [np.flatnonzero(group_of == g) for g in range(len(names))]
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rng = np.random.default_rng(seed)
    auc, ece = [], []
    for _ in range(n_draws):
        idx = np.concatenate([members[g] for g in rng.integers(len(members), size=len(members))])
        if 0 < y[idx].sum() < len(idx):
            auc.append(float(roc_auc_score(y[idx], p[idx])))
        ece.append(_binned_ece(p[idx], y[idx], which[idx], n_bins))
    return {"auc": np.percentile(auc, [2.5, 97.5]).tolist() if auc else [float("nan")] * 2,
            "ece": np.percentile(ece, [2.5, 97.5]).tolist(), "n_groups": int(len(names)), "n_draws": int(n_draws)}
