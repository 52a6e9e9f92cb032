"""Voice-sequence preprocessing (crossemo_core.features.sequence) on small hand-made frame arrays."""
from __future__ import annotations

import numpy as np
import pytest

from crossemo_core.errors import DataError
from crossemo_core.features.sequence import (
    canonical_preprocessing,
    fill_unvoiced_f0,
    parse_preprocessing,
    pool_frames,
    preprocess_voice,
    trim_silence,
)

NAMES = ("mfcc_0", "log_f0", "voicing", "rms_db")


def clip(levels: list[float], f0: list[float] | None = None) -> np.ndarray:
    """Frames with the given rms_db per frame; mfcc_0 = frame index, log_f0 as given (0 = unvoiced)."""
    n = len(levels)
    f0_col = np.zeros(n) if f0 is None else np.asarray(f0, dtype=float)
    return np.stack([np.arange(n, dtype=float), f0_col, (f0_col != 0).astype(float), np.asarray(levels, float)],
                    axis=1).astype(np.float32)


def test_trim_drops_leading_and_trailing_silence_only() -> None:
    levels = [-100.0] * 20 + [-20.0] * 5 + [-100.0] * 15 + [-25.0] * 5 + [-100.0] * 30
    out = trim_silence(clip(levels), NAMES, hangover=2)
    # speech frames 20..24 and 40..44, widened by 2: rows 18..46 (the interior pause stays)
    assert out[:, 0].tolist() == list(range(18, 47))


def test_trim_keeps_quiet_clips() -> None:
    """A take peaking at -56 dBFS (below speech_mask's default -55 dB floor) is trimmed, not emptied."""
    levels = [-100.0] * 10 + [-56.0] * 30 + [-100.0] * 10
    out = trim_silence(clip(levels), NAMES, hangover=0)
    assert len(out) == 30 and out[0, 0] == 10


def test_trim_of_a_silent_clip_is_a_no_op() -> None:
    f = clip([-100.0] * 12)
    assert trim_silence(f, NAMES).shape == f.shape


def test_pool_frames_means_and_short_last_group() -> None:
    f = np.arange(14, dtype=np.float32).reshape(7, 2)
    out = pool_frames(f, 3)
    np.testing.assert_allclose(out, [[2, 3], [8, 9], [12, 13]])
    assert out.dtype == np.float32
    assert pool_frames(f, 1) is f and pool_frames(f, 10).shape == (1, 2)
    with pytest.raises(ValueError):
        pool_frames(f, 0)


def test_f0fill_interpolates_unvoiced_frames() -> None:
    f = clip([-20.0] * 6, f0=[0.0, 5.0, 0.0, 0.0, 5.6, 0.0])
    out = fill_unvoiced_f0(f, NAMES)
    np.testing.assert_allclose(out[:, 1], [5.0, 5.0, 5.2, 5.4, 5.6, 5.6], rtol=1e-6)
    assert out[:, 2].tolist() == f[:, 2].tolist()  # voicing unchanged
    assert f[0, 1] == 0.0  # input untouched
    unvoiced = clip([-20.0] * 4)
    assert fill_unvoiced_f0(unvoiced, NAMES) is unvoiced


def test_spec_parsing_and_pipeline() -> None:
    assert parse_preprocessing(" trim+f0fill+pool5 ") == ("trim", "f0fill", "pool5")
    assert canonical_preprocessing("none") == "none"
    for bad in ("trim+pool0", "pool", "trim++pool5", "none+trim", "smooth"):
        with pytest.raises(DataError):
            parse_preprocessing(bad)
    levels = [-100.0] * 10 + [-20.0] * 20 + [-100.0] * 10
    out = preprocess_voice(clip(levels), NAMES, "trim+pool5")
    assert out.shape == (6, 4) and out.dtype == np.float32  # 20 speech frames + 2 x 5 hangover = 30 -> 6
    np.testing.assert_array_equal(preprocess_voice(clip(levels), NAMES, "none"), clip(levels))
