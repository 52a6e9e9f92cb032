"""Decision thresholds on anomaly scores: the Youden-index threshold on the validation split (method.md, [ours])."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from crossemo_core.errors import DataError

__all__ = ["youden_threshold"]


def youden_threshold(y_true: Any, score: Any) -> float:
    """Threshold maximising Youden's J = TPR - FPR on the ROC curve.

    ``y_true``: 1 = abnormal (the positive class), 0 = normal. ``score``: higher = more abnormal, e.g.
    ``BetaMixture.posterior_abnormal``. The returned value ``t`` is one of the observed scores and is meant for the
    rule ``abnormal  <=>  score >= t`` (scikit-learn's ``roc_curve`` convention). Ties in J (within 1e-12, so that
    e.g. 2/3 - 0 and 1 - 1/3 tie) go to the highest such threshold (fewest pairs flagged). The ROC's infinite
    "flag nothing" point is never returned.

    Raises :class:`~crossemo_core.errors.DataError` (a ``ValueError``) when only one class is present, on
    mismatched lengths, non-binary labels, or NaN/inf scores.
    """
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise DataError(f"y_true and score must be 1-D; got shapes {y.shape} and {s.shape}")
    if y.shape[0] != s.shape[0]:
        raise DataError(f"y_true has {y.shape[0]} entries but score has {s.shape[0]}; they must match")
    if y.size == 0:
        raise DataError("y_true and score are empty")
    if not np.all(np.isfinite(s)):
        raise DataError(f"score contains {int(np.count_nonzero(~np.isfinite(s)))} NaN or inf value(s)")
    try:
        y_num = y.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError("y_true must be 0 (normal) / 1 (abnormal)") from None
    if not np.all((y_num == 0.0) | (y_num == 1.0)):
        raise DataError("y_true must be 0 (normal) / 1 (abnormal); found other values")
    n_pos = int(y_num.sum())
    if n_pos == 0 or n_pos == y.size:
        present = "abnormal (1)" if n_pos else "normal (0)"
        raise DataError(f"y_true contains only one class ({present}); the Youden threshold needs both "
                        "normal and abnormal examples")
    fpr, tpr, thresholds = roc_curve(y_num.astype(np.int64), s, drop_intermediate=False)
    j = tpr - fpr
    j[~np.isfinite(thresholds)] = -np.inf
    best = int(np.flatnonzero(j >= j.max() - 1e-12)[0])  # ties (up to rounding): the first, highest threshold
    return float(thresholds[best])
