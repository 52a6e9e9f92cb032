"""The expression network's int8 copy: the same readings as the float network, pinned to it, set aside (the float
network run) when it is stale or damaged or once the network changes."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crossemo_core.clip.expression import (ExpressionModel, ExpressionNet, int8_engine_available, int8_path,
                                           load_int8, quantize, save_int8, softmax, standardise)
from crossemo_core.errors import CheckpointError
from crossemo_core.model_files import half, save_model_file
from crossemo_core.readers.face import DEFAULT_EXPRESSION, FaceReader

SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not int8_engine_available(), reason="torch's x86 quantised engine is not available")


def faces(n: int, seed: int) -> np.ndarray:
    """Smooth synthetic grey images (a blurred random field): in range for the network, not faces."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 6, 6))
    return np.kron(coarse, np.ones((8, 8))).astype(np.uint8)


def small_network_file(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    net = ExpressionNet((4, 8, 8, 8)).eval()
    path = folder / f"net{seed}.pt"
    meta = {"widths": [4, 8, 8, 8], "classes": ["a", "b", "c", "d", "e", "f", "g"]}
    save_model_file(path, "crossemo-fer/1", meta, {"weights": half(net.state_dict())})
    return path


def test_shipped_copy_runs_and_reads_like_the_float_network() -> None:
    model = ExpressionModel.load(DEFAULT_EXPRESSION)
    reference = ExpressionModel.load(DEFAULT_EXPRESSION, int8=False)
    assert model.runs_int8 and not reference.runs_int8
    assert int8_path(DEFAULT_EXPRESSION).name == "fer_expression_v2.int8.pt"
    x = faces(64, 0)
    a, b = softmax(model.logits(x)), softmax(reference.logits(x))
    assert np.abs(a - b).max() < 0.15 and np.mean(a.argmax(1) == b.argmax(1)) >= 0.9
    assert model.logits(np.zeros((0, 48, 48))).shape == (0, 7)


def test_face_reader_int8_on_fer_publictest() -> None:
    if not (SHARED_DATA / "fer2013" / "fer2013.npz").is_file():
        pytest.skip("../shared/data is absent")
    data = np.load(SHARED_DATA / "fer2013" / "fer2013.npz")
    test = np.flatnonzero(data["usage"] == "PublicTest")[:300]
    readings = [FaceReader.load(with_landmarker=False, int8=int8).read_crops(data["images"][test],
                                                                            use_blendshapes=False)
                for int8 in (False, True)]
    moved = np.abs(readings[0].valence - readings[1].valence).max(1)
    assert moved.mean() < 0.02 and moved.max() < 0.15
    assert np.mean(readings[0].valence.argmax(1) == readings[1].valence.argmax(1)) > 0.98
    assert np.mean(readings[0].emotions.argmax(1) == readings[1].emotions.argmax(1)) > 0.94


def test_copy_round_trips_and_is_pinned_to_its_network(tmp_path: Path) -> None:
    path, other = small_network_file(tmp_path, 0), small_network_file(tmp_path, 1)
    float_model = ExpressionModel.load(path)
    assert not float_model.runs_int8  # no copy beside it yet
    quantized = quantize(float_model.net, faces(128, 1))
    save_int8(int8_path(path), quantized, path, {"calibration": "test"})
    loaded = ExpressionModel.load(path)
    assert loaded.runs_int8
    x = faces(16, 2)
    with torch.no_grad():
        assert np.array_equal(loaded.logits(x), quantized(standardise(x)).numpy())
    assert not np.allclose(loaded.logits(x), float_model.logits(x), atol=1e-6)  # it is the int8 copy that ran
    with pytest.raises(CheckpointError, match="int8 copy of another network"):
        load_int8(int8_path(path), other)
    shutil.copy(int8_path(path), int8_path(other))
    with pytest.warns(UserWarning, match="int8 copy of another network.*float network is run instead"):
        stale = ExpressionModel.load(other)
    assert not stale.runs_int8 and not ExpressionModel.load(other, int8=False).runs_int8
    assert np.allclose(stale.logits(x), ExpressionModel.load(other, int8=False).logits(x))


def test_damaged_copy_is_one_clear_error(tmp_path: Path) -> None:
    path = small_network_file(tmp_path, 0)
    int8_path(path).write_bytes(b"not a model file")
    with pytest.warns(UserWarning, match="int8 expression network") as caught:
        model = ExpressionModel.load(path)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert not model.runs_int8 and model.logits(faces(4, 0)).shape == (4, 7)


def test_training_the_network_drops_the_copy(tmp_path: Path) -> None:
    path = small_network_file(tmp_path, 0)
    model = ExpressionModel.load(path, int8=False)
    save_int8(int8_path(path), quantize(model.net, faces(64, 1)), path, {})
    model = ExpressionModel.load(path)
    before = model.logits(faces(8, 3))
    assert model.runs_int8
    with torch.no_grad():
        for p in model.net.parameters():
            p.mul_(0.5)
    assert not model.runs_int8  # the copy was made from other weights: the float network is run
    assert not np.allclose(model.logits(faces(8, 3)), before)


def test_clip_model_reads_the_float_network_it_was_trained_on(tmp_path: Path) -> None:
    from crossemo_core.clip.score import DEFAULT_CLIP_CHECKPOINT, ClipModel

    folder = DEFAULT_CLIP_CHECKPOINT.parent
    fer = folder / "fer_expression.pt"
    for name in ("clip.pt", "fer_expression.pt", *(p.name for p in folder.glob("clip_seed*.pt"))):
        shutil.copy(folder / name, tmp_path / name)
    copy = tmp_path / "fer_expression.pt"
    save_int8(int8_path(copy), quantize(ExpressionModel.load(copy, int8=False).net, faces(64, 0)), copy, {})
    assert ExpressionModel.load(copy).runs_int8  # a copy that the face reader's loading would run
    assert not ClipModel.load(tmp_path / "clip.pt").expression.runs_int8
    assert fer.is_file() and not int8_path(fer).exists()
