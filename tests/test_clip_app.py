"""The Clip verdict page driven by ``streamlit.testing.v1.AppTest``: judge the bundled samples (one video; a photo
with a separate voice), read the verdict, the reason, the timeline and the downloads, and see no error."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")
pytest.importorskip("mediapipe", reason="mediapipe is needed for the clip path (requirements-clip.txt)")

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
TIMEOUT = 240


def _judge(sample_index: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/clip.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="clip_sample")
    box.set_value(box.options[sample_index]).run()
    at.button(key="clip_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.slow
def test_clip_page_judges_the_sample_video() -> None:
    at = _judge(0)
    text = "\n".join(str(m.value) for m in at.markdown)
    assert any(word in text for word in ("CONSISTENT", "INCONSISTENT", "UNDETERMINED")), text[:500]
    assert "**Why:**" in text
    assert "smile_upbeat.mp4" in text
    assert len(at.get("plotly_chart")) >= 1  # the timeline
    labels = [m.label for m in at.metric]
    assert "P(inconsistent)" in labels and "Face found" in labels


@pytest.mark.slow
def test_clip_page_judges_a_photo_with_a_separate_voice() -> None:
    at = _judge(2)
    text = "\n".join(str(m.value) for m in at.markdown)
    assert "face_photo.jpg + voice_upbeat.wav" in text


@pytest.mark.slow
def test_a_verdict_names_its_input_and_goes_when_the_input_changes_or_fails() -> None:
    import hashlib

    from crossemo_app import clip_view
    from crossemo_core.errors import DataError as _DataError

    at = _judge(0)
    sample = REPO / "assets" / "clips" / "smile_upbeat.mp4"
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    assert any(f"smile_upbeat.mp4 (sha256 {digest[:16]}" in c.value for c in at.caption)
    assert at.get("download_button")
    box = at.selectbox(key="clip_sample")
    box.set_value(box.options[1]).run()  # another sample: the verdict shown was not about it
    assert at.session_state["app"].clip.result is None and not at.get("download_button")
    box.set_value(box.options[0]).run()
    at.button(key="clip_go").click().run()
    assert at.session_state["app"].clip.result.verdict.sha256 == digest
    with mock.patch.object(clip_view, "judge", side_effect=_DataError("the file is damaged")):
        at.button(key="clip_go").click().run()  # judging the same input again fails
    assert any("the file is damaged" in e.value for e in at.error)
    assert at.session_state["app"].clip.result is None and not at.get("download_button")  # nothing left to mislabel


@pytest.mark.slow
def test_many_clips_at_once_names_each_file_by_its_sha256() -> None:
    import hashlib

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/clip.py")
    at.run()
    sample = (REPO / "assets" / "clips" / "smile_upbeat.mp4").read_bytes()
    junk = b"not a video at all"
    at.file_uploader(key="clip_batch_files").set_value([("a.mp4", sample, "video/mp4"),
                                                        ("b.mp4", junk, "video/mp4")]).run()
    at.button(key="clip_batch_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "sha256" in df.value.columns)
    assert list(table["file"]) == ["a.mp4", "b.mp4"]
    assert list(table["sha256"]) == [hashlib.sha256(sample).hexdigest(), hashlib.sha256(junk).hexdigest()]
    assert table["verdict"].iloc[0] is not None and table["error"].iloc[1]


def test_a_clip_longer_than_the_page_judges_is_sent_to_the_session_page(monkeypatch) -> None:
    """Clips are judged on one thread every session shares, without progress or Stop: a long one would hold every
    user's verdicts for minutes (a 10-minute upload: 40 s), so the Session page takes it."""
    from crossemo_app import clip_view

    monkeypatch.setattr(clip_view, "CLIP_PAGE_MAX_S", 3.0)
    monkeypatch.setattr(clip_view, "scorer", lambda: pytest.fail("a refused clip must not reach the scorer"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/clip.py")
    at.run()
    at.button(key="clip_go").click().run()  # the first sample: a 6 s video
    assert not at.exception, [e.value for e in at.exception]
    said = [e.value for e in at.error]
    assert any("smile_upbeat.mp4 lasts 0:06; this page judges clips up to 0.05 minutes" in e and "Session page" in e
               for e in said), said
    assert at.session_state["app"].clip.result is None
    sample = (REPO / "assets" / "clips" / "smile_upbeat.mp4").read_bytes()
    at.file_uploader(key="clip_batch_files").set_value([("long.mp4", sample, "video/mp4")]).run()
    at.button(key="clip_batch_go").click().run()
    table = next(df.value for df in at.dataframe if "sha256" in df.value.columns)
    assert "Session page" in table["error"].iloc[0]
    photo = NamedBytes("face_photo.jpg", (REPO / "assets" / "clips" / "face_photo.jpg").read_bytes())
    with pytest.raises(DataError, match="^calm.mp4 lasts 0:06; this page judges"):  # a long baseline too
        clip_view.judge(photo, None, NamedBytes("calm.mp4", sample))


# ------------------------------------------------------------------------------------------------ recording (issue 16.5)
from fractions import Fraction  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402

from crossemo_app import recorder  # noqa: E402
from crossemo_core.clip.decode import NamedBytes, decode_media  # noqa: E402
from crossemo_core.errors import DataError  # noqa: E402

SAMPLE = REPO / "assets" / "clips" / "smile_upbeat.mp4"


def _video_frame(rgb: np.ndarray, t: float, start: int = 777):
    """A camera frame as aiortc hands it out: 90 kHz timestamps from an arbitrary start."""
    import av

    f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    f.pts, f.time_base = start + int(round(t * 90000)), Fraction(1, 90000)
    return f


def _audio_frame(pcm: np.ndarray, i: int, start: int = 4242):
    """Microphone frame ``i`` as aiortc's Opus decoder hands it out: 20 ms of 48 kHz stereo s16, its own clock."""
    import av

    a = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16",
                                   layout="stereo")
    a.sample_rate, a.pts, a.time_base = 48000, start + i * 960, Fraction(1, 48000)
    return a


def _feed(rec: recorder.ClipRecorder, clock: list, events) -> None:
    """Hand (arrival time, kind, frame) events to ``rec`` in arrival order, its clock set to each arrival."""
    for t, kind, frame in sorted(events, key=lambda e: e[0]):
        clock[0] = t
        (rec.add_video if kind == "v" else rec.add_audio)(frame)


def _flash_and_beep(seconds: float = 3.0, at: float = 1.5, audio_late: float = 0.2, size=(640, 480),
                    gap: tuple[float, float] | None = None):
    """A dark 30 fps camera that flashes white for 0.4 s around ``at`` and a microphone, starting ``audio_late`` s
    later, that beeps at the same moment; ``gap``: a stretch of microphone frames never sent."""
    events = []
    for i in range(int(seconds * 30)):
        t = i / 30
        rgb = np.full((size[1], size[0], 3), 255 if abs(t - at) < 0.2 else 20, np.uint8)
        events.append((t, "v", _video_frame(rgb, t)))
    for j in range(int((seconds - audio_late) / 0.02)):
        t = audio_late + j * 0.02
        if gap and gap[0] <= t < gap[1]:
            continue
        s = t + np.arange(960) / 48000
        x = np.where(np.abs(s - at) < 0.2, 0.5 * np.sin(2 * np.pi * 220 * s), 0.0) * 32767
        events.append((t, "a", _audio_frame(np.stack([x, x], 1), j)))
    return events


def _decode(clip: NamedBytes):
    frames = []
    media = decode_media(clip, on_frame=lambda t, rgb: frames.append((t, float(rgb.mean()), rgb.shape)))
    return media, frames


def test_recorder_makes_one_mp4_with_face_and_voice_on_one_time_axis() -> None:
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0])
    _feed(rec, clock, _flash_and_beep())
    assert rec.n_video == 45  # 30 fps in, at most 15 kept
    clip = rec.finish("recording-test.mp4")
    assert clip.name == "recording-test.mp4" and clip.data[4:8] == b"ftyp"
    media, frames = _decode(clip)
    assert media.format == "mp4" and media.has_video and media.has_audio and not media.notes
    assert media.duration_s == pytest.approx(3.0, abs=0.1)
    flash = [t for t, mean, _ in frames if mean > 128]
    loud = np.flatnonzero(np.abs(media.audio) > 0.1) / 16000
    # the audio arrived 0.2 s after the video and on its own clock, yet the beep sits under the flash
    assert loud[0] == pytest.approx(1.3, abs=0.02) and loud[-1] == pytest.approx(1.7, abs=0.02)
    assert flash[0] == pytest.approx(1.3, abs=0.1) and flash[-1] == pytest.approx(1.7, abs=0.1)
    assert np.abs(media.audio[: int(0.2 * 16000)]).max() < 1e-3  # before the microphone started: silence


def test_recorder_scales_keeps_gaps_and_survives_a_size_change() -> None:
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0])
    events = _flash_and_beep(size=(1280, 720), gap=(2.0, 2.5))
    # WebRTC lowers the resolution under load: the last second comes at 640x360
    events = [(t, k, f if k == "a" or t < 2.0 else _video_frame(np.zeros((360, 640, 3), np.uint8), t))
              for t, k, f in events]
    _feed(rec, clock, events)
    media, frames = _decode(rec.finish())
    assert {shape for _, _, shape in frames} == {(360, 640, 3)}  # 1280x720 scaled to 640 on the longer side
    assert media.duration_s == pytest.approx(3.0, abs=0.1)
    assert len(media.audio) == pytest.approx(3.0 * 16000, abs=0.1 * 16000)  # the 0.5 s gap kept as silence


def test_recorder_refuses_nothing_and_names_a_missing_picture_like_an_upload() -> None:
    with pytest.raises(DataError, match="nothing was recorded"):
        recorder.ClipRecorder().finish()
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0])
    _feed(rec, clock, [e for e in _flash_and_beep() if e[1] == "a"])
    sound_only = rec.finish("recording-x.mp4")
    assert sound_only.name == "recording-x.m4a"
    media, _ = _decode(sound_only)
    assert media.has_audio and not media.has_video
    rec.add_audio(_flash_and_beep()[-1][2])  # a late frame after finish is ignored
    assert rec.closed


def test_live_recording_takes_frames_only_between_start_and_stop() -> None:
    live = recorder.LiveRecording()
    frames = _flash_and_beep(seconds=1.0)
    live.on_video(frames[0][2])  # before Start: dropped
    assert not live.recording and live.stop() is None
    live.start()
    for _, kind, f in frames:
        if kind == "v":
            preview = live.on_video(f)  # what the browser shows while recording: a small copy
            assert (preview.width, preview.height) == (recorder.PREVIEW_WIDTH, 240)
        else:
            live.on_audio(f)
    live.start()  # a rerun while playing does not begin a new take
    take = live.stop()
    assert take is not None and take.clip.name.startswith("recording-") and take.clip.name.endswith(".mp4")
    assert not take.truncated and take.seconds > 0
    live.on_video(frames[0][2])  # after Stop: dropped (only the preview comes back)
    assert not live.recording


def test_recorder_stops_at_its_length_limit() -> None:
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0], max_seconds=1.0)
    _feed(rec, clock, _flash_and_beep(seconds=2.0, audio_late=0.0))
    assert rec.truncated
    media, _ = _decode(rec.finish())
    assert media.duration_s == pytest.approx(1.0, abs=0.1)


def test_recorder_uses_no_outside_server() -> None:
    from streamlit_webrtc.component import _resolve_server_rtc_configuration, enhance_frontend_rtc_configuration

    assert recorder.RTC_CONFIGURATION == {"iceServers": []}
    assert enhance_frontend_rtc_configuration(recorder.RTC_CONFIGURATION)["iceServers"] == []
    assert _resolve_server_rtc_configuration(recorder.RTC_CONFIGURATION).iceServers == []


def _recorded_sample() -> NamedBytes:
    """The bundled sample video, frame by frame and 20 ms by 20 ms as a browser would stream it, through the
    recorder."""
    import av

    events = []
    with av.open(str(SAMPLE)) as c:
        for f in c.decode(video=0):
            events.append((float(f.time), "v", _video_frame(f.to_ndarray(format="rgb24"), float(f.time))))
    with av.open(str(SAMPLE)) as c:
        rs = av.AudioResampler(format="s16", layout="stereo", rate=48000)
        pcm = np.concatenate([r.to_ndarray().reshape(-1, 2) for f in c.decode(audio=0) for r in rs.resample(f)])
    events += [(j * 0.02, "a", _audio_frame(pcm[j * 960:(j + 1) * 960], j)) for j in range(len(pcm) // 960)]
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0])
    _feed(rec, clock, events)
    return rec.finish("recording-sample.mp4")


@pytest.fixture(scope="module")
def clip_scorer():
    from crossemo_core.clip.verdict import ClipScorer

    return ClipScorer()


@pytest.mark.slow
def test_a_recording_is_judged_like_the_upload_it_was_recorded_from(clip_scorer) -> None:
    recorded = clip_scorer.score(_recorded_sample()).to_dict()
    uploaded = clip_scorer.score(NamedBytes(SAMPLE.name, SAMPLE.read_bytes())).to_dict()
    assert recorded["file"] == "recording-sample.mp4"
    assert set(recorded) == set(uploaded)
    assert recorded["face_found_fraction"] == uploaded["face_found_fraction"] == 1.0
    assert recorded["speech_s"] == pytest.approx(uploaded["speech_s"], abs=0.1)
    assert recorded["duration_s"] == pytest.approx(uploaded["duration_s"], abs=0.1)
    assert recorded["face"]["emotion"] == uploaded["face"]["emotion"]
    assert recorded["voice"]["emotion"] == uploaded["voice"]["emotion"]
    assert recorded["p_inconsistent"] == pytest.approx(uploaded["p_inconsistent"], abs=0.05)  # H.264/AAC again


@pytest.mark.slow
def test_a_very_short_recording_gets_the_uploads_reason_not_a_crash(clip_scorer) -> None:
    clock = [0.0]
    rec = recorder.ClipRecorder(clock=lambda: clock[0])
    _feed(rec, clock, _flash_and_beep(seconds=0.3, at=0.1, audio_late=0.0))
    verdict = clip_scorer.score(rec.finish("recording-short.mp4"))
    assert verdict.verdict == "undetermined" and verdict.reason.startswith("no face in most frames")


def _record_page(live: recorder.LiveRecording | None = None) -> AppTest:
    """The Clip verdict page in Record mode. AppTest's runtime has no session manager, where streamlit-webrtc looks
    the session up; the test gives it none (its no-session path), and the component renders as stopped."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/clip.py")
    at.run()
    if live is not None:
        at.session_state["clip_webrtc_live"] = live
    at.radio(key="clip_source").set_value("Record").run()
    return at


def test_record_mode_offers_video_with_sound_and_photo_plus_voice() -> None:
    with mock.patch("streamlit_webrtc.component.get_this_session_info", return_value=None):
        at = _record_page()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        mode = at.radio(key="clip_record_mode")
        assert list(mode.options) == ["video with sound", "photo + voice"] and mode.value == "video with sound"
        assert [c.type for c in at.main].count("component_instance") == 1  # the recorder
        assert at.button(key="clip_go").disabled  # nothing recorded yet
        mode.set_value("photo + voice").run()
        assert not at.exception and not at.error
        assert len(at.get("camera_input")) == 1 and len(at.get("audio_input")) == 1
        assert [c.type for c in at.main].count("component_instance") == 0
        assert at.button(key="clip_go").disabled


def test_a_recorder_that_cannot_start_is_one_line_not_a_traceback() -> None:
    at = _record_page()  # without the patch streamlit-webrtc fails on AppTest's mock runtime
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "the video recorder could not start" in at.error[0].value
    assert "photo + voice" in at.error[0].value


@pytest.mark.slow
def test_a_finished_recording_is_shown_kept_on_request_and_judged() -> None:
    clock = [0.0]
    live = recorder.LiveRecording(clock=lambda: clock[0])
    live.start()
    for t, kind, frame in _flash_and_beep():  # as the WebRTC callbacks would, then Stop
        clock[0] = t
        (live.on_video if kind == "v" else live.on_audio)(frame)
    with mock.patch("streamlit_webrtc.component.get_this_session_info", return_value=None):
        at = _record_page(live)
        assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
        take = at.session_state["clip_webrtc_done"]
        assert take.clip.name.startswith("recording-")
        assert len(at.get("video")) == 1
        assert any(f"{take.clip.name}: 3.0 s recorded" in c.value for c in at.caption)
        assert len(at.get("download_button")) == 1  # "Keep the recording (MP4)": the only copy
        at.button(key="clip_go").click().run()
        assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    text = "\n".join(str(m.value) for m in at.markdown)
    assert f"**{take.clip.name}**" in text and "UNDETERMINED" in text
    assert "no face in most frames" in text  # the flashing test picture has no face: the upload's reason
    assert at.session_state["app"].clip.result.verdict.file == take.clip.name
    with mock.patch("streamlit_webrtc.component.get_this_session_info", return_value=None):
        del at.session_state["clip_webrtc_done"]  # what pressing Start again does to the last take
        at.run()
    assert at.session_state["app"].clip.result is None  # its verdict goes with it
    assert not any("**recording-" in str(m.value) for m in at.markdown)
