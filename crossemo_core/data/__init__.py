"""Data: the pair container, label mappings, the abnormal-pair protocol, splits and loaders."""
from crossemo_core.data.container import LABEL_SETS, PairDataset, concatenate
from crossemo_core.data.protocol import (ProtocolReport, choose_abnormal_partners, make_abnormal_pairs,
                                         speaker_disjoint_split, speaker_folds)

__all__ = ["LABEL_SETS", "PairDataset", "concatenate", "ProtocolReport", "choose_abnormal_partners",
           "make_abnormal_pairs", "speaker_disjoint_split", "speaker_folds"]
