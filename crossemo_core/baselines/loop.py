"""Training loop for baselines whose network is not the SIR-HCL one (MISA-style, the agreement classifiers).

Same protocol as :class:`~crossemo_core.training.Trainer`: features standardised with training statistics, the
config's optimiser, learning-rate steps, batch size and epochs, the weights of the best validation AUC (of the
network's own anomaly score) kept, early stopping after ``patience`` epochs without improvement, and with
``refit`` a second run from the same initial weights on train + valid for the selected number of epochs.
"""
from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from crossemo_core.baselines.base import PairScores
from crossemo_core.batching import FeatureNormalizer, PairTensors
from crossemo_core.config import ExperimentConfig, ModelConfig
from crossemo_core.data.container import PairDataset, concatenate
from crossemo_core.evaluation import detection_metrics
from crossemo_core.model import SIRHCL
from crossemo_core.training import _make_optimizer, resolve_device, seed_everything, training_tensors

SCORING_BATCH = 1024


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
class TrainedNetwork:
    """A trained :class:`PairNetwork` (eval mode, CPU) with the normalisation it was trained with."""

    network: PairNetwork
    normalizer: FeatureNormalizer
    best_epoch: int
    best_valid_auc: float
    epochs_run: int

    @torch.no_grad()
    def anomaly(self, data: PairDataset) -> np.ndarray:
        """``(N,)`` anomaly scores of every pair of ``data``."""
        return network_anomaly(self.network, PairTensors.build(data, self.normalizer), torch.device("cpu"))


@torch.no_grad()
def network_anomaly(network: PairNetwork, tensors: PairTensors, device: torch.device) -> np.ndarray:
    network.eval()
    out = []
    for index in tensors.batches(SCORING_BATCH, shuffle=False, drop_singletons=False):
        face, fl, voice, vl, _, _ = tensors.batch(index, device)
        out.append(network.anomaly(face, fl, voice, vl).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def train_network(network: PairNetwork, train: PairDataset, valid: PairDataset,
                  config: ExperimentConfig) -> TrainedNetwork:
    """Fit ``network`` on ``train``, selecting the epoch of best validation AUC (see the module docstring); with
    ``config.train.refit``, then retrain it from the same initial weights on train + valid for that many epochs."""
    initial = copy.deepcopy(network.state_dict())
    normalizer, best_epoch, best_auc, epochs_run = _train_epochs(network, train, valid, config, config.train.epochs)
    if config.train.refit:
        network.load_state_dict(initial)
        normalizer, _, _, _ = _train_epochs(network, concatenate([train, valid], name=train.name), None, config,
                                            best_epoch)
    network.cpu().eval()
    return TrainedNetwork(network, normalizer, best_epoch, best_auc, epochs_run)


def _train_epochs(network: PairNetwork, train: PairDataset, valid: PairDataset | None, config: ExperimentConfig,
                  epochs: int) -> tuple[FeatureNormalizer, int, float, int]:
    """Up to ``epochs`` epochs; with ``valid``, early stopping and the best epoch's weights restored, without it the
    last weights kept. Returns (normalisation of ``train``, best epoch, its validation AUC, epochs run)."""
    cfg = config.train
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    normalizer, train_t, valid_t = training_tensors(config, train, valid)
    network = network.to(device)
    optimizer = _make_optimizer(network, config)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    generator = torch.Generator().manual_seed(cfg.seed)
    best_auc, best_epoch, best_state, since_best, epochs_run = -math.inf, 0, None, 0, 0
    for epoch in range(1, epochs + 1):
        network.train()
        for index in train_t.batches(cfg.batch_size, shuffle=True, generator=generator):
            face, fl, voice, vl, yf, yv = train_t.batch(index, device)
            total = network.losses(face, fl, voice, vl, yf, yv)["total"]
            if not torch.isfinite(total):
                raise FloatingPointError(f"the loss became {total.item()} at epoch {epoch}; lower the learning rate.")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
            optimizer.step()
        scheduler.step()
        epochs_run = epoch
        if valid_t is None:
            best_epoch = epoch
            continue
        anomaly = network_anomaly(network, valid_t, device)
        auc = detection_metrics(valid.is_abnormal, anomaly, anomaly > np.median(anomaly))["auc"]
        if best_epoch == 0 or auc > best_auc:
            best_auc, best_epoch, best_state, since_best = auc, epoch, copy.deepcopy(network.state_dict()), 0
        else:
            since_best += 1
            if since_best >= cfg.patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    return normalizer, best_epoch, float(best_auc), epochs_run


@dataclass
class NetworkScorer:
    """A :class:`TrainedNetwork`'s anomaly scores with a verdict rule."""

    trained: TrainedNetwork
    verdict: Any

    def score(self, pairs: PairDataset) -> PairScores:
        return self.verdict.apply(self.trained.anomaly(pairs))

    @classmethod
    def fit(cls, trained: TrainedNetwork, verdict: Any, train: PairDataset, valid: PairDataset) -> NetworkScorer:
        verdict.fit(trained.anomaly(train), train.is_abnormal, trained.anomaly(valid), valid.is_abnormal)
        return cls(trained, verdict)
