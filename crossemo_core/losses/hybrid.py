"""The full SIR-HCL objective (eq. 18): L_share + lambda_intra L_intra + lambda_cross L_cross + lambda_hard L_hard."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from .contrastive import CrossModalLoss, HardLossMode, HardSampleLoss, IntraModalLoss
from .miners import HardSampleMiner, cross_modal_masks, intra_modal_masks
from .similarity import cross_modal_similarity, intra_modal_similarity


class LossOutput(NamedTuple):
    """Scalar tensors: the weighted total and each unweighted term (0 for a disabled term)."""

    total: Tensor
    share: Tensor
    intra: Tensor
    cross: Tensor
    hard: Tensor


class SharedEmbeddingLoss(nn.Module):
    """L_share (eq. 3) = mean CE(face_logits, y_face) + mean CE(voice_logits, y_voice), logits (B, C), labels (B,)."""

    def forward(self, face_logits: Tensor, voice_logits: Tensor, y_face: Tensor, y_voice: Tensor) -> Tensor:
        return F.cross_entropy(face_logits, y_face) + F.cross_entropy(voice_logits, y_voice)


def _check_weight(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class HybridContrastiveLoss(nn.Module):
    """Hybrid contrastive loss of SIR-HCL; defaults are the paper's (lambda = 1, 1, 0.5; k = 6) and tau = 1 (ours).

    A disabled term (use_* = False) is not computed, is reported as 0 and is left out of the total (ablations of
    Table VI). hard_loss selects the reading of eq. 13, see `HardSampleLoss`.
    """

    def __init__(
        self,
        lambda_intra: float = 1.0,
        lambda_cross: float = 1.0,
        lambda_hard: float = 0.5,
        k: int = 6,
        tau: float = 1.0,
        use_share: bool = True,
        use_intra: bool = True,
        use_cross: bool = True,
        use_hard: bool = True,
        hard_loss: HardLossMode = "bce",
    ) -> None:
        super().__init__()
        self.lambda_intra = _check_weight("lambda_intra", lambda_intra)
        self.lambda_cross = _check_weight("lambda_cross", lambda_cross)
        self.lambda_hard = _check_weight("lambda_hard", lambda_hard)
        if not (use_share or use_intra or use_cross or use_hard):
            raise ValueError("at least one of use_share, use_intra, use_cross, use_hard must be True")
        self.use_share, self.use_intra, self.use_cross, self.use_hard = use_share, use_intra, use_cross, use_hard
        self.share_loss = SharedEmbeddingLoss()
        self.intra_loss = IntraModalLoss(tau)
        self.cross_loss = CrossModalLoss(tau)
        self.miner = HardSampleMiner(k)
        self.hard_loss = HardSampleLoss(hard_loss, tau)

    def forward(
        self,
        face: Tensor,
        voice: Tensor,
        face_logits: Tensor | None,
        voice_logits: Tensor | None,
        y_face: Tensor,
        y_voice: Tensor,
    ) -> LossOutput:
        """face, voice (B, D) residual-block embeddings; logits (B, C) (may be None when use_share is False);
        y_face, y_voice (B,) int64 labels."""
        _check_batch(face, voice, y_face, y_voice)
        zero = face.new_zeros(())
        share = intra = cross = hard = zero
        if self.use_share:
            if face_logits is None or voice_logits is None:
                raise DataError("face_logits and voice_logits are required when use_share is True")
            share = self.share_loss(face_logits, voice_logits, y_face, y_voice)
        if self.use_intra:
            cos_intra, masks_intra = intra_modal_similarity(face, voice), intra_modal_masks(y_face, y_voice)
            intra = self.intra_loss.from_similarity(cos_intra, masks_intra)
        if self.use_cross or self.use_hard:
            cos, masks = cross_modal_similarity(face, voice), cross_modal_masks(y_face, y_voice)
            if self.use_cross:
                cross = self.cross_loss.from_similarity(cos, masks)
            if self.use_hard:
                hard = self.hard_loss.from_similarity(cos, self.miner.from_similarity(cos, masks))
        total = share + self.lambda_intra * intra + self.lambda_cross * cross + self.lambda_hard * hard
        return LossOutput(total=total, share=share, intra=intra, cross=cross, hard=hard)

    def extra_repr(self) -> str:
        switches = {"share": self.use_share, "intra": self.use_intra, "cross": self.use_cross, "hard": self.use_hard}
        return (
            f"lambda_intra={self.lambda_intra}, lambda_cross={self.lambda_cross}, lambda_hard={self.lambda_hard}, "
            f"terms={[name for name, on in switches.items() if on]}"
        )


def _check_batch(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor) -> None:
    if face.dim() != 2 or face.shape != voice.shape:
        raise DataError(
            f"face and voice embeddings must both have shape (B, D), got {tuple(face.shape)} and {tuple(voice.shape)}"
        )
    batch = face.shape[0]
    if y_face.shape != (batch,) or y_voice.shape != (batch,):
        raise DataError(
            f"y_face and y_voice must have shape ({batch},), got {tuple(y_face.shape)} and {tuple(y_voice.shape)}"
        )
