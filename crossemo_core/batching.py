"""Feature normalisation and padded tensors for training and scoring.

Normalisation statistics are per feature, over all frames of the *training* pairs only, and travel with the
checkpoint; test speakers are never standardised with their own statistics here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from crossemo_core.data.container import PairDataset
from crossemo_core.errors import DataError

STD_FLOOR = 1e-6


@dataclass
class FeatureNormalizer:
    """Per-feature mean and standard deviation for each modality, ``(d_face,)`` and ``(d_voice,)``."""

    face_mean: np.ndarray
    face_std: np.ndarray
    voice_mean: np.ndarray
    voice_std: np.ndarray

    @classmethod
    def fit(cls, data: PairDataset) -> "FeatureNormalizer":
        """Statistics over every frame of every pair in ``data`` (float64 accumulation)."""
        face = np.concatenate(data.face).astype(np.float64)
        voice = np.concatenate(data.voice).astype(np.float64)
        return cls(face.mean(0), np.maximum(face.std(0), STD_FLOOR), voice.mean(0), np.maximum(voice.std(0), STD_FLOOR))

    @classmethod
    def identity(cls, face_dim: int, voice_dim: int) -> "FeatureNormalizer":
        return cls(np.zeros(face_dim), np.ones(face_dim), np.zeros(voice_dim), np.ones(voice_dim))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: np.asarray(getattr(self, k), dtype=np.float64).tolist()
                for k in ("face_mean", "face_std", "voice_mean", "voice_std")}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> "FeatureNormalizer":
        return cls(**{k: np.asarray(d[k], dtype=np.float64) for k in ("face_mean", "face_std", "voice_mean",
                                                                      "voice_std")})


@dataclass
class PairTensors:
    """A :class:`PairDataset` as padded float32 tensors, normalised, built once and sliced into batches.

    ``face`` ``(N, L_face_max, d_face)``, ``face_lengths`` ``(N,)``; the same for voice (and for the voices' twins
    when the set has them, else None); labels ``(N,)`` int64.
    """

    face: torch.Tensor
    face_lengths: torch.Tensor
    voice: torch.Tensor
    voice_lengths: torch.Tensor
    face_label: torch.Tensor
    voice_label: torch.Tensor
    voice_twin: torch.Tensor | None = None
    voice_twin_lengths: torch.Tensor | None = None

    @classmethod
    def build(cls, data: PairDataset, normalizer: FeatureNormalizer, labels: str = "classes") -> "PairTensors":
        """Pad and normalise ``data``; ``labels`` picks the training labels ("classes" or "emotions")."""
        if data.face_dim != len(normalizer.face_mean) or data.voice_dim != len(normalizer.voice_mean):
            raise DataError(f"{data.name}: features are {data.face_dim}-d face / {data.voice_dim}-d voice but the "
                            f"normalisation expects {len(normalizer.face_mean)} / {len(normalizer.voice_mean)}.")
        face, face_len = _pad(data.face, normalizer.face_mean, normalizer.face_std)
        voice, voice_len = _pad(data.voice, normalizer.voice_mean, normalizer.voice_std)
        face_label, voice_label, _ = data.training_labels(labels)
        twin, twin_len = (None, None) if data.voice_twin is None else _pad(data.voice_twin, normalizer.voice_mean,
                                                                          normalizer.voice_std)
        return cls(face, face_len, voice, voice_len, torch.from_numpy(face_label), torch.from_numpy(voice_label),
                   twin, twin_len)

    def __len__(self) -> int:
        return len(self.face_label)

    def batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Tensors of the pairs at ``index``, trimmed to the longest sequence in the batch, on ``device``."""
        fl, vl = self.face_lengths[index], self.voice_lengths[index]
        face = self.face[index, : int(fl.max())]
        voice = self.voice[index, : int(vl.max())]
        return (face.to(device), fl, voice.to(device), vl, self.face_label[index].to(device),
                self.voice_label[index].to(device))

    def twin_batch(self, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The twins of the voices at ``index`` (trimmed like :meth:`batch`) and their lengths."""
        if self.voice_twin is None or self.voice_twin_lengths is None:
            raise DataError("these pairs have no voice twins.")
        lengths = self.voice_twin_lengths[index]
        return self.voice_twin[index, : int(lengths.max())].to(device), lengths

    def batches(self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None,
                drop_singletons: bool = True) -> Iterator[torch.Tensor]:
        """Index tensors of successive batches; a trailing batch of one pair is dropped when training."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if drop_singletons and len(index) < 2:
                continue
            yield index


def _pad(seqs: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=np.float32)
    mean32, std32 = mean.astype(np.float32), std.astype(np.float32)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = (s - mean32) / std32
    np.clip(out, -1e4, 1e4, out=out)  # repaired +-inf values must not overflow the LSTM
    return torch.from_numpy(out), torch.from_numpy(lengths)
