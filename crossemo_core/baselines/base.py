"""The common interface of SIR-HCL and the baselines: a :class:`Method` is fitted on train/valid pairs and returns a
:class:`PairScorer`, which scores any pairs of the same schema. The benchmark runner only sees this interface.

    method = make_method("tn-bcl", config, mining="literal")     # crossemo_core.baselines
    scorer = method.fit(parts["train"], parts["valid"])
    metrics = evaluate_scores(parts["test"], scorer.score(parts["test"]))
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from crossemo_core.config import ExperimentConfig
from crossemo_core.data.container import PairDataset, concatenate
from crossemo_core.data.labels import anomaly_type
from crossemo_core.detector import Detector, cosine_rows
from crossemo_core.evaluation import detection_metrics, per_type_metrics
from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.training import Trainer, TrainingControl, TrainingResult, fit_mixture_verdict


@dataclass
class PairScores:
    """Scores of N pairs.

    Attributes:
        anomaly: ``(N,)`` the method's own anomaly score, higher = more likely inconsistent (e.g. ``(1 - cos) / 2``,
            a per-pair loss, or 1 - the agreement probability); its units differ between methods.
        p_abnormal: ``(N,)`` in [0, 1], the method's output probability (or score) of inconsistency; every metric
            (AUC included) is computed on it.
        predicted: ``(N,)`` bool verdicts.
    """

    anomaly: np.ndarray
    p_abnormal: np.ndarray
    predicted: np.ndarray


class PairScorer(Protocol):
    """What :meth:`Method.fit` returns."""

    def score(self, pairs: PairDataset) -> PairScores: ...


@dataclass
class DetectorScorer:
    """A trained SIR-HCL-network :class:`Detector` with its own Beta-mixture verdict (SIR-HCL, HyCon variant)."""

    detector: Detector
    training: TrainingResult | None = None

    def score(self, pairs: PairDataset) -> PairScores:
        scored = self.detector.score(pairs)
        return PairScores(anomaly=(1.0 - scored.similarity) / 2.0, p_abnormal=scored.p_abnormal,
                          predicted=scored.predicted)


@dataclass
class EnsembleScorer:
    """Several fitted scorers of one method (``TrainConfig.runs``: the same split, other seeds) read as one.

    Networks with SIR-HCL's verdict (:class:`DetectorScorer`: SIR-HCL, HyCon-style) are read as one detector: the
    mean of their cosine similarities, with the verdict of one network fitted on that mean (the Beta mixture on the
    pairs they were trained on, :func:`~crossemo_core.training.fit_mixture_verdict`), as the clip model reads its
    runs. Other methods: the mean of the members' anomaly scores and of their probabilities (or scores: a baseline's
    ``p_abnormal`` need not be a probability), and the majority of their own verdicts (a tie: the first network's)."""

    members: list[PairScorer]
    verdict: tuple[BetaMixture, float] | None = None
    """The mixture and posterior threshold on the mean similarity (detector members only)."""

    @classmethod
    def from_members(cls, members: list[PairScorer], train: PairDataset, valid: PairDataset) -> EnsembleScorer:
        """Read fitted ``members`` as one; detector members get their verdict fitted on the mean similarity of the
        pairs they were trained on (train + valid when every member's refit completed, else ``train``) and
        thresholded by their rule."""
        if not all(isinstance(m, DetectorScorer) for m in members):
            return cls(members)
        first = members[0].detector
        refits = [m.detector.metadata.get("refit") for m in members]
        both = all(refit is not None and refit["completed"] for refit in refits)
        fitted_on = concatenate([train, valid], name=train.name) if both else train
        scorer = cls(members)
        scorer.verdict = fit_mixture_verdict(scorer._similarity, fitted_on, valid,
                                             first.metadata.get("threshold_rule", "posterior"),
                                             first.config.train.mixture_var_floor)
        return scorer

    @property
    def training(self) -> TrainingResult | None:
        """The first network's training (its curves stand for the run's); marked interrupted when any network's
        training was."""
        first = getattr(self.members[0], "training", None)
        others = [getattr(m, "training", None) for m in self.members[1:]]
        if first is not None and any(t is not None and t.interrupted for t in others):
            return replace(first, interrupted=True)
        return first

    def _similarity(self, pairs: PairDataset) -> np.ndarray:
        return np.mean([member.detector.similarity(pairs) for member in self.members], axis=0)

    def score(self, pairs: PairDataset) -> PairScores:
        if self.verdict is not None:
            similarity = self._similarity(pairs)
            mixture, threshold = self.verdict
            p_abnormal = mixture.posterior_abnormal(similarity_to_score(similarity))
            return PairScores(anomaly=(1.0 - similarity) / 2.0, p_abnormal=p_abnormal,
                              predicted=p_abnormal >= threshold)
        scores = [member.score(pairs) for member in self.members]
        votes = np.mean([s.predicted for s in scores], axis=0)
        return PairScores(anomaly=np.mean([s.anomaly for s in scores], axis=0),
                          p_abnormal=np.mean([s.p_abnormal for s in scores], axis=0),
                          predicted=(votes > 0.5) | ((votes == 0.5) & scores[0].predicted))


class AtypicalInputGate(Protocol):
    """Flags pairs with a face or voice embedding unlike the reference data (TN-BCL's kNN gate)."""

    def atypical(self, face: np.ndarray, voice: np.ndarray) -> np.ndarray: ...


@dataclass
class CosineScorer:
    """Anomaly score ``(1 - cos) / 2`` of a trained SIR-HCL-network detector's embeddings, with a baseline's own
    verdict rule, and optionally an atypical-input gate whose flagged pairs are abnormal with ``p = 1``."""

    detector: Detector
    verdict: Any
    gate: AtypicalInputGate | None = None

    def anomaly(self, pairs: PairDataset) -> np.ndarray:
        return (1.0 - self.detector.similarity(pairs)) / 2.0

    def score(self, pairs: PairDataset) -> PairScores:
        face, voice = self.detector.embed(pairs)
        scores = self.verdict.apply((1.0 - cosine_rows(face, voice)) / 2.0)
        if self.gate is not None:
            flagged = self.gate.atypical(face, voice)
            scores.p_abnormal = np.where(flagged, 1.0, scores.p_abnormal)
            scores.predicted = scores.predicted | flagged
        return scores

    @classmethod
    def fit(cls, detector: Detector, verdict: Any, train: PairDataset, valid: PairDataset,
            gate: AtypicalInputGate | None = None) -> CosineScorer:
        """Fit ``verdict`` on the detector's training and validation anomaly scores."""
        scorer = cls(detector, verdict, gate)
        verdict.fit(scorer.anomaly(train), train.is_abnormal, scorer.anomaly(valid), valid.is_abnormal)
        return scorer


@dataclass
class Method(ABC):
    """A cross-emotion anomaly detector to be fitted. ``config`` fixes the network sizes and the optimisation
    (shared by every method in a benchmark); the remaining dataclass fields are the method's own settings."""

    config: ExperimentConfig
    name: ClassVar[str]
    title: ClassVar[str]
    revision: ClassVar[int] = 1
    """Bumped when a change of the method's code changes its results (part of the benchmark cache key)."""
    in_default_suites: ClassVar[bool] = True
    """False for a method a benchmark runs only when named (``--methods``)."""

    @abstractmethod
    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None) -> PairScorer:
        """Train on ``train`` (selecting and calibrating on ``valid``) and return a scorer. ``control`` carries the
        callbacks (live curves) and the stop flag to the training loop."""

    def trainer(self, control: TrainingControl | None = None, criterion: Any = None) -> Trainer:
        """The one training loop for this method's config, watched and steered by ``control``."""
        control = control or TrainingControl()
        return Trainer(self.config, callbacks=control.callbacks, stop_event=control.stop_event, criterion=criterion,
                       stop_on_ctrl_c=control.stop_on_ctrl_c, resume_file=control.resume_file)

    def settings(self) -> dict[str, Any]:
        """The method's own settings (every field but ``config``), for cache keys and reports."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "config"}


def evaluate_scores(data: PairDataset, scores: PairScores) -> dict[str, Any]:
    """Detection metrics on ``p_abnormal`` (abnormal = positive), ``auc_score`` on the raw anomaly score, and the
    metrics per anomaly type (Table IV)."""
    metrics = detection_metrics(data.is_abnormal, scores.p_abnormal, scores.predicted)
    metrics["auc_score"] = detection_metrics(data.is_abnormal, scores.anomaly, scores.predicted)["auc"]
    types = anomaly_type(data.face_label, data.voice_label, data.class_names)
    metrics["per_type"] = per_type_metrics(types, scores.p_abnormal, scores.predicted)
    return metrics


__all__ = ["AtypicalInputGate", "CosineScorer", "DetectorScorer", "EnsembleScorer", "Method", "PairScorer",
           "PairScores", "evaluate_scores"]
