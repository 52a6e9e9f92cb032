"""MISA/FDMER-style baseline (SIR-HCL paper ref. [29]; seed 004), two modalities.

Each modality's LSTM embedding ``z`` (the SIR-HCL encoders) is split into a *common* representation ``c = C(z)``
(one encoder shared by both modalities) and a *private* one ``p = P_m(z)`` (one per modality); both encoders are
Linear + Sigmoid as in MISA. Training loss:

    L = CE(head(c_face), y_face) + CE(head(c_voice), y_voice)          task (a shared classifier on common parts)
        + w_sim   CMD(c_face, c_voice)                                  MISA's similarity (modality-invariance)
        + w_diff  (orth(c_face, p_face) + orth(c_voice, p_voice))      MISA's difference (common vs private)
        + w_hsic  HSIC(p_face, p_voice)                                 FDMER's disparity (private vs private)
        + w_recon (MSE(D(c_face + p_face), z_face) + same for voice)   MISA's reconstruction (shared decoder D)

FDMER's adversarial modality discriminator is left out. As in the SIR-HCL paper, MISA does not detect anomalies by
itself: a pair's anomaly score is ``(1 - cos(c_face, c_voice)) / 2`` and the verdict the two-component Beta mixture.
Weights: MISA's MOSI setting (sim 1, diff 0.3, recon 1) and FDMER's constraint weight for HSIC (0.02).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from crossemo_core.baselines.base import Method
from crossemo_core.baselines.network import NetworkScorer, NetworkTask, PairNetwork, branch_encoders
from crossemo_core.baselines.verdicts import BetaMixtureVerdict
from crossemo_core.config import ModelConfig
from crossemo_core.data.container import PairDataset
from crossemo_core.training import TrainingControl
from crossemo_core.losses import central_moment_discrepancy, hsic, soft_orthogonality


class CommonPrivateNetwork(PairNetwork):
    """Two LSTM branches, a shared common encoder, private encoders, a shared decoder and class head."""

    def __init__(self, config: ModelConfig, sim_weight: float, diff_weight: float, hsic_weight: float,
                 recon_weight: float) -> None:
        super().__init__()
        e = config.embedding_size
        self.face_encoder, self.voice_encoder = branch_encoders(config)
        self.common = nn.Sequential(nn.Linear(e, e), nn.Sigmoid())
        self.private_face = nn.Sequential(nn.Linear(e, e), nn.Sigmoid())
        self.private_voice = nn.Sequential(nn.Linear(e, e), nn.Sigmoid())
        self.decoder = nn.Linear(e, e)
        self.head = nn.Linear(e, config.n_classes)
        self.weights = {"sim": sim_weight, "diff": diff_weight, "hsic": hsic_weight, "recon": recon_weight}

    def representations(self, face: Tensor, face_lengths: Tensor, voice: Tensor,
                        voice_lengths: Tensor) -> dict[str, Tensor]:
        """``(B, E)`` each: encoder outputs ``z_*``, common ``c_*`` and private ``p_*`` parts."""
        z_face, z_voice = self.face_encoder(face, face_lengths), self.voice_encoder(voice, voice_lengths)
        return {"z_face": z_face, "z_voice": z_voice, "c_face": self.common(z_face), "c_voice": self.common(z_voice),
                "p_face": self.private_face(z_face), "p_voice": self.private_voice(z_voice)}

    def losses(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor, y_face: Tensor,
               y_voice: Tensor) -> dict[str, Tensor]:
        r = self.representations(face, face_lengths, voice, voice_lengths)
        parts = {
            "task": F.cross_entropy(self.head(r["c_face"]), y_face) + F.cross_entropy(self.head(r["c_voice"]), y_voice),
            "sim": central_moment_discrepancy(r["c_face"], r["c_voice"]),
            "diff": soft_orthogonality(r["c_face"], r["p_face"]) + soft_orthogonality(r["c_voice"], r["p_voice"]),
            "hsic": hsic(r["p_face"], r["p_voice"]),
            "recon": (F.mse_loss(self.decoder(r["c_face"] + r["p_face"]), r["z_face"])
                      + F.mse_loss(self.decoder(r["c_voice"] + r["p_voice"]), r["z_voice"])),
        }
        parts["total"] = parts["task"] + sum(w * parts[k] for k, w in self.weights.items())
        return parts

    def anomaly(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor) -> Tensor:
        r = self.representations(face, face_lengths, voice, voice_lengths)
        return (1.0 - F.cosine_similarity(r["c_face"], r["c_voice"], dim=1, eps=1e-8)) / 2.0


@dataclass
class MISAMethod(Method):
    """Common/private representations; cosine of the common parts; Beta-mixture verdict."""

    sim_weight: float = 1.0
    diff_weight: float = 0.3
    hsic_weight: float = 0.02
    recon_weight: float = 1.0
    name: ClassVar[str] = "misa"
    title: ClassVar[str] = "MISA/FDMER-style"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> NetworkScorer:
        task = NetworkTask(lambda: CommonPrivateNetwork(self.config.model, self.sim_weight, self.diff_weight,
                                                        self.hsic_weight, self.recon_weight), self.config.train.seed)
        trained = self.trainer(control).train(task, train, valid)
        return NetworkScorer.fit(trained, BetaMixtureVerdict(var_floor=self.config.train.mixture_var_floor), train,
                                 valid)
