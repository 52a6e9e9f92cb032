"""HyCon-style hybrid contrastive loss (seed 003, eqs. 6-12 and 16) for two modalities, as a SIR-HCL loss variant.

With a pair similarity s in [0, 1] and, for an anchor, positives P and negatives N in the batch:

- IAMCL (intra-modal, eqs. 7-9): ``-sum_P s / (sum_P s + sum_N s) + mean_P (s - 1)^2`` over the anchor's own
  modality (P excludes the anchor itself).
- IEMCL (inter-modal, eqs. 10-12): the same ratio over the other modality, P = other samples of the same class
  (the anchor's own partner is left to SCL), with the refinement term pulling positives to the modality margin:
  ``mean_P (s - alpha)^2``.
- SCL (semi-contrastive, eq. 6): ``(s(v_i, a_i) - alpha)^2`` for the pair's own face and voice. HyCon applies it
  to every sample; here only **normal** pairs are the "same utterance" (an abnormal pair's voice comes from another
  clip), so abnormal pairs are left out **[ours]**.

L_hybrid = lambda_intra IAMCL + lambda_inter IEMCL + lambda_scl SCL (eq. 16), both directions (face anchors, voice
anchors), each a mean over the anchors that have a positive and a negative. The predictive loss of eq. 17 is
L_share (CE of the shared head on both modalities), as in SIR-HCL.

**[ours]** HyCon scores pairs by the dot product of softmax-normalised representations; here s = (1 + cos) / 2,
the score the Beta-mixture verdict reads (:func:`crossemo_core.mixture.similarity_to_score`), so that training and
verdict use one similarity. alpha = 0.8 is HyCon's best modality margin.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .contrastive import masked_mean
from .hybrid import LossOutput, SharedEmbeddingLoss, _check_batch
from .miners import PairMasks, intra_modal_masks, label_pair_masks
from .similarity import cross_modal_similarity, intra_modal_similarity


def unit_similarity(cos: Tensor) -> Tensor:
    """Cosine in [-1, 1] to s = (1 + cos) / 2 in [0, 1]."""
    return (1.0 + cos) / 2.0


def ratio_with_refinement(s: Tensor, masks: PairMasks, target: float) -> Tensor:
    """Per-direction mean over contributing anchors of ``-sum_P s / sum_{P+N} s + mean_P (s - target)^2``, summed
    over directions; s, masks (D, B, M) -> scalar."""
    contributing = masks.pos.any(-1) & masks.neg.any(-1)
    pos_sum = (s * masks.pos).sum(-1)
    all_sum = (s * (masks.pos | masks.neg)).sum(-1)
    ratio = pos_sum / all_sum.clamp_min(1e-12)
    refinement = masked_mean((s - target) ** 2, masks.pos)
    return masked_mean(refinement - ratio, contributing).sum()


def inter_modal_masks(y_face: Tensor, y_voice: Tensor) -> PairMasks:
    """Cross-modal masks (2, B, B) without each anchor's own partner: [0] face anchors vs voices, [1] voice vs
    faces; positives are other samples of the anchor's class, negatives the other classes."""
    labels = torch.stack((y_face, y_voice))
    masks = label_pair_masks(labels, labels.flip(0))
    eye = torch.eye(len(y_face), dtype=torch.bool, device=y_face.device)
    return PairMasks(pos=masks.pos & ~eye, neg=masks.neg & ~eye)


class HyConLoss(nn.Module):
    """L_share + L_hybrid; returns a :class:`LossOutput` with ``share``, ``intra`` (IAMCL) and ``cross``
    (IEMCL + SCL, each weighted), so it can replace the SIR-HCL objective in the Trainer."""

    def __init__(self, alpha: float = 0.8, lambda_intra: float = 1.0, lambda_inter: float = 1.0,
                 lambda_scl: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"the modality margin alpha must lie in [0, 1], got {alpha}")
        if min(lambda_intra, lambda_inter, lambda_scl) < 0:
            raise ValueError("loss weights must be >= 0")
        self.alpha = float(alpha)
        self.lambda_intra, self.lambda_inter, self.lambda_scl = float(lambda_intra), float(lambda_inter), float(
            lambda_scl)
        self.share_loss = SharedEmbeddingLoss()

    def forward(self, face: Tensor, voice: Tensor, face_logits: Tensor, voice_logits: Tensor, y_face: Tensor,
                y_voice: Tensor) -> LossOutput:
        """face, voice (B, E); logits (B, C); labels (B,)."""
        _check_batch(face, voice, y_face, y_voice)
        share = self.share_loss(face_logits, voice_logits, y_face, y_voice)
        intra = ratio_with_refinement(unit_similarity(intra_modal_similarity(face, voice)),
                                      intra_modal_masks(y_face, y_voice), 1.0)
        cross_s = unit_similarity(cross_modal_similarity(face, voice))
        inter = ratio_with_refinement(cross_s, inter_modal_masks(y_face, y_voice), self.alpha)
        own = torch.diagonal(cross_s[0])
        scl = masked_mean((own - self.alpha) ** 2, y_face == y_voice)
        cross = self.lambda_inter * inter + self.lambda_scl * scl
        total = share + self.lambda_intra * intra + cross
        return LossOutput(total=total, share=share, intra=intra, cross=cross, hard=face.new_zeros(()))

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, lambda_intra={self.lambda_intra}, lambda_inter={self.lambda_inter}, "
                f"lambda_scl={self.lambda_scl}")
