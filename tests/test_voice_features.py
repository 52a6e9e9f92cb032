"""Voice feature extractor, audio loading, the energy VAD and the on-disk feature cache.

Signals are synthesised here (sines, noise, silence); the real-data test skips when ``shared/data`` is absent
(override its location with CROSSEMO_SHARED_DATA).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from crossemo_core.errors import DataError
from crossemo_core.features import (EXTRACTOR_ID, EXTRACTOR_VERSION, FeatureCache, VoiceFeatureExtractor,
                                    default_cache_dir, load_audio, speech_mask)
from crossemo_core.features.voice import DcBlocker, remove_dc

SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")
RAVDESS_AUDIO = SHARED / "ravdess" / "audio"
SR = 16000
EX = VoiceFeatureExtractor()
NAMES = EX.feature_names


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def col(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, NAMES.index(name)]


# ================================================================================================ extractor
def test_shape_dtype_names() -> None:
    f = EX.extract(tone(), SR)
    assert f.dtype == np.float32 and f.shape == (1 + SR // 160, 47) and np.isfinite(f).all()
    assert len(NAMES) == EX.dim == 47 and len(set(NAMES)) == 47
    assert NAMES[:2] == ("mfcc_0", "mfcc_1") and NAMES[-8:] == (
        "log_f0", "voicing", "rms_db", "spectral_centroid_hz", "spectral_bandwidth_hz", "spectral_rolloff_hz",
        "spectral_flatness", "zcr")
    assert EX.id == f"{EXTRACTOR_ID}/{EXTRACTOR_VERSION}" == "librosa-voice/1"
    assert VoiceFeatureExtractor(n_mfcc=20).dim == 68


def test_pitch_voicing_and_level_of_a_tone() -> None:
    f = EX.extract(tone(220.0, amp=0.5), SR)[5:-5]  # edges see the zero padding
    assert np.median(np.exp(col(f, "log_f0"))) == pytest.approx(220.0, rel=0.01)
    assert (col(f, "voicing") > 0.9).all()
    assert np.median(col(f, "rms_db")) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)
    assert np.median(col(f, "spectral_centroid_hz")) == pytest.approx(220.0, rel=0.3)
    assert np.median(col(f, "zcr")) == pytest.approx(2 * 220 / SR, rel=0.1)


def test_noise_is_unvoiced_and_flat() -> None:
    noise = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    f = EX.extract(noise, SR)
    assert (col(f, "voicing") >= 0.5).mean() < 0.05
    assert (col(f, "log_f0") == 0).mean() > 0.95
    assert np.median(col(f, "spectral_flatness")) > 0.3


def test_silence_gives_finite_features() -> None:
    f = EX.extract(np.zeros(SR, np.float32), SR)
    assert np.isfinite(f).all() and f.shape == (101, 47)
    assert (col(f, "log_f0") == 0).all() and (col(f, "voicing") == 0).all() and (col(f, "rms_db") == -100).all()
    tiny = EX.extract(np.full(SR // 2, 1e-7, np.float32), SR)
    assert np.isfinite(tiny).all()


def test_other_sample_rates_are_resampled() -> None:
    f48 = EX.extract(tone(300.0, sr=48000), 48000)
    f16 = EX.extract(tone(300.0), SR)
    assert f48.shape == f16.shape
    assert np.median(np.exp(col(f48, "log_f0")[5:-5])) == pytest.approx(300.0, rel=0.01)
    stereo = np.stack([tone(300.0), tone(300.0)], axis=1)
    np.testing.assert_allclose(EX.extract(stereo, SR), f16, atol=1e-4)


def test_bad_signals_are_refused() -> None:
    with pytest.raises(DataError, match="too short"):
        EX.extract(np.zeros(100, np.float32), SR)
    with pytest.raises(DataError, match="NaN or inf"):
        EX.extract(np.full(SR, np.nan, np.float32), SR)
    with pytest.raises(ValueError):
        VoiceFeatureExtractor(n_mfcc=0)


# ================================================================================================ load_audio
def test_load_audio_reads_and_mixes_down(tmp_path: Path) -> None:
    stereo = np.stack([tone(200.0), -0.5 * tone(200.0)], axis=1)
    sf.write(tmp_path / "s.flac", stereo, SR)
    x, sr = load_audio(tmp_path / "s.flac")
    assert sr == SR and x.dtype == np.float32 and x.shape == (SR,)
    np.testing.assert_allclose(x, 0.25 * tone(200.0), atol=5e-3)  # the DC blocker's start: within 1 % of the tone
    np.testing.assert_allclose(x[SR // 4:], 0.25 * tone(200.0)[SR // 4:], atol=1e-3)  # ... and gone after 0.25 s
    sf.write(tmp_path / "w.wav", tone(200.0, sr=22050), 22050)
    assert load_audio(tmp_path / "w.wav")[1] == 22050


def test_a_constant_offset_is_removed_from_the_first_sample_and_block_by_block_as_whole() -> None:
    speech_like = tone(180.0, 2.0) * np.hanning(2 * SR).astype(np.float32) + 0.01 * tone(2500.0, 2.0)
    clean = remove_dc(speech_like, SR)
    for offset in (0.01, 0.05, -0.2):
        np.testing.assert_allclose(remove_dc(speech_like + offset, SR), clean, atol=1e-5)
    for cuts in ([1024, 1500, 9000], [200, 525, 850, 9000]):  # AAC and Opus decoders start with 200-325 samples
        blocker = DcBlocker(SR)
        blocks = [blocker(b) for b in np.array_split(speech_like + 0.05, cuts)] + [blocker.flush()]
        np.testing.assert_allclose(np.concatenate(blocks), remove_dc(speech_like + 0.05, SR), atol=1e-6)
    assert len(remove_dc(speech_like[:300], SR)) == 300  # shorter than the start it waits for: flushed
    # speech passes: a 200 Hz tone (a voice's lowest harmonics) keeps its level once the start has settled
    assert abs(np.std(remove_dc(tone(200.0, 2.0), SR)[SR:]) / np.std(tone(200.0, 2.0)[SR:]) - 1) < 1e-3


def test_a_file_that_is_a_constant_offset_and_hiss_is_silent(tmp_path: Path) -> None:
    hiss = 1e-5 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    sf.write(tmp_path / "offset.wav", 0.1 + hiss, SR, subtype="FLOAT")
    with pytest.raises(DataError, match="silent .*constant offset aside"):
        load_audio(tmp_path / "offset.wav")
    sf.write(tmp_path / "speech.wav", 0.1 + tone(), SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "speech.wav")[0], remove_dc(tone(), SR), atol=1e-5)


def test_load_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_audio(tmp_path / "nope.flac")
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_audio(tmp_path / "empty.flac")
    (tmp_path / "junk.flac").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="cannot read audio file .*junk.flac"):
        load_audio(tmp_path / "junk.flac")
    sf.write(tmp_path / "silent.flac", np.zeros(SR, np.float32), SR)
    with pytest.raises(DataError, match="silent"):
        load_audio(tmp_path / "silent.flac")
    sf.write(tmp_path / "short.wav", tone(seconds=0.02), SR)
    with pytest.raises(DataError, match="too short"):
        load_audio(tmp_path / "short.wav")


# ================================================================================================ VAD
def test_speech_mask_finds_the_tone() -> None:
    x = np.concatenate([np.zeros(SR // 2), tone(200.0, 0.5), np.zeros(SR // 2)]).astype(np.float32)
    f = EX.extract(x, SR)
    mask = speech_mask(f, NAMES)
    on = np.flatnonzero(mask)
    assert mask.dtype == bool and mask.shape == (len(f),)
    assert 40 <= on.min() <= 50 and 100 <= on.max() <= 110 and mask[50:100].all()
    assert not speech_mask(EX.extract(np.zeros(SR, np.float32), SR), NAMES).any()
    with pytest.raises(DataError, match="rms_db"):
        speech_mask(f[:, :3], NAMES[:3])


# ================================================================================================ cache
class CountingExtractor(VoiceFeatureExtractor):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.calls = 0

    def extract(self, signal: np.ndarray, sr: int) -> np.ndarray:
        self.calls += 1
        return super().extract(signal, sr)


def test_cache_hits_on_second_run(tmp_path: Path) -> None:
    audio = tmp_path / "a.flac"
    sf.write(audio, tone(180.0, 0.5), SR)
    ex = CountingExtractor()
    cache_dir = tmp_path / "cache"
    first = FeatureCache(cache_dir).get_or_compute(audio, ex)
    cache = FeatureCache(cache_dir)  # a new process would see the same files
    second = cache.get_or_compute(audio, ex)
    assert ex.calls == 1 and (cache.hits, cache.misses) == (1, 0)
    np.testing.assert_array_equal(first, second)
    shutil.copy(audio, tmp_path / "renamed.flac")  # keyed by content, not by name
    cache.get_or_compute(tmp_path / "renamed.flac", ex)
    assert ex.calls == 1
    entries = list(cache_dir.rglob("*"))
    assert [p.suffix for p in entries if p.is_file()] == [".npy"]  # no temp files left behind

    other = CountingExtractor(n_mfcc=12)  # other settings -> other key
    assert cache.get_or_compute(audio, other).shape[1] == other.dim and other.calls == 1
    sf.write(audio, tone(190.0, 0.5), SR)  # new content -> recomputed
    cache.get_or_compute(audio, ex)
    assert ex.calls == 2


def _header_declaring(rows: int, width: int) -> bytes:
    """A .npy file whose header declares ``(rows, width)`` float32 values, followed by only four of them."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)})
    return buf.getvalue() + np.zeros(4, np.float32).tobytes()


@pytest.mark.parametrize("damage", ["not numpy", "no rows", "a header declaring 10^11 rows"])
def test_cache_recovers_from_a_corrupt_entry(tmp_path: Path, damage: str) -> None:
    """An empty entry was taken and failed every later run; a header declaring 10^11 rows tried to allocate them."""
    audio = tmp_path / "a.wav"
    sf.write(audio, tone(250.0, 0.3), SR)
    ex = CountingExtractor()
    cache = FeatureCache(tmp_path)
    good = cache.get_or_compute(audio, ex)
    (entry,) = list(tmp_path.rglob("*.npy"))
    if damage == "not numpy":
        entry.write_bytes(b"not numpy")
    elif damage == "no rows":
        np.save(entry, np.zeros((0, good.shape[1]), np.float32))
    else:
        entry.write_bytes(_header_declaring(10**11, good.shape[1]))
    np.testing.assert_array_equal(cache.get_or_compute(audio, ex), good)
    assert ex.calls == 2 and np.load(entry, allow_pickle=False).shape == good.shape


def test_a_damaged_prosody_cache_entry_is_not_taken(tmp_path: Path) -> None:
    from crossemo_core.features.voice import read_cached_array
    from crossemo_core.readers.voice_training import prosody_entry_test as pair

    entry = tmp_path / "entry.npy"
    np.save(entry, np.ones((2, 62), np.float32))
    assert read_cached_array(entry, pair(62)).shape == (2, 62)
    for damaged in (np.ones((3, 62), np.float32), np.ones((2, 5), np.float32), np.ones(62, np.float32),
                    np.array([["a", "b"], ["c", "d"]])):
        np.save(entry, damaged)
        assert read_cached_array(entry, pair(62)) is None, damaged
    entry.write_bytes(_header_declaring(2, 10**11))
    assert read_cached_array(entry, pair(10**11)) is None
    assert read_cached_array(tmp_path / "missing.npy", pair(62)) is None


def test_audio_too_slow_for_speech_is_refused_when_read_for_features(tmp_path: Path) -> None:
    slow = tmp_path / "slow.wav"
    sf.write(slow, tone(200.0, 1.0)[::16], 1000)
    with pytest.raises(DataError, match="slow.wav: its audio is sampled at 1000 Hz; a voice needs at least 4,000 Hz"):
        load_audio(slow)


def test_cache_errors_and_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="cannot read"):
        FeatureCache(tmp_path).get_or_compute(tmp_path / "missing.flac", EX)
    monkeypatch.setenv("CROSSEMO_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "features" and FeatureCache().directory == tmp_path / "c" / "features"
    monkeypatch.delenv("CROSSEMO_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "crossemo" / "features"


# ================================================================================================ real data
@pytest.mark.skipif(not RAVDESS_AUDIO.is_dir(), reason=f"{RAVDESS_AUDIO} not available")
def test_real_clips() -> None:
    files = sorted(RAVDESS_AUDIO.glob("Actor_01/*.flac"))[:4]
    assert files
    for path in files:
        x, sr = load_audio(path)
        start = time.perf_counter()
        f = EX.extract(x, sr)
        elapsed = time.perf_counter() - start
        assert f.shape == (1 + len(x) // 160, 47) and np.isfinite(f).all()
        assert 0.1 < (col(f, "voicing") >= 0.5).mean() < 0.6  # speech with leading/trailing silence
        assert 0.2 < speech_mask(f, NAMES).mean() < 0.8
        voiced_f0 = np.exp(col(f, "log_f0")[col(f, "log_f0") > 0])
        assert 70 < np.median(voiced_f0) < 300  # actor 01 is male
        assert elapsed < 1.0  # ~0.06 s on an idle core; loose for loaded CI machines
