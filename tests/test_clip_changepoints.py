"""The penalised least-squares partition (crossemo_core.clip.changepoints): optimal against an exhaustive search,
parts never shorter than asked, exact cuts at clear steps, and one clear error for bad input."""
from __future__ import annotations

import numpy as np
import pytest

from crossemo_core.clip.changepoints import change_points


def cost(x: np.ndarray, ends: list[int], penalty: float) -> float:
    starts = [0] + ends[:-1]
    return sum(float(((x[a:b] - x[a:b].mean(axis=0)) ** 2).sum()) for a, b in zip(starts, ends)) + penalty * len(ends)


def exhaustive(x: np.ndarray, penalty: float, min_size: int) -> float:
    """The smallest cost over every partition with parts of at least ``min_size`` rows (no pruning)."""
    n = len(x)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    for t in range(min_size, n + 1):
        for s in range(0, t - min_size + 1):
            if np.isfinite(best[s]):
                best[t] = min(best[t], best[s] + cost(x[s:t], [t - s], penalty))
    return float(best[n])


@pytest.mark.parametrize("seed", range(60))
def test_the_partition_is_the_cheapest_one_and_its_parts_are_long_enough(seed: int) -> None:
    """Steps, pure noise and small integers (many ties), with parts of 1-6 rows at least: pruning a start too early
    when parts must be longer than one row loses the optimum (e.g. [1, 1, 1, 2, 0] with parts of 2: below)."""
    rng = np.random.default_rng(seed)
    n, d, min_size = int(rng.integers(1, 26)), int(rng.integers(1, 4)), int(rng.integers(1, 7))
    penalty = float(rng.uniform(0.05, 4.0))
    x = [rng.normal(size=(n, d)) + np.repeat(rng.normal(scale=2.0, size=(6, d)), 5, axis=0)[:n],
         rng.normal(size=(n, d)), rng.integers(0, 3, size=(n, d)).astype(float)][seed % 3]
    ends = change_points(x, penalty, min_size)
    assert ends[-1] == n and ends == sorted(set(ends))
    if n >= 2 * min_size:
        assert min(np.diff([0] + ends)) >= min_size
        assert cost(x, ends, penalty) == pytest.approx(exhaustive(x, penalty, min_size), abs=1e-9)
    else:
        assert ends == [n]


def test_a_start_beaten_at_one_end_stays_a_candidate_until_a_part_could_follow() -> None:
    x = np.array([1.0, 1.0, 1.0, 2.0, 0.0])  # best: one part (cost 2.1); [2, 5] costs 2.2
    assert change_points(x, penalty=0.1, min_size=2) == [5]


def test_clear_steps_are_cut_exactly_and_a_flat_sequence_is_one_part() -> None:
    x = np.concatenate([np.zeros(12), np.ones(8), np.zeros(15)])
    assert change_points(x, penalty=1.0, min_size=4) == [12, 20, 35]
    assert change_points(np.full((50, 3), 0.3), penalty=0.5, min_size=2) == [50]
    # a step shorter than the shortest part is not cut out alone: its part holds other rows too
    spike = np.concatenate([np.zeros(10), np.ones(2), np.zeros(10)])
    ends = change_points(spike, penalty=0.1, min_size=4)
    parts = list(zip([0] + ends[:-1], ends))
    assert all(b - a >= 4 for a, b in parts)
    a, b = next((a, b) for a, b in parts if a <= 10 < b)
    assert b - a >= 4 and spike[a:b].min() == 0.0


def test_bad_input_gets_one_clear_error() -> None:
    assert change_points(np.zeros((0, 3)), 1.0) == []
    with pytest.raises(ValueError, match="finite"):
        change_points(np.array([0.0, np.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match="penalty > 0"):
        change_points(np.zeros(5), 0.0)
    with pytest.raises(ValueError, match="min_size >= 1"):
        change_points(np.zeros(5), 1.0, min_size=0)
