"""NCR-style baseline (SIR-HCL paper ref. [33], Noisy Correspondence Rectification): hardest-negative soft-margin
triplet training, then a two-component Gaussian mixture on each pair's loss splits consistent from inconsistent
pairs (NCR's clean / noisy division).

A pair's loss at scoring time needs no labels: its own face and voice are the positive and the hardest negatives
are the most similar voices / faces among the training set's normal pairs
(:func:`~crossemo_core.losses.bank_pair_loss`). The mixture is fitted without labels on the training pairs'
losses (each excluding itself from the bank), as NCR does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from crossemo_core.baselines.base import Method, PairScores
from crossemo_core.baselines.verdicts import GaussianMixtureVerdict
from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector
from crossemo_core.losses import SoftMarginTripletLoss, bank_pair_loss
from crossemo_core.training import TrainingControl


@dataclass
class BankLossScorer:
    """Per-pair soft-margin triplet loss against a bank of normal training pairs ``(M, E)``, then the mixture."""

    detector: Detector
    bank_face: np.ndarray
    bank_voice: np.ndarray
    margin: float
    temperature: float
    verdict: GaussianMixtureVerdict

    def anomaly(self, pairs: PairDataset, exclude: np.ndarray | None = None) -> np.ndarray:
        """``(N,)`` per-pair losses; ``exclude[i]`` is a bank row pair ``i`` may not use as a negative (-1: none)."""
        face, voice = self.detector.embed(pairs)
        loss = bank_pair_loss(torch.from_numpy(face), torch.from_numpy(voice), torch.from_numpy(self.bank_face),
                              torch.from_numpy(self.bank_voice), self.margin, self.temperature,
                              None if exclude is None else torch.from_numpy(exclude))
        return loss.numpy().astype(np.float64)

    def score(self, pairs: PairDataset) -> PairScores:
        return self.verdict.apply(self.anomaly(pairs))


@dataclass
class NCRMethod(Method):
    """Soft-margin (``temperature``) hardest-triplet loss with ``margin``; Gaussian-mixture verdict."""

    margin: float = 0.2
    temperature: float = 0.05
    name: ClassVar[str] = "ncr"
    revision: ClassVar[int] = 2  # 2: the pair's own partner is the positive (1: hardest same-class partner)
    title: ClassVar[str] = "NCR-style"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> BankLossScorer:
        criterion = SoftMarginTripletLoss(self.margin, self.temperature)
        detector = self.trainer(control, criterion).fit(train, valid).detector
        normal = np.flatnonzero(~train.is_abnormal)
        face, voice = detector.embed(train.subset(normal))
        verdict = GaussianMixtureVerdict(seed=self.config.train.seed)
        scorer = BankLossScorer(detector, face, voice, self.margin, self.temperature, verdict)
        own_row = np.full(len(train), -1, dtype=np.int64)
        own_row[normal] = np.arange(len(normal))
        train_loss = scorer.anomaly(train, exclude=own_row)
        verdict.fit(train_loss, train.is_abnormal, scorer.anomaly(valid), valid.is_abnormal)
        return scorer
