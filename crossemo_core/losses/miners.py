"""Miners: which (anchor, partner) pairs a loss looks at, as boolean (..., B, M) masks.

`label_pair_masks` gives every positive (same class) and negative (different class) pair; `HardSampleMiner` keeps,
per anchor, the k positives with the lowest and the k negatives with the highest cosine similarity
(paper eqs. 11-12 and 14-15). Masks of both directions are stacked on the direction axis (0: face anchors,
1: voice anchors), see similarity.py.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .similarity import cross_modal_similarity


class PairMasks(NamedTuple):
    """Boolean masks (..., B, M): [..., i, j] marks partner j as a positive / negative of anchor i."""

    pos: Tensor
    neg: Tensor


def label_pair_masks(anchor_labels: Tensor, partner_labels: Tensor, exclude_self: bool = False) -> PairMasks:
    """All positive (same label) and negative (other label) pairs for labels (..., B) and (..., M) -> masks (..., B, M).

    exclude_self removes the diagonal from the positives; use it when anchors and partners are the same samples
    (the intra-modal sets P = {k != i : y_k = y_i}).
    """
    same = anchor_labels[..., :, None] == partner_labels[..., None, :]
    pos = same
    if exclude_self:
        pos = same & ~torch.eye(same.shape[-2], same.shape[-1], dtype=torch.bool, device=same.device)
    return PairMasks(pos=pos, neg=~same)


def intra_modal_masks(y_face: Tensor, y_voice: Tensor) -> PairMasks:
    """Labels (B,) -> masks (2, B, B) of eqs. 5-6: [0] face anchors vs faces, [1] voice anchors vs voices."""
    labels = torch.stack((y_face, y_voice))
    return label_pair_masks(labels, labels, exclude_self=True)


def cross_modal_masks(y_face: Tensor, y_voice: Tensor) -> PairMasks:
    """Labels (B,) -> masks (2, B, B) of eqs. 8-9: [0] face anchors vs voices, [1] voice anchors vs faces.

    Face anchor i has P = {k : y_voice_k = y_face_i}, which holds k = i when pair i is normal.
    """
    labels = torch.stack((y_face, y_voice))
    return label_pair_masks(labels, labels.flip(0))


def select_hard_pairs(cos: Tensor, masks: PairMasks, k: int) -> PairMasks:
    """Per anchor (row of cos (..., B, M)), keep the min(k, |P|) positives of lowest and min(k, |N|) negatives of
    highest cosine. Returns masks (..., B, M), subsets of masks.pos / masks.neg. No gradient flows through it."""
    with torch.no_grad():
        k_eff = min(k, cos.shape[-1])
        far_pos = cos.masked_fill(~masks.pos, float("inf")).topk(k_eff, dim=-1, largest=False).indices
        near_neg = cos.masked_fill(~masks.neg, float("-inf")).topk(k_eff, dim=-1, largest=True).indices
        none = torch.zeros_like(masks.pos)
        # Rows with fewer than k candidates also pick filler (+-inf) entries; the "& mask" drops them.
        hard_pos = none.scatter(-1, far_pos, True) & masks.pos
        hard_neg = none.scatter(-1, near_neg, True) & masks.neg
    return PairMasks(pos=hard_pos, neg=hard_neg)


class HardSampleMiner(nn.Module):
    """Cross-modal hard-sample miner: k hard positives and k hard negatives per anchor (paper k = 6)."""

    def __init__(self, k: int = 6) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k (hard samples per anchor) must be an integer >= 1, got {k!r}")
        self.k = k

    def forward(self, face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor) -> PairMasks:
        """face, voice (B, D), y_face, y_voice (B,) -> hard masks (2, B, B) on the direction axis."""
        return self.from_similarity(cross_modal_similarity(face, voice), cross_modal_masks(y_face, y_voice))

    def from_similarity(self, cos: Tensor, masks: PairMasks) -> PairMasks:
        """cos (..., B, M) with its positive / negative masks -> hard masks (..., B, M)."""
        return select_hard_pairs(cos, masks, self.k)

    def extra_repr(self) -> str:
        return f"k={self.k}"
