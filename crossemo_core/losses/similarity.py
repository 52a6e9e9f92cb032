"""Similarities between sets of embeddings (paper eq. 4, with our temperature tau).

cos is the cosine-similarity matrix between anchors (..., B, D) and partners (..., M, D), shape (..., B, M); the
paper's similarity is s = exp(cos / tau). The losses work with log s = cos / tau so small temperatures cannot overflow.

The two directions of the bidirectional scheme are stacked on a leading axis of size 2 (the "direction axis"):
index 0 holds the face anchors, index 1 the voice anchors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def check_temperature(tau: float) -> float:
    """Return tau as a float; raise ValueError unless it is a finite number > 0."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    return float(tau)


def cosine_similarity_matrix(x: Tensor, y: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """cos[..., i, j] = <x_i, y_j> / (|x_i| |y_j|) for x (..., B, D) and y (..., M, D) -> (..., B, M); y defaults to x.

    Rows are normalised with F.normalize (norm floored at eps), so an all-zero embedding (possible after the
    residual block's ReLU) has cosine 0 with everything instead of NaN.
    """
    y_given = x if y is None else y
    if x.dim() < 2 or x.dim() != y_given.dim() or x.shape[-1] != y_given.shape[-1]:
        raise ValueError(
            f"expected embeddings of shape (..., B, D) and (..., M, D), got {tuple(x.shape)} and {tuple(y_given.shape)}"
        )
    x_unit = F.normalize(x, dim=-1, eps=eps)
    y_unit = x_unit if y is None else F.normalize(y, dim=-1, eps=eps)
    return x_unit @ y_unit.mT


def intra_modal_similarity(face: Tensor, voice: Tensor) -> Tensor:
    """face, voice (B, D) -> (2, B, B): [0] = cos(face_i, face_j), [1] = cos(voice_i, voice_j)."""
    return cosine_similarity_matrix(torch.stack((face, voice)))


def cross_modal_similarity(face: Tensor, voice: Tensor) -> Tensor:
    """face, voice (B, D) -> (2, B, B): [0] = cos(face_i, voice_j), [1] = cos(voice_i, face_j) (the transpose)."""
    cos = cosine_similarity_matrix(face, voice)
    return torch.stack((cos, cos.T))


def log_similarity(cos: Tensor, tau: float = 1.0) -> Tensor:
    """log s = cos / tau, element-wise, any shape."""
    return cos / tau


def exp_similarity(cos: Tensor, tau: float = 1.0) -> Tensor:
    """The paper's s = exp(cos / tau), element-wise, any shape."""
    return torch.exp(log_similarity(cos, tau))
