"""TN-BCL baseline (seed 001): bi-quintuple hinge loss on the shared-residual two-branch network, the Youden-index
threshold on the validation split, and the per-modality kNN "atypical input" gate.

The gate (TN-BCL eq. 5 and the text after it): a ball tree over the embeddings of the validation split's *normal*
pairs, one per modality; an input's atypicality is its mean Euclidean distance to its ``k`` nearest reference
points; the threshold is the ``1 - contamination`` quantile of the reference points' own (leave-one-out) distances.
A pair whose face or voice is atypical is abnormal whatever its cross-modal score (TN-BCL's attribute and mixed
anomalies; our corpora have none, so the gate should rarely fire). TN-BCL computes the gate on a separate top branch;
here it reads the same residual embeddings as the cross-modal score. ``crossemo_core.clip.gate.KnnGate`` is the
shipped clip model's variant (prototypes instead of samples).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from crossemo_core.baselines.base import CosineScorer, Method
from crossemo_core.baselines.verdicts import YoudenThreshold
from crossemo_core.data.container import PairDataset
from crossemo_core.losses import BiQuintupleLoss, QuintupleMining
from crossemo_core.training import TrainingControl


@dataclass
class KnnAtypicalGate:
    """Per-modality kNN distance gate (see the module docstring)."""

    k: int = 5
    contamination: float = 0.001
    thresholds: dict[str, float] = field(default_factory=dict)
    _trees: dict[str, object] = field(default_factory=dict, repr=False)

    def fit(self, face: np.ndarray, voice: np.ndarray) -> KnnAtypicalGate:
        """Reference embeddings ``(N, E)`` of each modality (N >= 2)."""
        from sklearn.neighbors import NearestNeighbors

        if not 0.0 <= self.contamination < 1.0:
            raise ValueError(f"contamination must lie in [0, 1), got {self.contamination}")
        for modality, x in (("face", face), ("voice", voice)):
            x = np.asarray(x, dtype=np.float64)
            k = min(self.k, len(x) - 1)
            tree = NearestNeighbors(n_neighbors=k + 1, algorithm="ball_tree").fit(x)
            own, _ = tree.kneighbors(x)  # column 0 is the point itself (distance 0)
            self.thresholds[modality] = float(np.quantile(own[:, 1:].mean(1), 1.0 - self.contamination))
            self._trees[modality] = tree
        return self

    def distance(self, x: np.ndarray, modality: str) -> np.ndarray:
        """``(N,)`` mean distance of each row of ``x`` to its k nearest reference embeddings of ``modality``."""
        tree = self._trees[modality]
        dist, _ = tree.kneighbors(np.asarray(x, dtype=np.float64), n_neighbors=tree.n_neighbors - 1)
        return dist.mean(1)

    def atypical(self, face: np.ndarray, voice: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: the face or the voice embedding lies beyond its modality's threshold."""
        return ((self.distance(face, "face") > self.thresholds["face"])
                | (self.distance(voice, "voice") > self.thresholds["voice"]))


@dataclass
class TNBCLMethod(Method):
    """Bi-quintuple loss (``gamma0``, ``gamma``, ``mining`` "hard" or the printed "literal"), Youden threshold,
    kNN gate (``use_gate``, ``gate_k``, ``gate_contamination``)."""

    gamma0: float = 1.0
    gamma: float = 0.2
    mining: QuintupleMining = "hard"
    use_gate: bool = True
    gate_k: int = 5
    gate_contamination: float = 0.001
    name: ClassVar[str] = "tn-bcl"
    title: ClassVar[str] = "TN-BCL"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> CosineScorer:
        criterion = BiQuintupleLoss(self.gamma0, self.gamma, self.mining)
        detector = self.trainer(control, criterion).fit(train, valid).detector
        gate = None
        if self.use_gate:
            face, voice = detector.embed(valid.subset(np.flatnonzero(~valid.is_abnormal)))
            gate = KnnAtypicalGate(self.gate_k, self.gate_contamination).fit(face, voice)
        return CosineScorer.fit(detector, YoudenThreshold(), train, valid, gate=gate)
