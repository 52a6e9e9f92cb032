"""Segments of a long recording from hand-made window sequences (crossemo_core.clip.segments): merging, the
segment rule, undetermined stretches, which side changed, the session summary and the CSV table. No models."""
from __future__ import annotations

import numpy as np
import pytest

from crossemo_core.clip.report import segments_table
from crossemo_core.clip.score import Window
from crossemo_core.clip.segments import SegmentRule, fmt_clock, fmt_time, segments_of, summarise
from crossemo_core.readers.reading import VALENCES, Reading

SURE = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.1, 0.1, 0.8)}


def reading(side: str, valence: str) -> Reading:
    v = np.array(SURE[valence])
    return Reading.from_arrays(side, ("a", "b", "c"), v, v, np.array([0.5, 0.5]), 2.0)


def windows(spec: list[tuple], hop: float = 0.5) -> list[Window]:
    """``spec``: runs of (count, p, face valence, voice valence) or (count, status) for windows not judged."""
    out, k = [], 0
    for run in spec:
        for _ in range(run[0]):
            start = k * hop
            if len(run) == 2:
                out.append(Window(start, start + 2.0, run[1]))
            else:
                _, p, fv, vv = run
                out.append(Window(start, start + 2.0, "scored", similarity=0.5, p_inconsistent=p, face_valence=fv,
                                  voice_valence=vv, face=reading("face", fv), voice=reading("voice", vv),
                                  p_embedding=p))
            k += 1
    return out


def test_consistent_windows_make_one_segment_over_the_whole_recording() -> None:
    ws = windows([(40, 0.2, "positive", "positive")])
    segs = segments_of(ws, duration_s=21.5)
    assert len(segs) == 1
    s = segs[0]
    assert (s.start, s.end, s.outcome, s.n_windows, s.n_judged) == (0.0, 21.5, "consistent", 40, 40)
    assert s.p_mean == pytest.approx(0.2) and s.strength == "moderate" and s.changed is None
    assert s.face_valence == s.voice_valence == "positive"


def test_an_inconsistent_stretch_gets_its_own_segment_with_boundaries_between_window_centres() -> None:
    ws = windows([(30, 0.2, "positive", "positive"), (30, 0.9, "positive", "negative"),
                  (30, 0.25, "positive", "positive")])
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent", "inconsistent", "consistent"]
    # windows start every 0.5 s and last 2 s: centres at 1.0 + 0.5 k; the switch lies half-way between windows 29
    # and 30, i.e. at 1.0 + 14.75 = 15.75 s, and between windows 59 and 60 at 30.75 s
    assert segs[1].start == pytest.approx(15.75) and segs[1].end == pytest.approx(30.75)
    assert segs[1].strength == "strong" and segs[1].p_mean == pytest.approx(0.9)
    assert segs[1].changed == "voice" and (segs[1].voice_before, segs[1].voice_after) == ("positive", "negative")
    assert segs[2].changed == "voice" and segs[2].face_shift == pytest.approx(0.0)
    summary = summarise(segs, ws, 46.5)
    assert summary.n_inconsistent == 1 and summary.inconsistent_s == pytest.approx(15.0)
    assert summary.longest_inconsistent == pytest.approx((15.75, 30.75))
    assert summary.changed_into_inconsistent["voice"] == 1
    assert summary.consistent_s + summary.inconsistent_s + summary.undetermined_s == pytest.approx(46.5)
    sentence = summary.sentence()
    assert sentence.startswith("1 stretch of inconsistency, 15 s in total") and "from 0:16" in sentence


def test_one_odd_window_does_not_start_a_segment_but_sustained_evidence_does() -> None:
    odd = windows([(20, 0.3, "neutral", "neutral"), (1, 0.95, "neutral", "negative"), (20, 0.3, "neutral", "neutral")])
    assert [s.outcome for s in segments_of(odd)] == ["consistent"]
    # weak but long evidence wins: 40 windows (20 s) at 0.6
    long = windows([(20, 0.3, "neutral", "neutral"), (40, 0.6, "neutral", "negative"),
                    (20, 0.3, "neutral", "neutral")])
    segs = segments_of(long)
    assert [s.outcome for s in segs] == ["consistent", "inconsistent", "consistent"]
    assert segs[1].strength == "weak"
    # a higher cost per part needs a larger change
    assert [s.outcome for s in segments_of(long, rule=SegmentRule(change_penalty=1000))] == ["consistent"]


def test_a_change_of_reading_that_keeps_the_outcome_is_no_boundary() -> None:
    ws = windows([(20, 0.2, "positive", "positive"), (20, 0.15, "neutral", "neutral"),
                  (20, 0.25, "negative", "negative")])
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent"] and segs[0].n_windows == 60


def test_a_sustained_change_of_probability_alone_starts_a_segment() -> None:
    """The embedding can move the probability while both top valences stay: a clear, sustained move still cuts."""
    ws = windows([(20, 0.1, "neutral", "neutral"), (20, 0.9, "neutral", "neutral"), (20, 0.1, "neutral", "neutral")])
    assert [s.outcome for s in segments_of(ws)] == ["consistent", "inconsistent", "consistent"]
    assert segments_of(ws)[1].changed == "unclear"


def test_which_side_changed_face_voice_or_both() -> None:
    face = segments_of(windows([(20, 0.2, "positive", "positive"), (20, 0.9, "negative", "positive")]))
    assert face[1].changed == "face" and (face[1].face_before, face[1].face_after) == ("positive", "negative")
    both = segments_of(windows([(20, 0.2, "positive", "positive"), (20, 0.9, "negative", "neutral")]))
    assert both[1].changed == "both"
    # neither top valence changes (the embedding moved): unclear
    unclear = segments_of(windows([(20, 0.2, "positive", "positive"), (20, 0.9, "positive", "positive")]))
    assert unclear[1].changed == "unclear"


def test_long_stretches_without_face_or_speech_are_undetermined_short_pauses_are_bridged() -> None:
    ws = windows([(20, 0.2, "positive", "positive"), (3, "no speech"), (20, 0.2, "positive", "positive"),
                  (12, "no face"), (20, 0.2, "positive", "positive")])
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent", "undetermined", "consistent"]
    gap = segs[1]
    assert gap.reason == "no face" and gap.p_mean is None and gap.strength is None and gap.n_judged == 0
    assert gap.duration_s == pytest.approx(6.0)  # 12 windows of 0.5 s
    assert segs[0].n_windows == 43  # the 1.5 s pause belongs to the stretch around it
    summary = summarise(segs, ws, ws[-1].end)
    assert summary.undetermined_s == pytest.approx(6.0) and summary.n_inconsistent == 0
    assert summary.sentence().startswith("No stretch of inconsistency")


def test_atypical_windows_carry_no_evidence() -> None:
    ws = windows([(20, 0.2, "positive", "positive"), (10, 0.95, "positive", "negative"),
                  (20, 0.2, "positive", "positive")])
    for w in ws[20:30]:
        w.atypical = "voice"
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent", "undetermined", "consistent"]
    assert segs[1].reason == "voice unlike the training material"


def test_nothing_judged_and_no_windows() -> None:
    assert segments_of([]) == []
    ws = windows([(10, "no face or speech")])
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["undetermined"]
    assert summarise(segs, ws, 6.5).sentence().startswith("Nothing in the recording could be judged")


def test_segment_table_and_time_words() -> None:
    ws = windows([(30, 0.2, "positive", "positive"), (30, 0.9, "positive", "negative")])
    segs = segments_of(ws)
    table = segments_table([{"file": "session.mp4", "segments": [s.to_dict() for s in segs]}, {"file": "bad.mp4",
                                                                                                "error": "x"}])
    assert list(table["file"]) == ["session.mp4", "session.mp4"] and list(table["segment"]) == [1, 2]
    assert list(table["outcome"]) == ["consistent", "inconsistent"] and table["changed"].iloc[1] == "voice"
    assert table["start"].iloc[1] == "0:16" and table["end_s"].iloc[1] == pytest.approx(31.5)
    assert (fmt_clock(3723.4), fmt_clock(75), fmt_time(8.25), fmt_time(130), fmt_time(3720)) == \
        ("1:02:03", "1:15", "8.2 s", "2 min 10 s", "1 h 2 min")
    assert set(VALENCES) == set(SURE)


def test_a_short_pause_at_a_change_is_split_between_the_two_stretches() -> None:
    ws = windows([(20, 0.2, "positive", "positive"), (4, "no speech"), (20, 0.9, "positive", "negative")])
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent", "inconsistent"]
    assert (segs[0].n_windows, segs[1].n_windows) == (22, 22)
    assert segs[1].start == pytest.approx(1.0 + 0.5 * 21.5)  # half-way between the centres of windows 21 and 22


def test_judged_windows_given_without_readings_do_not_look_like_a_change() -> None:
    ws = windows([(30, 0.2, "neutral", "neutral"), (30, 0.9, "neutral", "negative")])
    for w in ws[:3] + ws[40:45]:
        w.face = w.voice = None
    segs = segments_of(ws)
    assert [s.outcome for s in segs] == ["consistent", "inconsistent"]
    assert segs[1].start == pytest.approx(1.0 + 0.5 * 29.5)
