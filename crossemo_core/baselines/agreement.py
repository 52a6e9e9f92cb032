"""The simple agreement baseline (SIR-HCL paper, section III: "a single-modal classifier on visual data or audio
data"): one classifier per modality predicts the affective class, and a pair is inconsistent when the two are
unlikely to agree:

    anomaly = 1 - sum_c p_face(c) p_voice(c)

(the probability that independent draws from the two predicted distributions differ). Verdict: abnormal when that
probability is >= 0.5. The branches are the SIR-HCL encoders (LSTM -> Linear -> dropout), each with its own
ReLU + Linear class head; no shared layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from crossemo_core.baselines.base import Method
from crossemo_core.baselines.network import NetworkScorer, NetworkTask, PairNetwork, branch_encoders
from crossemo_core.baselines.verdicts import FixedThreshold
from crossemo_core.config import ModelConfig
from crossemo_core.data.container import PairDataset
from crossemo_core.training import TrainingControl


class AgreementNetwork(PairNetwork):
    """A face classifier and a voice classifier, trained with cross-entropy on each side's own label."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        e = config.embedding_size
        self.face_encoder, self.voice_encoder = branch_encoders(config)
        self.face_head = nn.Sequential(nn.ReLU(), nn.Linear(e, config.n_classes))
        self.voice_head = nn.Sequential(nn.ReLU(), nn.Linear(e, config.n_classes))

    def logits(self, face: Tensor, face_lengths: Tensor, voice: Tensor,
               voice_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits ``(B, C)`` of each modality."""
        return (self.face_head(self.face_encoder(face, face_lengths)),
                self.voice_head(self.voice_encoder(voice, voice_lengths)))

    def losses(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor, y_face: Tensor,
               y_voice: Tensor) -> dict[str, Tensor]:
        face_logits, voice_logits = self.logits(face, face_lengths, voice, voice_lengths)
        parts = {"face": F.cross_entropy(face_logits, y_face), "voice": F.cross_entropy(voice_logits, y_voice)}
        parts["total"] = parts["face"] + parts["voice"]
        return parts

    def anomaly(self, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor) -> Tensor:
        face_logits, voice_logits = self.logits(face, face_lengths, voice, voice_lengths)
        return 1.0 - (face_logits.softmax(1) * voice_logits.softmax(1)).sum(1)


@dataclass
class AgreementMethod(Method):
    """Two classifiers; ``1 - sum_c p_face(c) p_voice(c)``; abnormal when >= ``threshold``."""

    threshold: float = 0.5
    name: ClassVar[str] = "agreement"
    title: ClassVar[str] = "Agreement (2 classifiers)"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> NetworkScorer:
        task = NetworkTask(lambda: AgreementNetwork(self.config.model), self.config.train.seed)
        trained = self.trainer(control).train(task, train, valid)
        return NetworkScorer.fit(trained, FixedThreshold(self.threshold), train, valid)
