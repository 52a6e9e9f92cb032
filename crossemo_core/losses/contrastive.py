"""Contrastive losses of SIR-HCL: intra-modal (eqs. 5-7), cross-modal (eqs. 8-10) and hard-sample (eqs. 13, 16-17).

Every loss is the sum over the two directions (face anchors, voice anchors) of a per-direction mean over the
anchors (or mined pairs) that contribute; a direction where none contributes gives 0, a zero tensor still attached
to the graph (notes/method.md, "Losses"). `forward` takes embeddings and labels; `from_similarity` takes the
direction-stacked cosine matrix (2, B, B) and masks, so a caller can share them between losses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .miners import PairMasks, cross_modal_masks, intra_modal_masks
from .similarity import check_temperature, cross_modal_similarity, intra_modal_similarity, log_similarity

HardLossMode = Literal["bce", "literal"]
HARD_LOSS_MODES: tuple[str, ...] = ("bce", "literal")
PROB_CLIP = 1e-6


def masked_mean(values: Tensor, mask: Tensor, dim: int | tuple[int, ...] = -1) -> Tensor:
    """Mean of values over the True entries of mask (same shape), reduced over dim; 0 where mask has none there."""
    weights = mask.to(values.dtype)
    return (values * weights).sum(dim) / weights.sum(dim).clamp_min(1.0)


def contrastive_terms(cos: Tensor, masks: PairMasks, tau: float) -> tuple[Tensor, Tensor]:
    """Per-anchor -log(sum_P s / (sum_P s + sum_N s)) with s = exp(cos / tau), for cos and masks (..., B, M).

    Returns (terms (..., B), contributing (..., B) bool). An anchor contributes when it has a positive and a
    negative; the others get a finite placeholder term so that masking them out keeps gradients NaN-free.
    """
    logits = log_similarity(cos, tau)
    contributing = masks.pos.any(dim=-1) & masks.neg.any(dim=-1)
    placeholder = ~contributing[..., None]
    log_pos = logits.masked_fill(~(masks.pos | placeholder), float("-inf")).logsumexp(dim=-1)
    log_all = logits.masked_fill(~(masks.pos | masks.neg | placeholder), float("-inf")).logsumexp(dim=-1)
    return log_all - log_pos, contributing


def contrastive_loss(cos: Tensor, masks: PairMasks, tau: float) -> Tensor:
    """Eqs. 5/6/8/9 for stacked directions cos, masks (D, B, M): sum over D of the mean over contributing anchors."""
    terms, contributing = contrastive_terms(cos, masks, tau)
    return masked_mean(terms, contributing).sum()


class IntraModalLoss(nn.Module):
    """L_intra = face part + voice part (eqs. 5-7): each anchor against the other samples of its own modality."""

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        self.tau = check_temperature(tau)

    def forward(self, face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor) -> Tensor:
        """face, voice (B, D) embeddings; y_face, y_voice (B,) labels -> scalar."""
        return self.from_similarity(intra_modal_similarity(face, voice), intra_modal_masks(y_face, y_voice))

    def from_similarity(self, cos: Tensor, masks: PairMasks) -> Tensor:
        """cos = intra_modal_similarity(...), masks = intra_modal_masks(...), both (2, B, B) -> scalar."""
        return contrastive_loss(cos, masks, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class CrossModalLoss(nn.Module):
    """L_cross = face-anchor part + voice-anchor part (eqs. 8-10, the bidirectional scheme).

    Face anchor i against voice partners: P = {k : y_voice_k = y_face_i} (k = i included when pair i is normal),
    N = the rest; voice anchors against face partners symmetrically.
    """

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        self.tau = check_temperature(tau)

    def forward(self, face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor) -> Tensor:
        """face, voice (B, D) embeddings; y_face, y_voice (B,) labels -> scalar."""
        return self.from_similarity(cross_modal_similarity(face, voice), cross_modal_masks(y_face, y_voice))

    def from_similarity(self, cos: Tensor, masks: PairMasks) -> Tensor:
        """cos = cross_modal_similarity(...), masks = cross_modal_masks(...), both (2, B, B) -> scalar."""
        return contrastive_loss(cos, masks, self.tau)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class HardSampleLoss(nn.Module):
    """L_hard on pairs mined by `HardSampleMiner`, summed over both directions (eq. 17).

    mode "bce" (default, ours; notes/method.md): binary cross-entropy on p = (1 + cos) / 2, clipped to
    [1e-6, 1 - 1e-6], target 1 for hard positives and 0 for hard negatives; mean over all mined pairs of a direction.
    mode "literal": eqs. 13/16 as printed, -sum y log s with y = 1 for positives and 0 for negatives, so only the
    hard positives count, each as -cos / tau; mean over the mined positives of a direction. It can be negative.
    """

    def __init__(self, mode: HardLossMode = "bce", tau: float = 1.0) -> None:
        super().__init__()
        if mode not in HARD_LOSS_MODES:
            raise ValueError(f"hard_loss must be one of {HARD_LOSS_MODES}, got {mode!r}")
        self.mode = mode
        self.tau = check_temperature(tau)

    def forward(self, face: Tensor, voice: Tensor, hard: PairMasks) -> Tensor:
        """face, voice (B, D) embeddings and their mined pairs (2, B, B) from `HardSampleMiner` -> scalar."""
        return self.from_similarity(cross_modal_similarity(face, voice), hard)

    def from_similarity(self, cos: Tensor, hard: PairMasks) -> Tensor:
        """cos = cross_modal_similarity(...) and mined pairs, both (2, B, B) -> scalar."""
        if self.mode == "literal":
            return masked_mean(-log_similarity(cos, self.tau), hard.pos, dim=(-2, -1)).sum()
        prob = ((1.0 + cos) / 2.0).clamp(PROB_CLIP, 1.0 - PROB_CLIP)
        nll = -torch.where(hard.pos, prob.log(), (1.0 - prob).log())
        return masked_mean(nll, hard.pos | hard.neg, dim=(-2, -1)).sum()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, tau={self.tau}"
