"""Baselines whose network is not the SIR-HCL one (MISA-style, the agreement classifiers): a :class:`PairNetwork`
brings its loss terms and anomaly score, :class:`NetworkTask` hands it to the one training loop
(:class:`~crossemo_core.training.Trainer`, with the same protocol as SIR-HCL: standardisation from training
statistics, the config's optimiser and schedule, best validation AUC kept, early stopping, refit, callbacks, stop),
and :class:`NetworkScorer` applies a verdict rule to the trained network's scores.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from crossemo_core.baselines.base import PairScores
from crossemo_core.config import ModelConfig
from crossemo_core.data.container import PairDataset
from crossemo_core.model import SIRHCL
from crossemo_core.training import TrainedNetwork


def branch_encoders(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """Fresh face and voice encoders (:class:`~crossemo_core.model.SequenceEncoder`, ``(B, L, d) -> (B, E)``) built
    exactly as SIR-HCL builds its branches, so every encoder option of ``config`` applies to the baselines too."""
    model = SIRHCL(config)
    return model.face_encoder, model.voice_encoder


class PairNetwork(nn.Module, ABC):
    """A two-branch network that trains on labelled pairs and scores pairs without labels."""

    @abstractmethod
    def losses(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor, y_face: Tensor,
               y_voice: Tensor) -> dict[str, Tensor]:
        """Loss terms of a batch (padded ``(B, L, d)`` sequences, ``(B,)`` lengths and labels); key ``"total"`` is
        the one optimised."""

    @abstractmethod
    def anomaly(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor) -> Tensor:
        """``(B,)`` anomaly score, higher = more likely inconsistent."""


@dataclass
class NetworkTask:
    """A :class:`PairNetwork` as a :class:`~crossemo_core.training.TrainingTask`. ``make`` builds a fresh network;
    the generator is seeded again right after it, so dropout draws the same numbers as the baselines' former loop
    and the published baseline results reproduce."""

    make: Callable[[], PairNetwork]
    seed: int

    def build(self) -> PairNetwork:
        network = self.make()
        torch.manual_seed(self.seed)  # inside the loop's seeded_build: its global generator is forked and locked
        return network

    def losses(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor,
               y_face: Tensor, y_voice: Tensor, twin: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        if twin is not None:
            raise ValueError("the baselines with their own networks do not train with voice twins (consistency 0).")
        terms = network.losses(face, face_lengths, voice, voice_lengths, y_face, y_voice)
        return {"total": terms["total"], **{k: v for k, v in terms.items() if k != "total"}}

    def anomaly(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor,
                voice_lengths: Tensor) -> np.ndarray:
        return network.anomaly(face, face_lengths, voice, voice_lengths).cpu().numpy()


@dataclass
class NetworkScorer:
    """A :class:`~crossemo_core.training.TrainedNetwork`'s anomaly scores with a verdict rule."""

    trained: TrainedNetwork
    verdict: Any

    def score(self, pairs: PairDataset) -> PairScores:
        return self.verdict.apply(self.trained.anomaly(pairs))

    @classmethod
    def fit(cls, trained: TrainedNetwork, verdict: Any, train: PairDataset, valid: PairDataset) -> NetworkScorer:
        verdict.fit(trained.anomaly(train), train.is_abnormal, trained.anomaly(valid), valid.is_abnormal)
        return cls(trained, verdict)
