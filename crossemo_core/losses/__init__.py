"""SIR-HCL losses in the pytorch-metric-learning spirit: similarities, miners and losses are small pieces that compose.

    cos = cross_modal_similarity(face, voice)                   # (2, B, B), direction axis first (similarity.py)
    masks = cross_modal_masks(y_face, y_voice)                  # positives / negatives (miners.py)
    hard_pairs = HardSampleMiner(k=6).from_similarity(cos, masks)
    l_hard = HardSampleLoss("bce").from_similarity(cos, hard_pairs)          # contrastive.py
    out = HybridContrastiveLoss()(face, voice, face_logits, voice_logits, y_face, y_voice)   # hybrid.py
"""

from .contrastive import (
    HARD_LOSS_MODES,
    CrossModalLoss,
    HardLossMode,
    HardSampleLoss,
    IntraModalLoss,
    contrastive_loss,
    contrastive_terms,
    masked_mean,
)
from .disentangle import central_moment_discrepancy, hsic, soft_orthogonality
from .hybrid import HybridContrastiveLoss, LossOutput, SharedEmbeddingLoss
from .hycon import HyConLoss
from .miners import (
    HardSampleMiner,
    PairMasks,
    cross_modal_masks,
    intra_modal_masks,
    label_pair_masks,
    select_hard_pairs,
)
from .quintuple import QUINTUPLE_MINING, BiQuintupleLoss, QuintupleMining
from .similarity import (
    check_temperature,
    cosine_similarity_matrix,
    cross_modal_similarity,
    exp_similarity,
    intra_modal_similarity,
    log_similarity,
)
from .triplet import SoftMarginTripletLoss, StructuredTripletLoss, bank_pair_loss

__all__ = [
    "HARD_LOSS_MODES",
    "QUINTUPLE_MINING",
    "BiQuintupleLoss",
    "CrossModalLoss",
    "HardLossMode",
    "HardSampleLoss",
    "HardSampleMiner",
    "HyConLoss",
    "HybridContrastiveLoss",
    "IntraModalLoss",
    "LossOutput",
    "PairMasks",
    "QuintupleMining",
    "SharedEmbeddingLoss",
    "SoftMarginTripletLoss",
    "StructuredTripletLoss",
    "bank_pair_loss",
    "central_moment_discrepancy",
    "check_temperature",
    "contrastive_loss",
    "contrastive_terms",
    "cosine_similarity_matrix",
    "cross_modal_masks",
    "cross_modal_similarity",
    "exp_similarity",
    "hsic",
    "intra_modal_masks",
    "intra_modal_similarity",
    "label_pair_masks",
    "log_similarity",
    "masked_mean",
    "select_hard_pairs",
    "soft_orthogonality",
]
