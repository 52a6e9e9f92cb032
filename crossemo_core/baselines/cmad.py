"""CMAD-style baseline (SIR-HCL paper ref. [20]): a deep structured embedding learnt with triplet losses, then a
fixed similarity threshold: a pair is abnormal when the cosine of its face and voice embeddings is below it.

The network is SIR-HCL's (two LSTM branches, shared residual block), so only the loss and the verdict differ.
The paper applies "the same similarity threshold value" to CMAD and NCR without giving it; **[ours]** cos 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crossemo_core.baselines.base import CosineScorer, Method
from crossemo_core.baselines.verdicts import FixedThreshold
from crossemo_core.data.container import PairDataset
from crossemo_core.losses import StructuredTripletLoss
from crossemo_core.training import TrainingControl


@dataclass
class CMADMethod(Method):
    """Batch-all cross- and intra-modal triplet loss (``margin``), fixed cosine threshold ``similarity_threshold``."""

    margin: float = 0.2
    intra_weight: float = 1.0
    similarity_threshold: float = 0.5
    name: ClassVar[str] = "cmad"
    title: ClassVar[str] = "CMAD-style"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> CosineScorer:
        criterion = StructuredTripletLoss(self.margin, self.intra_weight)
        detector = self.trainer(control, criterion).fit(train, valid).detector
        verdict = FixedThreshold((1.0 - self.similarity_threshold) / 2.0)  # cos < t  <=>  (1 - cos) / 2 > (1 - t) / 2
        return CosineScorer.fit(detector, verdict, train, valid)
