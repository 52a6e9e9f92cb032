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
