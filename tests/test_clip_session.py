"""Streaming analysis of long recordings (crossemo_core.clip.session): windows scored the same wherever the pieces
are cut, the whole-recording loudness from two audio passes, progress, stop and Ctrl-C with a partial verdict, the
thumbnails, half face rate, ``score --segments`` and Ctrl-C at the command line. Media are made at test time from
the bundled samples; nothing is committed."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")
pytest.importorskip("mediapipe", reason="mediapipe is needed for the clip path (requirements-clip.txt)")

from crossemo_core.clip import sequences as seq  # noqa: E402
from crossemo_core.clip import synth  # noqa: E402
from crossemo_core.clip.decode import AudioBlock, NamedBytes  # noqa: E402
from crossemo_core.clip.face import FaceFrame  # noqa: E402
from crossemo_core.clip.reading import FaceLog, ThumbPicker, scan_loudness  # noqa: E402
from crossemo_core.clip.session import AnalysisInterrupted, StreamAnalysis  # noqa: E402
from crossemo_core.clip.verdict import ClipScorer  # noqa: E402
from crossemo_core.features.voice import VoiceFeatureExtractor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLES = [REPO / "assets" / "clips" / n for n in ("smile_upbeat.mp4", "smile_low.mp4")]


@pytest.fixture(scope="module")
def scorer():
    s = ClipScorer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def clip14() -> NamedBytes:
    return NamedBytes("fourteen.mp4", synth.demo_clip(14.0))


def test_windows_do_not_depend_on_where_the_pieces_are_cut(scorer: ClipScorer, clip14: NamedBytes) -> None:
    whole = StreamAnalysis(scorer, clip14, whole_s=1e9)
    a = whole.run()
    assert not whole.streaming
    for chunk_s, whole_s in ((3.0, 0.0), (5.5, 4.0)):  # pieces cut at 0.5 s, 3.5 s, ... / at 4.5 s, 10 s
        parts = StreamAnalysis(scorer, clip14, chunk_s=chunk_s, whole_s=whole_s)
        b = parts.run()
        assert parts.streaming
        assert [(w.start, w.end, w.status) for w in a.timeline] == [(w.start, w.end, w.status) for w in b.timeline]
        for x, y in zip(a.timeline, b.timeline):
            if x.p_inconsistent is not None:
                assert y.p_inconsistent == pytest.approx(x.p_inconsistent, abs=1e-5)
                assert y.similarity == pytest.approx(x.similarity, abs=1e-5)
                assert (x.face_valence, x.voice_valence) == (y.face_valence, y.voice_valence)
        assert (b.verdict, b.speech_s, b.face_fraction, len(b.thumbnails)) == \
            (a.verdict, a.speech_s, a.face_fraction, len(a.thumbnails))
        assert b.p_inconsistent == pytest.approx(a.p_inconsistent, abs=1e-5)
        assert [(s.outcome, s.start, s.end) for s in b.segments] == [(s.outcome, s.start, s.end) for s in a.segments]


def test_a_short_clip_is_judged_the_same_streamed_or_read_whole(scorer: ClipScorer) -> None:
    clip = SAMPLES[1]
    streamed = scorer.score(clip).to_dict()
    whole = scorer.judge(scorer.analyse(clip)).to_dict()
    assert streamed == whole
    assert streamed["segments"] and streamed["session"]["n_windows"] == len(streamed["timeline"])


def test_a_clip_read_whole_reads_its_voice_as_one_recording_once(scorer: ClipScorer, monkeypatch) -> None:
    from crossemo_core.clip.score import WindowScorer

    events = []
    read, take = WindowScorer.read_recording, WindowScorer.take
    monkeypatch.setattr(WindowScorer, "read_recording", lambda self, audio, first: events.append(len(audio))
                        or read(self, audio, first))
    monkeypatch.setattr(WindowScorer, "take", lambda self, final=False: events.append(f"take {final}")
                        or take(self, final))
    verdict = scorer.score(SAMPLES[0])
    scored = [w for w in verdict.timeline if w.status == "scored"]
    stretches = [e for e in events if not isinstance(e, str)]
    assert len(stretches) == 1  # read once, and kept for the verdict
    assert abs(stretches[0] - (scored[-1].end - scored[0].start) * 16000) <= 1
    # read before the windows' readings are waited for (the reading thread works on them meanwhile)
    assert events.index(stretches[0]) < events.index("take True")


def test_the_clips_voice_reading_takes_its_frames_from_the_voice_track(scorer: ClipScorer, clip14: NamedBytes,
                                                                       monkeypatch) -> None:
    """The recording's voice reading asks the window builder for each segment's frames with the segment's own
    samples and place in the recording; the track holds them (all but a last segment off the frame grid), and the
    verdict is the one an extraction of every segment gives, to the segments' edge frames."""
    from crossemo_core.clip.windows import WindowBuilder

    analysis = scorer.analyse(clip14)
    asked: list[tuple[int, np.ndarray, np.ndarray | None]] = []
    raw_frames = WindowBuilder.raw_frames

    def spy(self: WindowBuilder, first_sample: int, audio: np.ndarray) -> np.ndarray | None:
        asked.append((first_sample, audio, raw_frames(self, first_sample, audio)))
        return asked[-1][2]

    monkeypatch.setattr(WindowBuilder, "raw_frames", spy)
    with_frames = scorer.judge(analysis)
    segments = [(first, audio, frames) for first, audio, frames in asked if len(audio) == 3 * 16000]
    assert len(segments) >= 3
    assert all(np.array_equal(audio, analysis.audio[first:first + len(audio)]) for first, audio, _ in segments)
    assert sum(frames is None for _, _, frames in segments) <= 1
    monkeypatch.setattr(WindowBuilder, "raw_frames", lambda self, first_sample, audio: None)
    extracted = scorer.judge(analysis)
    assert with_frames.p_inconsistent == pytest.approx(extracted.p_inconsistent, abs=0.01)
    # a stretch from later in the recording is asked for at its place in the recording
    asked.clear()
    later = scorer.window_scorer()
    later.frames_of = lambda first_sample, audio: asked.append((first_sample, audio, None))
    later.read_recording(analysis.audio[32000:], 32000)
    assert asked and all(first >= 32000 and np.array_equal(audio, analysis.audio[first:first + len(audio)])
                         for first, audio, _ in asked)


def test_a_failed_reading_thread_reads_no_further_piece(scorer: ClipScorer, clip14: NamedBytes,
                                                      monkeypatch) -> None:
    """Once the reading thread's error has been raised in the decoding thread, a piece still queued is not read: a
    partial verdict is then built from what was finished without the thread changing it underneath."""
    import queue
    import threading

    analysis = StreamAnalysis(scorer, clip14)
    analysis._queue = queue.Queue()
    read: list[str] = []

    def piece(p: str) -> None:
        read.append(p)
        if p == "first":
            raise RuntimeError("the first piece failed")

    monkeypatch.setattr(analysis, "_piece", piece)
    worker = threading.Thread(target=analysis._work)
    worker.start()
    analysis._queue.put("first")
    analysis._queue.join()
    with pytest.raises(RuntimeError, match="first piece"):
        analysis._raise_worker_error()
    analysis._queue.put("second")
    analysis._queue.put(None)
    worker.join(timeout=10)
    assert read == ["first"]


def test_the_loudness_of_the_whole_recording_from_two_audio_passes() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(7.3 * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 0.7 * t)) + 0.01 * rng.standard_normal(len(t)))
    audio = audio.astype(np.float32)
    cuts = [0, 1000, 1001, 5000, 40000, 77777, len(audio)]

    def blocks():
        return [AudioBlock(a, audio[a:b]) for a, b in zip(cuts, cuts[1:])]

    loud = scan_loudness(blocks)
    extractor = VoiceFeatureExtractor()
    names = extractor.feature_names
    features = extractor.extract(seq.normalise_loudness(audio, 16000), 16000)
    assert loud.max_db == pytest.approx(float(features[:, names.index("rms_db")].max()), abs=1e-6)
    # the same 25 ms frames; numpy may sum a frame's squares in another order when it has fewer rows: 1e-16 apart
    assert np.allclose(seq.apply_gain(audio, loud.gain), seq.normalise_loudness(audio, 16000), rtol=0, atol=1e-7)
    assert loud.samples == len(audio) and loud.peak == pytest.approx(float(np.abs(audio).max()))
    # a stretch's features with those two numbers are the whole-file features (away from the stretch's ends)
    part = seq.voice_track_part(audio[16000:80000], loud.gain, loud.max_db, extractor)
    full = seq.voice_track(audio, 16000, extractor)
    inner = slice(100 + 50, 100 + 350)  # frames 150..450 of the whole file = frames 50..350 of the stretch
    assert np.allclose(part.features[50:350], full.features[inner], atol=1e-4)
    assert np.array_equal(part.active[50:350], full.active[inner])
    assert np.array_equal(part.voiced[50:350], full.voiced[inner])


def test_progress_stop_and_ctrl_c_give_the_verdict_of_what_was_analysed(scorer: ClipScorer,
                                                                        clip14: NamedBytes) -> None:
    seen: list[tuple] = []
    v = scorer.score(clip14, progress=lambda d, t, e: seen.append((d, t, e)), whole_s=4.0)
    assert v.partial is None and len(seen) >= 10
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == pytest.approx(v.duration_s)
    assert all(t == pytest.approx(14.0, abs=0.2) for _, t, _ in seen)
    assert all(e is not None and e >= 0 for d, _, e in seen if d > 0)

    again: list[float] = []
    stopped = scorer.score(clip14, should_stop=lambda: len(again) > 0 and again[-1] >= 6.0, whole_s=4.0,
                           progress=lambda d, t, e: again.append(d))
    assert stopped.partial is not None and "stopped at 0:06 of 0:14" in stopped.partial
    assert stopped.partial in stopped.notes and 5.9 <= stopped.duration_s <= 7.0
    assert stopped.timeline and stopped.timeline[-1].end <= 7.0 and stopped.verdict in ("consistent", "inconsistent")

    def interrupt(done: float, total: float | None, eta: float | None) -> None:
        if done >= 8.0:
            raise KeyboardInterrupt

    with pytest.raises(AnalysisInterrupted) as caught:
        scorer.score(clip14, progress=interrupt, whole_s=4.0)
    partial = caught.value.partial
    assert isinstance(caught.value, KeyboardInterrupt) and 8.0 <= caught.value.done_s <= 9.2  # reported every 1 s
    assert partial is not None and "interrupted at 0:0" in partial.partial and partial.timeline[-1].end <= 9.5


def test_thumbnails_follow_the_rule_of_a_whole_clip_and_stay_few_on_long_recordings() -> None:
    def old_rule(frames: list[tuple[float, int]], end: float, every_s: float = 1.0) -> list[int]:
        times = np.array([t for t, _ in frames])
        out, seen = [], set()
        for mark in np.arange(0.0, end + 1e-6, every_s):
            i = int(np.argmin(np.abs(times - mark)))
            if i not in seen and abs(times[i] - mark) <= every_s / 2:
                seen.add(i)
                out.append(frames[i][1])
        return out

    rng = np.random.default_rng(1)
    for _ in range(30):
        times = np.sort(rng.choice(np.arange(0, 12, 0.2), size=int(rng.integers(1, 50)), replace=False))
        frames = [(float(t), k) for k, t in enumerate(times)]
        picker = ThumbPicker()
        for t, k in frames:
            picker.add(t, np.full((2, 2, 3), k, np.uint8))
        end = float(times.max()) + float(rng.uniform(0, 2))
        assert [int(th[0, 0, 0]) for _, th in picker.thumbnails(end)] == old_rule(frames, end)
    many = ThumbPicker(max_thumbs=100)
    for k in range(5 * 3600):
        many.add(k / 5, np.zeros((2, 2, 3), np.uint8))
    kept = many.thumbnails()
    assert 50 <= len(kept) <= 100 and kept[-1][0] > 3000


def test_half_face_rate_for_long_sessions(scorer: ClipScorer, clip14: NamedBytes) -> None:
    full = StreamAnalysis(scorer, clip14, whole_s=4.0)
    a = full.run()
    half = StreamAnalysis(scorer, clip14, whole_s=4.0, session_above_s=10.0)
    b = half.run()
    assert (full.face_hold, half.face_hold) == (1, 2)
    assert b.face_fraction == pytest.approx(a.face_fraction, abs=0.02)
    assert [w.status for w in a.timeline] == [w.status for w in b.timeline]
    diffs = [abs(x.p_inconsistent - y.p_inconsistent) for x, y in zip(a.timeline, b.timeline)
             if x.p_inconsistent is not None]
    assert max(diffs) < 0.1 and b.verdict == a.verdict


def test_a_held_frame_stands_for_its_tracked_frame_in_everything() -> None:
    """At the half face rate each reading also stands for the unsampled frame after it, framed as it was (the
    notes count faces framed on the detector's points over all frames)."""
    analysis = object.__new__(StreamAnalysis)
    analysis.face_hold, analysis.fps, analysis._frames = 2, 5.0, []
    analysis.facelog, analysis.thumbs = FaceLog(), ThumbPicker()
    crop = np.zeros((48, 48), np.uint8)
    analysis._track(FaceFrame(t=0.0, n_faces=1, crop=crop, from_mesh=False))
    analysis._track(FaceFrame(t=0.4, n_faces=1, crop=crop))
    assert [f.t for f in analysis._frames] == pytest.approx([0.0, 0.2, 0.4, 0.6])
    assert [(f.crop is crop, f.from_mesh) for f in analysis._frames] == [(True, False)] * 2 + [(True, True)] * 2
    assert "in 2 of 4 frames with a face" in analysis.facelog.notes()[0]


# ------------------------------------------------------------------------------------------------ command line
def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "CROSSEMO_CACHE": str(home / "cache")}


def test_score_writes_segments_and_ctrl_c_keeps_what_was_finished(tmp_path: Path) -> None:
    long = tmp_path / "session.mp4"
    synth.loop_media(SAMPLES, long, 150)
    segments, table = tmp_path / "out" / "segments.csv", tmp_path / "out" / "verdicts.csv"
    args = [sys.executable, "-m", "crossemo_core", "score", str(SAMPLES[0]), str(long), "--json", "--segments",
            str(segments), "--csv", str(table)]
    proc = subprocess.Popen(args, cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()  # the short sample is judged: the long recording starts now
    assert json.loads(first)["file"] == "smile_upbeat.mp4"
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and re.match(r"interrupted at \d+:\d\d of 2:\d\d in session\.mp4: the part analysed "
                                        r"\(\d+ windows\) and 1 file finished before it; written to ", lines[0]), err
    assert "in session.mp4" in lines[0] and "segments.partial.csv" in lines[0] and "verdicts.partial.csv" in lines[0]
    partial = json.loads(out.strip().splitlines()[-1])
    assert partial["file"] == "session.mp4" and partial["partial"] and partial["timeline"]
    assert not segments.exists() and not table.exists()
    import pandas as pd

    rows = pd.read_csv(segments.with_name("segments.partial.csv"))
    assert set(rows["file"]) == {"smile_upbeat.mp4", "session.mp4"}
    assert list(pd.read_csv(table.with_name("verdicts.partial.csv"))["file"]) == ["smile_upbeat.mp4", "session.mp4"]

    done = subprocess.run([sys.executable, "-m", "crossemo_core", "score", str(SAMPLES[1]), "--segments",
                           str(segments)], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and f"segments written to {segments}" in done.stderr, done.stderr
    written = pd.read_csv(segments)
    assert list(written["file"].unique()) == ["smile_low.mp4"] and written["outcome"].notna().all()


def test_segments_option_is_checked_before_any_work(tmp_path: Path) -> None:
    from crossemo_core.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["score", str(SAMPLES[0]), "--segments", str(blocker / "segments.csv")]) == 2


def test_an_interrupted_score_resumes_from_its_last_finished_window(tmp_path: Path) -> None:
    """First Ctrl-C: the analysis stops at the next frame, the partial files are written and the finished windows
    stay in segments.resume.jsonl (appended while it ran); without --resume the same FILE is refused; with
    --resume the analysis continues and its segments and windows are those of an uninterrupted run."""
    import pandas as pd

    long = tmp_path / "session.mp4"
    synth.loop_media(SAMPLES, long, 150)
    segments = tmp_path / "out" / "segments.csv"
    journal = segments.with_name("segments.resume.jsonl")
    args = [sys.executable, "-m", "crossemo_core", "score", str(long), "--json", "--segments", str(segments)]
    proc = subprocess.Popen(args, cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # wait for the first finished windows in the journal
        if journal.exists() and len(journal.read_text().splitlines()) > 70:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and re.match(r"interrupted at \d+:\d\d of 2:\d\d in session\.mp4: the part analysed", lines[0])
    assert "continue with --resume" in lines[0] and "segments.partial.csv" in lines[0], err
    assert not segments.exists() and journal.exists() and segments.with_name("segments.partial.csv").exists()
    kept = len(journal.read_text().splitlines()) - 1
    assert kept >= 64

    refused = subprocess.run(args, cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "give --resume to continue it" in refused.stderr, refused.stderr

    resumed = subprocess.run(args + ["--resume"], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming session.mp4 after {kept} finished windows" in resumed.stderr and not journal.exists()
    whole = subprocess.run(args[:-2] + ["--segments", str(tmp_path / "whole.csv")], cwd=REPO, env=_env(tmp_path),
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    a, b = json.loads(resumed.stdout.strip().splitlines()[-1]), json.loads(whole.stdout.strip().splitlines()[-1])
    assert [w["p_inconsistent"] for w in a["timeline"]] == [w["p_inconsistent"] for w in b["timeline"]]
    assert a["verdict"] == b["verdict"]
    pd.testing.assert_frame_equal(pd.read_csv(segments), pd.read_csv(tmp_path / "whole.csv"))
