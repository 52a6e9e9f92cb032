"""Property-based fault injection (issue 15, "Nothing lost, no traceback"): random bytes and mutated copies (bit flips,
truncations, splices) of a small valid wav, mp4, png, checkpoint, model file, pickle and RAVDESS csv, fed to every
loader and decoder of files. Each call either succeeds or raises a :class:`~crossemo_core.errors.CrossemoError` whose
message is one non-empty line; any other exception type, or an example slower than the deadline, fails.

An exception numpy or CPython only prints (an "unraisable" one, e.g. while freeing a damaged array) fails the test
too: the user would see its traceback. Reproducible: hypothesis runs derandomized (the same examples on every run,
no example database). The hand-picked input faults are in tests/test_faults_inputs.py.
"""
from __future__ import annotations

import functools
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is needed (requirements-dev.txt)")
pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from ravdess_layout import TAKES as ALL_TAKES  # noqa: E402
from ravdess_layout import face_au_lines, write_tone_audio  # noqa: E402

from crossemo_core.errors import CrossemoError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets" / "clips"
CHECKPOINTS = REPO / "checkpoints"

SETTINGS = {"derandomize": True, "database": None, "deadline": 10_000, "print_blob": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture]}
"""Derandomized (CI sees the same examples), no example database, 10 s per example at most (a hang fails)."""


# ------------------------------------------------------------------------------------------------ valid seeds
@functools.cache
def _voice() -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(ASSETS / "voice_upbeat.wav", dtype="float32")
    return audio


@functools.cache
def seed_wav() -> bytes:
    from crossemo_core.clip import synth

    return synth.encode_audio(_voice()[8000:16000], fmt="wav")  # 0.5 s, 16 kB


@functools.cache
def seed_mp4() -> bytes:
    from crossemo_core.clip import synth

    return synth.encode_video(lambda i: np.full((48, 64, 3), 40 + 20 * i, np.uint8), 6, 10, _voice()[8000:16000])


@functools.cache
def seed_png() -> bytes:
    from crossemo_core.clip import synth

    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return synth.encode_image(rgb, "png")


@functools.cache
def seed_model_file() -> bytes:
    """A tiny expression network in the model_files format (crossemo-fer/1)."""
    import torch

    from crossemo_core.clip.expression import ExpressionModel, ExpressionNet

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = ExpressionModel(ExpressionNet((2, 2, 2, 4)), {"note": "test"}).save(Path(tmp) / "fer.pt")
        return path.read_bytes()


@functools.cache
def seed_checkpoint() -> bytes:
    return (CHECKPOINTS / "demo.pt").read_bytes()


def misa_segments() -> list:
    rng = np.random.default_rng(0)
    return [((np.arange(3), rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32),
              ["a", "b", "c"]), np.array([[float(s)]]), f"vid{k}[{k}]") for k, s in enumerate((-2, 0.5, 1.5))]


@functools.cache
def seed_pickle() -> bytes:
    return pickle.dumps(misa_segments(), protocol=4)


@functools.cache
def seed_mmsa_pickle() -> bytes:
    rng = np.random.default_rng(0)
    split = {"vision": rng.normal(size=(3, 4, 5)).astype(np.float32), "audio": rng.normal(size=(3, 6, 2)),
             "id": np.array(["v1$_$1", "v1$_$2", "v2$_$1"]), "regression_labels": np.array([-1.0, 0.0, 2.0]),
             "vision_lengths": np.array([4, 2, 3]), "audio_lengths": np.array([6, 6, 1])}
    return pickle.dumps({"train": split, "valid": split, "test": split}, protocol=2)


TAKES = ALL_TAKES[:3]


@pytest.fixture(scope="module")
def ravdess_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RAVDESS-layout audio folder (3 clips of actor 1, tones) and a feature cache shared by every example; each
    example writes its own face_au.csv into a fresh folder that links to this audio."""
    return write_tone_audio(tmp_path_factory.mktemp("ravdess"), TAKES, base_hz=140)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the mutated files (each example overwrites the previous one)."""
    return tmp_path_factory.mktemp("mutated")


@functools.cache
def seed_csv() -> bytes:
    return ("\n".join(face_au_lines(TAKES)) + "\n").encode()


# ------------------------------------------------------------------------------------------------ mutations
@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with one to three faults: bit flips, a truncation, a splice (random bytes inserted or written over,
    or a slice of the file repeated elsewhere), or nothing of it at all (random bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=0, max_size=4096))
    data = bytearray(seed)
    n = len(data)

    def position() -> int:  # faults in headers and trailers (zip directories, moov atoms) matter most
        region = draw(st.sampled_from(["head", "tail", "any"]))
        if region == "head":
            return draw(st.integers(0, min(n, 512) - 1))
        if region == "tail":
            return draw(st.integers(max(0, n - 512), n - 1))
        return draw(st.integers(0, n - 1))

    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        if n == 0:
            break
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "overwrite", "repeat"]))
        i = position()
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=64))
            data[i:i + len(chunk)] = chunk
        else:
            j = draw(st.integers(0, n - 1))
            data[i:i] = data[j:j + draw(st.integers(1, 256))]
    return bytes(data)


def single_line_or_success(fn, *args, **kwargs) -> object:
    """``fn(*args)``'s result, or None after a CrossemoError with a one-line message; anything else propagates."""
    try:
        return fn(*args, **kwargs)
    except CrossemoError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
        assert "Traceback" not in message and "weights_only" not in message, message
        return None


def _csv_root(ravdess_root: Path, scratch: Path, csv: bytes) -> Path:
    root = scratch / "ravdess"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    (root / "audio").symlink_to(ravdess_root / "audio", target_is_directory=True)
    (root / "face_au.csv").write_bytes(csv)
    return root


# ------------------------------------------------------------------------------------------------ clip decoding
def _decode(name: str, data: bytes, scratch: Path) -> None:
    """Decode ``data`` as an upload (bytes) and as a file (a path): the same outcome."""
    from crossemo_core.clip.decode import ClipLimits, NamedBytes, decode_media

    path = scratch / name
    path.write_bytes(data)
    outcomes = []
    for source in (NamedBytes(name, data), path):
        frames: list[float] = []
        media = single_line_or_success(decode_media, source, limits=ClipLimits(max_duration_s=30, fps=5),
                                       on_frame=lambda t, rgb: frames.append(t))  # noqa: B023 - used at once
        if media is not None:
            assert all("\n" not in n for n in media.notes), media.notes
            if media.audio is not None:
                assert media.audio.dtype == np.float32 and media.audio.ndim == 1
        outcomes.append(media is None)
    assert outcomes[0] == outcomes[1], "an upload and a file of the same bytes differ"


@settings(max_examples=40, **SETTINGS)
@given(data=mutated(seed_wav()))
def test_decode_mutated_wav(scratch: Path, data: bytes) -> None:
    _decode("voice.wav", data, scratch)


def test_a_truncated_mp4_whose_audio_stream_cannot_be_opened(tmp_path: Path) -> None:
    """Found by the property below: cut at 3,644 bytes, the seed's audio stream has no codec context, and reading
    its sample rate raised AttributeError ('AudioStream' object has no attribute 'rate')."""
    _decode("clip.mp4", seed_mp4()[:3644], tmp_path)


@settings(max_examples=40, **SETTINGS)
@given(data=mutated(seed_mp4()))
def test_decode_mutated_mp4(scratch: Path, data: bytes) -> None:
    _decode("clip.mp4", data, scratch)


@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_png()))
def test_decode_mutated_png(scratch: Path, data: bytes) -> None:
    _decode("face.png", data, scratch)


@settings(max_examples=30, **SETTINGS)
@given(data=st.binary(min_size=0, max_size=2048), name=st.sampled_from(["x.mp4", "x.wav", "x.jpg", "x.bin", "x"]))
def test_decode_random_bytes(scratch: Path, data: bytes, name: str) -> None:
    _decode(name, data, scratch)


# ------------------------------------------------------------------------------------------------ voice features
@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_wav()))
def test_voice_feature_reader_on_mutated_wav(scratch: Path, data: bytes) -> None:
    from crossemo_core.features.voice import load_audio

    path = scratch / "voice.wav"
    path.write_bytes(data)
    out = single_line_or_success(load_audio, path)
    if out is not None:
        signal, sr = out
        assert signal.dtype == np.float32 and np.isfinite(signal).all() and sr > 0


# ------------------------------------------------------------------------------------------------ model files
@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_checkpoint()))
def test_detector_load_on_mutated_checkpoint(scratch: Path, data: bytes) -> None:
    from crossemo_core.detector import Detector

    path = scratch / "demo.pt"
    path.write_bytes(data)
    single_line_or_success(Detector.load, path)


@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_model_file()))
def test_model_file_load_on_mutated_file(scratch: Path, data: bytes) -> None:
    from crossemo_core.clip.expression import ExpressionModel

    path = scratch / "fer.pt"
    path.write_bytes(data)
    model = single_line_or_success(ExpressionModel.load, path)
    if model is not None:  # what loads must also run
        assert model.logits(np.zeros((1, 48, 48), np.uint8)).shape == (1, len(model.classes))


# ------------------------------------------------------------------------------------------------ pickles
@settings(max_examples=40, **SETTINGS)
@given(data=mutated(seed_pickle()))
def test_safe_pickle_and_misa_loader_on_mutated_pickle(scratch: Path, data: bytes) -> None:
    from crossemo_core.data.loaders import load_misa
    from crossemo_core.data.safe_pickle import load_pickle

    single_line_or_success(load_pickle, data)
    path = scratch / "dev.pkl"
    path.write_bytes(data)
    single_line_or_success(load_misa, path)


@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_mmsa_pickle()))
def test_mmsa_loader_on_mutated_pickle(scratch: Path, data: bytes) -> None:
    from crossemo_core.data.loaders import load_mmsa

    path = scratch / "aligned_50.pkl"
    path.write_bytes(data)
    single_line_or_success(load_mmsa, path)


# ------------------------------------------------------------------------------------------------ RAVDESS csv
@settings(max_examples=30, **SETTINGS)
@given(data=mutated(seed_csv()))
def test_ravdess_reader_on_mutated_csv(ravdess_root: Path, scratch: Path, data: bytes) -> None:
    from crossemo_core.data.loaders import load_ravdess

    root = _csv_root(ravdess_root, scratch, data)
    loaded = single_line_or_success(load_ravdess, root, cache_dir=ravdess_root / "cache", voice_preprocessing="none")
    if loaded is not None:
        assert all(np.isfinite(f).all() for f in loaded.face)


def test_seeds_are_valid(ravdess_root: Path, scratch: Path) -> None:
    """The unmutated seeds load: the properties above start from files each loader accepts."""
    from crossemo_core.clip.decode import NamedBytes, decode_media
    from crossemo_core.clip.expression import ExpressionModel
    from crossemo_core.data.loaders import load_misa, load_mmsa, load_ravdess
    from crossemo_core.detector import Detector
    from crossemo_core.features.voice import load_audio

    assert decode_media(NamedBytes("v.wav", seed_wav())).has_audio
    assert decode_media(NamedBytes("c.mp4", seed_mp4()), on_frame=lambda t, rgb: None).has_video
    assert decode_media(NamedBytes("f.png", seed_png())).is_image
    for name, seed, load in (("demo.pt", seed_checkpoint(), Detector.load),
                             ("fer.pt", seed_model_file(), ExpressionModel.load),
                             ("dev.pkl", seed_pickle(), load_misa), ("aligned.pkl", seed_mmsa_pickle(), load_mmsa),
                             ("voice.wav", seed_wav(), load_audio)):
        (scratch / name).write_bytes(seed)
        assert load(scratch / name) is not None
    root = _csv_root(ravdess_root, scratch, seed_csv())
    assert len(load_ravdess(root, cache_dir=ravdess_root / "cache", voice_preprocessing="none")) == 3
