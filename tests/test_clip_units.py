"""Unit tests of the clip path's pieces (no mediapipe, no shipped model needed): windows, voice activity, face
windows, loudness, the kNN gate, the face alignment and geometry, the expression network's file format."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.expression import (FER_CLASSES, FER_SIZE, FER_TEMPLATE, ExpressionModel, ExpressionNet,
                                           augment_batch, standardise, valence_proba)
from crossemo_core.clip.face import (GEOMETRY_NAMES, LEFT_EYE, LIP_CORNERS, RIGHT_EYE, Detection, FaceAnalyzer,
                                     FaceFrame, FaceTrack, _similarity, align_face, crop_scale, eye_mouth_points,
                                     face_geometry)
from crossemo_core.clip.gate import KnnGate
from crossemo_core.clip.reading import FaceLog
from crossemo_core.errors import CheckpointError

REPO = Path(__file__).resolve().parent.parent
VOICE = REPO / "assets" / "clips" / "voice_upbeat.wav"


def _speech() -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(VOICE, dtype="float32")
    return audio


def test_windows_cover_the_clip() -> None:
    assert seq.window_starts(1.2) == [(0.0, 1.2)]
    w = seq.window_starts(6.0)
    assert w[0] == (0.0, 2.0) and w[-1] == (4.0, 6.0) and len(w) == 9
    w = seq.window_starts(6.3)
    assert w[-1] == pytest.approx((4.3, 6.3))


def test_loudness_normalisation_brings_speech_to_the_target() -> None:
    x = _speech() * 0.01
    y = seq.normalise_loudness(x, 16000)
    frames = y[: len(y) // 400 * 400].reshape(-1, 400)
    level = 20 * np.log10(np.percentile(np.sqrt((frames.astype(np.float64) ** 2).mean(1)), 90))
    assert level == pytest.approx(seq.TARGET_LEVEL_DB, abs=0.5)


def test_voice_windows_judge_speech_and_skip_silence() -> None:
    speech = _speech()
    clip = np.concatenate([np.zeros(3 * 16000, np.float32), speech[: 3 * 16000]])
    track = seq.voice_track(clip, 16000)
    assert seq.voice_window(track, 0.0, 2.0) is None  # silence is not judged
    v = seq.voice_window(track, 3.5, 5.5)
    assert v is not None and v.shape[1] == 47 and 10 <= len(v) <= 40  # pooled by 5: <= 20 rows per second
    assert 2.0 <= track.speech_s <= 3.0


def test_noise_is_not_speech() -> None:
    noise = (0.05 * np.random.default_rng(0).standard_normal(3 * 16000)).astype(np.float32)
    track = seq.voice_track(noise, 16000)
    assert track.speech_s < seq.MIN_CLIP_SPEECH_S


def test_face_windows_need_a_face_in_half_the_frames() -> None:
    times = np.arange(20) / 5.0  # 4 s at 5 frames per second
    found = np.array([True] * 10 + [False] * 10)
    logits = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)
    f = seq.face_window(times, found, logits, 0.0, 2.0)
    assert f is not None and f.shape == (10, 7) and f[0, 0] == 0
    assert seq.face_window(times, found, logits, 2.0, 4.0) is None
    partial = seq.face_window(times, found, logits, 1.0, 3.0)  # 5 of 10 frames with a face: exactly half
    assert partial is not None and len(partial) == 5 and partial[0, 0] == logits[5, 0]


def test_gate_flags_far_embeddings_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 3
    train = {m: centres[rng.integers(0, 4, 400)] + rng.standard_normal((400, 16)) * 0.3 for m in ("face", "voice")}
    valid = {m: centres[rng.integers(0, 4, 200)] + rng.standard_normal((200, 16)) * 0.3 for m in ("face", "voice")}
    gate = KnnGate.fit(train, valid, n_prototypes=8, k=2)
    assert gate.atypical(valid["face"], "face").mean() <= 0.02
    far = -centres.mean(0, keepdims=True) + rng.standard_normal((5, 16))
    assert gate.atypical(far, "voice").all()
    again = KnnGate.from_dict(gate.to_dict())
    np.testing.assert_allclose(again.distance(far, "face"), gate.distance(far, "face"), atol=1e-4)


def _mesh(scale: float = 1.0, angle_deg: float = 0.0, shift=(200.0, 150.0)) -> np.ndarray:
    """A fake 478-point mesh with eyes, brows, lids and mouth where a face has them (template units x 4)."""
    pts = np.zeros((478, 3), np.float32)
    pts[:, :2] = (24.0, 30.0)
    for idx, (x, y) in ((RIGHT_EYE, (15.5, 18.7)), (LEFT_EYE, (32.5, 18.7))):
        pts[idx[0], :2], pts[idx[1], :2] = (x - 3, y), (x + 3, y)
    pts[LIP_CORNERS[0], :2], pts[LIP_CORNERS[1], :2] = (18.0, 36.9), (30.0, 36.9)
    for i in (70, 63, 105, 66, 107):
        pts[i, :2] = (15.5, 13.0)
    for i in (300, 293, 334, 296, 336):
        pts[i, :2] = (32.5, 13.0)
    pts[159, :2], pts[145, :2], pts[386, :2], pts[374, :2] = (15.5, 17.7), (15.5, 19.7), (32.5, 17.7), (32.5, 19.7)
    pts[13, :2], pts[14, :2] = (24.0, 36.0), (24.0, 38.0)
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts[:, :2] = (pts[:, :2] - 24) @ rot.T * scale * 4 + np.asarray(shift)
    return pts


def test_alignment_maps_eyes_and_mouth_onto_the_template() -> None:
    mesh = _mesh(scale=1.7, angle_deg=12)
    src = np.stack([mesh[list(RIGHT_EYE), :2].mean(0), mesh[list(LEFT_EYE), :2].mean(0),
                    mesh[list(LIP_CORNERS), :2].mean(0)])
    dst = np.array([FER_TEMPLATE["right_eye"], FER_TEMPLATE["left_eye"], FER_TEMPLATE["mouth"]])
    m = _similarity(src.astype(np.float32), dst.astype(np.float32))
    mapped = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(mapped, dst, atol=0.3)


def test_geometry_does_not_depend_on_size_or_roll() -> None:
    a = face_geometry(_mesh(scale=1.0, angle_deg=0))
    b = face_geometry(_mesh(scale=2.5, angle_deg=20))
    i_roll = GEOMETRY_NAMES.index("head_roll_deg")
    assert b[i_roll] == pytest.approx(20.0, abs=0.5) and a[i_roll] == pytest.approx(0.0, abs=0.5)
    keep = [i for i, n in enumerate(GEOMETRY_NAMES) if not n.startswith("head_")]
    np.testing.assert_allclose(a[keep], b[keep], atol=1e-3)
    assert a[GEOMETRY_NAMES.index("brow_raise")] == pytest.approx(5.7 / 17, abs=0.01)


def test_crop_scale_is_frame_pixels_per_crop_pixel_whatever_the_roll() -> None:
    # _mesh draws the template's points 4 * scale frame pixels apart per template pixel
    assert crop_scale(eye_mouth_points(_mesh(scale=1.0))) == pytest.approx(4.0, rel=1e-4)
    small = eye_mouth_points(_mesh(scale=0.2, angle_deg=25))
    assert crop_scale(small) == pytest.approx(0.8, rel=1e-4)  # a small face: enlarged crop
    assert crop_scale(eye_mouth_points(_mesh(scale=1.7, angle_deg=-12))) == pytest.approx(6.8, rel=1e-4)


class _RegionMesh:
    """Stands in for the face mesh: finds the face only in regions of the given sides (pixels)."""

    def __init__(self, finds_in: set[float]) -> None:
        self.finds_in, self.asked, self.restarts = finds_in, [], 0

    def mesh(self, rgb: np.ndarray, roi: tuple[float, float, float], still: bool) -> np.ndarray | None:
        self.asked.append(round(roi[2], 3))
        return _mesh(shift=roi[:2]) if round(roi[2], 3) in self.finds_in else None


def _analyser(stand_in: _RegionMesh, boxes: list[tuple[float, float, float, float]] | None = None) -> FaceAnalyzer:
    """A :class:`FaceAnalyzer` without mediapipe: the detectors find ``boxes`` in turn (one per detection; a
    100-pixel face box at (200, 150) by default), the mesh is ``stand_in``."""
    analyser = object.__new__(FaceAnalyzer)
    analyser.max_faces = 4
    analyser._forget()
    found = iter(boxes or [(150.0, 100.0, 250.0, 200.0)] * 10)
    analyser.detect = lambda rgb: [Detection(next(found))]
    analyser._mesh = stand_in.mesh
    analyser._restart_tracking = lambda: setattr(stand_in, "restarts", stand_in.restarts + 1)
    return analyser


def test_a_face_the_mesh_misses_in_the_usual_region_is_looked_for_in_a_tighter_one() -> None:
    rgb = np.full((300, 400, 3), 110, np.uint8)
    usual, tight = 100 * FaceAnalyzer.ROI_SCALE, 100 * FaceAnalyzer.ROI_RETRY_SCALE
    stand_in = _RegionMesh({tight, round(105 * FaceAnalyzer.ROI_RETRY_SCALE, 3)})
    # the detectors run on frames 0 and 5; on frame 5 the box is 5 % larger: the same face, not a move
    analyser = _analyser(stand_in, [(150.0, 100.0, 250.0, 200.0), (147.5, 97.5, 252.5, 202.5)])
    frames = [analyser.analyse(k / 5, rgb) for k in range(7)]
    assert all(f.crop is not None for f in frames)
    frames[2].crop, frames[4].face_scale = None, 0.5  # a frame without a face; a face of another size
    track = FaceTrack(frames)
    assert len(track.crops()) == len(track.scales()) == 6
    assert track.scales() == pytest.approx([4.0, 4.0, 4.0, 0.5, 4.0, 4.0], rel=1e-4)  # each crop's scale with it
    assert stand_in.asked == [usual, tight] + [tight] * 6  # found in the tighter region, then tracked there
    assert stand_in.restarts == 1  # the new region only: a miss leaves the mesh nothing to track

    nowhere = _RegionMesh(set())
    lost = _analyser(nowhere).analyse(0.0, rgb)
    assert lost.crop is None and lost.n_faces == 1 and nowhere.asked == [usual, tight]

    found = _RegionMesh({usual})
    _analyser(found).analyse(0.0, rgb)
    assert found.asked == [usual]  # no retry where the usual region finds the face


def test_a_face_the_mesh_cannot_read_is_framed_on_the_detectors_eye_and_mouth_points() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (300, 400, 3)).astype(np.uint8)
    points = np.float32([[185.0, 140.0], [215.0, 141.0], [201.0, 175.0]])  # right eye, left eye, mouth
    face = Detection((150.0, 100.0, 250.0, 200.0), points)
    calls: list[int] = []
    analyser = _analyser(_RegionMesh(set()))  # the mesh finds no face anywhere

    def detect(image: np.ndarray) -> list[Detection]:
        calls.append(1)
        return [face]

    analyser.detect = detect
    frame = analyser.analyse(0.0, rgb)
    crop, thumb = align_face(rgb, points)
    np.testing.assert_array_equal(frame.crop, crop)
    np.testing.assert_array_equal(frame.thumb, thumb)
    assert not frame.from_mesh and frame.geometry is None and frame.n_faces == 1 and len(calls) == 1
    assert frame.face_scale == pytest.approx(crop_scale(points)) and frame.box == (0.375, 1 / 3, 0.625, 2 / 3)
    assert FaceTrack([frame]).found.all()

    blind = _analyser(_RegionMesh(set()))
    blind.detect = lambda image: [Detection(face.box)]  # a detector without key points: nothing to frame the face on
    assert blind.analyse(0.0, rgb).crop is None

    assert analyser._near == (200.0, 150.0, 100 * FaceAnalyzer.ROI_SCALE)  # where to look again: around that face

    # while tracking, a miss asks the detectors again around the face; a face elsewhere is not the face the mesh lost
    for found, read in (([Detection((300.0, 200.0, 380.0, 280.0), points)], False), ([face], True)):
        tracked = _analyser(_RegionMesh({100 * FaceAnalyzer.ROI_SCALE}))
        assert tracked.analyse(0.0, rgb).from_mesh
        asked: list[tuple[float, float, float]] = []
        tracked._mesh = lambda *args: None
        tracked.detect_near = lambda image, region, found=found: asked.append(region) or found
        assert (tracked.analyse(0.2, rgb).crop is not None) == read
        assert asked == [(200.0, 150.0, 100 * FaceAnalyzer.ROI_SCALE)]  # around the region the face was tracked in

    log = FaceLog()
    log.add([frame, replace(frame, from_mesh=True), FaceFrame(t=0.4, n_faces=0)])
    assert log.aligned_on_points == 1 and "in 1 of 2 frames with a face the face mesh found no landmarks" in \
        log.notes()[0]
    assert log.notes(still=True)[0].startswith("the face mesh found no landmarks in the photo")


def _small_face() -> tuple[np.ndarray, FaceAnalyzer, list[tuple[int, int]]]:
    """A 480x360 frame with "the face" (white pixels, 24x30) and an analyser whose stand-in detectors find it only in
    an image smaller than the frame (key points at its top-left corner) and record the shape of every image searched
    (the list returned)."""
    rgb = np.zeros((360, 480, 3), np.uint8)
    rgb[200:230, 300:324] = 255
    searched: list[tuple[int, int]] = []

    def detect(image: np.ndarray) -> list[Detection]:
        searched.append(image.shape[:2])
        ys, xs = np.nonzero(image[:, :, 0] == 255)
        if image.shape[:2] == rgb.shape[:2] or len(xs) == 0:
            return []
        x0, y0 = float(xs.min()), float(ys.min())
        return [Detection((x0, y0, float(xs.max() + 1), float(ys.max() + 1)), np.float32([[x0, y0]] * 3))]

    analyser = _analyser(_RegionMesh({round(30 * FaceAnalyzer.ROI_SCALE, 3)}))
    analyser.detect = detect
    return rgb, analyser, searched


def test_a_face_too_small_for_the_whole_frame_is_looked_for_in_tiles() -> None:
    rgb, analyser, searched = _small_face()
    [face] = analyser.detect_in_tiles(rgb)  # once though found in 2 tiles
    assert face.box == (300.0, 200.0, 324.0, 230.0)  # in frame pixels, the key points too
    np.testing.assert_array_equal(face.points, [[300.0, 200.0]] * 3)
    assert len(searched) == FaceAnalyzer.TILE_GRID ** 2 and all(s == (150, 200) for s in searched)
    cut = np.zeros_like(rgb)
    cut[200:230, 330:354] = 255  # cut by the middle column's tiles (x 140-340), whole in the last column's
    assert [d.box for d in analyser.detect_in_tiles(cut)] == [(330.0, 200.0, 354.0, 230.0)]  # whole, not cut
    searched.clear()
    frame = analyser.analyse(0.0, rgb)
    assert frame.crop is not None and frame.n_faces == 1 and len(searched) == 1 + FaceAnalyzer.TILE_GRID ** 2

    empty = np.zeros_like(rgb)
    detect, analyser = analyser.detect, _analyser(_RegionMesh(set()))
    analyser.detect = detect  # the same stand-in detectors; a mesh that finds nothing
    searched.clear()
    for k in range(80):
        assert analyser.analyse(k / 5, empty).crop is None
    # the whole frame on every frame; the tiles on frames 0, 10, 30 and 70: each empty search doubles the wait (5, 10,
    # 20, 40 frames), up to TILE_MAX_GAP
    assert len(searched) == 80 + 4 * FaceAnalyzer.TILE_GRID ** 2
    assert analyser._tiles_at == 70 + FaceAnalyzer.TILE_MAX_GAP
    analyser.analyse(80 / 5, rgb)  # a face found in the tiles? not yet: the next tiled search is at frame 110
    assert analyser._tiles_at == 110
    analyser.detect = lambda image: [Detection((300.0, 200.0, 324.0, 230.0))]  # the whole frame finds a face
    analyser.analyse(81 / 5, rgb)
    assert analyser._tile_gap == FaceAnalyzer.detect_every and analyser._tiles_at == 85  # back to every 5 frames


def test_a_small_face_once_found_in_a_tile_is_found_again_near_where_it_was() -> None:
    rgb, analyser, searched = _small_face()
    assert all(analyser.analyse(k / 5, rgb).crop is not None for k in range(11))
    # frame 0: the whole frame, then the tiles; frames 5 and 10: the whole frame, then one square around the face
    near = round(FaceAnalyzer.NEAR_SCALE * FaceAnalyzer.ROI_SCALE * 30)
    assert searched == [(360, 480)] + [(150, 200)] * FaceAnalyzer.TILE_GRID ** 2 + [(360, 480), (near, near)] * 2
    assert [d.box for d in analyser.detect_near(rgb, (312.0, 215.0, 60.0))] == [(300.0, 200.0, 324.0, 230.0)]
    assert [d.box for d in analyser.detect_near(rgb, (470.0, 350.0, 60.0))] == []  # moved inside the frame: not there
    assert searched[-1] == (near, near)
    empty = np.zeros_like(rgb)
    analyser.analyse(11 / 5, empty)  # tracked: no search; the mesh (a stand-in) still reads it
    for k in range(12, 16):
        analyser.analyse(k / 5, empty)
    assert analyser._near is None  # frame 15 found nothing, near the face or anywhere: no more searches there


def test_expression_network_round_trip_and_input_checks(tmp_path: Path) -> None:
    net = ExpressionNet((4, 8, 8, 8))
    model = ExpressionModel(net, {"note": "test"})
    faces = np.random.default_rng(0).integers(0, 255, (3, FER_SIZE, FER_SIZE)).astype(np.uint8)
    path = model.save(tmp_path / "fer.pt")
    again = ExpressionModel.load(path)
    assert again.classes == FER_CLASSES
    np.testing.assert_allclose(again.logits(faces), model.logits(faces), atol=2e-2)  # weights stored as float16
    assert model.logits(np.zeros((0, FER_SIZE, FER_SIZE), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError, match="expression input must be"):
        standardise(np.zeros((2, 32, 32)))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable expression network"):
        ExpressionModel.load(tmp_path / "bad.pt")
    p = valence_proba(np.eye(7))
    assert p.shape == (7, 3) and p[3, 2] == 1 and p[6, 1] == 1 and p[0, 0] == 1


def test_expression_logits_are_the_networks_and_follow_training() -> None:
    """Logits come from a copy with the batch norms folded into the convolutions: the network's own outputs (in
    eval mode) to float precision, also after a training step has changed the weights and statistics in place."""
    torch.manual_seed(0)
    net = ExpressionNet((4, 8, 8, 8))
    model = ExpressionModel(net)
    faces = np.random.default_rng(0).integers(0, 255, (6, FER_SIZE, FER_SIZE)).astype(np.uint8)

    def plain() -> np.ndarray:
        with torch.no_grad():
            return net.eval()(standardise(faces)).numpy()

    before = model.logits(faces)
    np.testing.assert_allclose(before, plain(), atol=1e-5)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(standardise(faces)).sum().backward()
    opt.step()
    after = model.logits(faces)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, plain(), rtol=1e-5, atol=1e-5)


def test_mirrored_logits_average_each_face_and_its_mirror() -> None:
    torch.manual_seed(0)
    model = ExpressionModel(ExpressionNet((4, 8, 8, 8)))
    faces = np.random.default_rng(1).integers(0, 255, (5, FER_SIZE, FER_SIZE)).astype(np.uint8)
    expected = (model.logits(faces) + model.logits(np.ascontiguousarray(faces[:, :, ::-1]))) / 2
    np.testing.assert_allclose(model.mirrored_logits(faces), expected, atol=1e-5)
    assert np.abs(model.mirrored_logits(faces) - model.logits(faces)).max() > 1e-4  # the mirror is read
    assert model.mirrored_logits(faces[:0]).shape == (0, 7)


def test_augmentation_keeps_range_and_shape() -> None:
    x = torch.full((5, FER_SIZE, FER_SIZE), 128.0)
    y = augment_batch(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 255


def test_face_coverage_is_judged_over_time_not_over_sampled_frames() -> None:
    """One video frame with a face beside 6 s of voice covers 1/30 of the clip (at 5 frames/s), not 100 %."""
    from crossemo_core.clip.face import FaceFrame, FaceTrack
    from crossemo_core.clip.verdict import ClipAnalysis

    one = FaceTrack([FaceFrame(t=0.0, n_faces=1, crop=np.zeros((48, 48), np.uint8))])
    a = ClipAnalysis(name="x", voice_name=None, duration_s=6.0, track=one, face_logits=np.zeros((1, 7)), voice=None,
                     envelope=np.zeros(0), still=False, fps=5.0)
    assert a.face_fraction == pytest.approx(1 / 30)
    assert seq.face_window(one.times, one.found, np.zeros((1, 7)), 0.0, 2.0, fps=5.0) is None
    full = FaceTrack([FaceFrame(t=i / 5, n_faces=1, crop=np.zeros((48, 48), np.uint8)) for i in range(30)])
    b = ClipAnalysis(name="x", voice_name=None, duration_s=6.0, track=full, face_logits=np.zeros((30, 7)), voice=None,
                     envelope=np.zeros(0), still=False, fps=5.0)
    assert b.face_fraction == pytest.approx(1.0)
    assert seq.face_window(full.times, full.found, np.zeros((30, 7)), 0.0, 2.0, fps=5.0).shape == (10, 7)


def test_one_training_epoch_of_the_expression_network_moves_its_weights() -> None:
    from crossemo_core.clip.expression import train_epoch

    torch.manual_seed(0)
    net = ExpressionNet((4, 8, 8, 8))
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(70, FER_SIZE, FER_SIZE, generator=gen) * 255
    loss = train_epoch(net, opt, sched, torch.nn.CrossEntropyLoss(), images, torch.randint(0, 7, (70,), generator=gen),
                       gen, batch=32)
    assert np.isfinite(loss) and loss > 0 and sched.last_epoch == 2  # two full batches, the last 6 images dropped
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def _builder_inputs(seconds: float, pieces: float | None) -> list:
    """WindowInput of a synthetic recording (a face in every frame, speech throughout), fed whole or in pieces."""
    from crossemo_core.clip.reading import FaceReadings
    from crossemo_core.clip.windows import WindowBuilder

    fps, rng = seq.FACE_FPS, np.random.default_rng(0)
    times = np.arange(0, seconds, 1 / fps)
    faces = FaceReadings(times, np.ones(len(times), bool), rng.normal(size=(len(times), 7)).astype(np.float32),
                         np.full((len(times), 7), 1 / 7))
    n = int(round(seconds / seq.VOICE_HOP_S))
    features = rng.normal(size=(n, len(seq.VoiceFeatureExtractor().feature_names))).astype(np.float32)
    track = seq.VoiceTrack(features, np.ones(n, bool), np.ones(n, bool))
    audio = rng.normal(size=int(seconds * seq.AUDIO_RATE)).astype(np.float32) * 0.1
    b, out = WindowBuilder(fps), []
    if pieces is None:
        b.add_faces(faces, float("inf"))
        b.add_voice(track, 0)
        b.add_audio(audio, 0)
        return b.finish(seconds)
    for lo in np.arange(0, seconds, pieces):
        hi = min(seconds, lo + pieces)
        f = FaceReadings(*(x[(times >= lo) & (times < hi)] for x in (faces.times, faces.found)),
                         faces.logits[(times >= lo) & (times < hi)], faces.emotions[(times >= lo) & (times < hi)])
        b.add_faces(f, hi if hi < seconds else float("inf"))
        a, z = int(round(lo / seq.VOICE_HOP_S)), int(round(hi / seq.VOICE_HOP_S))
        b.add_voice(seq.VoiceTrack(features[a:z], track.active[a:z], track.voiced[a:z]), a)
        b.add_audio(audio[int(lo * seq.AUDIO_RATE):int(hi * seq.AUDIO_RATE)], int(lo * seq.AUDIO_RATE))
        out += b.ready(hi)
    return out + b.finish(seconds)


def test_each_window_is_read_at_offsets_that_tile_the_hop_inside_the_recording() -> None:
    """The clip model's ensemble (seq.JITTER_S): evenly spaced offsets one hop wide, so a recording's windows
    together read it every 50 ms; offsets that would leave the recording are skipped; a recording read in pieces
    gets the same offsets and sequences as one read whole."""
    offsets = np.array(seq.JITTER_S)
    step = np.diff(offsets)
    assert np.allclose(step, step[0]) and len(offsets) * step[0] == pytest.approx(seq.HOP_S)
    assert offsets.mean() == pytest.approx(0.0)
    whole = _builder_inputs(7.3, None)
    assert [len(w.jitter) for w in whole[:2]] == [5, 10]  # the first window: only the offsets >= 0
    assert len(whole[-1].jitter) == 5  # the last one ends at the end: only the offsets <= 0
    for w in whole:
        assert all(len(f) > 0 and len(v) > 0 and weight == 1.0 for weight, f, v in w.jitter)
    for pieces in (1.7, 3.0):
        streamed = _builder_inputs(7.3, pieces)
        assert [(w.start, w.end) for w in streamed] == [(w.start, w.end) for w in whole]
        for a, b in zip(streamed, whole):
            assert len(a.jitter) == len(b.jitter)
            for (_, fa, va), (_, fb, vb) in zip(a.jitter, b.jitter):
                assert np.array_equal(fa, fb) and np.array_equal(va, vb)


def test_a_window_carries_the_prosody_frames_its_audio_alone_would_give() -> None:
    """The voice reader's prosody statistics read frames cut from the recording's features (computed once, after the
    loudness gain) instead of extracting each overlapping window again: away from a window's ends they are the
    extractor's frames of the window's audio alone, its own voicing floor and energy included; a window whose audio
    the gain clipped, or that is off the 10 ms grid, gets none (the reader extracts them itself)."""
    from crossemo_core.clip.reading import FaceReadings
    from crossemo_core.clip.windows import WindowBuilder
    from crossemo_core.readers.prosody import PROSODY_NAMES, prosody_functionals

    sr, seconds, rng = seq.AUDIO_RATE, 6.237, np.random.default_rng(1)  # the last window starts off the grid
    t = np.arange(int(seconds * sr)) / sr
    level = np.where(t < 3, 0.001, 0.03) * (1 + 0.5 * np.sin(2 * np.pi * 1.3 * t))  # a quiet half, then a loud one
    audio = (level * np.sin(2 * np.pi * (150 * t + 8 * np.sin(2 * np.pi * 4 * t)))
             + 1e-4 * rng.standard_normal(len(t))).astype(np.float32)
    audio[int(4.2 * sr)] = 0.9  # a click the loudness gain clips
    track = seq.voice_track(audio, sr)
    assert track.gain * 0.9 > 1.0
    times = np.arange(0, seconds, 1 / seq.FACE_FPS)
    b = WindowBuilder()
    b.add_faces(FaceReadings(times, np.ones(len(times), bool), rng.normal(size=(len(times), 7)).astype(np.float32),
                             np.full((len(times), 7), 1 / 7)), float("inf"))
    b.add_voice(track, 0)
    b.add_audio(audio, 0)
    windows = [w for w in b.finish(seconds) if w.audio is not None]
    names = seq.VoiceFeatureExtractor().feature_names
    cols = [names.index(n) for n in ("log_f0", "voicing", "rms_db", "mfcc_3", "spectral_centroid_hz")]
    compared, skipped = 0, set()
    for w in windows:
        clipped = w.start < 4.2 < w.end
        off_grid = abs(w.start * 100 - round(w.start * 100)) > 1e-6
        assert (w.voice_frames is None) == (clipped or off_grid)
        if w.voice_frames is None:
            skipped.add("clipped" if clipped else "off the grid")
            continue
        alone = seq.VoiceFeatureExtractor().extract(w.audio, sr)
        assert w.voice_frames.shape == alone.shape
        np.testing.assert_allclose(w.voice_frames[10:-10][:, cols], alone[10:-10][:, cols], rtol=1e-3, atol=2e-3)
        # pitch, loudness and voicing statistics (semitones, dB, shares): the edge frames no longer hear the loud
        # half across a window's end; the spectral ones differ more (the window alone pads its ends with zeros)
        k = PROSODY_NAMES.index("speech_s_log") + 1
        assert prosody_functionals(w.audio, frames=w.voice_frames)[:k] == pytest.approx(
            prosody_functionals(w.audio)[:k], abs=0.15)
        compared += 1
    assert compared >= 4 and skipped == {"clipped", "off the grid"}
    # telephone-band audio: its empty high mel bands sit at the extractor's power floor, where a gain does not scale
    # them with the rest; the cut frames still match the window's audio alone (MFCCs of the audio before the gain)
    from scipy.signal import resample_poly

    unclicked = audio.copy()
    unclicked[int(4.2 * sr)] = 0.0
    narrow = resample_poly(resample_poly(unclicked, 1, 2), 2, 1).astype(np.float32)
    narrow_track = seq.voice_track(narrow, sr)
    assert narrow_track.gain > 2.0
    hop = int(seq.VOICE_HOP_S * sr)
    mfcc = [names.index(f"mfcc_{i}") for i in range(1, 13)] + [names.index("spectral_flatness")]
    for k in (100, 300):  # the quiet half and the loud half
        piece = narrow[k * hop:(k + 200) * hop]
        cut, alone = narrow_track.raw_frames(k, piece), seq.VoiceFeatureExtractor().extract(piece, sr)
        np.testing.assert_allclose(cut[10:-10][:, mfcc], alone[10:-10][:, mfcc], rtol=1e-3, atol=1e-2)
        gained = seq.VoiceFeatureExtractor().extract(piece * narrow_track.gain, sr)  # what the gain alone would give
        assert np.abs(gained[10:-10][:, mfcc] - alone[10:-10][:, mfcc]).max() > 1.0


def test_shifted_audio_keeps_its_length_and_pads_with_silence() -> None:
    from crossemo_core.clip.synth import shifted

    audio = np.arange(1, 1001, dtype=np.float32)
    late, early = shifted(audio, 0.01), shifted(audio, -0.01)  # 160 samples at 16 kHz
    assert len(late) == len(early) == 1000
    assert np.all(late[:160] == 0) and np.array_equal(late[160:], audio[:-160])
    assert np.array_equal(early[:-160], audio[160:]) and np.all(early[-160:] == 0)
    assert np.array_equal(shifted(audio, 0.0), audio)


def test_a_verdicts_side_summary_is_its_pooled_reading_and_a_side_not_read_is_empty() -> None:
    from crossemo_core.clip.verdict import SideSummary
    from crossemo_core.readers.face import reading_of

    emotions = np.array([0.05, 0.05, 0.05, 0.6, 0.05, 0.1, 0.1])
    reading = reading_of(emotions)
    side = SideSummary.of(reading)
    d = reading.to_dict()
    assert side.read and (side.emotion, side.valence, side.confidence) == (d["emotion"], d["valence"], d["confidence"])
    assert side.probs == d["emotions"] and side.valence_probs == d["valence_probs"]
    assert side.arousal_probs == d["arousal_probs"] and side.uncertain == d["uncertain"]
    assert side.to_dict() == {"emotion": "happy", "probs": d["emotions"], "valence": "positive",
                              "valence_probs": d["valence_probs"], "confidence": d["confidence"],
                              "uncertain": d["uncertain"], "arousal_probs": d["arousal_probs"]}
    assert list(side.to_dict()) == ["emotion", "probs", "valence", "valence_probs", "confidence", "uncertain",
                                    "arousal_probs"]  # the JSON's order
    nothing = SideSummary.of(None)
    assert not nothing.read and nothing.emotion is None
    assert nothing.to_dict() == {"emotion": None, "probs": {}, "valence": None, "valence_probs": {}}
    assert list(nothing.to_dict()) == ["emotion", "probs", "valence", "valence_probs"]
