"""Voice-sequence preprocessing [ours]: shorten the frame-level extractor output before the voice LSTM reads it.

The extractor gives 100 frames per second including the leading and trailing silence of a recording (RAVDESS clips:
294-528 frames, about half of them silence). A single-direction LSTM over ~350 steps is slow on CPU and hard to
train (the last hidden state has to carry the emotion across hundreds of silent or redundant steps). These steps
only look at the clip itself; no statistics of a speaker or of a data set are used, so they are not a per-speaker
normalisation.

A preprocessing is named by a spec string of steps joined by ``+``, applied left to right:

- ``none``     no change (the raw extractor output); only allowed alone.
- ``trim``     :func:`trim_silence`: drop leading and trailing silence (interior pauses are kept).
- ``f0fill``   :func:`fill_unvoiced_f0`: ``log_f0`` is 0 on unvoiced frames by the extractor's convention; replace
  those zeros by linear interpolation between the neighbouring voiced frames (constant beyond the first/last
  voiced frame), so mean pooling and normalisation do not mix "0 = unvoiced" with pitch values. The ``voicing``
  column still says which frames were voiced.
- ``poolN``    :func:`pool_frames`: mean over consecutive non-overlapping groups of N frames (N >= 1; the last
  group may be shorter). ``pool5`` gives 20 frames per second.

The spec is part of the data set's extractor id (``"librosa-voice/1+trim+pool5"``), so a checkpoint trained on one
preprocessing refuses data prepared with another.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from crossemo_core.errors import DataError
from crossemo_core.features.voice import speech_mask

TRIM_MARGIN_DB = 35.0
"""A frame is speech when its RMS is within this many dB of the clip's loudest frame ..."""
TRIM_FLOOR_DB = -80.0
"""... and above this absolute floor. Lower than :func:`speech_mask`'s default -55 dBFS: some RAVDESS takes peak
near -55 dBFS (e.g. calm and sad ones), and the default floor would keep only ~12 frames of them."""
TRIM_HANGOVER = 5
"""Frames (50 ms) kept on each side of the first and last speech frame."""

_POOL = re.compile(r"^pool(\d+)$")


def trim_silence(features: np.ndarray, feature_names: Sequence[str], *, margin_db: float = TRIM_MARGIN_DB,
                 floor_db: float = TRIM_FLOOR_DB, hangover: int = TRIM_HANGOVER) -> np.ndarray:
    """Frames from the first to the last speech frame (by :func:`speech_mask` with these settings), inclusive.

    Args:
        features: ``(frames, d)`` extractor output with an ``rms_db`` column.
        feature_names: the ``d`` column names.
    Returns:
        ``(frames', d)`` with ``1 <= frames' <= frames``; a clip without any speech frame is returned unchanged.
    """
    active = np.flatnonzero(speech_mask(features, feature_names, margin_db=margin_db, floor_db=floor_db,
                                        hangover=hangover))
    if active.size == 0:
        return features
    return features[active[0]:active[-1] + 1]


def fill_unvoiced_f0(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    """A copy with ``log_f0`` linearly interpolated over its unvoiced (== 0) frames; unchanged without voiced frames."""
    names = list(feature_names)
    if "log_f0" not in names:
        raise DataError("f0fill needs a 'log_f0' feature column (VoiceFeatureExtractor output).")
    col = names.index("log_f0")
    f0 = features[:, col]
    voiced = np.flatnonzero(f0 != 0)
    if voiced.size == 0 or voiced.size == len(f0):
        return features
    out = features.copy()
    out[:, col] = np.interp(np.arange(len(f0)), voiced, f0[voiced]).astype(features.dtype)
    return out


def pool_frames(features: np.ndarray, factor: int) -> np.ndarray:
    """Mean over consecutive non-overlapping groups of ``factor`` frames: ``(ceil(frames / factor), d)``."""
    if factor < 1:
        raise ValueError(f"pool factor must be >= 1, got {factor}")
    n = len(features)
    if factor == 1 or n == 0:
        return features
    starts = np.arange(0, n, factor)
    sums = np.add.reduceat(features.astype(np.float64), starts, axis=0)
    counts = np.diff(np.append(starts, n))[:, None]
    return (sums / counts).astype(features.dtype)


def parse_preprocessing(spec: str) -> tuple[str, ...]:
    """The steps of a spec (see the module docstring); raises :class:`DataError` for an unknown or empty step."""
    steps = tuple(s.strip() for s in str(spec).strip().split("+"))
    for step in steps:
        match = _POOL.match(step)
        if step in ("trim", "f0fill", "none") or (match and int(match.group(1)) >= 1):
            continue
        raise DataError(f"unknown voice preprocessing step {step!r} in {spec!r}; use 'none' or steps such as "
                        f"'trim', 'f0fill', 'pool5' joined by '+'.")
    if "none" in steps and len(steps) > 1:
        raise DataError(f"voice preprocessing 'none' cannot be combined with other steps ({spec!r}).")
    return steps


def canonical_preprocessing(spec: str) -> str:
    """The spec with surrounding blanks removed (``"none"`` for no preprocessing); validated."""
    return "+".join(parse_preprocessing(spec))


def preprocess_voice(features: np.ndarray, feature_names: Sequence[str], spec: str) -> np.ndarray:
    """Apply the steps of ``spec`` to one clip's ``(frames, d)`` features; the column names do not change."""
    for step in parse_preprocessing(spec):
        if step == "trim":
            features = trim_silence(features, feature_names)
        elif step == "f0fill":
            features = fill_unvoiced_f0(features, feature_names)
        elif step != "none":
            features = pool_frames(features, int(step[4:]))
    return np.ascontiguousarray(features, dtype=np.float32)
