"""Class mappings from a continuous sentiment score in [-3, 3] (MOSI/MOSEI style) and from RAVDESS emotions."""
from __future__ import annotations

import numpy as np

from crossemo_core.data.container import LABEL_SETS
from crossemo_core.errors import DataError

NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


def sentiment_to_3class(score: np.ndarray, neutral_low: float = 0.0, neutral_high: float = 0.0) -> np.ndarray:
    """3 classes from a sentiment score: negative (< neutral_low), neutral, positive (> neutral_high).

    The default band [0, 0] is the sign rule: negative < 0, neutral == 0, positive > 0.
    """
    s = _checked(score)
    if neutral_low > neutral_high:
        raise DataError(f"neutral band [{neutral_low}, {neutral_high}] is empty: low must not exceed high.")
    return np.where(s < neutral_low, NEGATIVE, np.where(s > neutral_high, POSITIVE, NEUTRAL)).astype(np.int64)


def sentiment_to_7class(score: np.ndarray) -> np.ndarray:
    """7 classes of the paper's Table I, as indices 0..6 for strong negative .. strong positive.

    Bins: [-3,-2) -> -3, [-2,-1) -> -2, [-1,0) -> -1, 0 -> 0, (0,1] -> 1, (1,2] -> 2, (2,3] -> 3; scores outside
    [-3, 3] are clipped first.
    """
    s = np.clip(_checked(score), -3.0, 3.0)
    level = np.where(s < 0, np.floor(s), np.where(s > 0, np.ceil(s), 0.0))  # [-1,0) -> -1, (0,1] -> 1, ...
    return (level + 3).astype(np.int64)


def seven_to_3class(label7: np.ndarray) -> np.ndarray:
    """Collapse Table I's 7 classes to 3 by sign (negative levels, 0, positive levels)."""
    lab = np.asarray(label7, dtype=np.int64)
    return np.where(lab < 3, NEGATIVE, np.where(lab > 3, POSITIVE, NEUTRAL)).astype(np.int64)


RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust",
                    8: "surprised"}
_RAVDESS_VALENCE = {1: NEUTRAL, 2: NEUTRAL, 3: POSITIVE, 8: POSITIVE, 4: NEGATIVE, 5: NEGATIVE, 6: NEGATIVE,
                    7: NEGATIVE}


def ravdess_emotion_to_3class(emotion_code: np.ndarray) -> np.ndarray:
    """RAVDESS emotion codes 1..8 to valence classes (shared/data README, section 1.4)."""
    codes = np.asarray(emotion_code, dtype=np.int64)
    unknown = sorted(set(codes.tolist()) - set(_RAVDESS_VALENCE))
    if unknown:
        raise DataError(f"unknown RAVDESS emotion code(s) {unknown}; expected 1..8.")
    return np.array([_RAVDESS_VALENCE[c] for c in codes], dtype=np.int64)


def anomaly_type(face_label: np.ndarray, voice_label: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Per pair: "normal" or the unordered class pair, e.g. "negative-positive" (Table IV's anomaly types)."""
    out = []
    for f, v in zip(np.asarray(face_label), np.asarray(voice_label)):
        if f == v:
            out.append("normal")
        else:
            a, b = sorted((int(f), int(v)))
            out.append(f"{_short(class_names[a])}-{_short(class_names[b])}")
    return np.array(out)


def _short(name: str) -> str:
    return {"negative": "neg", "neutral": "neu", "positive": "pos"}.get(name, name.replace(" ", "_"))


def _checked(score: np.ndarray) -> np.ndarray:
    s = np.asarray(score, dtype=np.float64)
    if not np.isfinite(s).all():
        raise DataError(f"{int((~np.isfinite(s)).sum())} sentiment score(s) are NaN or inf.")
    return s


__all__ = ["LABEL_SETS", "NEGATIVE", "NEUTRAL", "POSITIVE", "sentiment_to_3class", "sentiment_to_7class",
           "seven_to_3class", "ravdess_emotion_to_3class", "anomaly_type", "RAVDESS_EMOTIONS"]
