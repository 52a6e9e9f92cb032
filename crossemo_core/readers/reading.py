"""What a reader says about one face or one voice: emotion, valence and arousal probabilities, and whether to trust it.

A *reader* turns one modality into a :class:`Reading`; the voice reader (:mod:`.voice`) and the face reader
(:mod:`.face`) both return it, so the command line (``read``), the clip verdict and the app's per-side panels show
the same thing for either side.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

VALENCES = ("negative", "neutral", "positive")
"""Valence classes, in index order (0, 1, 2); the shared data README's section 8 maps every corpus onto them."""
AROUSALS = ("low", "high")
UNCERTAIN_BELOW = 0.5
"""A reading is "uncertain" when its top valence probability is below this (3 classes: chance is 0.33)."""

EMOTION_VALENCE = {"angry": 0, "disgust": 0, "fearful": 0, "sad": 0, "bored": 0, "contempt": 0,
                   "neutral": 1, "calm": 1, "happy": 2, "surprised": 2}
"""Emotion name -> valence index (shared data README, section 8). Readers use the RAVDESS-style names."""
EMOTION_AROUSAL = {"angry": 1, "fearful": 1, "happy": 1, "surprised": 1,
                   "neutral": 0, "calm": 0, "sad": 0, "bored": 0}
"""Emotion name -> arousal index (0 low, 1 high) where the circumplex is clear; disgust and contempt have none."""


def _probs(names: tuple[str, ...], p: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(names, p)}


@dataclass(frozen=True)
class Reading:
    """One modality's reading of one input (a photo, a face track, an utterance).

    ``emotions``: probabilities over the reader's emotion names (sum 1). ``valence``: over :data:`VALENCES`.
    ``arousal``: over :data:`AROUSALS`, or ``None`` for a reader without an arousal output. ``seconds``: the span
    read (0 for a photo). ``note``: why there is no reading or what limited it ("" when nothing did).
    """

    modality: str
    emotions: dict[str, float]
    valence: dict[str, float]
    arousal: dict[str, float] | None = None
    seconds: float = 0.0
    note: str = ""

    @classmethod
    def from_arrays(cls, modality: str, emotion_names: tuple[str, ...], emotion_p: np.ndarray,
                    valence_p: np.ndarray, arousal_p: np.ndarray | None = None, seconds: float = 0.0,
                    note: str = "") -> "Reading":
        return cls(modality, _probs(emotion_names, emotion_p), _probs(VALENCES, valence_p),
                   None if arousal_p is None else _probs(AROUSALS, arousal_p), float(seconds), note)

    @property
    def top_emotion(self) -> str:
        return max(self.emotions, key=self.emotions.__getitem__)

    @property
    def top_valence(self) -> str:
        return max(self.valence, key=self.valence.__getitem__)

    @property
    def confidence(self) -> float:
        """Top valence probability, in [1/3, 1]."""
        return max(self.valence.values())

    @property
    def uncertain(self) -> bool:
        return self.confidence < UNCERTAIN_BELOW

    def valence_array(self) -> np.ndarray:
        """``(3,)`` valence probabilities in :data:`VALENCES` order."""
        return np.array([self.valence[v] for v in VALENCES])

    def summary(self) -> str:
        """One line, e.g. ``voice: angry 0.71 · negative 0.83 · high arousal 0.90``."""
        parts = [f"{self.modality}: {self.top_emotion} {self.emotions[self.top_emotion]:.2f}",
                 f"{self.top_valence} {self.confidence:.2f}"]
        if self.arousal is not None:
            top = max(self.arousal, key=self.arousal.__getitem__)
            parts.append(f"{top} arousal {self.arousal[top]:.2f}")
        if self.uncertain:
            parts.append("uncertain")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "emotion": self.top_emotion, "valence": self.top_valence,
                "confidence": round(self.confidence, 4), "uncertain": self.uncertain,
                "emotions": {k: round(v, 4) for k, v in self.emotions.items()},
                "valence_probs": {k: round(v, 4) for k, v in self.valence.items()},
                "arousal_probs": None if self.arousal is None else {k: round(v, 4) for k, v in self.arousal.items()},
                "seconds": round(self.seconds, 3), "note": self.note}


def valence_from_emotions(emotion_names: tuple[str, ...], emotion_p: np.ndarray) -> np.ndarray:
    """``(..., E)`` emotion probabilities -> ``(..., 3)`` valence probabilities (sum of each valence's emotions)."""
    out = np.zeros(emotion_p.shape[:-1] + (3,))
    for k, name in enumerate(emotion_names):
        out[..., EMOTION_VALENCE[name]] += emotion_p[..., k]
    return out


def unweighted_average_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean over the classes present in ``y_true`` of the share of that class predicted right (UAR)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in range(n_classes) if np.any(y_true == c)]
    return float(np.mean(recalls)) if recalls else float("nan")
