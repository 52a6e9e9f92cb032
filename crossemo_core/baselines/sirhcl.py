"""SIR-HCL itself behind the :class:`~crossemo_core.baselines.base.Method` interface (the Trainer and its
Beta-mixture verdict, exactly as ``python -m crossemo_core train`` runs it), and the HyCon-style loss variant on the
same network and verdict."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crossemo_core.baselines.base import DetectorScorer, Method
from crossemo_core.data.container import PairDataset
from crossemo_core.losses import HyConLoss
from crossemo_core.training import TrainingControl


@dataclass
class SIRHCLMethod(Method):
    """SIR-HCL: ``config.loss`` selects the terms (ablations switch them off), ``config.train`` the verdict rule."""

    name: ClassVar[str] = "sir-hcl"
    title: ClassVar[str] = "SIR-HCL"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> DetectorScorer:
        result = self.trainer(control).fit(train, valid)
        return DetectorScorer(result.detector, result)


@dataclass
class HyConMethod(Method):
    """The SIR-HCL network and verdict trained with :class:`~crossemo_core.losses.HyConLoss` instead of L_all
    (seed 003; modality margin ``alpha``)."""

    alpha: float = 0.8
    lambda_intra: float = 1.0
    lambda_inter: float = 1.0
    lambda_scl: float = 1.0
    name: ClassVar[str] = "hycon"
    title: ClassVar[str] = "HyCon-style loss"

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> DetectorScorer:
        criterion = HyConLoss(self.alpha, self.lambda_intra, self.lambda_inter, self.lambda_scl)
        result = self.trainer(control, criterion).fit(train, valid)
        return DetectorScorer(result.detector, result)
