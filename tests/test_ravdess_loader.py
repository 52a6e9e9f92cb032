"""RAVDESS loader on a tiny synthetic folder in the documented layout (made-up AU numbers, synthesised audio), plus
real-data checks that skip when ``shared/data`` is absent (override its location with CROSSEMO_SHARED_DATA).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from ravdess_layout import AU_C, AU_R, META, SR, TAKES

import crossemo_core.features.voice as voice_module
from crossemo_core.data.loaders import load_ravdess
from crossemo_core.errors import DataError

SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")
RAVDESS = SHARED / "ravdess"
needs_ravdess = pytest.mark.skipif(not (RAVDESS / "face_au.csv").is_file(), reason=f"{RAVDESS} not available")

AU = AU_R + AU_C


def _signal(seed: int, seconds: float = 0.4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (120 + 40 * seed) * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def make_corpus(root: Path, actors: tuple[int, ...] = (1, 2)) -> Path:
    """A RAVDESS-layout folder: face_au.csv + audio/Actor_XX/03-...; actor 1 as .flac, others as .wav."""
    rows = []
    rng = np.random.default_rng(7)
    for actor in actors:
        folder = root / "audio" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for k, (emo, inten, stat, rep) in enumerate(TAKES):
            clip = f"01-01-{emo:02d}-{inten:02d}-{stat:02d}-{rep:02d}-{actor:02d}"
            rows.append([clip, actor, emo, inten, stat, rep, *rng.uniform(0, 1, len(AU)).round(4)])
            suffix = ".flac" if actor == 1 else ".wav"
            sf.write(folder / f"03{clip[2:]}{suffix}", _signal(10 * actor + k), SR)
    pd.DataFrame(rows, columns=META + AU).to_csv(root / "face_au.csv", index=False)
    return root


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return make_corpus(tmp_path / "ravdess")


def load(root: Path, tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return load_ravdess(root, cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]


# ================================================================================================ loading
def test_loads_pairs(corpus: Path, tmp_path: Path) -> None:
    report: list[str] = []
    calls: list[tuple[int, int]] = []
    data = load(corpus, tmp_path, report=report, progress=lambda d, t: calls.append((d, t)))
    assert len(data) == 10 and data.name == "RAVDESS" and not data.synthetic and data.sentiment is None
    assert data.face_feature_names == tuple(AU) and data.face_dim == 35 and data.voice_dim == 47
    assert all(f.shape == (1, 35) and f.dtype == np.float32 for f in data.face)
    # default voice preprocessing trim+f0fill+pool5: the made-up tones have no silence, so 41 frames -> 9
    assert all(v.shape == (-(-(1 + int(0.4 * SR) // 160) // 5), 47) and v.dtype == np.float32 for v in data.voice)
    assert data.extractor == {"face": "openface-au-clip/1", "voice": "librosa-voice/1+trim+f0fill+pool5"}
    assert (data.face_label == data.voice_label).all() and not data.is_abnormal.any()
    assert data.clip_id[0] == "01-01-01-01-01-01-01" and set(data.speaker) == {"actor_01", "actor_02"}
    # emotion 1 neutral, 3 happy, 4 sad, 5 angry, 8 surprised -> neutral, positive, negative, negative, positive
    assert data.face_label[data.speaker == "actor_02"].tolist() == [1, 2, 0, 0, 2]
    assert data.emotion_names == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    assert data.face_emotion[data.speaker == "actor_02"].tolist() == [0, 2, 3, 4, 7]
    assert (data.voice_emotion == data.face_emotion).all()
    csv = pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str}).set_index("clip_id")
    np.testing.assert_allclose(data.face[3][0], csv.loc[data.clip_id[3], AU].to_numpy(np.float32))
    assert calls[0] == (0, 10) and calls[-1] == (10, 10) and len(calls) == 11
    assert any("0 from cache, 10 computed" in line for line in report)
    assert report[-1].startswith("10 clip(s) of 2 actor(s) loaded")


def test_actor_filter(corpus: Path, tmp_path: Path) -> None:
    data = load(corpus, tmp_path, actors=[2])
    assert len(data) == 5 and set(data.speaker) == {"actor_02"}
    report: list[str] = []
    assert len(load(corpus, tmp_path, actors=[2, 9], report=report)) == 5
    assert any("[9] not in face_au.csv" in line for line in report)
    with pytest.raises(DataError, match=r"none of actor\(s\) \[9\]"):
        load(corpus, tmp_path, actors=[9])


def test_second_load_reads_the_cache(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load(corpus, tmp_path)
    calls = []
    original = voice_module.VoiceFeatureExtractor.extract
    monkeypatch.setattr(voice_module.VoiceFeatureExtractor, "extract",
                        lambda self, s, sr: calls.append(1) or original(self, s, sr))
    report: list[str] = []
    second = load(corpus, tmp_path, report=report)
    assert calls == [] and any("10 from cache, 0 computed" in line for line in report)
    for a, b in zip(first.voice, second.voice):
        np.testing.assert_array_equal(a, b)
    load_ravdess(corpus, cache_dir=tmp_path / "other_cache")
    assert len(calls) == 10


def test_voice_preprocessing_option(corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preprocessing shortens the frames, names itself in the extractor id, and leaves the cache raw."""
    report: list[str] = []
    pooled = load(corpus, tmp_path, voice_preprocessing="trim+f0fill+pool5", report=report)
    n_raw = 1 + int(0.4 * SR) // 160  # the made-up clips are tones without silence: trim keeps every frame
    assert all(v.shape == (-(-n_raw // 5), 47) and v.dtype == np.float32 for v in pooled.voice)
    assert pooled.extractor == {"face": "openface-au-clip/1", "voice": "librosa-voice/1+trim+f0fill+pool5"}
    assert pooled.voice_feature_names[:2] == ("mfcc_0", "mfcc_1") and pooled.voice_dim == 47
    assert any("voice preprocessing trim+f0fill+pool5" in line for line in report)
    calls = []
    original = voice_module.VoiceFeatureExtractor.extract
    monkeypatch.setattr(voice_module.VoiceFeatureExtractor, "extract",
                        lambda self, s, sr: calls.append(1) or original(self, s, sr))
    raw = load(corpus, tmp_path, voice_preprocessing="none")
    assert calls == [] and all(len(v) == n_raw for v in raw.voice)
    assert raw.extractor["voice"] == "librosa-voice/1"
    np.testing.assert_allclose(pooled.voice[0][0], raw.voice[0][:5].mean(0), rtol=1e-5, atol=1e-4)
    with pytest.raises(DataError, match="unknown voice preprocessing step 'pool0'"):
        load(corpus, tmp_path, voice_preprocessing="trim+pool0")


def test_duplicate_audio_is_dropped(corpus: Path, tmp_path: Path) -> None:
    folder = corpus / "audio" / "Actor_01"
    shutil.copy(folder / "03-01-03-02-01-01-01.flac", folder / "03-01-08-01-01-02-01.flac")  # same take twice
    report: list[str] = []
    data = load(corpus, tmp_path, report=report)
    assert len(data) == 9 and "01-01-08-01-01-02-01" not in data.clip_id
    assert any("1 duplicate take(s) dropped" in line and "03-01-08-01-01-02-01 = 03-01-03-02-01-01-01" in line
               for line in report)
    assert len(load(corpus, tmp_path, drop_duplicates=False)) == 10


def test_missing_and_unreadable_audio_are_skipped(corpus: Path, tmp_path: Path) -> None:
    (corpus / "audio" / "Actor_01" / "03-01-01-01-01-01-01.flac").unlink()
    rng = np.random.default_rng(1)
    (corpus / "audio" / "Actor_01" / "03-01-05-02-02-02-01.flac").write_bytes(
        rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    (corpus / "audio" / "Actor_02" / "03-01-05-02-02-02-02.wav").write_bytes(b"")
    report: list[str] = []
    data = load(corpus, tmp_path, report=report)
    assert len(data) == 7
    assert any("1 of 10 clip(s) skipped: audio file missing (first: 03-01-01-01-01-01-01)" in line for line in report)
    assert any("2 clip(s) skipped: unreadable audio" in line for line in report)
    assert any("0 from cache, 7 computed, 2 unreadable in" in line for line in report), report  # "9 computed"


def test_actor_without_audio_folder(corpus: Path, tmp_path: Path) -> None:
    shutil.rmtree(corpus / "audio" / "Actor_02")
    report: list[str] = []
    assert len(load(corpus, tmp_path, report=report)) == 5
    assert any("5 of 10 clip(s) skipped" in line and "actor(s) [2]" in line for line in report)
    shutil.rmtree(corpus / "audio" / "Actor_01")
    with pytest.raises(DataError, match="none of the 10 clip"):
        load(corpus, tmp_path)


def test_silent_audio_is_skipped_with_its_reason(corpus: Path, tmp_path: Path) -> None:
    sf.write(corpus / "audio" / "Actor_02" / "03-01-01-01-01-01-02.wav", np.zeros(SR, np.float32), SR)
    report: list[str] = []
    assert len(load(corpus, tmp_path, report=report)) == 9
    assert any("unreadable audio" in line and "silent" in line for line in report)


def test_nonfinite_au_values(corpus: Path, tmp_path: Path) -> None:
    table = pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str})
    table.loc[2, "AU04_r"] = np.nan
    table.to_csv(corpus / "face_au.csv", index=False)
    report: list[str] = []
    data = load(corpus, tmp_path, report=report)
    assert np.isfinite(np.stack(data.face)).all()
    assert any("face: 1 NaN/inf value(s) in 1 sequence(s) repaired" in line for line in report)
    with pytest.raises(DataError, match="NaN/inf"):
        load(corpus, tmp_path, nonfinite="refuse")


# ================================================================================================ bad input
def test_missing_csv(tmp_path: Path) -> None:
    (tmp_path / "audio").mkdir()
    with pytest.raises(DataError, match="face_au.csv not found"):
        load_ravdess(tmp_path, cache_dir=tmp_path / "cache")
    (tmp_path / "face_au.csv").mkdir()  # was "not found" too, which sends the user looking for a missing file
    with pytest.raises(DataError, match="face_au.csv is a folder in"):
        load_ravdess(tmp_path, cache_dir=tmp_path / "cache")
    (tmp_path / "face_au.csv").rmdir()
    os.mkfifo(tmp_path / "face_au.csv")
    with pytest.raises(DataError, match=r"face_au.csv is not a regular file \(a device or a pipe\)"):
        load_ravdess(tmp_path, cache_dir=tmp_path / "cache")


def test_missing_column_is_named(corpus: Path, tmp_path: Path) -> None:
    pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str}).drop(columns=["emotion"]).to_csv(
        corpus / "face_au.csv", index=False)
    with pytest.raises(DataError, match="lacks column.*emotion"):
        load(corpus, tmp_path)


def test_wrong_number_of_au_columns(corpus: Path, tmp_path: Path) -> None:
    pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str}).drop(columns=["AU45_c", "AU28_c"]).to_csv(
        corpus / "face_au.csv", index=False)
    with pytest.raises(DataError, match="33 AU column.*35 are expected"):
        load(corpus, tmp_path)


def test_no_audio_folder(corpus: Path, tmp_path: Path) -> None:
    shutil.rmtree(corpus / "audio")
    with pytest.raises(DataError, match="no audio folder"):
        load(corpus, tmp_path)


def test_unparsable_clip_ids(corpus: Path, tmp_path: Path) -> None:
    table = pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str})
    table.loc[1, "clip_id"] = "clip-7"
    table.to_csv(corpus / "face_au.csv", index=False)
    with pytest.raises(DataError, match="1 clip id.*'clip-7'"):
        load(corpus, tmp_path)


def test_clip_id_disagreeing_with_columns(corpus: Path, tmp_path: Path) -> None:
    table = pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str})
    table.loc[0, "emotion"] = 4
    table.to_csv(corpus / "face_au.csv", index=False)
    with pytest.raises(DataError, match="'emotion' disagrees with the clip id"):
        load(corpus, tmp_path)


def test_non_numeric_au_value(corpus: Path, tmp_path: Path) -> None:
    table = pd.read_csv(corpus / "face_au.csv", dtype={"clip_id": str}).astype({"AU12_r": object})
    table.loc[3, "AU12_r"] = "high"
    table.to_csv(corpus / "face_au.csv", index=False)
    with pytest.raises(DataError, match="AU12_r hold non-numbers.*'high' in row 5"):
        load(corpus, tmp_path)


# ================================================================================================ real data
@needs_ravdess
def test_real_ravdess_two_actors(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Actors 2 and 7 (the documented duplicate take is actor 7's): 120 clips minus 1 duplicate."""
    report: list[str] = []
    data = load_ravdess(RAVDESS, actors=[2, 7], cache_dir=tmp_path_factory.mktemp("cache"), report=report)
    assert len(data) == 119 and data.face_dim == 35 and data.voice_dim == 47
    assert "01-01-03-01-02-02-07" not in data.clip_id and "01-01-03-01-02-01-07" in data.clip_id
    assert any("1 duplicate take(s) dropped" in line and "03-01-03-01-02-02-07 = 03-01-03-01-02-01-07" in line
               for line in report)
    assert np.bincount(data.face_label[data.speaker == "actor_02"]).tolist() == [32, 12, 16]
    assert np.bincount(data.face_label[data.speaker == "actor_07"]).tolist() == [32, 12, 15]  # one happy dropped
    assert all(np.isfinite(v).all() for v in data.voice) and 20 < np.median(data.voice_lengths) < 100  # pooled
    raw = load_ravdess(RAVDESS, actors=[2], cache_dir=tmp_path_factory.mktemp("cache"), voice_preprocessing="none")
    assert 250 < np.median(raw.voice_lengths) < 500
    s = data.summary()
    assert s["n_speakers"] == 2 and s["face_length"]["max"] == 1
