"""The face reader (crossemo_core.readers.face): the landmarker's sha256 check, photos, no-face results, video
pooling, the stacker's file format, and a small FER2013 batch (skipped without ../shared/data)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from crossemo_core.errors import CheckpointError
from crossemo_core.readers.face import (DEFAULT_EXPRESSION, DEFAULT_LANDMARKER, DEFAULT_SMALL_EXPRESSION,
                                        DEFAULT_SMALL_STACKER, DEFAULT_STACKER, FACE_EMOTIONS, LANDMARKER_SHA256,
                                        NO_FACE, POINTS_ONLY, SMALL_FACE_SCALE, FaceReader, FaceStacker, Landmarker,
                                        LogisticHead, has_face, read_tracked_crops, verify_sha256)
from crossemo_core.readers.reading import VALENCES

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
PHOTO = REPO / "assets" / "clips" / "face_photo.jpg"


@pytest.fixture(scope="module")
def reader(one_thread) -> FaceReader:  # noqa: ANN001 - fixture
    face_reader = FaceReader.load()
    yield face_reader
    face_reader.close()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from PIL import Image

    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))


def test_tampered_landmarker_is_refused(tmp_path: Path) -> None:
    assert len(verify_sha256(DEFAULT_LANDMARKER, LANDMARKER_SHA256)) == DEFAULT_LANDMARKER.stat().st_size
    tampered = tmp_path / "face_landmarker.task"
    shutil.copyfile(DEFAULT_LANDMARKER, tampered)
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256") as info:
        Landmarker(tampered)
    assert "\n" not in str(info.value)


def test_photo_gives_a_valid_positive_reading(reader: FaceReader, photo: np.ndarray) -> None:
    reading = reader.read_image(photo)  # the bundled photo: a smiling astronaut
    assert reading.modality == "face" and reading.note == "" and has_face(reading)
    assert tuple(reading.emotions) == FACE_EMOTIONS and tuple(reading.valence) == VALENCES
    assert sum(reading.emotions.values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(reading.valence.values()) == pytest.approx(1.0, abs=1e-6)
    assert sum(reading.arousal.values()) == pytest.approx(1.0, abs=1e-6)
    assert reading.top_emotion == "happy" and reading.top_valence == "positive"


def test_a_photo_is_framed_by_the_face_tracker_as_video_faces_are(reader: FaceReader, photo: np.ndarray,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Photos go through the clip verdict's face tracker: a small face in a wide photo is found (in tiles of the
    image; the landmarker alone finds none there), and a face the mesh cannot read is framed on the detectors'
    points, which the reading's note says."""
    from crossemo_core.clip import synth
    from crossemo_core.clip.face import FaceAnalyzer

    wide = synth.place((720, 1280), photo, 160, 300, 500, background=110)  # a face ~37 px wide
    if reader.landmarker.detect(wide) is not None:
        pytest.skip("this mediapipe's landmarker finds the small face too: nothing to compare")
    reading = reader.read_image(wide)
    assert has_face(reading) and reading.note == "" and reading.top_valence == "positive"
    reader.close()  # released, then made again on first use
    assert reader.read_image(photo).valence == pytest.approx(reader.read_image(photo).valence)
    monkeypatch.setattr(FaceAnalyzer, "_mesh", lambda *args: None)
    reading = reader.read_image(photo)
    assert has_face(reading) and reading.note == POINTS_ONLY and reading.top_valence == "positive"


def test_no_face_gives_the_documented_reading(reader: FaceReader) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for image in (np.zeros((240, 320, 3), np.uint8), noise):
        reading = reader.read_image(image)
        assert reading.note == NO_FACE and not has_face(reading) and reading.uncertain
        assert reading.arousal is None
        assert np.allclose(list(reading.emotions.values()), 1 / 7)
        assert np.allclose(reading.valence_array(), 1 / 3)


def test_a_video_pools_only_the_frames_with_a_face(reader: FaceReader, photo: np.ndarray) -> None:
    from PIL import Image

    from crossemo_core.readers.face import read_tracked_crops

    crop = np.asarray(Image.fromarray(photo).convert("L").resize((48, 48)))
    crops = np.stack([crop, crop[:, ::-1]])
    pooled = read_tracked_crops(reader, crops, n_frames=3, fps=5.0)  # the tracker found a face in 2 of 3 frames
    assert pooled.note == "face in 2 of 3 frames" and pooled.seconds == pytest.approx(0.6)
    expected = reader.read_crops(crops, use_blendshapes=False).emotions.mean(0)
    assert list(pooled.emotions.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert read_tracked_crops(reader, crops, n_frames=2, fps=5.0).note == ""
    assert read_tracked_crops(reader, crops, 3, 5.0, on_points=1).note == (
        "face in 2 of 3 frames; framed on the detectors' eye and mouth points in 1 of 2 (the face mesh found no "
        "landmarks)")
    nothing = read_tracked_crops(reader, None, n_frames=2, fps=5.0)
    assert nothing.note == NO_FACE and not has_face(nothing)


def test_stacker_round_trips_and_learns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 700)
    logits = np.eye(7)[labels] * 3 + rng.normal(0, 1, (700, 7))
    blendshapes = rng.uniform(0, 1, (700, 52))
    blendshapes[::10] = np.nan  # no face: read by the network-only head
    has = ~np.isnan(blendshapes).any(1)
    stacker = FaceStacker(LogisticHead.fit(logits, labels, 7, l2=1e-2),
                          LogisticHead.fit(np.hstack([logits, blendshapes])[has], labels[has], 7, l2=1e-2,
                                           class_power=1.0),
                          meta={"flip_tta": True, "expression_sha256": "0" * 64})
    p = stacker.predict_proba(logits, blendshapes)
    assert np.allclose(p.sum(1), 1) and np.mean(p.argmax(1) == labels) > 0.9
    loaded = FaceStacker.load(stacker.save(tmp_path / "stacker.pt"))
    assert loaded.flip_tta and loaded.meta["expression_sha256"] == "0" * 64
    assert np.allclose(loaded.predict_proba(logits, blendshapes), p)
    (tmp_path / "broken.pt").write_bytes((tmp_path / "stacker.pt").read_bytes()[:200])
    with pytest.raises(CheckpointError):
        FaceStacker.load(tmp_path / "broken.pt")


def test_stacker_refuses_another_expression_network() -> None:
    with pytest.raises(CheckpointError, match="another expression network"):
        FaceReader.load(REPO / "checkpoints" / "fer_expression.pt", DEFAULT_STACKER, with_landmarker=False)
    assert FaceReader.load(DEFAULT_EXPRESSION, DEFAULT_STACKER, with_landmarker=False).stacker is not None


def test_fer_crops_in_batch(reader: FaceReader) -> None:
    if not (SHARED_DATA / "fer2013" / "fer2013.npz").is_file():
        pytest.skip("../shared/data is absent")
    data = np.load(SHARED_DATA / "fer2013" / "fer2013.npz")
    test = np.flatnonzero(data["usage"] == "PublicTest")[:80]
    blendshapes = reader.landmarker.blendshapes_of_crops(data["images"][test])
    assert np.mean(~np.isnan(blendshapes).any(1)) > 0.85  # upscaled + padded, the landmarker finds FER faces
    readings = reader.read_crops(data["images"][test], blendshapes)
    assert readings.emotions.shape == (80, 7) and readings.valence.shape == (80, 3)
    assert np.allclose(readings.emotions.sum(1), 1) and np.allclose(readings.valence.sum(1), 1)
    assert readings.used_blendshapes.any() == (reader.stacker.with_blendshapes is not None)
    assert np.mean(readings.emotions.argmax(1) == data["labels"][test]) > 0.45  # chance is 0.14-0.25


def test_small_faces_are_read_by_the_small_face_network_and_the_rest_by_the_main_one() -> None:
    reader = FaceReader.load(with_landmarker=False)
    main_only = FaceReader.load(with_landmarker=False, small_faces=None)
    small_only = FaceReader.load(DEFAULT_SMALL_EXPRESSION, DEFAULT_SMALL_STACKER, with_landmarker=False,
                                 small_faces=None)
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    scales = np.array([3.0, 0.5, np.nan, SMALL_FACE_SCALE, SMALL_FACE_SCALE - 0.01])  # NaN: unknown -> main
    read = reader.read_crops(crops, use_blendshapes=False, scales=scales).emotions
    main, small = main_only.read_crops(crops, use_blendshapes=False).emotions, \
        small_only.read_crops(crops, use_blendshapes=False).emotions
    is_small = np.array([False, True, False, False, True])
    np.testing.assert_allclose(read[~is_small], main[~is_small], atol=1e-6)
    np.testing.assert_allclose(read[is_small], small[is_small], atol=1e-6)
    assert np.abs(main[is_small] - small[is_small]).max() > 1e-3  # the two networks do read differently
    np.testing.assert_allclose(reader.read_crops(crops, use_blendshapes=False).emotions, main, atol=1e-6)  # no scales
    pooled = read_tracked_crops(reader, crops, 5, 5.0, scales)
    np.testing.assert_allclose([pooled.emotions[e] for e in FACE_EMOTIONS], read.mean(0), atol=1e-4)
    with pytest.raises(ValueError, match="one scale per crop"):
        reader.read_crops(crops, use_blendshapes=False, scales=scales[:3])
