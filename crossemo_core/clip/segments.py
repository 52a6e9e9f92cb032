"""Segments: where, in a long recording, the face and the voice agree, where they part ways, and for how long.

Input: the windows of a recording (2 s every 0.5 s, each with its calibrated probability of inconsistency, its face
and voice readings, or the reason it was not judged). Output: :class:`Segment` stretches with one outcome each and a
:class:`SessionSummary`.

The rule (:class:`SegmentRule`), in words: *a window counts as evidence of inconsistency by how far its probability
is from 0.5 (its log-odds); consecutive windows take the outcome that their evidence supports, and the outcome only
changes where the evidence for the other one outweighs a fixed switching cost, so one odd window does not start a
stretch.* Technically a two-state smoother (Viterbi over the windows' log-odds, each window weighted by
hop / window length = 0.25 because windows overlap four-fold, switching penalty :attr:`SegmentRule.switch_penalty`),
its boundaries then refined.

- Windows not judged (no face, no speech) or unlike the training material (the gate) carry no evidence. A run of
  them at least :attr:`SegmentRule.min_gap_s` long is an *undetermined* segment with its reason; a shorter one (a
  pause between sentences) belongs to the stretch around it.
- Each window stands for the time around its centre; a boundary lies half-way between the centres of the last window
  of one segment and the first of the next, then, between two judged segments, moves to where the readings and the
  probability change (:func:`refine_boundaries`, within :attr:`SegmentRule.refine_s`); the first segment starts at 0
  and the last ends at the recording's end.
- A segment's probability is the mean over its judged windows; its strength uses the clip verdict's words
  (:func:`crossemo_core.clip.combine.strength`).
- **Which side changed** at a segment's start: the face's and the voice's valence readings pooled over the windows
  just before the boundary and just after it (up to :attr:`SegmentRule.side_s` each side, windows that do not cross
  the boundary): ``"face"`` or ``"voice"`` when only that side's top valence changed, ``"both"``, or, when neither
  top valence changed, the side whose valence distribution moved most if it moved by at least
  :attr:`SegmentRule.min_shift` (total variation), else ``"unclear"``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.combine import strength
from crossemo_core.readers.reading import VALENCES

OUTCOMES = ("consistent", "inconsistent", "undetermined")
SIDES = ("face", "voice", "both", "unclear")


@dataclass(frozen=True)
class SegmentRule:
    """The settings of :func:`segments_of` (see the module docstring)."""

    switch_penalty: float = 0.5
    """Evidence (in weighted log-odds) the other outcome needs, beyond the current one's, to start a segment.
    Chosen on stitched sessions of the validation material (benchmarks/bench_session.py --part valid --seed 1
    --sweep): 2.0 before boundaries were refined; with the refinement 0.5 found more of the true boundaries (46
    detected for 51 true, 74 % of them within 1 s of one) where 0.25 detected 91 (45 % within 1 s)."""
    window_weight: float = seq.HOP_S / seq.WINDOW_S
    """Each window's share of its log-odds: windows overlap, so each second is counted by WINDOW_S / HOP_S windows."""
    p_clip: float = 0.05
    """Probabilities are read within [p_clip, 1 - p_clip]: no single window decides alone."""
    min_gap_s: float = 3.0
    """A stretch without evidence this long (or longer) is an undetermined segment; shorter ones are bridged."""
    side_s: float = 5.0
    """How far each side of a boundary the readings are pooled to say which side changed."""
    min_shift: float = 0.15
    """Smallest change of a side's valence distribution (total variation) that names it when no top valence
    changed."""
    refine_s: float = 5.0
    """How far (seconds) a boundary may move when it is refined (:func:`refine_boundaries`; 0: not refined)."""
    refine_step_s: float = 0.1


@dataclass
class Segment:
    """A stretch of a recording with one outcome."""

    start: float
    end: float
    outcome: str  # "consistent", "inconsistent" or "undetermined"
    p_mean: float | None  # mean P(inconsistent) over its judged windows (None: undetermined)
    strength: str | None  # "weak", "moderate", "strong" evidence (None: undetermined)
    n_windows: int
    n_judged: int
    changed: str | None = None  # at its start: "face", "voice", "both", "unclear"; None for the first segment
    face_before: str | None = None
    face_after: str | None = None
    voice_before: str | None = None
    voice_after: str | None = None
    face_shift: float | None = None  # total variation of the face's valence distribution across the start
    voice_shift: float | None = None
    face_valence: str | None = None  # the face's top valence pooled over the segment's judged windows
    voice_valence: str | None = None
    reason: str | None = None  # why an undetermined segment is undetermined

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        return self.outcome if self.strength is None else f"{self.outcome} ({self.strength} evidence)"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start", "end"):
            d[k] = round(d[k], 2)
        d["duration_s"] = round(self.duration_s, 2)
        for k in ("p_mean", "face_shift", "voice_shift"):
            d[k] = None if d[k] is None else round(float(d[k]), 4)
        return d


@dataclass
class SessionSummary:
    """A recording in a few numbers: how many stretches of inconsistency, how long in total and at most, and which
    side changed where they began."""

    duration_s: float
    n_windows: int
    n_judged: int
    n_segments: int
    n_inconsistent: int
    inconsistent_s: float
    consistent_s: float
    undetermined_s: float
    longest_inconsistent: tuple[float, float] | None  # (start, end)
    changed_into_inconsistent: dict[str, int] = field(default_factory=dict)  # side -> count, at their starts
    changed_at_boundaries: dict[str, int] = field(default_factory=dict)  # side -> count, every boundary

    @property
    def longest_inconsistent_s(self) -> float:
        return 0.0 if self.longest_inconsistent is None else self.longest_inconsistent[1] - \
            self.longest_inconsistent[0]

    def sentence(self) -> str:
        """The summary in one sentence."""
        if self.n_judged == 0:
            return "Nothing in the recording could be judged (no stretch with both a visible face and speech)."
        judged = self.consistent_s + self.inconsistent_s
        if self.n_inconsistent == 0:
            return (f"No stretch of inconsistency: face and voice agree over the {fmt_time(judged)} that could be "
                    f"judged" + (f" ({fmt_time(self.undetermined_s)} undetermined)." if self.undetermined_s >= 0.5
                                 else "."))
        a, b = self.longest_inconsistent
        sides = ", ".join(f"the {k} {v} time{'s' if v > 1 else ''}" if k in ("face", "voice") else
                          f"both {v} time{'s' if v > 1 else ''}" if k == "both" else f"unclear {v} time"
                          f"{'s' if v > 1 else ''}" for k, v in self.changed_into_inconsistent.items() if v)
        share = self.inconsistent_s / judged if judged > 0 else 0.0
        return (f"{self.n_inconsistent} stretch{'es' if self.n_inconsistent > 1 else ''} of inconsistency, "
                f"{fmt_time(self.inconsistent_s)} in total ({share:.0%} of the judged time); the longest "
                f"{fmt_time(b - a)} from {fmt_clock(a)}" + (f"; where they began, what changed: {sides}." if sides
                                                             else "."))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("duration_s", "inconsistent_s", "consistent_s", "undetermined_s"):
            d[k] = round(d[k], 2)
        d["longest_inconsistent"] = (None if self.longest_inconsistent is None else
                                     [round(x, 2) for x in self.longest_inconsistent])
        d["longest_inconsistent_s"] = round(self.longest_inconsistent_s, 2)
        d["sentence"] = self.sentence()
        return d


# ------------------------------------------------------------------------------------------------ the rule
def window_evidence(w: Any) -> float | None:
    """A window's probability of inconsistency when it counts as evidence (judged, typical input), else None."""
    if getattr(w, "status", None) != "scored" or w.p_inconsistent is None or getattr(w, "atypical", None):
        return None
    p = float(w.p_inconsistent)
    return p if np.isfinite(p) else None


def segments_of(windows: Sequence[Any], duration_s: float | None = None,
                rule: SegmentRule = SegmentRule()) -> list[Segment]:
    """The segments of a recording from its windows in time order (objects with ``start``, ``end``, ``status``,
    ``p_inconsistent``, ``atypical`` and ``face`` / ``voice`` readings; see the module docstring)."""
    if not windows:
        return []
    n = len(windows)
    end = max(float(duration_s or 0.0), max(w.end for w in windows))
    centres = np.array([(w.start + w.end) / 2 for w in windows])
    bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [end]])  # window i stands for bounds[i:i+2]
    p = [window_evidence(w) for w in windows]
    judged = np.array([x is not None for x in p])
    labels = np.full(n, -1)  # -1 undetermined, 0 consistent, 1 inconsistent
    # long runs without evidence are undetermined; each stretch between them is smoothed on its own
    for lo, hi, has in _runs(judged):
        if has or bounds[hi] - bounds[lo] < rule.min_gap_s:
            continue
        labels[lo:hi] = -2  # marked: a long gap
    stretch = []
    for i in range(n + 1):
        if i < n and labels[i] != -2:
            stretch.append(i)
            continue
        if stretch:
            idx = np.array(stretch)
            ev = [p[i] for i in idx]
            if any(x is not None for x in ev):
                labels[idx] = _viterbi(ev, rule)
            else:
                labels[idx] = -2
            stretch = []
    labels[labels == -2] = -1
    out: list[Segment] = []
    for lo, hi, label in _runs(labels):
        seg_p = [p[i] for i in range(lo, hi) if p[i] is not None]
        if label < 0 or not seg_p:
            statuses = Counter(_why_not(windows[i]) for i in range(lo, hi))
            out.append(Segment(float(bounds[lo]), float(bounds[hi]), "undetermined", None, None, hi - lo, len(seg_p),
                               reason=statuses.most_common(1)[0][0]))
            continue
        mean = float(np.mean(seg_p))
        outcome = "inconsistent" if label == 1 else "consistent"
        grade = strength(mean) if (mean >= 0.5) == (label == 1) else "weak"
        face, voice = _pooled(windows, range(lo, hi), "face"), _pooled(windows, range(lo, hi), "voice")
        out.append(Segment(float(bounds[lo]), float(bounds[hi]), outcome, mean, grade, hi - lo, len(seg_p),
                           face_valence=_top(face), voice_valence=_top(voice)))
    _merge_same(out)
    if rule.refine_s > 0:
        refine_boundaries(out, windows, rule)
    for k in range(1, len(out)):
        _which_side(out[k], windows, rule)
    return out


def _viterbi(p: list[float | None], rule: SegmentRule) -> np.ndarray:
    """Most likely 0/1 labels of a stretch of windows (None: no evidence) under the two-state rule."""
    lo, hi = rule.p_clip, 1.0 - rule.p_clip
    half = np.array([0.0 if x is None else rule.window_weight * np.log(min(max(x, lo), hi) /
                                                                        (1 - min(max(x, lo), hi))) / 2 for x in p])
    n = len(half)
    score = np.array([-half[0], half[0]])  # label 0 (consistent) gains -l/2, label 1 gains +l/2
    back = np.zeros((n, 2), dtype=np.int8)
    for i in range(1, n):
        stay, switch = score, score[::-1] - rule.switch_penalty
        back[i] = np.where(stay >= switch, [0, 1], [1, 0])
        score = np.maximum(stay, switch) + np.array([-half[i], half[i]])
    labels = np.zeros(n, dtype=np.int64)
    labels[-1] = int(np.argmax(score)) if score[1] != score[0] else int(np.sum(half) > 0)
    for i in range(n - 1, 0, -1):
        labels[i - 1] = back[i, labels[i]]
    return labels


def refine_boundaries(segments: list[Segment], windows: Sequence[Any], rule: SegmentRule = SegmentRule()) -> None:
    """Move each boundary between two judged segments to where the windows' evidence changes, within
    :attr:`SegmentRule.refine_s` of where the smoother put it (in place).

    The smoother decides *that* the outcome changes; where exactly is better told by the readings than by where
    the windows' probability crosses 0.5. A window ``[s, e)`` that straddles a change at time ``tau`` shows a mix of
    the two sides: its face reading is the mean over its frames, so a share ``a = (tau - s) / (e - s)`` of it comes
    from before. For each candidate ``tau`` (every :attr:`SegmentRule.refine_step_s`) each feature of the nearby
    judged windows (face valence, voice valence, P(inconsistent)) is fitted as ``a * before + (1 - a) * after``
    (least squares, ``before`` / ``after`` free); the boundary goes to the ``tau`` with the smallest residual.
    Measured on stitched validation sessions: boundaries within 1 s of the truth 47 % -> 65 % (penalty 0.5;
    43 % with the former penalty 2.0 and no refinement)."""
    rows = [(float(w.start), float(w.end), np.concatenate([w.face.valence_array(), w.voice.valence_array(),
                                                            [float(w.p_inconsistent)]]))
            for w in windows if window_evidence(w) is not None and getattr(w, "face", None) is not None
            and getattr(w, "voice", None) is not None and w.end > w.start]
    if not rows:
        return
    starts = np.array([r[0] for r in rows])
    ends = np.array([r[1] for r in rows])
    x_all = np.stack([r[2] for r in rows])
    step, reach = rule.refine_step_s, rule.refine_s
    for k in range(1, len(segments)):
        a, b = segments[k - 1], segments[k]
        if "undetermined" in (a.outcome, b.outcome):
            continue
        t0 = b.start
        lo, hi = max(a.start + step, t0 - reach), min(b.end - step, t0 + reach)
        if hi <= lo:
            continue
        near = (starts >= max(a.start, lo - seq.WINDOW_S)) & (ends <= min(b.end, hi + seq.WINDOW_S))
        if near.sum() < 6:
            continue
        s, e, x = starts[near], ends[near], x_all[near]
        taus = np.arange(lo, hi + 1e-9, step)
        before = np.clip((taus[:, None] - s[None]) / (e - s)[None], 0.0, 1.0)  # (candidates, windows)
        after = 1.0 - before
        saa, sab, sbb = (before * before).sum(1), (before * after).sum(1), (after * after).sum(1)
        det = saa * sbb - sab ** 2
        ok = det > 1e-6
        det = np.where(ok, det, 1.0)[:, None]
        ax, bx = before @ x, after @ x
        level_a = (sbb[:, None] * ax - sab[:, None] * bx) / det
        level_b = (saa[:, None] * bx - sab[:, None] * ax) / det
        fit = before[:, :, None] * level_a[:, None] + after[:, :, None] * level_b[:, None]
        residual = ((fit - x[None]) ** 2).sum(axis=(1, 2))
        residual[~ok] = np.inf
        if not np.isfinite(residual).any():
            continue
        a.end = b.start = float(taus[int(np.argmin(residual + 1e-9 * np.abs(taus - t0)))])


def _runs(values: np.ndarray) -> list[tuple[int, int, Any]]:
    """``(lo, hi, value)`` of each maximal run of equal values."""
    out, lo = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[lo]:
            out.append((lo, i, values[lo]))
            lo = i
    return out


def _merge_same(segments: list[Segment]) -> None:
    """Merge neighbours with the same outcome (an undetermined stretch that had no judged window inside a longer
    stretch of one outcome was already bridged; this joins what remains, e.g. two undetermined runs)."""
    k = 1
    while k < len(segments):
        a, b = segments[k - 1], segments[k]
        if a.outcome == b.outcome == "undetermined":
            segments[k - 1] = Segment(a.start, b.end, a.outcome, None, None, a.n_windows + b.n_windows,
                                      a.n_judged + b.n_judged, reason=a.reason)
            del segments[k]
        else:
            k += 1


def _why_not(w: Any) -> str:
    if getattr(w, "status", "scored") != "scored":
        return w.status
    if getattr(w, "atypical", None):
        return f"{w.atypical} unlike the training material"
    return "no probability"


def _pooled(windows: Sequence[Any], idx: Any, side: str) -> np.ndarray | None:
    rows = [getattr(windows[i], side).valence_array() for i in idx
            if getattr(windows[i], "status", None) == "scored" and getattr(windows[i], side, None) is not None]
    return np.mean(rows, axis=0) if rows else None


def _top(pooled: np.ndarray | None) -> str | None:
    return None if pooled is None else VALENCES[int(np.argmax(pooled))]


def _which_side(seg: Segment, windows: Sequence[Any], rule: SegmentRule) -> None:
    """Fill ``seg``'s ``changed`` and the valences either side of its start."""
    b = seg.start
    starts = np.array([w.start for w in windows])
    ends = np.array([w.end for w in windows])
    mids = (starts + ends) / 2
    before = np.flatnonzero((ends <= b + 1e-6) & (ends >= b - rule.side_s))
    after = np.flatnonzero((starts >= b - 1e-6) & (starts <= b + rule.side_s))
    if len(before) == 0:  # a short segment before: the windows centred before the boundary
        before = np.flatnonzero((mids < b) & (mids >= b - rule.side_s))
    if len(after) == 0:
        after = np.flatnonzero((mids >= b) & (mids <= b + rule.side_s))
    shifts, tops = {}, {}
    for side in ("face", "voice"):
        x, y = _pooled(windows, before, side), _pooled(windows, after, side)
        tops[side] = (_top(x), _top(y))
        shifts[side] = None if x is None or y is None else float(0.5 * np.abs(x - y).sum())
    seg.face_before, seg.face_after = tops["face"]
    seg.voice_before, seg.voice_after = tops["voice"]
    seg.face_shift, seg.voice_shift = shifts["face"], shifts["voice"]
    changed = [s for s in ("face", "voice") if None not in tops[s] and tops[s][0] != tops[s][1]]
    if len(changed) == 2:
        seg.changed = "both"
    elif changed:
        seg.changed = changed[0]
    else:
        known = {s: v for s, v in shifts.items() if v is not None}
        best = max(known, key=known.get) if known else None
        seg.changed = best if best is not None and known[best] >= rule.min_shift else "unclear"


# ------------------------------------------------------------------------------------------------ summary
def summarise(segments: Sequence[Segment], windows: Sequence[Any], duration_s: float) -> SessionSummary:
    """The :class:`SessionSummary` of a recording's segments."""
    inc = [s for s in segments if s.outcome == "inconsistent"]
    total = {o: sum(s.duration_s for s in segments if s.outcome == o) for o in OUTCOMES}
    longest = max(inc, key=lambda s: s.duration_s) if inc else None
    into = Counter(s.changed for s in inc if s.changed is not None)
    every = Counter(s.changed for s in segments if s.changed is not None)
    return SessionSummary(
        duration_s=float(duration_s), n_windows=len(windows),
        n_judged=sum(window_evidence(w) is not None for w in windows), n_segments=len(segments),
        n_inconsistent=len(inc), inconsistent_s=total["inconsistent"], consistent_s=total["consistent"],
        undetermined_s=total["undetermined"], longest_inconsistent=None if longest is None else
        (longest.start, longest.end), changed_into_inconsistent={k: into.get(k, 0) for k in SIDES},
        changed_at_boundaries={k: every.get(k, 0) for k in SIDES})


def fmt_clock(seconds: float) -> str:
    """``754.3`` -> ``"12:34"``; an hour or more: ``"1:02:03"``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_time(seconds: float) -> str:
    """A duration in words: ``"45 s"``, ``"2 min 10 s"``, ``"1 h 3 min"``."""
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"
