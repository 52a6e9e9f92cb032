"""Utterance-level prosody and voice-quality statistics: the voice reader's second view of a voice.

Two sets, chosen by name (:data:`PROSODY_FEATURES`): ``"statistics"`` (:func:`prosody_functionals`, below) and
``"egemaps"`` (:func:`egemaps_functionals`: the 88 openSMILE eGeMAPSv02 functionals, a set designed for
cross-corpus paralinguistics, of the recording with its leading and trailing silence cut and its speech brought to a
fixed level); ``"statistics+egemaps"`` is both side by side. :func:`prosody_features` computes any of them.

From the project's frame features (:class:`~crossemo_core.features.voice.VoiceFeatureExtractor`: pitch, voicing,
energy, spectral shape, MFCCs every 10 ms) this computes :data:`PROSODY_NAMES`, statistics chosen the way the
eGeMAPS set chooses them (pitch level and movement in semitones, loudness dynamics, voicing rate, spectral balance,
timbre), all independent of the recording's overall gain. A linear model over them
(:class:`~crossemo_core.readers.voice.ProsodyHead`) generalises across corpora differently from the log-mel network,
and the voice reader averages the two.
"""
from __future__ import annotations

import numpy as np

from crossemo_core.errors import DataError
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


def prosody_functionals(signal: np.ndarray, sr: int = 16000, frames: np.ndarray | None = None) -> np.ndarray:
    """``(n_samples,)`` mono float -> ``(len(PROSODY_NAMES),)`` float32 statistics (zeros where a signal has no
    voiced frame). ``frames``: the signal's voice extractor frames when already at hand (cut from a longer
    recording's: :meth:`~crossemo_core.clip.sequences.VoiceTrack.raw_frames`), used instead of extracting them."""
    f = _EXTRACTOR.extract(signal, sr) if frames is None else frames
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


# ------------------------------------------------------------------------------------------------ eGeMAPS
EGEMAPS_TRIM_DB = 35.0
"""Leading and trailing 25 ms frames quieter than the loudest by more than this are cut before eGeMAPS (as the
log-mel front end trims): corpora pad their files with very different amounts of silence, which eGeMAPS' pause and
loudness statistics would otherwise read as emotion."""
EGEMAPS_LEVEL_DBFS = -25.0
"""Speech RMS the signal is scaled to before eGeMAPS (recording level differs by 30 dB between the corpora)."""
PROSODY_FEATURES = ("statistics", "egemaps", "statistics+egemaps")
EGEMAPS_COUNT = 88
"""How many functionals :func:`egemaps_functionals` gives."""
"""Names of the prosody feature sets a voice reader's prosody view can read."""
PROSODY_DEFAULT = "statistics"
"""The set the training script and the readers benchmark fit by default."""

_SMILE = None


def trim_and_level(signal: np.ndarray, sr: int = 16000) -> np.ndarray:
    """``signal`` with its leading and trailing silence (:data:`EGEMAPS_TRIM_DB`) cut and its speech scaled to
    :data:`EGEMAPS_LEVEL_DBFS`. Raises :class:`DataError` for a silent signal."""
    n, hop = int(0.025 * sr), int(0.010 * sr)
    if len(signal) < n:
        raise DataError(f"the recording is too short for prosody features ({len(signal) / sr * 1000:.0f} ms).")
    frames = np.lib.stride_tricks.sliding_window_view(signal, n)[::hop]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    if power.max() <= 1e-12:
        raise DataError("the recording is silent (every sample is zero or nearly so).")
    db = 10 * np.log10(power + 1e-12)
    loud = np.flatnonzero(db > db.max() - EGEMAPS_TRIM_DB)
    cut = signal[loud[0] * hop:loud[-1] * hop + n]
    speech = db[loud[0]:loud[-1] + 1]
    rms_db = 10 * np.log10(np.mean(10 ** (speech[speech > db.max() - EGEMAPS_TRIM_DB] / 10)))
    return (cut * 10 ** ((EGEMAPS_LEVEL_DBFS - rms_db) / 20)).astype(np.float32)


def egemaps_functionals(signal: np.ndarray, sr: int = 16000) -> np.ndarray:
    """``(n_samples,)`` mono float -> ``(88,)`` float32 eGeMAPSv02 functionals (openSMILE, its own bundled binary
    and configuration; nothing is downloaded) of :func:`trim_and_level` of the signal. A silent, too short or
    non-finite signal raises :class:`DataError` with one line saying which."""
    global _SMILE
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise DataError(f"a voice signal must be 1-D mono, got shape {signal.shape}.")
    if not np.all(np.isfinite(signal)):
        raise DataError("the recording holds NaN or infinite samples (corrupt audio?).")
    speech = trim_and_level(signal, sr)
    if len(speech) < int(0.1 * sr):
        raise DataError(f"too little speech for prosody features ({len(speech) / sr * 1000:.0f} ms after trimming).")
    if _SMILE is None:
        try:
            import opensmile
        except ImportError as exc:
            raise DataError("the eGeMAPS prosody view needs the 'opensmile' package (pip install opensmile==2.6.0).") \
                from exc
        _SMILE = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                                 feature_level=opensmile.FeatureLevel.Functionals)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Segment too short, filling with NaN": NaNs become zeros below
        try:
            values = _SMILE.process_signal(speech, sr).to_numpy()[0]
        except Exception as exc:  # noqa: BLE001 - openSMILE's own errors are not one line
            raise DataError(f"openSMILE could not read the recording ({type(exc).__name__}).") from exc
    return np.nan_to_num(values.astype(np.float32))


def prosody_features(signal: np.ndarray, features: str = "statistics", sr: int = 16000,
                     frames: np.ndarray | None = None) -> np.ndarray:
    """The prosody feature set ``features`` (one of :data:`PROSODY_FEATURES`) of one recording (``frames``: see
    :func:`prosody_functionals`)."""
    if features == "statistics":
        return prosody_functionals(signal, sr, frames)
    if features == "egemaps":
        return egemaps_functionals(signal, sr)
    if features == "statistics+egemaps":
        return np.concatenate([prosody_functionals(signal, sr, frames), egemaps_functionals(signal, sr)])
    raise ValueError(f"unknown prosody features {features!r}; known: {', '.join(PROSODY_FEATURES)}")
