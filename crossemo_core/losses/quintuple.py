"""TN-BCL's bi-quintuple hinge loss (seed 001, eqs. 8-28), on the direction-stacked cosine matrices.

For a face anchor v_i the quintuple is (v_i, v_pos, v_neg, a_pos, a_neg): one intra-modal triple over faces and one
cross-modal triple over voices, each scored by

    L(o, p, n) = (gamma0 - cos(o, p)) + max(0, cos(o, n) - gamma)                                 (eqs. 8, 12)

and the same for each voice anchor a_i (eq. 27). L_quintuple = mean over face anchors of (L_vt + L_vv) + mean over
voice anchors of (L_tv + L_tt) (eq. 28).

Which positive and negative (the "mining"):

- ``"hard"`` (default): the positive with the LOWEST and the negative with the HIGHEST cosine, i.e. the hardest
  ones, as the paper's text describes the aim ("pull ... together, push apart").
- ``"literal"``: eqs. 9-10, 13-14, 18-19 and 22-23 as printed: the positive with the HIGHEST (argmax) and the
  negative with the LOWEST (argmin) cosine, i.e. the easiest ones.

Each term is a mean over the anchors that have both a positive and a negative (the project's convention,
docs/method.md "Losses"); the paper's 1/N sums over all anchors. gamma = 0.2 is the paper's VoxCeleb (face-voice)
value; gamma0 = 1 is ours (the paper gives none), which makes the positive term 1 - cos >= 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .contrastive import masked_mean
from .hybrid import LossOutput, _check_batch
from .miners import PairMasks, cross_modal_masks, intra_modal_masks
from .similarity import cross_modal_similarity, intra_modal_similarity

QuintupleMining = Literal["hard", "literal"]
QUINTUPLE_MINING: tuple[str, ...] = ("hard", "literal")


def mined_similarities(cos: Tensor, masks: PairMasks, mining: QuintupleMining) -> tuple[Tensor, Tensor, Tensor]:
    """Per anchor the mined positive and negative cosine and whether the anchor has both, each (D, B)."""
    contributing = masks.pos.any(-1) & masks.neg.any(-1)
    if mining == "hard":
        s_pos = cos.masked_fill(~masks.pos, float("inf")).amin(-1)
        s_neg = cos.masked_fill(~masks.neg, float("-inf")).amax(-1)
    else:
        s_pos = cos.masked_fill(~masks.pos, float("-inf")).amax(-1)
        s_neg = cos.masked_fill(~masks.neg, float("inf")).amin(-1)
    zero = torch.zeros_like(s_pos)
    return torch.where(contributing, s_pos, zero), torch.where(contributing, s_neg, zero), contributing


def triple_hinge(cos: Tensor, masks: PairMasks, gamma0: float, gamma: float, mining: QuintupleMining) -> Tensor:
    """Eq. 12 per anchor, mean over contributing anchors of each direction, summed over directions: scalar."""
    s_pos, s_neg, contributing = mined_similarities(cos, masks, mining)
    terms = (gamma0 - s_pos) + torch.relu(s_neg - gamma)
    return masked_mean(terms, contributing).sum()


class BiQuintupleLoss(nn.Module):
    """L_quintuple of TN-BCL; returns a :class:`LossOutput` with ``intra`` (L_vv + L_tt) and ``cross``
    (L_vt + L_tv), so it can replace the SIR-HCL objective in :class:`~crossemo_core.training.Trainer`."""

    def __init__(self, gamma0: float = 1.0, gamma: float = 0.2, mining: QuintupleMining = "hard") -> None:
        super().__init__()
        if mining not in QUINTUPLE_MINING:
            raise ValueError(f"mining must be one of {QUINTUPLE_MINING}, got {mining!r}")
        self.gamma0, self.gamma, self.mining = float(gamma0), float(gamma), mining

    def forward(self, face: Tensor, voice: Tensor, face_logits: Tensor | None, voice_logits: Tensor | None,
                y_face: Tensor, y_voice: Tensor) -> LossOutput:
        """face, voice (B, E); logits unused; labels (B,)."""
        _check_batch(face, voice, y_face, y_voice)
        cross = triple_hinge(cross_modal_similarity(face, voice), cross_modal_masks(y_face, y_voice), self.gamma0,
                             self.gamma, self.mining)
        intra = triple_hinge(intra_modal_similarity(face, voice), intra_modal_masks(y_face, y_voice), self.gamma0,
                             self.gamma, self.mining)
        zero = face.new_zeros(())
        return LossOutput(total=cross + intra, share=zero, intra=intra, cross=cross, hard=zero)

    def extra_repr(self) -> str:
        return f"gamma0={self.gamma0}, gamma={self.gamma}, mining={self.mining!r}"
