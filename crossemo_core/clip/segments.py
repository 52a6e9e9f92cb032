"""Segments: where, in a long recording, the face and the voice agree, where they part ways, and for how long.

Input: the windows of a recording (2 s every 0.5 s, each with its calibrated probability of inconsistency, its face
and voice readings, or the reason it was not judged). Output: :class:`Segment` stretches with one outcome each and a
:class:`SessionSummary`.

The rule (:class:`SegmentRule`), in words (:data:`RULE`): *the recording is cut where what the windows read changes
(the face's valence, the voice's valence, the probability); each part takes the outcome its windows support on
average, and neighbouring parts with the same outcome form one stretch, so a change of reading that keeps the
outcome is no boundary and one odd window does not start a stretch.* Technically: each judged window is a feature
vector (face valence probabilities, voice valence probabilities, and its log-odds of inconsistency read within
[p_clip, 1 - p_clip] times :attr:`SegmentRule.evidence_scale`); the penalised least-squares partition of those
vectors (:func:`crossemo_core.clip.changepoints.change_points`, penalty :attr:`SegmentRule.change_penalty` per part,
parts of at least :attr:`SegmentRule.min_part_s`) gives the parts; a part is inconsistent when its windows' mean
log-odds is above 0. Why this rule, and what it replaced: ``docs/clip.md``, *Segments*.

- Windows not judged (no face, no speech) or unlike the training material (the gate) carry no evidence. A run of
  them at least :attr:`SegmentRule.min_gap_s` long is an *undetermined* segment with its reason; a shorter one (a
  pause between sentences) belongs to the stretch around it.
- Each window stands for the time around its centre; a boundary lies half-way between the centres of the last window
  of one segment and the first of the next; the first segment starts at 0 and the last ends at the recording's end.
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
from crossemo_core.clip.changepoints import change_points
from crossemo_core.clip.combine import Outcome, Strength, strength
from crossemo_core.readers.reading import VALENCES

RULE = ("The recording is cut where what the windows read changes (the face's valence, the voice's valence, the "
        "probability); each part takes the outcome its windows support on average, and neighbouring parts with the "
        "same outcome form one stretch, so a change of reading that keeps the outcome is no boundary and one odd "
        "window does not start a stretch.")
"""The segment rule in one sentence (the report and the app say it)."""
OUTCOMES = ("consistent", "inconsistent", "undetermined")
SIDES = ("face", "voice", "both", "unclear")


@dataclass(frozen=True)
class SegmentRule:
    """The settings of :func:`segments_of` (see the module docstring)."""

    change_penalty: float = 6.0
    """Cost of one more part in the partition (in squared differences of the window features: a part must fit its
    windows better by this much than the part it is cut from). Chosen with :attr:`evidence_scale` on 21 stitched
    validation sessions (``python benchmarks/bench_session.py --part valid --seed 1 --sessions 21 --lengths
    --no-half-rate --sweep --out docs/session_rule_valid``): the highest F1 of the boundaries (true ones found within
    1 s, found ones within 1 s of a true one), 0.787; penalties 4-8 were all within 0.015 of it."""
    evidence_scale: float = 0.5
    """Weight of a window's clipped log-odds among its features (the valence probabilities weigh 1)."""
    min_part_s: float = 2.0
    """Shortest part, in judged windows (this many seconds of window hops; windows without evidence inside a
    stretch do not count): a shorter change of reading cannot start a segment."""
    p_clip: float = 0.05
    """Probabilities are read within [p_clip, 1 - p_clip]: no single window decides alone."""
    min_gap_s: float = 3.0
    """A stretch without evidence this long (or longer) is an undetermined segment; shorter ones are bridged."""
    side_s: float = 5.0
    """How far each side of a boundary the readings are pooled to say which side changed."""
    min_shift: float = 0.15
    """Smallest change of a side's valence distribution (total variation) that names it when no top valence
    changed."""


@dataclass
class Segment:
    """A stretch of a recording with one outcome."""

    start: float
    end: float
    outcome: Outcome
    p_mean: float | None  # mean P(inconsistent) over its judged windows (None: undetermined)
    strength: Strength | None  # None: undetermined
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
    # long runs without evidence are undetermined; each stretch between them is partitioned on its own
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
            if any(p[i] is not None for i in idx):
                labels[idx] = _part_outcomes([windows[i] for i in idx], [p[i] for i in idx], rule)
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
    for k in range(1, len(out)):
        _which_side(out[k], windows, rule)
    return out


def _part_outcomes(windows: Sequence[Any], p: list[float | None], rule: SegmentRule) -> np.ndarray:
    """0 (consistent) / 1 (inconsistent) for each window of a stretch (``p``: its evidence, None where it has none)
    by the rule of the module docstring. Windows without evidence between two parts are split between them at the
    middle of their run (an odd middle one goes to the later part); those before the first judged window or after
    the last take the nearest part's outcome."""
    judged = [i for i, x in enumerate(p) if x is not None]
    evidence = log_odds([p[i] for i in judged], rule.p_clip)
    ends = change_points(np.column_stack([_readings(windows, judged), rule.evidence_scale * evidence]),
                         rule.change_penalty, max(1, int(round(rule.min_part_s / seq.HOP_S))))
    out = np.zeros(len(p), dtype=np.int64)
    start = 0
    for a, b in zip([0] + ends[:-1], ends):
        upto = (judged[b - 1] + 1 + judged[b]) // 2 if b < len(judged) else len(p)
        out[start:upto] = int(evidence[a:b].mean() > 0)
        start = upto
    return out


def _readings(windows: Sequence[Any], judged: list[int]) -> np.ndarray:
    """``(len(judged), 6)``: the face's and the voice's valence probabilities of each judged window. The scorer gives
    every judged window both readings; a window given without them (loaded or hand-made results) takes its
    nearest neighbour's, so that it does not look like a change."""
    rows: list[np.ndarray | None] = []
    for i in judged:
        w = windows[i]
        has = getattr(w, "face", None) is not None and getattr(w, "voice", None) is not None
        rows.append(np.concatenate([w.face.valence_array(), w.voice.valence_array()]) if has else None)
    known = np.array([k for k, r in enumerate(rows) if r is not None])
    if not len(known):
        return np.full((len(judged), 2 * len(VALENCES)), 1.0 / len(VALENCES))
    at = np.arange(len(rows))
    after = np.clip(np.searchsorted(known, at), 0, len(known) - 1)
    before = np.clip(after - 1, 0, len(known) - 1)
    nearest = np.where(np.abs(known[before] - at) <= np.abs(known[after] - at), known[before], known[after])
    return np.stack([rows[k] if rows[k] is not None else rows[nearest[k]] for k in range(len(rows))])


def log_odds(p: Sequence[float] | np.ndarray, clip: float) -> np.ndarray:
    """``(N,)`` probabilities -> ``(N,)`` ``log(p / (1 - p))``, each ``p`` read within ``[clip, 1 - clip]``: a window's
    evidence under the rule (a part is inconsistent when its windows' mean is above 0)."""
    q = np.clip(np.asarray(p, dtype=np.float64), clip, 1.0 - clip)
    return np.log(q / (1.0 - q))


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
