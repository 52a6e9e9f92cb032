"""One probability of inconsistency from two kinds of evidence, calibrated, in graded words.

The evidence for a clip:

- the **embedding**: SIR-HCL's cosine similarity of the face and voice embeddings (the clip's mean over its
  windows). Its Beta-mixture posterior is a steep function of it (80 % of posteriors beyond 0.02 / 0.98 on
  validation clips), so the combiner reads the similarity itself: a 100 ms shift of the audio moves the similarity a
  little, and the probability a little, instead of flipping a saturated posterior;
- the **readings**: the face reader's and the voice reader's valence probabilities, pooled over the judged windows,
  as the nine products ``p_face(f) * p_voice(v)``: how much the two readings put on each pair of valences. Each pair
  gets its own weight, so a pair the readers often get wrong counts for less (the voice reader reads many negative
  voices as positive: a negative face with a "positive" voice is weaker evidence of inconsistency than a neutral face
  with a "negative" voice). One disagreement number, ``1 - sum_v p_face(v) p_voice(v)``, weighed every pair the same
  (session 12, ``scripts/combiner_features_experiment.py``: validation log loss 0.574 -> 0.555 at scikit-learn's
  default C = 1, 0.544 at the chosen C = 3).

:class:`EvidenceCombiner` is a logistic regression (scikit-learn) over :data:`FEATURES` fitted on validation clips:
it weighs the two sources and is at the same time their Platt calibration. It is stored as JSON beside the clip
model, with the sha256 of every model whose outputs it was fitted on and, per pair of printed valences, how many
fitting clips were inconsistent (the verdict quotes it when it goes against its printed readings); it refuses to load
against other models. :data:`RULE` is the sentence that states it to users.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crossemo_core.errors import CheckpointError
from crossemo_core.paths import CHECKPOINTS, atomic_write
from crossemo_core.readers.reading import VALENCES

COMBINER_FORMAT = "crossemo-evidence-combiner/3"
DEFAULT_COMBINER = CHECKPOINTS / "clip_combiner.json"
PAIRS = tuple((f, v) for f in VALENCES for v in VALENCES)
"""(face valence, voice valence) pairs in the order of the reading features."""
FEATURES = ("similarity",) + tuple(f"face {f} x voice {v}" for f, v in PAIRS)


def pair_key(face_valence: str, voice_valence: str) -> str:
    """How the record of printed pairs names a pair: ``"negative/positive"`` (face, then voice)."""
    return f"{face_valence}/{voice_valence}"


PAIR_KEYS = frozenset(pair_key(f, v) for f, v in PAIRS)
RULE = ("The probability of inconsistency weighs two kinds of evidence, the similarity of the face and voice "
        "embeddings (SIR-HCL) and which valences the face and the voice readers report, each pair of readings "
        "weighted by how often it meant inconsistency on validation clips; fitted and calibrated on those clips.")
Outcome = Literal["consistent", "inconsistent", "undetermined"]
"""What a verdict, a window group or a segment says."""
Strength = Literal["weak", "moderate", "strong"]
"""How strong the evidence of a decided outcome is (:func:`strength`)."""
STRENGTH_BOUNDS = (0.65, 0.85)
"""P(inconsistent) from 0.5 up to 0.65 is weak evidence of inconsistency, up to 0.85 moderate, beyond strong
(mirrored below 0.5 for consistency)."""
SOURCES_DISAGREE = 0.35
"""The embedding and the readings "disagree" when one puts inconsistency above 0.5 + this and the other below
0.5 - this (the embedding's side is its Beta-mixture posterior, the readings' side their own calibrated
probability, :meth:`EvidenceCombiner.readings_only`)."""


def evidence_features(similarity: np.ndarray, face_valence: np.ndarray, voice_valence: np.ndarray) -> np.ndarray:
    """``(N,)`` embedding similarities, ``(N, 3)`` and ``(N, 3)`` valence probabilities -> ``(N, 10)`` rows of
    :data:`FEATURES`: the similarity, then ``p_face(f) * p_voice(v)`` for each pair of :data:`PAIRS`."""
    face_valence, voice_valence = np.atleast_2d(face_valence), np.atleast_2d(voice_valence)
    joint = (face_valence[:, :, None] * voice_valence[:, None, :]).reshape(len(face_valence), len(PAIRS))
    return np.column_stack([np.atleast_1d(np.asarray(similarity, dtype=np.float64)), joint])


def _printed_pairs(features: np.ndarray) -> list[tuple[str, str]]:
    """The (face, voice) valences a verdict prints for each row of :func:`evidence_features`: each side's top valence
    (its probabilities are the sums of the pair products over the other side)."""
    joint = np.asarray(features)[:, 1:].reshape(-1, len(VALENCES), len(VALENCES))
    return [(VALENCES[f], VALENCES[v]) for f, v in zip(joint.sum(2).argmax(1), joint.sum(1).argmax(1))]


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
            c: float = 3.0) -> "EvidenceCombiner":
        """Fit on validation clips: ``features`` ``(N, 10)`` from :func:`evidence_features`, labels ``(N,)`` 0/1;
        ``c``: scikit-learn's inverse regularisation strength (3: within 0.005 of the lowest out-of-fold log loss on
        the validation clips and the steadiest under remuxes and shifts, see
        ``scripts/combiner_features_experiment.py``)."""
        from sklearn.linear_model import LogisticRegression

        x, y = np.asarray(features, dtype=np.float64), np.asarray(inconsistent, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) != len(y):
            raise ValueError(f"features must be (N, {len(FEATURES)}) with N labels; got {x.shape} and {y.shape}")
        if not np.all(np.isfinite(x)) or set(np.unique(y)) != {0, 1}:
            raise ValueError("features must be finite and labels must hold both 0 and 1")
        full = LogisticRegression(C=c, max_iter=1000).fit(x, y)
        readings = LogisticRegression(C=c, max_iter=1000).fit(x[:, 1:], y)
        pairs: dict[str, list[int]] = {}
        for (face, voice), label in zip(_printed_pairs(x), y):
            counts = pairs.setdefault(pair_key(face, voice), [0, 0])
            counts[0] += 1
            counts[1] += int(label)
        return cls(full.coef_[0], float(full.intercept_[0]), readings.coef_[0], float(readings.intercept_[0]),
                   dict(fitted_on or {}, n=int(len(y)), c=c, printed_pairs=pairs))

    def pair_record(self, face_valence: str, voice_valence: str) -> tuple[int, int] | None:
        """``(clips, inconsistent clips)`` among the fitting clips that printed this pair of valences (None when
        none did)."""
        counts = self.fitted_on.get("printed_pairs", {}).get(pair_key(face_valence, voice_valence))
        return (int(counts[0]), int(counts[1])) if counts else None

    def probability(self, features: np.ndarray) -> np.ndarray:
        """``(N, 10)`` -> ``(N,)`` calibrated P(inconsistent)."""
        return 1 / (1 + np.exp(-(np.asarray(features) @ self.coef + self.intercept)))

    def readings_only(self, features: np.ndarray) -> np.ndarray:
        """``(N, 10)`` -> ``(N,)`` P(inconsistent) from the readings alone (same calibration data)."""
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
            pairs = out.fitted_on.get("printed_pairs", {})
            if not isinstance(pairs, dict) or not all(
                    k in PAIR_KEYS and isinstance(c, list) and len(c) == 2
                    and all(type(i) is int for i in c) and 0 <= c[1] <= c[0] for k, c in pairs.items()):
                raise ValueError("its record of printed valence pairs is malformed")
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            # UnicodeDecodeError and JSONDecodeError are ValueErrors; a huge integer overflows a float, deep nesting
            # exhausts the parser's recursion
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


def combine_evidence(combiner: EvidenceCombiner | None, similarity: np.ndarray, p_embedding: np.ndarray,
                     face_valence: np.ndarray, voice_valence: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N,)`` calibrated P(inconsistent) from both sources and ``(N,)`` from the readings alone; without a
    combiner the embedding's posterior ``p_embedding`` as it is, and None."""
    if combiner is None:
        return np.asarray(p_embedding, float), None
    x = evidence_features(similarity, face_valence, voice_valence)
    return combiner.probability(x), combiner.readings_only(x)


def strength(p_inconsistent: float) -> Strength:
    """``"weak"``, ``"moderate"`` or ``"strong"``: how far ``p_inconsistent`` is from 0.5 (:data:`STRENGTH_BOUNDS`)."""
    far = max(p_inconsistent, 1 - p_inconsistent)
    return "weak" if far < STRENGTH_BOUNDS[0] else "moderate" if far < STRENGTH_BOUNDS[1] else "strong"


def sources_disagree(p_embedding: float, p_readings: float) -> bool:
    lo, hi = 0.5 - SOURCES_DISAGREE, 0.5 + SOURCES_DISAGREE
    return (p_embedding >= hi and p_readings <= lo) or (p_embedding <= lo and p_readings >= hi)
