"""Utterance-level prosody and voice-quality statistics: the voice reader's second view of a voice.

From the project's frame features (:class:`~crossemo_core.features.voice.VoiceFeatureExtractor`: pitch, voicing,
energy, spectral shape, MFCCs every 10 ms) this computes :data:`PROSODY_NAMES`, statistics chosen the way the
eGeMAPS set chooses them (pitch level and movement in semitones, loudness dynamics, voicing rate, spectral balance,
timbre), all independent of the recording's overall gain. A linear model over them
(:class:`~crossemo_core.readers.voice.ProsodyHead`) generalises across corpora differently from the log-mel network,
and the voice reader averages the two.
"""
from __future__ import annotations

import numpy as np

from crossemo_core.features.voice import VoiceFeatureExtractor

_STATS = ("mean", "std", "p10", "p50", "p90")
_SPECTRAL = ("spectral_centroid_hz", "spectral_bandwidth_hz", "spectral_rolloff_hz", "spectral_flatness", "zcr")
PROSODY_NAMES: tuple[str, ...] = (
    tuple(f"f0_semitones_{s}" for s in _STATS) + ("f0_range", "f0_slope_abs", "f0_rise_share")
    + tuple(f"loudness_db_{s}" for s in ("std", "p10_below_peak", "p50_below_peak", "range")) + ("loudness_slope_abs",)
    + ("voiced_share", "voiced_segments_per_s", "speech_s_log")
    + tuple(f"{n}_{s}" for n in _SPECTRAL for s in ("mean", "std"))
    + tuple(f"mfcc_{k}_{s}" for k in range(1, 13) for s in ("mean", "std"))
    + tuple(f"d_mfcc_{k}_std" for k in range(1, 13)))
"""Names of the :func:`prosody_functionals` columns (semitones re 1 Hz; dB re the utterance's loudest frame)."""

_EXTRACTOR = VoiceFeatureExtractor()
_COL = {n: i for i, n in enumerate(_EXTRACTOR.feature_names)}


def _stats(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return [0.0] * len(_STATS)
    return [float(x.mean()), float(x.std()), *map(float, np.percentile(x, [10, 50, 90]))]


def prosody_functionals(signal: np.ndarray, sr: int = 16000) -> np.ndarray:
    """``(n_samples,)`` mono float -> ``(len(PROSODY_NAMES),)`` float32 statistics (zeros where a signal has no
    voiced frame)."""
    f = _EXTRACTOR.extract(signal, sr)
    rms = f[:, _COL["rms_db"]]
    speech = rms > rms.max() - 35.0
    voiced = speech & (f[:, _COL["voicing"]] >= 0.5)
    st = 12 * f[voiced, _COL["log_f0"]] / np.log(2)
    out = _stats(st)
    out += [float(np.ptp(st)) if st.size else 0.0,
            float(np.mean(np.abs(np.diff(st)))) if st.size > 1 else 0.0,
            float(np.mean(np.diff(st) > 0)) if st.size > 1 else 0.0]
    loud = rms[speech] - rms.max()
    out += [float(loud.std()), float(np.percentile(loud, 10)), float(np.percentile(loud, 50)), float(np.ptp(loud)),
            float(np.mean(np.abs(np.diff(loud)))) if loud.size > 1 else 0.0]
    n_speech = max(int(speech.sum()), 1)
    onsets = int(np.sum(np.diff(voiced.astype(int)) == 1))
    out += [float(voiced.sum() / n_speech), onsets / (n_speech / 100.0), float(np.log(n_speech / 100.0))]
    rows = f[voiced] if voiced.sum() >= 3 else f[speech]
    for name in _SPECTRAL:
        col = rows[:, _COL[name]]
        col = np.log(col + 1.0) if name.endswith("_hz") else col
        out += [float(col.mean()), float(col.std())]
    for k in range(1, 13):
        col = rows[:, _COL[f"mfcc_{k}"]]
        out += [float(col.mean()), float(col.std())]
    out += [float(rows[:, _COL[f"d_mfcc_{k}"]].std()) for k in range(1, 13)]
    return np.nan_to_num(np.asarray(out, dtype=np.float32))
