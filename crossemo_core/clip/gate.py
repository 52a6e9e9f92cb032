"""The atypical-input gate: is a face (or a voice) embedding unlike anything the clip model saw in training?

After TN-BCL (seed 001, "ball-tree based k-NN"): the mean distance of an embedding to its k nearest neighbours
in a reference set, against a threshold set on in-distribution validation data at a small contamination. Two
choices are ours:

- **[ours] prototypes instead of training samples.** The reference set is ``n_prototypes`` k-means centroids of the
  L2-normalised training embeddings of each modality, not the embeddings themselves: a shipped checkpoint must not
  carry per-sample data derived from the training corpora, and 64 centroids make the search trivially fast.
- **[ours] contamination 0.01** (TN-BCL suggests 0.001): the threshold is the 99th percentile of the validation
  windows' distances, since a few hundred validation windows cannot resolve a 99.9th percentile.

One gate per modality; a window is atypical when either of its two embeddings is beyond its threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MODALITIES = ("face", "voice")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class KnnGate:
    """Per-modality prototypes ``(P, E)`` and thresholds on the mean distance to the ``k`` nearest prototypes."""

    prototypes: dict[str, np.ndarray]
    thresholds: dict[str, float]
    k: int = 3
    contamination: float = 0.01

    def __post_init__(self) -> None:
        if self.k < 1 or not 0 <= self.contamination < 1:
            raise ValueError(f"k must be at least 1 and contamination in [0, 1); got {self.k}, {self.contamination}")
        if set(self.prototypes) != set(MODALITIES) or set(self.thresholds) != set(MODALITIES):
            raise ValueError(f"prototypes and thresholds are needed for {', '.join(MODALITIES)}")
        for modality, p in self.prototypes.items():
            if p.ndim != 2 or len(p) == 0 or not np.isfinite(p).all() or not np.isfinite(self.thresholds[modality]):
                raise ValueError(f"the {modality} prototypes or threshold are empty or not finite")

    def distance(self, embeddings: np.ndarray, modality: str) -> np.ndarray:
        """``(N,)`` mean Euclidean distance of the L2-normalised embeddings to their ``k`` nearest prototypes."""
        e = _unit(embeddings)
        p = self.prototypes[modality]
        d = np.sqrt(np.maximum((e ** 2).sum(1)[:, None] - 2 * e @ p.T + (p ** 2).sum(1)[None, :], 0.0))
        k = min(self.k, p.shape[0])
        return np.sort(d, axis=1)[:, :k].mean(1)

    def atypical(self, embeddings: np.ndarray, modality: str) -> np.ndarray:
        return self.distance(embeddings, modality) > self.thresholds[modality]

    @classmethod
    def fit(cls, train: dict[str, np.ndarray], valid: dict[str, np.ndarray], n_prototypes: int = 64, k: int = 3,
            contamination: float = 0.01, seed: int = 0) -> "KnnGate":
        from sklearn.cluster import KMeans

        prototypes = {}
        for m in MODALITIES:
            km = KMeans(n_clusters=min(n_prototypes, len(train[m])), n_init=4, random_state=seed).fit(_unit(train[m]))
            prototypes[m] = km.cluster_centers_.astype(np.float64)
        gate = cls(prototypes=prototypes, thresholds={m: 0.0 for m in MODALITIES}, k=k, contamination=contamination)
        for m in MODALITIES:
            gate.thresholds[m] = float(np.quantile(gate.distance(valid[m], m), 1.0 - contamination))
        return gate

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "contamination": self.contamination, "thresholds": dict(self.thresholds),
                "prototypes": {m: np.round(p, 5).tolist() for m, p in self.prototypes.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KnnGate":
        return cls(prototypes={m: np.asarray(p, dtype=np.float64) for m, p in d["prototypes"].items()},
                   thresholds={m: float(t) for m, t in d["thresholds"].items()}, k=int(d["k"]),
                   contamination=float(d["contamination"]))
