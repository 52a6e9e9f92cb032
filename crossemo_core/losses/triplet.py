"""Triplet losses of two baselines, on the direction-stacked cosine matrices of similarity.py.

- :class:`StructuredTripletLoss` (CMAD-style, "deep structured embedding"): every valid triplet (anchor, positive,
  negative) of the batch, cross-modal (bidirectional ranking) plus intra-modal (structure preserving) terms,
  ``max(0, margin + cos(a, n) - cos(a, p))``, averaged over the valid triplets of each direction.
- :class:`SoftMarginTripletLoss` (NCR-style): each normal pair's own face and voice are the positive, the hardest
  negative is the most similar other-class partner in the batch, with a smooth ("soft-margin") hinge
  ``T * softplus((margin + cos(a, n) - cos(a, p)) / T)``, which tends to the hinge as ``T -> 0``.
  :func:`bank_pair_loss` is the same loss for a *single* pair without labels: the pair's own face and voice are
  the positive, the negatives are the most similar faces / voices of a reference bank (the training set's normal
  pairs). NCR fits its two-component Gaussian mixture on that per-pair loss.

Positive / negative sets follow :mod:`.miners`: cross-modal P of face anchor i = {k : y_voice_k = y_face_i}
(k = i included when the pair is normal); intra-modal P excludes the anchor itself. Anchors without a positive or
without a negative contribute nothing; a direction where none contributes gives 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .contrastive import masked_mean
from .hybrid import LossOutput, _check_batch
from .miners import PairMasks, cross_modal_masks, intra_modal_masks
from .similarity import cross_modal_similarity, intra_modal_similarity


def batch_all_triplet(cos: Tensor, masks: PairMasks, margin: float) -> Tensor:
    """Mean hinge over every valid (anchor, positive, negative) triplet of each direction, summed over directions.

    cos, masks (D, B, M) -> scalar. The triplet tensor is (D, B, M, M), fine for batches up to a few hundred.
    """
    violation = F.relu(margin + cos[..., None, :] - cos[..., :, None])  # [d, i, p, n] = margin + s_in - s_ip
    valid = masks.pos[..., :, None] & masks.neg[..., None, :]
    return masked_mean(violation, valid, dim=(-3, -2, -1)).sum()


def smooth_hinge(x: Tensor, temperature: float) -> Tensor:
    """``T * softplus(x / T)``: >= max(0, x), within ``T log 2`` of it."""
    return temperature * F.softplus(x / temperature)


class StructuredTripletLoss(nn.Module):
    """CMAD-style loss: batch-all triplets, cross-modal in both directions plus ``intra_weight`` x intra-modal.

    Returns a :class:`LossOutput` (``cross`` and ``intra`` filled, ``share`` and ``hard`` 0) so it can replace the
    SIR-HCL objective in :class:`~crossemo_core.training.Trainer`.
    """

    def __init__(self, margin: float = 0.2, intra_weight: float = 1.0) -> None:
        super().__init__()
        if margin < 0 or intra_weight < 0:
            raise ValueError("margin and intra_weight must be >= 0")
        self.margin, self.intra_weight = float(margin), float(intra_weight)

    def forward(self, face: Tensor, voice: Tensor, face_logits: Tensor | None, voice_logits: Tensor | None,
                y_face: Tensor, y_voice: Tensor) -> LossOutput:
        """face, voice (B, E); logits unused; labels (B,)."""
        _check_batch(face, voice, y_face, y_voice)
        cross = batch_all_triplet(cross_modal_similarity(face, voice), cross_modal_masks(y_face, y_voice), self.margin)
        intra = face.new_zeros(())
        if self.intra_weight > 0:
            intra = batch_all_triplet(intra_modal_similarity(face, voice), intra_modal_masks(y_face, y_voice),
                                      self.margin)
        zero = face.new_zeros(())
        return LossOutput(total=cross + self.intra_weight * intra, share=zero, intra=intra, cross=cross, hard=zero)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, intra_weight={self.intra_weight}"


class SoftMarginTripletLoss(nn.Module):
    """NCR-style loss (VSE++ / NCR's hardest-negative triplet over matched pairs), cross-modal, both directions.

    Each *normal* pair i is an anchor twice (face and voice): its own partner is the positive and the hardest
    negative is the most similar partner of another class in the batch; term ``h(margin + s_neg - s_ii)`` with the
    smooth hinge ``h``. Abnormal pairs (NCR's noisy correspondences, whose margin NCR shrinks towards 0) are not
    anchors; their voices and faces still serve as negatives. Returns a :class:`LossOutput` with only ``cross``.
    """

    def __init__(self, margin: float = 0.2, temperature: float = 0.05) -> None:
        super().__init__()
        if margin < 0 or temperature <= 0:
            raise ValueError("margin must be >= 0 and temperature > 0")
        self.margin, self.temperature = float(margin), float(temperature)

    def forward(self, face: Tensor, voice: Tensor, face_logits: Tensor | None, voice_logits: Tensor | None,
                y_face: Tensor, y_voice: Tensor) -> LossOutput:
        """face, voice (B, E); logits unused; labels (B,)."""
        _check_batch(face, voice, y_face, y_voice)
        cos = cross_modal_similarity(face, voice)
        masks = cross_modal_masks(y_face, y_voice)
        own = torch.diagonal(cos, dim1=-2, dim2=-1)  # (2, B): s_ii in both directions
        contributing = (y_face == y_voice)[None, :] & masks.neg.any(-1)
        hardest = cos.masked_fill(~masks.neg, float("-inf")).amax(-1)
        hardest = torch.where(contributing, hardest, torch.zeros_like(hardest))
        terms = smooth_hinge(self.margin + hardest - own, self.temperature)
        cross = masked_mean(terms, contributing).sum()
        zero = face.new_zeros(())
        return LossOutput(total=cross, share=zero, intra=zero, cross=cross, hard=zero)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, temperature={self.temperature}"


def bank_pair_loss(face: Tensor, voice: Tensor, bank_face: Tensor, bank_voice: Tensor, margin: float,
                   temperature: float, exclude: Tensor | None = None) -> Tensor:
    """Label-free soft-margin triplet loss of each pair against a reference bank, ``(N,)``.

    ``loss_i = h(margin + max_j cos(face_i, bank_voice_j) - cos(face_i, voice_i))
             + h(margin + max_j cos(voice_i, bank_face_j) - cos(face_i, voice_i))`` with ``h`` the smooth hinge.

    Args:
        face, voice: ``(N, E)`` embeddings of the pairs to score.
        bank_face, bank_voice: ``(M, E)`` embeddings of the reference pairs.
        exclude: optional ``(N,)`` int64 index of a bank entry each pair must not use as a negative (itself, when
            the scored pairs are in the bank); -1 for none.
    """
    f, v = F.normalize(face, dim=1), F.normalize(voice, dim=1)
    bf, bv = F.normalize(bank_face, dim=1), F.normalize(bank_voice, dim=1)
    own = (f * v).sum(1)
    to_voices, to_faces = f @ bv.T, v @ bf.T
    if exclude is not None:
        hit = (exclude[:, None] == torch.arange(bank_face.shape[0], device=face.device)[None, :])
        to_voices = to_voices.masked_fill(hit, float("-inf"))
        to_faces = to_faces.masked_fill(hit, float("-inf"))
    return (smooth_hinge(margin + to_voices.amax(1) - own, temperature)
            + smooth_hinge(margin + to_faces.amax(1) - own, temperature))
