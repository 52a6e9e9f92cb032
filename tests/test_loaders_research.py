"""Research-corpus loaders: safe pickles, MISA/MMIM pickles, MMSA pickles and CMU-MultimodalSDK .csd files.

Small files are built in each test from the documented formats; tests on the real files under ``shared/data`` skip
when that folder is absent (override its location with CROSSEMO_SHARED_DATA).
"""
from __future__ import annotations

import collections
import functools
import os
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from crossemo_core.data.loaders import load_csd, load_misa, load_mmsa, load_mmsa_splits, read_csd, write_csd
from crossemo_core.data.loaders.csd import read_csd_metadata
from crossemo_core.data.safe_pickle import load_pickle
from crossemo_core.errors import DataError, UnsafePickleError

SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")
MOSI_DEV = SHARED / "mosi" / "dev.pkl"
MOSI_LABELS = SHARED / "mosi" / "CMU_MOSI_Opinion_Labels.csd"
needs_dev = pytest.mark.skipif(not MOSI_DEV.is_file(), reason=f"{MOSI_DEV} not available")
needs_labels = pytest.mark.skipif(not MOSI_LABELS.is_file(), reason=f"{MOSI_LABELS} not available")


def _dump(path: Path, obj: object, protocol: int = 3) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


# ================================================================================================ safe pickle
class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.system, (f"echo pwned > '{self.target}'",)


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    bad = _dump(tmp_path / "evil.pkl", [np.zeros(3), _Evil(target)])
    with pytest.raises(UnsafePickleError, match=r"(os|posix)\.system.*malicious.*not loaded"):
        load_pickle(bad)
    assert not target.exists()
    with pytest.raises(UnsafePickleError, match=r"(os|posix)\.system"):  # also through a loader
        load_misa(bad)
    assert not target.exists()


@pytest.mark.parametrize("payload, refused", [
    (b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),
    (b"cbuiltins\nexec\n(S'x=1'\ntR.", "builtins.exec"),
    (b"c__builtin__\ngetattr\n.", "__builtin__.getattr"),
    (b"cbuiltins\n__import__\n(S'os'\ntR.", "builtins.__import__"),
    (b"csubprocess\nPopen\n.", "subprocess.Popen"),
    (b"ctorch._utils\n_rebuild_tensor_v2\n.", "torch._utils._rebuild_tensor_v2"),
    (pickle.dumps(functools.partial(int, "7")), "functools.partial"),
])
def test_non_data_globals_are_refused(payload: bytes, refused: str) -> None:
    with pytest.raises(UnsafePickleError, match=refused.replace(".", r"\.")):
        load_pickle(payload)


def test_persistent_id_is_refused() -> None:
    import io

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ref" if obj == "x" else None

    buf = io.BytesIO()
    P(buf).dump(["x"])
    with pytest.raises(UnsafePickleError, match="persistent id"):
        load_pickle(buf.getvalue())


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_data_round_trips(tmp_path: Path, protocol: int) -> None:
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.float64(1.5), np.int64(3), "w", b"xy"],
           "c": (np.array(["u", "v"], dtype=object), np.array([True, False]), np.zeros((0, 4))),
           "d": collections.OrderedDict(k=1), "e": {1, 2}, "f": frozenset([3]), "g": 1 + 2j, "h": slice(1, 5),
           "i": np.arange(12.0).reshape(3, 4).T, "j": bytearray(b"ab")}
    back = load_pickle(_dump(tmp_path / "ok.pkl", obj, protocol))
    assert back.keys() == obj.keys()
    np.testing.assert_array_equal(back["a"], obj["a"])
    np.testing.assert_array_equal(back["i"], obj["i"])
    assert back["b"] == obj["b"] and back["e"] == {1, 2} and back["g"] == 1 + 2j and back["h"] == slice(1, 5)
    assert list(back["c"][0]) == ["u", "v"] and back["c"][2].shape == (0, 4)


def test_truncated_empty_missing_and_oversized_pickles(tmp_path: Path) -> None:
    data = pickle.dumps([np.zeros((5, 3))] * 3, protocol=3)
    trunc = tmp_path / "trunc.pkl"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_pickle(trunc)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle at all")
    with pytest.raises(DataError, match="not a readable pickle"):
        load_pickle(garbage)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_pickle(empty)
    with pytest.raises(DataError, match="not found"):
        load_pickle(tmp_path / "nope.pkl")
    with pytest.raises(DataError, match="is a folder; expected a pickle file"):
        load_pickle(tmp_path)
    os.mkfifo(tmp_path / "pipe.pkl")
    with pytest.raises(DataError, match=r"not a regular file \(a device or a pipe\)"):
        load_pickle(tmp_path / "pipe.pkl")
    import gzip

    for content, what in ((gzip.compress(data), "a gzip-compressed file (unpack it first)"),
                          (b"\x89PNG\r\n\x1a\n" + bytes(20), "a PNG image"),
                          (b"\xff\xd8\xff\xe0" + bytes(20), "a JPEG image")):
        with pytest.raises(DataError, match=re.escape(f"this is {what}, not a pickle.")):
            load_pickle(content)  # a PNG was called possibly malicious (its bytes read as a persistent id)
    ok = _dump(tmp_path / "ok.pkl", [1, 2, 3])
    with pytest.raises(DataError, match=r"more than the limit of 10 bytes.*max_bytes"):
        load_pickle(ok, max_bytes=10)
    assert load_pickle(ok) == [1, 2, 3]


# ================================================================================================ MISA
def _misa_records(n: int = 6, dv: int = 5, da: int = 7, seed: int = 0, extra: int = 0) -> list:
    rng = np.random.default_rng(seed)
    scores = [-2.0, 0.0, 1.4, -0.2, 2.6, 0.0][:n] + [0.5] * max(0, n - 6)
    recs = []
    for i in range(n):
        lv, la = 3 + i, 4 + i  # visual and acoustic lengths may differ
        inner = (np.arange(lv), rng.normal(size=(lv, dv)).astype(np.float32),
                 rng.normal(size=(la, da)).astype(np.float32), ["w"] * lv) + tuple(np.arange(2) for _ in range(extra))
        recs.append((inner, np.array([[scores[i]]], dtype=np.float32), f"vid{i // 2}[{i % 2}]"))
    return recs


def test_misa_loads_small_file(tmp_path: Path) -> None:
    report: list[str] = []
    ds = load_misa(_dump(tmp_path / "dev.pkl", _misa_records()), report=report)
    assert len(ds) == 6 and report == []
    assert ds.face_dim == 5 and ds.voice_dim == 7
    assert ds.face_feature_names[:2] == ("facet_00", "facet_01") and ds.voice_feature_names[-1] == "covarep_06"
    assert list(ds.face_label) == [0, 1, 2, 0, 2, 1] and (ds.face_label == ds.voice_label).all()
    assert list(ds.speaker) == ["vid0", "vid0", "vid1", "vid1", "vid2", "vid2"]
    assert list(ds.clip_id[:2]) == ["vid0[0]", "vid0[1]"]
    assert list(ds.face_lengths) == [3, 4, 5, 6, 7, 8] and list(ds.voice_lengths) == [4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(ds.sentiment, [-2.0, 0.0, 1.4, -0.2, 2.6, 0.0], atol=1e-6)
    assert ds.face[0].dtype == np.float32 and not ds.synthetic


def test_misa_mmim_variant_tuple_segment_and_neutral_band(tmp_path: Path) -> None:
    recs = _misa_records(extra=2)
    recs[0] = (recs[0][0], recs[0][1], ("vidX", 4))
    ds = load_misa(_dump(tmp_path / "mmim.pkl", recs), neutral_band=(-0.5, 0.5), name="mmim")
    assert ds.name == "mmim" and ds.clip_id[0] == "vidX[4]" and ds.speaker[0] == "vidX"
    assert list(ds.face_label) == [0, 1, 2, 1, 2, 1]  # -0.2 falls in the neutral band


def test_misa_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a list of segments.*found dict"):
        load_misa(_dump(tmp_path / "a.pkl", {"train": []}))
    recs = _misa_records()
    recs[1] = recs[1][:2]
    with pytest.raises(DataError, match=r"segment 1: expected a tuple \(features, label, segment_id\), found "
                                        r"tuple of length 2"):
        load_misa(_dump(tmp_path / "b.pkl", recs))
    recs = _misa_records()
    recs[2] = (recs[2][0][:3], recs[2][1], recs[2][2])
    with pytest.raises(DataError, match=r"segment 2: index 0 should be a tuple .* found tuple of length 3"):
        load_misa(_dump(tmp_path / "c.pkl", recs))
    recs = _misa_records()
    recs[3] = ((recs[3][0][0], np.zeros(4), recs[3][0][2], []), recs[3][1], recs[3][2])
    with pytest.raises(DataError, match=r"segment 3: index 0\[1\] \(visual\) has shape \(4,\)"):
        load_misa(_dump(tmp_path / "d.pkl", recs))
    recs = _misa_records()
    recs[1] = (recs[1][0], np.array([1.0, 2.0]), recs[1][2])
    with pytest.raises(DataError, match=r"segment 1: index 1 \(label\) should hold one sentiment score"):
        load_misa(_dump(tmp_path / "e.pkl", recs))
    recs = _misa_records()
    recs[1] = (recs[1][0], recs[1][1], 17)
    with pytest.raises(DataError, match=r"segment 1: index 2 \(segment id\).*found int"):
        load_misa(_dump(tmp_path / "f.pkl", recs))


def test_misa_inconsistent_dims(tmp_path: Path) -> None:
    recs = _misa_records() + _misa_records(n=1, da=8)
    with pytest.raises(DataError, match=r"segment 6: feature dimensions visual 5 / acoustic 8 differ from "
                                        r"segment 0's 5 / 7"):
        load_misa(_dump(tmp_path / "dims.pkl", recs))


def test_misa_empty_sequences_dropped_or_refused(tmp_path: Path) -> None:
    recs = _misa_records()
    inner = recs[4][0]
    recs[4] = ((inner[0], inner[1][:0], inner[2], inner[3]), recs[4][1], recs[4][2])
    path = _dump(tmp_path / "empty.pkl", recs)
    report: list[str] = []
    ds = load_misa(path, report=report)
    assert len(ds) == 5 and "vid2[0]" not in set(ds.clip_id)
    assert report == ["1 of 6 segment(s) have an empty face or voice sequence (first: vid2[0]); dropped"]
    with pytest.raises(DataError, match=r"1 of 6 segment\(s\) have an empty.*empty='drop'"):
        load_misa(path, empty="refuse")


def test_misa_nonfinite_repaired_and_counted_or_refused(tmp_path: Path) -> None:
    recs = _misa_records()
    recs[2][0][2][0, :2] = np.nan
    recs[2][0][2][1, 0] = np.inf
    recs[3][0][1][0, 0] = -np.inf
    path = _dump(tmp_path / "nan.pkl", recs)
    report: list[str] = []
    ds = load_misa(path, report=report)
    assert report == ["face: 1 NaN/inf value(s) in 1 sequence(s) repaired",
                      "voice: 3 NaN/inf value(s) in 1 sequence(s) repaired"]
    assert all(np.isfinite(s).all() for s in ds.face + ds.voice)
    assert ds.voice[2][0, 0] == 0.0 and ds.voice[2][1, 0] == 1e6
    with pytest.raises(DataError, match=r"face: 1 NaN/inf value\(s\) in 1 sequence\(s\).*nonfinite='repair'"):
        load_misa(path, nonfinite="refuse")


def test_a_benchmark_report_says_which_features_were_repaired(tmp_path: Path) -> None:
    """The benchmark loads with the default repair; the loader's note went nowhere, so a table could rest on
    repaired features without a word."""
    from crossemo_core.benchmark.protocols import DataSpec, describe_data
    from crossemo_core.benchmark.runner import _header
    from crossemo_core.benchmark.suites import Profile

    recs = _misa_records()
    recs[2][0][2][0, :2] = np.nan
    data = DataSpec("misa", str(_dump(tmp_path / "nan.pkl", recs)))
    described = describe_data(data)
    assert described["repaired"] == ["voice: 2 NaN/inf value(s) in 1 sequence(s) repaired"]
    header = _header("paper", Profile.resolve("misa", data.root), described, None, 1, 1, 1, 1.0, 1, 1)
    assert "- **repaired features** (every method saw them as repaired: NaN -> 0, inf -> +-1e6): voice: 2 NaN/inf " \
           "value(s) in 1 sequence(s) repaired." in header.splitlines()
    assert describe_data(DataSpec("misa", str(_dump(tmp_path / "clean.pkl", _misa_records()))))["repaired"] == []


def test_misa_features_that_are_complex_numbers_are_refused(tmp_path: Path) -> None:
    recs = _misa_records()
    recs[1] = ((recs[1][0][0], recs[1][0][1] * (1 + 1j), *recs[1][0][2:]), *recs[1][1:])
    with pytest.raises(DataError, match=r"segment 1: index 0\[1\] \(visual\) holds complex numbers; features are "
                                        r"real numbers\.$"):
        load_misa(_dump(tmp_path / "complex.pkl", recs))


@pytest.mark.parametrize("policy", ["repair", "refuse"])
def test_a_modality_that_is_nan_everywhere_is_refused_not_repaired_into_zeros(tmp_path: Path, policy: str) -> None:
    recs = _misa_records()
    for rec in recs:
        rec[0][1][:] = np.nan
    with pytest.raises(DataError, match=r"^face: every one of its \d+ feature values is NaN or inf in .*nothing to "
                                        r"repair: those features are missing\.$"):
        load_misa(_dump(tmp_path / "all_nan.pkl", recs), nonfinite=policy)


# ================================================================================================ MMSA
def _mmsa_split(n: int, prefix: str, lv: int = 6, la: int = 9, lengths: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    split = {
        "vision": rng.normal(size=(n, lv, 4)).astype(np.float32),
        "audio": rng.normal(size=(n, la, 3)).astype(np.float32),
        "id": np.array([f"{prefix}{i // 2}$_${i % 2 + 1}" for i in range(n)], dtype=object),
        "regression_labels": np.linspace(-2, 2, n).astype(np.float32),
        "text": np.zeros((n, lv, 8), dtype=np.float32),
        "classification_labels": np.zeros(n),
    }
    if lengths:
        split["vision_lengths"] = [lv - i % 3 for i in range(n)]
        split["audio_lengths"] = np.array([la - i % 2 for i in range(n)])
    return split


def _mmsa(**kw) -> dict:
    return {"train": _mmsa_split(6, "tr", **kw), "valid": _mmsa_split(3, "va", **kw),
            "test": _mmsa_split(4, "te", **kw)}


def test_mmsa_all_splits_and_official_folds(tmp_path: Path) -> None:
    path = _dump(tmp_path / "unaligned_50.pkl", _mmsa())
    report: list[str] = []
    ds = load_mmsa(path, report=report)
    assert len(ds) == 13 and report == [] and ds.face_dim == 4 and ds.voice_dim == 3
    assert ds.face_feature_names[0] == "vision_00" and ds.voice_feature_names[-1] == "audio_02"
    assert ds.clip_id[0] == "tr0$_$1" and ds.speaker[0] == "tr0" and ds.speaker[-1] == "te1"
    assert list(ds.face_lengths[:3]) == [6, 5, 4] and list(ds.voice_lengths[:3]) == [9, 8, 9]
    splits = load_mmsa_splits(path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "valid": 3, "test": 4}
    assert splits["valid"].name.endswith("valid") and set(splits["valid"].speaker) == {"va0", "va1"}
    valid = load_mmsa(path, split="valid")
    np.testing.assert_array_equal(valid.face[1], splits["valid"].face[1])
    assert list(valid.face_label) == [0, 1, 2]
    with pytest.raises(DataError, match="unknown MMSA split 'dev'"):
        load_mmsa(path, split="dev")
    # the official folds survive concatenation and are what training uses
    from crossemo_core.experiment import official_folds

    folds = official_folds(ds)
    assert {k: len(v) for k, v in folds.items()} == {"train": 6, "valid": 3, "test": 4}
    assert set(ds.speaker[folds["valid"]]) == {"va0", "va1"}


def test_mmsa_without_lengths_uses_full_length(tmp_path: Path) -> None:
    ds = load_mmsa(_dump(tmp_path / "aligned_50.pkl", _mmsa(lengths=False, lv=5, la=5)), split="train")
    assert set(ds.face_lengths) == {5} and set(ds.voice_lengths) == {5}


def test_mmsa_validation_errors(tmp_path: Path) -> None:
    data = _mmsa()
    del data["test"]
    with pytest.raises(DataError, match=r"missing split key\(s\) 'test'"):
        load_mmsa(_dump(tmp_path / "a.pkl", data))
    data = _mmsa()
    del data["valid"]["regression_labels"], data["valid"]["id"]
    with pytest.raises(DataError, match=r"\[valid\]: missing key\(s\) 'id', 'regression_labels'"):
        load_mmsa(_dump(tmp_path / "b.pkl", data))
    data = _mmsa()
    data["train"]["vision"] = data["train"]["vision"][:, :, 0]
    with pytest.raises(DataError, match=r"'vision' must be an array of real numbers \[N, length, features\]; found "
                                        r"shape \(6, 6\)"):
        load_mmsa(_dump(tmp_path / "c.pkl", data))
    data = _mmsa()
    data["test"]["regression_labels"] = data["test"]["regression_labels"][:3]
    with pytest.raises(DataError, match=r"disagree on the number of samples N:.*'regression_labels': 3"):
        load_mmsa(_dump(tmp_path / "d.pkl", data))
    data = _mmsa()
    data["train"]["audio_lengths"] = np.array([9, 9, 10, 9, 9, 9])
    with pytest.raises(DataError, match=r"'audio_lengths' has 1 value\(s\) outside \[0, 9\].*first 10 at sample 2"):
        load_mmsa(_dump(tmp_path / "e.pkl", data))
    with pytest.raises(DataError, match="expected a dict with keys train, valid, test"):
        load_mmsa(_dump(tmp_path / "f.pkl", [1, 2]))
    data = _mmsa()
    data["valid"]["audio"] = data["valid"]["audio"] * (1 + 1j)  # float32 dropped the imaginary part, with a warning
    with pytest.raises(DataError, match=r"\[valid\]: 'audio' must be an array of real numbers.*dtype complex64"):
        load_mmsa(_dump(tmp_path / "g.pkl", data))


def test_mmsa_zero_lengths_and_nonfinite_reported_per_split(tmp_path: Path) -> None:
    data = _mmsa()
    data["valid"]["vision_lengths"] = [6, 0, 4]
    data["test"]["audio"][0, 0, :] = -np.inf  # COVAREP in MOSEI really has -inf
    report: list[str] = []
    ds = load_mmsa(_dump(tmp_path / "z.pkl", data), report=report)
    assert len(ds) == 12
    assert report == ["valid: 1 of 3 segment(s) have an empty face or voice sequence (first: va0$_$2); dropped",
                      "test: voice: 3 NaN/inf value(s) in 1 sequence(s) repaired"]
    with pytest.raises(DataError, match="empty='drop'"):
        load_mmsa(tmp_path / "z.pkl", empty="refuse")


# ================================================================================================ CSD
def _grid(t0: float, t1: float, step: float) -> np.ndarray:
    starts = np.arange(t0, t1, step)
    return np.stack([starts, starts + step], axis=1)


def _labels_csd(path: Path) -> Path:
    write_csd(path, "Opinion Segment Labels", {
        "vidA": (np.array([[1.5], [-2.0], [0.0]]), np.array([[0.0, 1.0], [1.0, 2.5], [2.0, 2.0]])),
        "vidB": (np.array([[0.4], [-0.4]]), np.array([[0.5, 1.0], [50.0, 60.0]])),
        "vidC": (np.array([[3.0]]), np.array([[0.0, 1.0]])),
    }, dimension_names=["sentiment score"], metadata={"dataset name": "TOY"})
    return path


def _features(videos: dict[str, float], step: float, dim: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for vid, end in videos.items():
        iv = _grid(0.0, end, step)
        out[vid] = (rng.normal(size=(len(iv), dim)).astype(np.float32), iv)
    return out


def test_write_and_read_csd_round_trip(tmp_path: Path) -> None:
    data = _features({"v1": 2.0, "v2": 1.0}, 0.5, 3, 0)
    write_csd(tmp_path / "f.csd", "Facet", data, dimension_names=["a", "b", "c"])
    back = read_csd(tmp_path / "f.csd")
    assert set(back) == {"v1", "v2"}
    np.testing.assert_array_equal(back["v1"][0], data["v1"][0])
    np.testing.assert_array_equal(back["v2"][1], data["v2"][1])
    meta = read_csd_metadata(tmp_path / "f.csd")
    assert meta["dimension names"] == ["a", "b", "c"] and meta["root name"] == "Facet"
    assert set(read_csd(tmp_path / "f.csd", videos=["v2", "zzz"])) == {"v2"}


def test_load_csd_pairs_overlapping_frames(tmp_path: Path) -> None:
    labels = _labels_csd(tmp_path / "labels.csd")
    write_csd(tmp_path / "face.csd", "Facet", _features({"vidA": 3.0, "vidB": 2.0, "vidC": 1.0}, 0.5, 4, 1),
              dimension_names=["au1", "au2", "au3", "au4"])
    write_csd(tmp_path / "voice.csd", "COVAREP", _features({"vidA": 3.0, "vidB": 2.0}, 0.25, 2, 2))
    report: list[str] = []
    ds = load_csd(tmp_path / "face.csd", tmp_path / "voice.csd", labels, report=report)
    assert report == ["2 of 6 labelled segment(s) skipped (no overlapping face frame: 1, video not in the voice "
                      "file: 1)"]
    assert ds.name == "TOY" and ds.extractor == {"face": "csd:Facet", "voice": "csd:COVAREP"}
    assert list(ds.clip_id) == ["vidA[0]", "vidA[1]", "vidA[2]", "vidB[0]"]
    assert list(ds.speaker) == ["vidA", "vidA", "vidA", "vidB"]
    assert list(ds.face_label) == [2, 0, 1, 2]
    assert ds.face_feature_names == ("au1", "au2", "au3", "au4") and ds.voice_feature_names == ("voice_0",
                                                                                                 "voice_1")
    # [0, 1] overlaps face frames [0,.5], [.5,1]; [1, 2.5] overlaps 3 face frames; zero-length [2, 2] touches 2.
    assert list(ds.face_lengths) == [2, 3, 2, 1] and list(ds.voice_lengths) == [4, 6, 2, 2]
    face = read_csd(tmp_path / "face.csd")
    np.testing.assert_array_equal(ds.face[1], face["vidA"][0][2:5])


def test_csd_bad_inputs(tmp_path: Path) -> None:
    labels = _labels_csd(tmp_path / "labels.csd")
    text = tmp_path / "face.csd"
    text.write_text("video,feature\n")
    with pytest.raises(DataError, match="not an HDF5 file"):
        load_csd(text, labels, labels)
    with pytest.raises(DataError, match="file not found"):
        read_csd(tmp_path / "missing.csd")
    with h5py.File(tmp_path / "nodata.csd", "w") as fh:
        fh.create_group("Facet").create_group("metadata")
    with pytest.raises(DataError, match="root group 'Facet' has no 'data' group"):
        load_csd(tmp_path / "nodata.csd", labels, labels)
    with h5py.File(tmp_path / "nofeat.csd", "w") as fh:
        fh.create_group("Facet/data/vidA").create_dataset("intervals", data=np.zeros((2, 2)))
    with pytest.raises(DataError, match="video 'vidA' lacks features"):
        read_csd(tmp_path / "nofeat.csd")
    with h5py.File(tmp_path / "dims.csd", "w") as fh:
        for vid, d in (("vidA", 3), ("vidB", 4)):
            g = fh.create_group(f"Facet/data/{vid}")
            g.create_dataset("features", data=np.zeros((2, d)))
            g.create_dataset("intervals", data=_grid(0, 2, 1))
    with pytest.raises(DataError, match="video 'vidB': 4 feature columns but video 'vidA' has 3"):
        read_csd(tmp_path / "dims.csd")
    write_csd(tmp_path / "other.csd", "Facet", _features({"zzz": 2.0}, 0.5, 2, 0))
    with pytest.raises(DataError, match="none of the 3 labelled videos is in this face file"):
        load_csd(tmp_path / "other.csd", tmp_path / "other.csd", labels)
    voice = tmp_path / "voice.csd"
    write_csd(voice, "COVAREP", _features({"vidA": 3.0, "vidB": 2.0}, 0.25, 2, 2))
    copy = tmp_path / "labels_copy.csd"
    copy.write_bytes(labels.read_bytes())
    for face in (labels, copy):  # the sentiment itself as "features": any model would look perfect
        with pytest.raises(DataError, match=rf"{face.name}: this face file holds the labels of .*labels\.csd, not "
                                            r"face features"):
            load_csd(face, voice, labels)
    all_labels = {v: (np.hstack([f[:, :1], np.full((len(f), 2), 0.5)]), iv) for v, (f, iv) in read_csd(labels).items()}
    write_csd(tmp_path / "all_labels.csd", "All Labels", all_labels)  # sentiment beside emotion columns
    with pytest.raises(DataError, match="all_labels.csd: this voice file holds the labels of"):
        load_csd(voice, tmp_path / "all_labels.csd", labels)
    write_csd(tmp_path / "zero.csd", "Facet", {v: (np.zeros((len(iv), 0)), iv) for v, (_, iv) in
                                                read_csd(voice).items()})
    with pytest.raises(DataError, match="the face features have no columns"):
        load_csd(tmp_path / "zero.csd", voice, labels)


@pytest.mark.parametrize("fault, said", [
    ("a link to nowhere", "its features are a link (SoftLink) instead of data stored in the file"),
    ("a link to another file", "its features are a link (ExternalLink) instead of data stored in the file"),
    ("records, not numbers", "its features are of type [('a', '<f4'), ('b', '<i4')]; expected an array of numbers"),
    ("a 400 GB array in a small file", "its features declare (1000000, 100000) values (400 GB), more than the 2 GB"),
    ("an array without a shape", "its features are empty; expected an array of numbers"),
    ("a video that is a link", "is a link instead of data stored in the file"),
])
def test_csd_features_that_are_not_numbers_stored_in_the_file(tmp_path: Path, fault: str, said: str) -> None:
    labels = _labels_csd(tmp_path / "labels.csd")
    face = tmp_path / "face.csd"
    write_csd(face, "Facet", _features({"vidA": 2.0}, 0.5, 2, 0))
    with h5py.File(face, "r+") as fh:
        video = fh["Facet/data/vidA"]
        del video["features"]
        if fault == "a link to nowhere":
            video["features"] = h5py.SoftLink("/nowhere")
        elif fault == "a link to another file":
            video["features"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/x")
        elif fault == "records, not numbers":
            video.create_dataset("features", data=np.zeros((4, 2), dtype=[("a", "f4"), ("b", "i4")]))
        elif fault == "an array without a shape":
            video.create_dataset("features", data=h5py.Empty("f4"))
        elif fault == "a video that is a link":
            del fh["Facet/data/vidA"]
            fh["Facet/data/vidA"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/vidA")
        else:
            video.create_dataset("features", shape=(10**6, 10**5), dtype="f4", chunks=(1000, 1000),
                                 compression="gzip")
    with pytest.raises(DataError) as err:
        load_csd(face, labels, labels)
    sep = " " if fault == "a video that is a link" else ": "
    assert f"face.csd: video 'vidA'{sep}{said}" in str(err.value), str(err.value)


def test_csd_metadata_that_is_a_link_or_too_large_is_left_out(tmp_path: Path) -> None:
    face = tmp_path / "face.csd"
    write_csd(face, "Facet", _features({"vidA": 2.0}, 0.5, 2, 0))
    with h5py.File(face, "r+") as fh:
        meta = fh["Facet"].require_group("metadata")
        meta["elsewhere"] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/x")
        meta.create_dataset("huge", shape=(10**5, 10**5), dtype="f4", chunks=(1000, 1000), compression="gzip")
        meta.create_dataset("kept", data="a description")
    found = read_csd_metadata(face)
    assert found["kept"] == "a description" and "elsewhere" not in found and "huge" not in found


# ================================================================================================ real files
@needs_dev
def test_real_mosi_dev_pickle() -> None:
    report: list[str] = []
    ds = load_misa(MOSI_DEV, report=report)
    assert len(ds) == 229 and ds.face_dim == 47 and ds.voice_dim == 74 and report == []
    assert np.bincount(ds.face_label, minlength=3).tolist() == [92, 13, 124]
    video_ids = {c.rsplit("[", 1)[0] for c in ds.clip_id}
    assert len(np.unique(ds.speaker)) == len(video_ids) == 10
    assert ds.face_lengths.min() >= 2 and ds.face_lengths.max() <= 44


@needs_labels
def test_real_mosi_labels_csd(tmp_path: Path) -> None:
    labels = read_csd(MOSI_LABELS)
    assert len(labels) == 93 and sum(len(f) for f, _ in labels.values()) == 2199
    assert read_csd_metadata(MOSI_LABELS)["dimension names"] == ["sentiment score"]
    ends = {vid: float(iv[:, 1].max()) + 1.0 for vid, (_, iv) in labels.items()}
    write_csd(tmp_path / "face.csd", "Facet", _features(ends, 0.5, 3, 0))
    dropped = sorted(labels)[:2]
    write_csd(tmp_path / "voice.csd", "COVAREP",
              _features({v: e for v, e in ends.items() if v not in dropped}, 0.25, 2, 1))
    report: list[str] = []
    ds = load_csd(tmp_path / "face.csd", tmp_path / "voice.csd", MOSI_LABELS, report=report)
    n_dropped = sum(len(labels[v][0]) for v in dropped)
    assert len(ds) == 2199 - n_dropped and len(np.unique(ds.speaker)) == 91
    assert report == [f"{n_dropped} of 2199 labelled segment(s) skipped (video not in the voice file: "
                      f"{n_dropped})"]
    assert ds.name == "CMU-MOSI" and ds.face_feature_names == ("face_0", "face_1", "face_2")
    full = load_csd(tmp_path / "face.csd", tmp_path / "face.csd", MOSI_LABELS)
    assert np.bincount(full.face_label, minlength=3).tolist() == [1023, 96, 1080]


@needs_dev
@needs_labels
def test_real_dev_clip_ids_match_csd_rows(tmp_path: Path) -> None:
    """``videoid[k]`` in the MISA pickle is row k of the labels file: the sentiments agree."""
    dev = load_misa(MOSI_DEV)
    labels = read_csd(MOSI_LABELS)
    for clip, score in zip(dev.clip_id, dev.sentiment):
        vid, k = clip[:-1].rsplit("[", 1)
        assert labels[vid][0][int(k), 0] == pytest.approx(score, abs=1e-5)
