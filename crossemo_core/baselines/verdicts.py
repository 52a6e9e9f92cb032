"""Verdict rules: from a method's anomaly scores (higher = more abnormal) to a probability and a yes/no verdict.

Each rule is fitted once (on training and/or validation scores) and then maps any anomaly scores ``(N,)`` to
:class:`~crossemo_core.baselines.base.PairScores` ("abnormal" when ``p_abnormal >= threshold``):

- :class:`FixedThreshold`: ``p = anomaly`` and a threshold fixed in advance (CMAD-style, the agreement baseline).
- :class:`YoudenThreshold`: ``p = anomaly``, threshold maximising Youden's J on the validation split (TN-BCL).
- :class:`BetaMixtureVerdict`: the SIR-HCL verdict for cosine-based anomaly scores ``a = (1 - cos) / 2``: a
  two-component Beta mixture on the training scores ``u = 1 - a`` (initialised from the normal / abnormal labels),
  ``p`` = posterior of the abnormal component, threshold 0.5 (MISA-style).
- :class:`GaussianMixtureVerdict`: an unsupervised two-component Gaussian mixture on the training scores (NCR's
  split of clean and noisy pairs by their per-pair loss), ``p`` = posterior of the higher-mean component, 0.5.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from crossemo_core.baselines.base import PairScores
from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.thresholds import youden_threshold


class Verdict(ABC):
    """Maps anomaly scores to (p_abnormal, verdict); ``threshold`` applies to ``p_abnormal``."""

    threshold: float

    @abstractmethod
    def fit(self, train_anomaly: np.ndarray, train_abnormal: np.ndarray, valid_anomaly: np.ndarray,
            valid_abnormal: np.ndarray) -> Verdict:
        """Fit on ``(N,)`` training and ``(M,)`` validation anomaly scores and their bool labels."""

    @abstractmethod
    def p_abnormal(self, anomaly: np.ndarray) -> np.ndarray:
        """``(N,)`` probability (or [0, 1] score) of inconsistency."""

    def apply(self, anomaly: np.ndarray) -> PairScores:
        p = self.p_abnormal(anomaly)
        return PairScores(anomaly=np.asarray(anomaly, dtype=np.float64), p_abnormal=p, predicted=p >= self.threshold)


@dataclass
class FixedThreshold(Verdict):
    """``p = anomaly`` (which must lie in [0, 1]); abnormal when ``p >= threshold``."""

    threshold: float = 0.5

    def fit(self, train_anomaly: np.ndarray, train_abnormal: np.ndarray, valid_anomaly: np.ndarray,
            valid_abnormal: np.ndarray) -> FixedThreshold:
        return self

    def p_abnormal(self, anomaly: np.ndarray) -> np.ndarray:
        return np.asarray(anomaly, dtype=np.float64)


@dataclass
class YoudenThreshold(Verdict):
    """``p = anomaly``; the threshold is the Youden-index cut on the validation scores."""

    threshold: float = 0.5

    def fit(self, train_anomaly: np.ndarray, train_abnormal: np.ndarray, valid_anomaly: np.ndarray,
            valid_abnormal: np.ndarray) -> YoudenThreshold:
        self.threshold = youden_threshold(np.asarray(valid_abnormal, dtype=int), valid_anomaly)
        return self

    def p_abnormal(self, anomaly: np.ndarray) -> np.ndarray:
        return np.asarray(anomaly, dtype=np.float64)


@dataclass
class BetaMixtureVerdict(Verdict):
    """Two-component Beta mixture on ``u = 1 - anomaly`` for ``anomaly = (1 - cos) / 2`` (so ``u`` is the SIR-HCL
    score :func:`~crossemo_core.mixture.similarity_to_score`); posterior of the abnormal component, threshold 0.5."""

    var_floor: float = 1e-8
    threshold: float = 0.5
    mixture: BetaMixture | None = field(default=None, repr=False)

    def fit(self, train_anomaly: np.ndarray, train_abnormal: np.ndarray, valid_anomaly: np.ndarray,
            valid_abnormal: np.ndarray) -> BetaMixtureVerdict:
        self.mixture = BetaMixture(var_floor=self.var_floor).fit(
            self._u(train_anomaly), init_labels=np.asarray(train_abnormal, dtype=int))
        return self

    def p_abnormal(self, anomaly: np.ndarray) -> np.ndarray:
        assert self.mixture is not None, "fit the verdict first"
        return self.mixture.posterior_abnormal(self._u(anomaly))

    @staticmethod
    def _u(anomaly: np.ndarray) -> np.ndarray:
        return similarity_to_score(1.0 - 2.0 * np.asarray(anomaly, dtype=np.float64))


@dataclass
class GaussianMixtureVerdict(Verdict):
    """Unsupervised two-component Gaussian mixture on the training anomaly scores; ``p`` = posterior of the
    component with the higher mean; threshold 0.5."""

    seed: int = 0
    threshold: float = 0.5
    means: tuple[float, float] = (0.0, 0.0)
    _gmm: object = field(default=None, repr=False)

    def fit(self, train_anomaly: np.ndarray, train_abnormal: np.ndarray, valid_anomaly: np.ndarray,
            valid_abnormal: np.ndarray) -> GaussianMixtureVerdict:
        from sklearn.mixture import GaussianMixture

        x = np.asarray(train_anomaly, dtype=np.float64)[:, None]
        self._gmm = GaussianMixture(2, max_iter=200, tol=1e-6, reg_covar=1e-6, random_state=self.seed).fit(x)
        self.means = tuple(float(m) for m in self._gmm.means_[:, 0])
        return self

    def p_abnormal(self, anomaly: np.ndarray) -> np.ndarray:
        assert self._gmm is not None, "fit the verdict first"
        proba = self._gmm.predict_proba(np.asarray(anomaly, dtype=np.float64)[:, None])
        return proba[:, int(np.argmax(self.means))]
