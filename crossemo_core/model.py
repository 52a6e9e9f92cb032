"""The SIR-HCL network (method.md, "Network").

Face and voice branches: one single-direction LSTM each; a sequence's hidden state at its own last true step (the
padding after it never reaches the embedding) -> Linear -> embedding, dropout. A shared residual block
r(x) = ReLU(x + eta * FC(x)) with one learnable scalar eta, and a classifier head shared by both modalities (for
L_share).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from crossemo_core.config import ModelConfig


class SeededDropout(nn.Module):
    """Dropout that draws its masks from its own ``generator`` when one is set (the training loop sets one per run,
    so concurrent runs in one process never share a random stream), else from torch's global generator. Same
    masks and scaling as :class:`torch.nn.Dropout` given the same generator state."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            return nn.functional.dropout(x, self.p, True)
        noise = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * noise.div_(1.0 - self.p)


def use_generator(network: nn.Module, generator: torch.Generator | None) -> None:
    """Make every :class:`SeededDropout` of ``network`` draw from ``generator`` (None: the global one)."""
    for module in network.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator


GLOBAL_RNG_LOCK = threading.Lock()
"""Held while a network is built from torch's global generator, so two runs in one process never draw from it at
the same time (:func:`seeded_build`)."""


def seeded_build(build: Callable[[], nn.Module], seed: int,
                 device: torch.device) -> tuple[nn.Module, torch.Generator]:
    """``build()`` with torch's global generator seeded by ``seed`` (and restored afterwards), under
    :data:`GLOBAL_RNG_LOCK`; returns the network on ``device`` and a generator for its dropout that continues the
    seeded stream. Training draws from nothing global, so concurrent runs (threads, app sessions) give exactly
    the numbers they give alone, and the numbers equal those of one global seed per run."""
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build()
        state = torch.get_rng_state()
    if device.type == "cpu":
        generator = torch.Generator()
        generator.set_state(state)
    else:
        generator = torch.Generator(device=device).manual_seed(seed)
    return network.to(device), generator


class SequenceEncoder(nn.Module):
    """LSTM over a padded batch ``(B, L, d)`` with true ``lengths`` ``(B,)`` -> embedding ``(B, E)``."""

    def __init__(self, input_dim: int, hidden_size: int, embedding_size: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_size, batch_first=True)
        self.project = nn.Linear(hidden_size, embedding_size)
        self.dropout = SeededDropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # The LSTM runs over the whole padded batch and each sequence's state is taken at its last true step: the
        # same as a packed sequence's final state (padding comes after it; to ~1e-7), and faster on CPU, where a
        # packed batch is stepped in shrinking sub-batches (benchmarks/bench_core.py, sequences of 5-50 steps:
        # 1.9x per training epoch, ~1.1x scoring).
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]):
            raise ValueError(f"sequence lengths must be in 1..{x.shape[1]}, got {int(lengths.min())}.."
                             f"{int(lengths.max())}")
        out, _ = self.lstm(x)
        last = out[torch.arange(len(lengths), device=x.device), lengths.to(x.device).long() - 1]
        return self.dropout(self.project(last))


class SharedResidualBlock(nn.Module):
    """Eq. 2: ``ReLU(x + eta * FC(x))`` with one learnable ``eta`` shared by both modalities."""

    def __init__(self, size: int, eta_init: float) -> None:
        super().__init__()
        self.fc = nn.Linear(size, size)
        self.eta = nn.Parameter(torch.tensor(float(eta_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.eta * self.fc(x))


@dataclass
class PairOutput:
    """Network outputs for a batch of B pairs: residual embeddings ``(B, E)`` and class logits ``(B, C)``."""

    face: torch.Tensor
    voice: torch.Tensor
    face_logits: torch.Tensor
    voice_logits: torch.Tensor

    def similarity(self) -> torch.Tensor:
        """``(B,)`` cosine similarity of each pair's face and voice embeddings."""
        return nn.functional.cosine_similarity(self.face, self.voice, dim=1, eps=1e-8)


class SIRHCL(nn.Module):
    """Dual-branch LSTM network with a shared residual block and a shared classifier head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.face_encoder = SequenceEncoder(config.face_dim, config.hidden_size, config.embedding_size, config.dropout)
        self.voice_encoder = SequenceEncoder(config.voice_dim, config.hidden_size, config.embedding_size,
                                             config.dropout)
        self.residual = SharedResidualBlock(config.embedding_size, config.eta_init)
        self.classifier = nn.Linear(config.embedding_size, config.n_classes)

    def embed_face(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Face sequences ``(B, L, d_face)`` -> residual embeddings ``(B, E)``."""
        return self.residual(self.face_encoder(x, lengths))

    def embed_voice(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Voice sequences ``(B, L, d_voice)`` -> residual embeddings ``(B, E)``."""
        return self.residual(self.voice_encoder(x, lengths))

    def forward(self, face: torch.Tensor, face_lengths: torch.Tensor, voice: torch.Tensor,
                voice_lengths: torch.Tensor) -> PairOutput:
        v = self.embed_face(face, face_lengths)
        a = self.embed_voice(voice, voice_lengths)
        return PairOutput(face=v, voice=a, face_logits=self.classifier(v), voice_logits=self.classifier(a))
