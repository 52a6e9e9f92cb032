"""Change points of a sequence of feature vectors: where, in a recording, what the windows read changes.

:func:`change_points` splits ``x`` (``(n, d)``, one row per window in time order) into consecutive parts so that
the sum over parts of the squared deviations from the part's mean, plus ``penalty`` per part, is smallest (the
penalised least-squares partition; every part at least ``min_size`` rows). It is solved exactly by dynamic
programming with the pruning of PELT (Killick, Fearnhead & Eckley 2012): a candidate start that cannot begin the
best last part now can never do so once a part could be cut from here, and is then dropped. Costs come from
cumulative sums, so each step is one vector operation over the remaining candidates; an hour of windows (7,200 rows)
takes about 0.25 s when it changes often, a few seconds when it never does (nothing is pruned).

``ruptures.Pelt(model="l2", min_size=min_size, jump=1)`` solves the same problem, but it drops a start as soon as
it is beaten, which can miss the best partition when ``min_size > 1``, and it loops in Python (minutes on an hour
without changes).
"""
from __future__ import annotations

import numpy as np


def change_points(x: np.ndarray, penalty: float, min_size: int = 1) -> list[int]:
    """Ends of the parts of ``x`` (``(n, d)`` or ``(n,)``), increasing, the last one ``n``; ``[]`` when ``n == 0``.

    ``penalty``: cost of one more part, in the units of the squared deviations (> 0). ``min_size``: fewest rows per
    part (>= 1); a sequence shorter than two parts is one part."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError("change_points needs a finite (n, d) array")
    if not penalty > 0 or min_size < 1:
        raise ValueError(f"change_points needs penalty > 0 and min_size >= 1 (got {penalty}, {min_size})")
    n = len(x)
    if n < 2 * min_size:
        return [n] if n else []
    sums = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    squares = np.concatenate([[0.0], np.cumsum((x * x).sum(axis=1))])
    best = np.full(n + 1, np.inf)  # best[t]: smallest cost of x[:t] (parts + penalties)
    best[0] = 0.0
    previous = np.zeros(n + 1, dtype=np.int64)
    # PELT's rule: a start s that, at end t, costs more than best[t] can never begin the last part of an end
    # T >= t + min_size (cutting at t is then cheaper); for T < t + min_size it still may, so it stays until then.
    pruned_at = np.full(n + 1, np.iinfo(np.int64).max)
    candidates = np.array([0])
    for t in range(min_size, n + 1):
        if t - min_size >= min_size:  # a new possible start (starts 1 .. min_size - 1 cannot end a first part)
            candidates = np.append(candidates, t - min_size)
        candidates = candidates[pruned_at[candidates] > t - min_size]
        length = (t - candidates)[:, None]
        within = squares[t] - squares[candidates] - ((sums[t] - sums[candidates]) ** 2 / length).sum(axis=1)
        total = best[candidates] + within + penalty
        k = int(np.argmin(total))
        best[t], previous[t] = total[k], candidates[k]
        beaten = candidates[best[candidates] + within > best[t]]
        pruned_at[beaten] = np.minimum(pruned_at[beaten], t)
    ends, t = [], n
    while t > 0:
        ends.append(t)
        t = int(previous[t])
    return ends[::-1]
