"""Clip verdicts end to end with the shipped models (checkpoints/clip.pt + checkpoints/fer_expression.pt) on the
committed demo assets: the ``score`` command, the JSON it prints, batch mode, the HTML report, and the verdicts
for clips without a face, without speech, with several faces, a photo + voice, a lying extension, a baseline.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")
pytest.importorskip("mediapipe", reason="mediapipe is needed for the clip path (requirements-clip.txt)")

from crossemo_core.cli import main  # noqa: E402
from crossemo_core.clip import synth  # noqa: E402
from crossemo_core.clip.decode import NamedBytes  # noqa: E402
from crossemo_core.clip.report import report_html, verdicts_table  # noqa: E402
from crossemo_core.clip.verdict import ClipScorer  # noqa: E402
from crossemo_core.errors import CheckpointError, DataError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets" / "clips"
SAMPLE = ASSETS / "smile_upbeat.mp4"
VOICE = ASSETS / "voice_upbeat.wav"
PHOTO = ASSETS / "face_photo.jpg"
KEYS = {"verdict", "p_inconsistent", "similarity", "face", "voice", "timeline", "reason"}


@pytest.fixture(scope="module")
def scorer():
    s = ClipScorer()
    yield s
    s.close()


def _photo() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB"))


def _voice(seconds: float = 3.0) -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(VOICE, dtype="float32")
    return audio[: int(seconds * synth.AUDIO_RATE)]


def _video(audio: np.ndarray | None, seconds: float = 3.0, face: bool = True, faces: int = 1) -> bytes:
    img = _photo()

    def frame(i: int) -> np.ndarray:
        if not face:
            return np.full((360, 640, 3), 90, np.uint8)
        canvas = synth.place((360, 640), img, 260, 200 + 2 * np.sin(i / 7), 180)
        if faces > 1:
            canvas[100:270, 440:610] = synth.place((170, 170), img, 170, 85, 85)
        return canvas

    return synth.encode_video(frame, int(seconds * 25), 25, audio)


def _check_json(d: dict) -> None:
    from typing import get_args

    from crossemo_core.clip.combine import Outcome, Strength
    from crossemo_core.clip.score import WindowStatus

    assert KEYS <= set(d)
    assert d["verdict"] in get_args(Outcome) and (d["strength"] is None or d["strength"] in get_args(Strength))
    assert set(d["face"]) >= {"emotion", "probs"} and set(d["voice"]) >= {"emotion", "probs"}
    assert isinstance(d["timeline"], list) and d["timeline"]
    for w in d["timeline"]:
        assert {"start", "end", "similarity", "p_inconsistent", "status"} <= set(w)
        assert w["status"] in get_args(WindowStatus)


# ------------------------------------------------------------------------------------------------ the command
def test_score_command_prints_a_verdict_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(SAMPLE), "--json"]) == 0
    d = json.loads(capsys.readouterr().out.strip())
    _check_json(d)
    assert d["verdict"] != "undetermined", d["reason"]
    assert 0.0 <= d["p_inconsistent"] <= 1.0 and -1.0 <= d["similarity"] <= 1.0
    assert d["face_found_fraction"] > 0.9
    assert abs(sum(d["face"]["probs"].values()) - 1) < 0.01 and abs(sum(d["voice"]["probs"].values()) - 1) < 0.01
    assert len(d["timeline"]) >= 5  # a 6 s clip: 2 s windows every 0.5 s
    assert set(d["geometry"]) >= {"brow_raise", "eye_opening", "lip_corner_pull", "mouth_opening", "head_yaw_deg"}


def test_score_in_a_fresh_process_as_a_new_user_would(tmp_path: Path) -> None:
    """``python -m crossemo_core score assets/...``: JSON on stdout, nothing else written, stderr quiet."""
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, "-m", "crossemo_core", "score", str(SAMPLE.relative_to(REPO)), "--json"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    _check_json(json.loads(done.stdout))
    assert "Traceback" not in done.stderr and "W0000" not in done.stderr, done.stderr
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and "mpl" not in p.parts]
    assert leftovers == [], leftovers


def test_score_text_output_and_photo_plus_voice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(PHOTO), "--voice", str(VOICE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("face_photo.jpg + voice_upbeat.wav: ")
    assert "face:" in out and "timeline (window start: p_inconsistent)" in out


def test_batch_folder_csv_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("smile_upbeat.mp4", "smile_low.mp4"):
        (folder / name).write_bytes((ASSETS / name).read_bytes())
    (folder / "broken.mp4").write_bytes(b"\x00" * 100)
    csv, reports = tmp_path / "out.csv", tmp_path / "reports"
    assert main(["score", str(folder), "--json", "--csv", str(csv), "--report", str(reports)]) == 2  # one failed
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["file"] for x in lines] == ["broken.mp4", "smile_low.mp4", "smile_upbeat.mp4"]
    assert lines[0]["error"] == "broken.mp4: skipped, not a video, audio or image file crossemo (ffmpeg) can read."
    import pandas as pd

    table = pd.read_csv(csv)
    assert list(table["file"]) == ["broken.mp4", "smile_low.mp4", "smile_upbeat.mp4"]
    assert sorted(p.name for p in reports.iterdir()) == ["smile_low.mp4.report.html", "smile_upbeat.mp4.report.html"]
    page = (reports / "smile_upbeat.mp4.report.html").read_text()
    assert "Research tool, not a diagnostic device" in page and "<svg" in page and "data:image/png;base64" in page


def test_an_unforeseen_failure_on_one_file_costs_only_that_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from crossemo_core.clip import cli as clip_cli

    score = ClipScorer.score

    def score_or_fail(self, source, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if Path(str(source)).name == "a_odd.mp4":
            raise RuntimeError("Graph has errors:\nsecond line")
        if Path(str(source)).name == "c_gone.mp4":
            raise FileNotFoundError(2, "No such file or directory")
        return score(self, source, *args, **kwargs)

    monkeypatch.setattr(ClipScorer, "score", score_or_fail)
    made: list[int] = []
    init = ClipScorer.__init__
    monkeypatch.setattr(ClipScorer, "__init__", lambda self, *a, **k: (made.append(1), init(self, *a, **k))[1])
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a_odd.mp4", "b_fine.mp4", "c_gone.mp4"):
        (folder / name).write_bytes(SAMPLE.read_bytes())
    csv = tmp_path / "out.csv"
    assert main(["score", str(folder), "--json", "--csv", str(csv)]) == 2
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    said = "unexpected error (RuntimeError: Graph has errors:\\nsecond line)"
    assert lines[0] == {"file": "a_odd.mp4", "verdict": None, "error": said}
    assert lines[1]["file"] == "b_fine.mp4" and lines[1]["verdict"] is not None
    assert lines[2]["error"] == "unexpected error (FileNotFoundError: [Errno 2] No such file or directory)"
    assert csv.is_file() and len(made) == 2  # the file after the failure got a new scorer
    one = tmp_path / "one.csv"  # a single recording keeps its resume journal after an unforeseen failure
    assert main(["score", str(folder / "a_odd.mp4"), "--csv", str(one)]) == 2
    capsys.readouterr()
    assert clip_cli.resume_path(one).is_file()
    # a worker of --jobs N: the same row, and its scorer, which may be what failed, is not used again
    shared = (None, None, None, None)
    clip_cli._WORKER_SCORERS.clear()
    try:
        assert clip_cli._judge_one(shared, (folder / "b_fine.mp4", None))[0] is not None
        assert clip_cli._judge_one(shared, (folder / "a_odd.mp4", None)) == (None, said)
        assert clip_cli._WORKER_SCORERS == {}
    finally:
        clip_cli._WORKER_SCORERS.clear()


def test_voice_needs_a_single_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(SAMPLE), str(SAMPLE), "--voice", str(VOICE)]) == 2
    assert "--voice goes with a single FILE; 2 were given." in capsys.readouterr().err


def test_a_core_checkpoint_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(SAMPLE), "--checkpoint", str(REPO / "checkpoints" / "demo.pt")]) == 2
    assert "is not a clip checkpoint" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ verdicts
def test_no_audio_track(scorer: ClipScorer) -> None:
    with pytest.raises(DataError, match=r"mute\.mp4 has no audio track, so there is no voice to read"):
        scorer.score(NamedBytes("mute.mp4", _video(None)))


def test_no_video_track(scorer: ClipScorer) -> None:
    with pytest.raises(DataError, match=r"voice_upbeat\.wav has no video track, so there is no face to read\. Give a "
                                        r"video of the face, or a photo of it with this recording as the voice"):
        scorer.score(VOICE)


def test_photo_without_voice(scorer: ClipScorer) -> None:
    with pytest.raises(DataError, match=r"face_photo\.jpg is a still image, so it has no voice"):
        scorer.score(PHOTO)


def test_no_face_is_undetermined(scorer: ClipScorer) -> None:
    v = scorer.score(NamedBytes("wall.mp4", _video(_voice(), face=False)))
    assert v.verdict == "undetermined"
    assert v.reason.startswith("no face in most frames: a face was found in 0% of the sampled frames")
    assert v.p_inconsistent is None and all(w.status == "no face" for w in v.timeline)


def test_a_face_the_mesh_cannot_read_is_read_from_the_detectors_points_or_is_undetermined_and_says_so(
        scorer: ClipScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The detectors find the face in every frame, the mesh reads it in none (as with a face in sunglasses in a
    re-encoded copy): the face is framed on the detectors' eye and mouth points and the notes say so; where the
    detectors give no such points either, the reason says the face was seen but could not be read, not that there
    was no face."""
    from crossemo_core.clip.face import Detection, FaceAnalyzer

    monkeypatch.setattr(FaceAnalyzer, "_mesh", lambda self, rgb, roi, still: None)
    clip = NamedBytes("sunglasses.mp4", _video(_voice()))
    v = scorer.score(clip)
    assert v.verdict != "undetermined" and v.face_fraction > 0.9 and not v.geometry
    assert any("the face mesh found no landmarks" in n and "eye and mouth points" in n for n in v.notes), v.notes
    detect = FaceAnalyzer.detect
    monkeypatch.setattr(FaceAnalyzer, "detect", lambda self, rgb: [Detection(d.box) for d in detect(self, rgb)])
    v = scorer.score(clip)
    assert v.verdict == "undetermined" and v.p_inconsistent is None
    assert re.match(r"the face could not be read in most frames: a face was seen in (9\d|100)% of the sampled frames "
                    r"but its features were read in only 0%", v.reason), v.reason
    photo = scorer.score(PHOTO, voice=VOICE)
    assert photo.verdict == "undetermined"
    assert photo.reason.startswith("the face in the photo could not be read: a face was found but not its features")


def test_a_photo_without_a_face_is_undetermined(scorer: ClipScorer, tmp_path: Path) -> None:
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 120, np.uint8)).save(wall)
    v = scorer.score(wall, voice=VOICE)
    assert v.verdict == "undetermined" and v.reason.startswith("no face was found in the photo."), v.reason


def test_a_tiny_picture_has_no_face_and_the_next_clip_is_judged_as_ever(scorer: ClipScorer, tmp_path: Path) -> None:
    """A 1 or 2 px photo or video once gave the tiled face search empty tiles; mediapipe's detector then failed on
    them and on every later frame, so every later clip of the scorer (the app shares one) failed too."""
    from PIL import Image

    for side in (1, 2):
        Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(tiny := tmp_path / f"{side}px.png")
        v = scorer.score(tiny, voice=VOICE)
        assert v.verdict == "undetermined" and v.reason.startswith("no face was found in the photo."), v.reason
    video = synth.encode_video(lambda i: np.zeros((2, 2, 3), np.uint8), 50, 25, _voice(2.0))
    v = scorer.score(NamedBytes("2px.mp4", video))
    assert v.verdict == "undetermined" and v.face_fraction == 0.0, v.reason
    assert scorer.score(PHOTO, voice=VOICE).face.emotion == "happy"


def test_a_failing_face_graph_costs_one_frame_and_is_opened_again() -> None:
    from crossemo_core.clip.face import FaceAnalyzer

    analyser = FaceAnalyzer()
    try:
        failing = analyser._detectors[0]

        def fail(image: np.ndarray) -> None:
            raise RuntimeError("Graph has errors: \nROI width and height must be > 0")

        failing.process = fail
        lost = analyser.analyse(0.0, _photo(), still=True)
        assert lost.n_faces == 0 and lost.crop is None
        assert failing not in analyser._detectors  # opened again
        assert analyser.analyse(0.2, _photo(), still=True).crop is not None
    finally:
        analyser.close()


def test_a_calm_stretch_beyond_the_recording_is_refused_not_ignored(scorer: ClipScorer) -> None:
    with pytest.raises(DataError, match=r"^the calm stretch 1:40-3:20 holds only 0.0 s of smile_upbeat.mp4 \(at least "
                                        r"2 s is needed\): it lies beyond the recording's end"):
        scorer.calibration(SAMPLE, span=(100.0, 200.0))
    assert scorer.calibration(SAMPLE, span=(1.0, 5.0)).face_shift is not None


def test_no_speech_is_undetermined(scorer: ClipScorer) -> None:
    hum = (0.01 * np.random.default_rng(0).standard_normal(3 * synth.AUDIO_RATE)).astype(np.float32)
    v = scorer.score(NamedBytes("quiet.mp4", _video(hum)))
    assert v.verdict == "undetermined"
    assert v.reason.startswith("no speech:"), v.reason
    silent = scorer.score(NamedBytes("silent.mp4", _video(np.zeros(3 * synth.AUDIO_RATE, np.float32))))
    assert silent.verdict == "undetermined" and silent.reason.startswith("no speech: 0.0 s of voiced speech")


def test_several_faces_uses_the_largest_and_says_so(scorer: ClipScorer) -> None:
    v = scorer.score(NamedBytes("two.mp4", _video(_voice(), faces=2)))
    assert any(n.startswith("several faces were seen (up to 2 in one frame); the largest face was analysed")
               for n in v.notes), v.notes
    assert v.verdict != "undetermined"


def test_lying_extension_is_scored_with_a_note(scorer: ClipScorer) -> None:
    v = scorer.score(NamedBytes("clip.wav", SAMPLE.read_bytes()))
    assert v.notes[0] == ("clip.wav: the extension says .wav but the content is MP4/QuickTime; it was read as "
                          "MP4/QuickTime.")
    assert v.verdict != "undetermined"


def test_same_input_same_verdict_and_bytes_equal_paths(scorer: ClipScorer) -> None:
    a = scorer.score(SAMPLE).to_dict()
    b = scorer.score(NamedBytes(SAMPLE.name, SAMPLE.read_bytes())).to_dict()
    assert a == b


def test_baseline_calibration_changes_the_inputs_not_the_interface(scorer: ClipScorer) -> None:
    plain = scorer.score(SAMPLE)
    cal = scorer.calibration(ASSETS / "smile_low.mp4")
    assert cal.face_shift is not None and cal.voice_shift is not None
    calibrated = scorer.score(SAMPLE, baseline=cal)
    assert calibrated.calibrated and not plain.calibrated
    assert calibrated.similarity != pytest.approx(plain.similarity)


def test_report_and_table() -> None:
    s = ClipScorer()
    try:
        v = s.score(SAMPLE)
        page = report_html(v, s.model)
    finally:
        s.close()
    assert v.verdict.upper() in page and "When face and voice diverge" in page
    table = verdicts_table([v.to_dict(), {"file": "x.mp4", "error": "bad"}])
    assert list(table["file"]) == ["smile_upbeat.mp4", "x.mp4"] and table["error"].iloc[1] == "bad"
    digest = hashlib.sha256(Path(SAMPLE).read_bytes()).hexdigest()
    assert v.sha256 == digest and v.to_dict()["sha256"] == digest and table["sha256"].iloc[0] == digest
    assert f"<code>{digest}</code>" in page  # every result names the bytes it belongs to
    assert list(table.columns)[:5] == ["file", "verdict", "strength", "p_inconsistent", "reason"]


def test_clip_checkpoint_needs_its_expression_network(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="the expression network .*nothing.pt does not exist"):
        ClipScorer(expression=tmp_path / "nothing.pt")
    other = tmp_path / "other.pt"
    other.write_bytes((REPO / "checkpoints" / "fer_expression.pt").read_bytes() + b"\0")
    with pytest.raises(CheckpointError, match=r"was trained with the expression network fer_expression\.pt "
                                              r"\(sha256 [0-9a-f]{12}\); .*other\.pt is a different one"):
        ClipScorer(expression=other)


def test_a_face_from_across_the_room_is_found_in_tiles_and_read_by_the_small_face_network(scorer: ClipScorer,
                                                                                           tmp_path: Path) -> None:
    from PIL import Image

    from crossemo_core.clip.face import FaceAnalyzer
    from crossemo_core.readers.face import SMALL_FACE_SCALE

    frame = np.full((480, 640, 3), 120, np.uint8)
    frame[290:370, 190:270] = np.asarray(Image.fromarray(_photo()).resize((80, 80), Image.BILINEAR))
    analyser = FaceAnalyzer()
    try:
        assert analyser.detect(frame) == []  # too small for the detectors in the whole frame
        tracked = analyser.analyse(0.0, frame, still=True)
    finally:
        analyser.close()
    assert tracked.crop is not None and tracked.face_scale < SMALL_FACE_SCALE  # found in a tile; an enlarged crop
    reader = scorer.face_reader
    small = reader.read_crops(tracked.crop[None], use_blendshapes=False, scales=np.array([tracked.face_scale]))
    main_only = reader.read_crops(tracked.crop[None], use_blendshapes=False)
    assert np.abs(small.valence - main_only.valence).max() > 0.01  # the two networks read it differently
    Image.fromarray(frame).save(far := tmp_path / "far.png")
    v = scorer.score(far, voice=VOICE)
    assert v.face_fraction == 1.0 and v.verdict != "undetermined", v.reason
    read = [v.face.valence_probs[k] for k in ("negative", "neutral", "positive")]
    np.testing.assert_allclose(read, small.valence[0], atol=2e-3)
