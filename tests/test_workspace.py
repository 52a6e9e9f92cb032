"""Loading by kind, uploads in a temporary folder that is removed, the split a detector is shown on, initial
weights, checkpoints as bytes."""
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from crossemo_core import workspace
from crossemo_core.config import preset_config
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.experiment import split_pairs
from crossemo_core.training import Trainer


@pytest.fixture(scope="module")
def corpus():
    return make_synthetic(n_speakers=7, clips_per_speaker=12, face_dim=5, voice_dim=7, face_length=(2, 6),
                          voice_length=(3, 8), seed=3)


def _config(data, **overrides):
    settings = {"hidden_size": 12, "embedding_size": 12, "epochs": 1, "batch_size": 16, **overrides}
    return preset_config("fast", data.face_dim, data.voice_dim, **settings)


@pytest.fixture(scope="module")
def trained(corpus):
    parts = split_pairs(corpus, seed=4, rate=0.5)
    config = _config(corpus, seed=4)
    metadata = {"split_speakers": {k: sorted(set(v.speaker.tolist())) for k, v in parts.items()}}
    return Trainer(config).fit(parts["train"], parts["valid"], metadata=metadata).detector, parts


def _misa_pickle(path: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    scores = [-2.0, 0.0, 1.4, -0.2, 2.6, 0.0, 1.0, -1.0][:n]
    recs = [((np.arange(3), rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32),
              ["w"] * 3), np.array([[s]], dtype=np.float32), f"vid{i // 2}[{i % 2}]") for i, s in enumerate(scores)]
    path.write_bytes(pickle.dumps(recs, protocol=3))
    return path


def test_parse_actors():
    assert workspace.parse_actors("") is None and workspace.parse_actors(None) is None
    assert workspace.parse_actors("1-3, 7 9") == [1, 2, 3, 7, 9]
    assert workspace.parse_actors("2,2") == [2]
    for bad in ("a", "3-1", "1-"):
        with pytest.raises(DataError):
            workspace.parse_actors(bad)
    assert workspace.parse_actors("24, 1") == [1, 24]
    for bad, named in (("1-1000000000", "1000000000"), ("0-3", "0"), ("25", "25"), ("7, 99999999999999999999", "9999")):
        with pytest.raises(DataError, match=f"^actor {named}.*: RAVDESS has actors 1-24\\.$"):
            workspace.parse_actors(bad)  # the range was expanded whole (95 GB for this one) before any check


def test_resolve_path(tmp_path):
    assert workspace.resolve_path("x/y", base=tmp_path) == tmp_path / "x" / "y"
    assert workspace.resolve_path(f' "{tmp_path}" ') == tmp_path
    assert workspace.resolve_path("~/a").is_absolute()
    with pytest.raises(DataError):
        workspace.resolve_path("  ")


def test_load_dataset_kinds_and_errors(tmp_path):
    demo = workspace.load_dataset("demo")
    assert demo.synthetic and len(demo) > 0
    with pytest.raises(DataError, match="unknown dataset kind"):
        workspace.load_dataset("nope")
    with pytest.raises(DataError, match="does not exist"):
        workspace.load_dataset("ravdess", tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        workspace.load_dataset("ravdess", tmp_path / "file.txt")
    with pytest.raises(DataError, match="is a folder"):
        workspace.load_dataset("misa", tmp_path)
    misa = workspace.load_dataset("misa", _misa_pickle(tmp_path / "dev.pkl"))
    assert len(misa) == 8


def test_csd_paths_are_checked(tmp_path):
    with pytest.raises(DataError, match="missing path"):
        workspace.load_csd_files({"face": "a.csd"})
    with pytest.raises(DataError, match="not a file"):
        workspace.load_csd_files({"face": "a.csd", "voice": "b.csd", "labels": "c.csd"}, base=tmp_path)


def test_uploads_are_read_from_memory_and_never_written_to_disk(tmp_path, monkeypatch):
    content = _misa_pickle(tmp_path / "dev.pkl").read_bytes()

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was written to disk")

    for name in ("TemporaryDirectory", "mkdtemp", "mkstemp", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_disk)
    monkeypatch.setattr(Path, "write_bytes", no_disk)
    data = workspace.load_uploaded("misa", {"pickle": ("../../evil name.pkl", content)})
    assert len(data) == 8 and data.name == "evil name"
    with pytest.raises(DataError, match="x.pkl"):  # a broken upload is one line naming it
        workspace.load_uploaded("misa", {"pickle": ("x.pkl", b"not a pickle")})


def test_csd_uploads_are_read_from_memory(tmp_path, monkeypatch):
    from crossemo_core.data.loaders import load_csd, write_csd

    rng = np.random.default_rng(0)
    paths = {}
    intervals = np.stack([np.arange(4.0), np.arange(1.0, 5.0)], 1)
    for role, dim in (("face", 3), ("voice", 4), ("labels", 1)):
        paths[role] = tmp_path / f"{role}.csd"
        write_csd(paths[role], role, {f"v{k}": (rng.normal(size=(4, dim)), intervals) for k in range(4)})
    expected = load_csd(paths["face"], paths["voice"], paths["labels"])
    files = {role: (p.name, p.read_bytes()) for role, p in paths.items()}
    monkeypatch.setattr(tempfile, "TemporaryDirectory", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
    got = workspace.load_uploaded("csd", files)
    assert len(got) == len(expected) and list(got.clip_id) == list(expected.clip_id)
    for a, b in zip(got.voice, expected.voice):
        np.testing.assert_array_equal(a, b)


def test_csd_upload_errors_name_the_file_not_its_bytes(tmp_path):
    from crossemo_core.data.loaders import write_csd

    rng = np.random.default_rng(0)
    intervals = np.stack([np.arange(4.0), np.arange(1.0, 5.0)], 1)
    labels = {f"v{k}": (rng.normal(size=(4, 1)), intervals) for k in range(4)}
    labels["v0"][0][0, 0] = np.nan
    cases = {"NaN or inf": labels, "0 columns": {f"v{k}": (np.zeros((4, 0)), intervals) for k in range(4)}}
    for problem, table in cases.items():
        for role, dim in (("face", 3), ("voice", 4)):
            write_csd(tmp_path / f"{role}.csd", role, {f"v{k}": (rng.normal(size=(4, dim)), intervals)
                                                       for k in range(4)})
        write_csd(tmp_path / "labels.csd", "labels", table)
        files = {role: (f"{role}.csd", (tmp_path / f"{role}.csd").read_bytes()) for role in ("face", "voice", "labels")}
        with pytest.raises(DataError, match=problem) as caught:
            workspace.load_uploaded("csd", files)
        message = str(caught.value)
        assert len(message) < 300 and "NamedBytes" not in message and ".csd" in message, message[:300]


def test_upload_limits_and_roles():
    with pytest.raises(DataError, match="limit"):
        workspace.load_uploaded("misa", {"pickle": ("x.pkl", b"0" * 100)}, max_bytes=10)
    with pytest.raises(DataError, match="missing upload"):
        workspace.load_uploaded("csd", {"face": ("f.csd", b"")})
    with pytest.raises(DataError, match="cannot be uploaded"):
        workspace.load_uploaded("ravdess", {})


def test_evaluation_parts_reuse_the_checkpoint_split(corpus, trained):
    detector, parts = trained
    ep = workspace.evaluation_parts(corpus, detector, seed=99, rate=0.3)
    assert ep.from_checkpoint and ep.seed == 4 and ep.rate == 0.5
    for name in ("train", "valid", "test"):
        assert set(ep.parts[name].speaker) == set(parts[name].speaker)
        np.testing.assert_array_equal(ep.parts[name].voice_clip_id, parts[name].voice_clip_id)
    fresh = workspace.evaluation_parts(corpus, None, seed=99, rate=0.3)
    assert not fresh.from_checkpoint and fresh.seed == 99 and fresh.parts["train"].protocol["rate"] == 0.3
    other = make_synthetic(n_speakers=5, clips_per_speaker=8, face_dim=5, voice_dim=7, face_length=(2, 3),
                           voice_length=(2, 3), seed=9, name="other (synthetic)")
    unknown = workspace.evaluation_parts(other, detector, seed=1, rate=0.5)
    assert not unknown.from_checkpoint and "optimistic" in unknown.note


def test_initial_detector_has_the_runs_initial_weights(corpus, monkeypatch):
    import crossemo_core.training as training

    parts = split_pairs(corpus, seed=0, rate=0.5)
    captured = {}
    real = training.SIRHCL

    def spy(config):
        model = real(config)
        captured["state"] = {k: v.clone() for k, v in model.state_dict().items()}
        return model

    monkeypatch.setattr(training, "SIRHCL", spy)
    detector = Trainer(_config(corpus, seed=11)).fit(parts["train"], parts["valid"]).detector
    rng_before = torch.random.get_rng_state()
    before = workspace.initial_detector(detector, parts["train"], parts["valid"])
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the global RNG is left alone
    for key, value in before.model.state_dict().items():
        assert torch.equal(value, captured["state"][key]), key
    assert before.mixture is not None and before.threshold == 0.5
    assert workspace.initial_detector(detector).mixture is None
    assert not np.allclose(before.similarity(parts["test"]), detector.similarity(parts["test"]))


def test_checkpoint_bytes_round_trip(trained):
    detector, parts = trained
    blob = workspace.checkpoint_bytes(detector)
    again = workspace.detector_from_bytes(blob)
    np.testing.assert_allclose(again.similarity(parts["test"]), detector.similarity(parts["test"]), atol=1e-6)
    with pytest.raises(CheckpointError, match="limit"):
        workspace.detector_from_bytes(blob, max_bytes=10)
    with pytest.raises(CheckpointError) as err:
        workspace.detector_from_bytes(b"garbage", name="mine.pt")
    said = str(err.value)
    assert said.startswith("mine.pt is not a readable crossemo checkpoint") and "upload.pt" not in said, said
