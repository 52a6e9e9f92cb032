"""One probability of inconsistency from two kinds of evidence, calibrated, in graded words.

The evidence for a clip:

- the **embedding**: SIR-HCL's cosine similarity of the face and voice embeddings (the clip's mean over its
  windows). Its Beta-mixture posterior is a steep function of it (80 % of posteriors beyond 0.02 / 0.98 on
  validation clips), so the combiner reads the similarity itself: a 100 ms shift of the audio moves the similarity a
  little, and the probability a little, instead of flipping a saturated posterior;
- the **readings**: the face reader's and the voice reader's valence probabilities, pooled over the judged windows.
  Their *disagreement* is ``1 - sum_v p_face(v) * p_voice(v)``: the chance that two independent draws, one from
  each reading, name different valences.

:class:`EvidenceCombiner` is a logistic regression (scikit-learn) over ``[similarity, disagreement, face
confidence, voice confidence]`` fitted on validation clips: it weighs the two sources and is at the same time
their Platt calibration. It is stored as JSON beside the clip model, with the sha256 of every model whose outputs it
was fitted on, and refuses to load against other models. :data:`RULE` is the sentence that states it to users.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossemo_core.errors import CheckpointError
from crossemo_core.paths import CHECKPOINTS, atomic_write

COMBINER_FORMAT = "crossemo-evidence-combiner/2"
DEFAULT_COMBINER = CHECKPOINTS / "clip_combiner.json"
FEATURES = ("similarity", "disagreement", "face_confidence", "voice_confidence")
RULE = ("The probability of inconsistency weighs two kinds of evidence, the similarity of the face and voice "
        "embeddings (SIR-HCL) and how much the face's and the voice's own valence readings disagree, with weights "
        "fitted and calibrated on validation clips.")
STRENGTH_BOUNDS = (0.65, 0.85)
"""P(inconsistent) from 0.5 up to 0.65 is weak evidence of inconsistency, up to 0.85 moderate, beyond strong
(mirrored below 0.5 for consistency)."""
SOURCES_DISAGREE = 0.35
"""The embedding and the readings "disagree" when one puts inconsistency above 0.5 + this and the other below
0.5 - this (the embedding's side is its Beta-mixture posterior, the readings' side their own calibrated
probability, :meth:`EvidenceCombiner.readings_only`)."""


def disagreement(face_valence: np.ndarray, voice_valence: np.ndarray) -> np.ndarray:
    """``(..., 3)`` and ``(..., 3)`` valence probabilities -> ``(...)`` ``1 - sum_v p_face(v) p_voice(v)`` in [0, 1]."""
    return 1.0 - np.sum(np.asarray(face_valence) * np.asarray(voice_valence), axis=-1)


def evidence_features(similarity: np.ndarray, face_valence: np.ndarray, voice_valence: np.ndarray) -> np.ndarray:
    """``(N,)`` embedding similarities, ``(N, 3)`` and ``(N, 3)`` valence probabilities -> ``(N, 4)`` rows of
    :data:`FEATURES`."""
    face_valence, voice_valence = np.atleast_2d(face_valence), np.atleast_2d(voice_valence)
    return np.column_stack([np.atleast_1d(np.asarray(similarity, dtype=np.float64)),
                            disagreement(face_valence, voice_valence), face_valence.max(axis=1),
                            voice_valence.max(axis=1)])


@dataclass
class EvidenceCombiner:
    """``p = sigmoid(features @ coef + intercept)``; ``readings_coef`` / ``readings_intercept`` are the same model
    fitted on the reading features alone (used to say when the two sources disagree)."""

    coef: np.ndarray
    intercept: float
    readings_coef: np.ndarray
    readings_intercept: float
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, features: np.ndarray, inconsistent: np.ndarray, fitted_on: dict[str, Any] | None = None,
            c: float = 1.0) -> "EvidenceCombiner":
        """Fit on validation clips: ``features`` ``(N, 4)`` from :func:`evidence_features`, labels ``(N,)`` 0/1."""
        from sklearn.linear_model import LogisticRegression

        x, y = np.asarray(features, dtype=np.float64), np.asarray(inconsistent, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y):
            raise ValueError(f"features must be (N, {len(FEATURES)}) with N labels; got {x.shape} and {y.shape}")
        if not np.all(np.isfinite(x)) or set(np.unique(y)) != {0, 1}:
            raise ValueError("features must be finite and labels must hold both 0 and 1")
        full = LogisticRegression(C=c, max_iter=1000).fit(x, y)
        readings = LogisticRegression(C=c, max_iter=1000).fit(x[:, 1:], y)
        return cls(full.coef_[0], float(full.intercept_[0]), readings.coef_[0], float(readings.intercept_[0]),
                   dict(fitted_on or {}, n=int(len(y))))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``(N, 4)`` -> ``(N,)`` calibrated P(inconsistent)."""
        return 1 / (1 + np.exp(-(np.asarray(features) @ self.coef + self.intercept)))

    def readings_only(self, features: np.ndarray) -> np.ndarray:
        """``(N, 4)`` -> ``(N,)`` P(inconsistent) from the readings alone (same calibration data)."""
        return 1 / (1 + np.exp(-(np.asarray(features)[:, 1:] @ self.readings_coef + self.readings_intercept)))

    def to_dict(self) -> dict[str, Any]:
        return {"format": COMBINER_FORMAT, "features": list(FEATURES), "coef": self.coef.tolist(),
                "intercept": self.intercept, "readings_coef": self.readings_coef.tolist(),
                "readings_intercept": self.readings_intercept, "rule": RULE, "fitted_on": self.fitted_on}

    def save(self, path: str | Path = DEFAULT_COMBINER) -> Path:
        return atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path: str | Path = DEFAULT_COMBINER, models: dict[str, str] | None = None) -> "EvidenceCombiner":
        """Read ``path``; ``models`` (name -> sha256) must match the models it was fitted on."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            if not isinstance(d, dict) or d.get("format") != COMBINER_FORMAT or tuple(d["features"]) != FEATURES:
                raise CheckpointError(f"{path} is not an evidence combiner ({COMBINER_FORMAT}).")
            out = cls(np.asarray(d["coef"], float), float(d["intercept"]), np.asarray(d["readings_coef"], float),
                      float(d["readings_intercept"]), d.get("fitted_on", {}))
            if out.coef.shape != (len(FEATURES),) or out.readings_coef.shape != (len(FEATURES) - 1,) or not \
                    np.isfinite(np.r_[out.coef, out.readings_coef, out.intercept, out.readings_intercept]).all() or \
                    not isinstance(out.fitted_on, dict) or not isinstance(out.fitted_on.get("models", {}), dict):
                raise ValueError("coefficients of the wrong shape, not finite, or no record of the fitted models")
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError too
            why = " ".join(str(exc).split())[:160]
            raise CheckpointError(f"{path} is not a readable evidence combiner ({type(exc).__name__}"
                                  f"{': ' + why if why else ''}).") from None
        for name, sha in (models or {}).items():
            fitted = out.fitted_on.get("models", {}).get(name)
            if fitted != sha:
                raise CheckpointError(f"{path.name} was fitted on another {name} (sha256 {str(fitted)[:12]}, this "
                                      f"one {sha[:12]}); refit it with: python scripts/eval_clip_heldapart.py "
                                      "--part valid --fit-combiner checkpoints/clip_combiner.json --stability-every 0 "
                                      "--out docs/clip_valid.json")
        return out


def strength(p_inconsistent: float) -> str:
    """``"weak"``, ``"moderate"`` or ``"strong"``: how far ``p_inconsistent`` is from 0.5 (:data:`STRENGTH_BOUNDS`)."""
    far = max(p_inconsistent, 1 - p_inconsistent)
    return "weak" if far < STRENGTH_BOUNDS[0] else "moderate" if far < STRENGTH_BOUNDS[1] else "strong"


def sources_disagree(p_embedding: float, p_readings: float) -> bool:
    lo, hi = 0.5 - SOURCES_DISAGREE, 0.5 + SOURCES_DISAGREE
    return (p_embedding >= hi and p_readings <= lo) or (p_embedding <= lo and p_readings >= hi)
