"""SIR-HCL losses in the pytorch-metric-learning spirit: similarities, miners and losses compose.

    cos = cosine_similarity_matrix(face, voice)           # similarity.py
    pairs = HardSampleMiner(k=6).from_similarity(cos, y_face, y_voice)   # miners.py
    hard = HardSampleLoss("bce").from_similarity(cos, pairs)            # contrastive.py
    out = HybridContrastiveLoss()(face, voice, face_logits, voice_logits, y_face, y_voice)  # hybrid.py
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
from .hybrid import HybridContrastiveLoss, LossOutput, SharedEmbeddingLoss
from .miners import HardPairs, HardSampleMiner, PairMasks, label_pair_masks, select_hard_pairs
from .similarity import check_temperature, cosine_similarity_matrix, exp_similarity, log_similarity

__all__ = [
    "HARD_LOSS_MODES",
    "CrossModalLoss",
    "HardLossMode",
    "HardPairs",
    "HardSampleLoss",
    "HardSampleMiner",
    "HybridContrastiveLoss",
    "IntraModalLoss",
    "LossOutput",
    "PairMasks",
    "SharedEmbeddingLoss",
    "check_temperature",
    "contrastive_loss",
    "contrastive_terms",
    "cosine_similarity_matrix",
    "exp_similarity",
    "label_pair_masks",
    "log_similarity",
    "masked_mean",
    "select_hard_pairs",
]
