"""The Session page driven by ``streamlit.testing.v1.AppTest``: analyse the sample session (the two bundled clips
in turn, 70 s, built at run time) with a calm stretch of it as the baseline, read the summary, the timeline and the
stretches, play the video from a stretch; and a 60-minute result (hand-made windows) renders with its table."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")
pytest.importorskip("mediapipe", reason="mediapipe is needed for the clip path (requirements-clip.txt)")

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
TIMEOUT = 240


def _session_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/session.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption, *at.warning, *at.info])


@pytest.mark.slow
def test_session_page_analyses_the_sample_with_a_calm_stretch_and_plays_a_stretch() -> None:
    at = _session_page()
    at.checkbox(key="session_use_calm").check().run()
    at.number_input(key="session_calm_end").set_value(6.0).run()
    at.button(key="session_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + TIMEOUT
    while at.session_state["app"].session.result is None:
        assert time.time() < deadline, "the session analysis did not finish"
        assert not at.error, [e.value for e in at.error]
        time.sleep(1.0)
        at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    v = at.session_state["app"].session.result
    assert 70 <= v.duration_s <= 80 and v.calibrated and v.partial is None  # whole clips until >= 70 s
    text = _texts(at)
    assert "STRETCH" in text and "Judged relative to the calm stretch 0:00-0:06" in text
    labels = [m.label for m in at.metric]
    assert {"Length", "Stretches of inconsistency", "Inconsistent, in total", "Longest"} <= set(labels)
    assert len(at.get("plotly_chart")) == 1
    videos = at.get("video")
    assert len(videos) == 1 and "Playing from 0:00." in text
    jump = at.selectbox(key="session_jump")
    if len(jump.options) > 1:  # a stretch of inconsistency: play from its start
        jump.set_value(jump.options[1]).run()
        start = next(s for s in v.segments if s.outcome == "inconsistent").start
        assert f"Playing from {int(start) // 60}:{int(start) % 60:02d}." in _texts(at)
        assert at.get("video")[0].proto.start_time == int(start)
    assert len(v.sha256) == 64 and f"(sha256 {v.sha256[:16]}" in _texts(at)
    at.radio(key="session_source").set_value("A file on this computer").run()  # none chosen yet: results stay
    assert at.session_state["app"].session.result is v
    at.text_input(key="session_path").input(str(REPO / "assets" / "clips" / "smile_low.mp4")).run()
    assert at.session_state["app"].session.result is None  # another recording: results go
    assert not at.get("plotly_chart") and not at.get("download_button")


def _hour_long_result() -> SimpleNamespace:
    from crossemo_core.clip.score import Window
    from crossemo_core.clip.segments import segments_of, summarise
    from crossemo_core.readers.reading import Reading

    rng = np.random.default_rng(0)
    windows = []
    for k in range(7200):
        inconsistent = (k // 240) % 3 == 1
        p = float(np.clip(rng.normal(0.7 if inconsistent else 0.3, 0.15), 0.01, 0.99))
        face = Reading.from_arrays("face", ("a",), np.ones(1), np.array([0.1, 0.1, 0.8]), None, 2.0)
        voice_v = np.array([0.7, 0.2, 0.1]) if inconsistent else np.array([0.1, 0.2, 0.7])
        voice = Reading.from_arrays("voice", ("a",), np.ones(1), voice_v, None, 2.0)
        windows.append(Window(k * 0.5, k * 0.5 + 2, "scored", 0.5, p, face.top_valence, voice.top_valence, None, face,
                              voice, p))
    segments = segments_of(windows, 3601.5)
    return SimpleNamespace(file="hour.mp4", timeline=windows, segments=segments, duration_s=3601.5,
                           session=summarise(segments, windows, 3601.5), partial=None, calibrated=False,
                           label="inconsistent (weak evidence)", p_inconsistent=0.51, reason="hand-made windows",
                           thumbnails=[], notes=["the face was read in 60 % of the frames"],
                           to_dict=lambda: {"file": "hour.mp4", "segments": [s.to_dict() for s in segments]})


def test_an_hour_long_result_renders_its_timeline_and_stretches() -> None:
    at = _session_page()
    result = _hour_long_result()
    assert result.session.n_inconsistent >= 8
    at.session_state["app"].session.result = result
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert len(at.get("plotly_chart")) == 1
    assert any(w.value == "the face was read in 60 % of the frames" for w in at.warning)  # the verdict's notes
    table = at.dataframe[0].value  # the stretches of inconsistency (the second table lists every segment)
    assert len(table) == result.session.n_inconsistent and list(table.columns)[:3] == ["#", "start", "end"]
    jump = at.selectbox(key="session_jump")
    jump.set_value(jump.options[2]).run()  # the second stretch: the figure is not rebuilt
    assert not at.exception
    second = [s for s in result.segments if s.outcome == "inconsistent"][1]
    assert at.session_state["app"].session.figure[0] is result and second.start > 0
    assert len(at.dataframe[1].value) == len(result.segments)


def test_a_mistyped_path_keeps_the_analysis_under_way_and_the_result() -> None:
    """Only another recording drops what is shown or still being analysed; a path that names nothing says why."""
    at = _session_page()
    page = at.session_state["app"].session
    stops: list[bool] = []
    page.job = SimpleNamespace(finished=False, stop=lambda: stops.append(True))
    page.result, page.input = _hour_long_result(), ("bytes", "hour.mp4", 1, 0, 0)
    at.radio(key="session_source").set_value("A file on this computer").run()
    for typed, said in (("/no/such/place/session.mp4", "no such file"), (str(REPO), "a folder, not a file"),
                        ("~no_such_user_here/session.mp4", "there is no user 'no_such_user_here'")):
        at.text_input(key="session_path").input(typed).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(said in str(w.value) for w in at.warning), [w.value for w in at.warning]
        page = at.session_state["app"].session
        assert page.result is not None and page.job is not None and not stops
    at.text_input(key="session_path").input(str(REPO / "assets" / "clips" / "smile_low.mp4")).run()
    page = at.session_state["app"].session
    assert page.result is None and page.job is None and stops == [True]
