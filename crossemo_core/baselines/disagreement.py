"""The reader-disagreement rule [ours, issue 14]: compare what a face reader and a voice reader say, no network.

For every pair, a face posterior ``p_f`` and a voice posterior ``p_v`` over the same labels (the 3 valences, or
the 7 emotions angry, disgust, fearful, happy, sad, surprised, neutral; RAVDESS calm counts as neutral) are
compared with one of four *measures*:

- ``js-valence`` / ``js-emotion``: the Jensen-Shannon divergence (base 2, in [0, 1]);
- ``dot-valence`` / ``dot-emotion``: ``1 - sum_c p_f(c) p_v(c)`` (the agreement baseline's score).

Where the posteriors come from:

- **face**: a logistic regression (standardised inputs, ``C`` = :attr:`DisagreementMethod.c`) on the training
  pairs' face features (each sequence's mean and, for sequences longer than one frame, standard deviation), one
  for the 3 classes and one for the emotions. This is the only trained part of the rule, fitted per fold on the
  training speakers (and refit on train + valid with ``refit``, after the choices below are made on valid).
- **voice**: ``voice="reader"`` reads the reading a voice reader appended to the voice frames
  (``voice_features="reader:..."`` of the RAVDESS loader, :mod:`crossemo_core.data.loaders.reader_voice`;
  nothing is fitted for the voice); ``voice="fit"`` fits the same kind of logistic regression on the pooled voice
  frames (mean and standard deviation per channel, the reading left out); ``"auto"`` (default) uses the reader's
  reading where the voice carries one, else fits.

``measure="auto"`` (default) chooses the measure with the highest AUC on the validation pairs; the verdict is the
Youden cut of the chosen score on the validation pairs. ``p_abnormal`` is the score itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from crossemo_core.baselines.base import Method, PairScores
from crossemo_core.data.container import PairDataset
from crossemo_core.errors import DataError
from crossemo_core.thresholds import youden_threshold
from crossemo_core.training import TrainingControl

MEASURES = ("js-valence", "js-emotion", "dot-valence", "dot-emotion")
READER_EMOTIONS = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
_ALIASES = {"calm": "neutral"}
_POSTERIOR_PREFIX = "reader_p:"


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence in bits, ``(N, K)`` x ``(N, K)`` -> ``(N,)`` in [0, 1]."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, None)
    q = np.clip(np.asarray(q, np.float64), 1e-12, None)
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    m = 0.5 * (p + q)
    kl = lambda a, b: (a * np.log2(a / b)).sum(1)
    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, 1.0)


def dot_disagreement(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - (np.asarray(p, np.float64) * np.asarray(q, np.float64)).sum(1), 0.0, 1.0)


def _pooled(sequences: list[np.ndarray]) -> np.ndarray:
    """``(N, d)`` means, with the per-channel standard deviation appended when any sequence is longer than 1."""
    means = np.stack([s.mean(0) for s in sequences])
    if max(len(s) for s in sequences) > 1:
        return np.concatenate([means, np.stack([s.std(0) for s in sequences])], axis=1)
    return means


def emotion_index(pairs: PairDataset, side: str) -> np.ndarray | None:
    """Each pair's ``side`` emotion as an index into :data:`READER_EMOTIONS` (-1 where it has none), or None when
    the corpus has no emotion labels that map onto them."""
    labels = getattr(pairs, f"{side}_emotion")
    if labels is None or pairs.emotion_names is None:
        return None
    names = [_ALIASES.get(n, n) for n in pairs.emotion_names]
    if not all(n in READER_EMOTIONS for n in names):
        return None
    lookup = np.array([READER_EMOTIONS.index(n) for n in names])
    return np.where(labels >= 0, lookup[np.clip(labels, 0, None)], -1)


@dataclass
class _Linear:
    """Standardisation + multinomial logistic regression with one probability column per label ``0..n-1``."""

    n: int
    c: float
    model: Any = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Linear:
        from sklearn.linear_model import LogisticRegression

        keep = y >= 0
        x, y = x[keep], y[keep]
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-6
        self.model = LogisticRegression(C=self.c, max_iter=3000).fit((x - self.mean) / self.scale, y)
        return self

    def proba(self, x: np.ndarray) -> np.ndarray:
        out = np.full((len(x), self.n), 1e-6)
        out[:, self.model.classes_] = self.model.predict_proba((x - self.mean) / self.scale)
        return out / out.sum(1, keepdims=True)


@dataclass
class DisagreementScorer:
    """Fitted face (and, with ``voice="fit"``, voice) models, the chosen measure and its threshold."""

    face: dict[str, _Linear]
    voice: dict[str, _Linear] | None
    measure: str
    threshold: float
    face_channels: int
    voice_keep: np.ndarray
    reader_columns: dict[str, list[int]] | None
    valid_auc: dict[str, float] = field(default_factory=dict)

    def posteriors(self, pairs: PairDataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        face_x = _pooled(pairs.face)
        out = {}
        for part in ("valence", "emotion"):
            if part not in self.face:
                continue
            p_face = self.face[part].proba(face_x)
            if self.voice is None:
                assert self.reader_columns is not None
                p_voice = np.stack([v[0, self.reader_columns[part]] for v in pairs.voice]).astype(np.float64)
            else:
                p_voice = self.voice[part].proba(_pooled([v[:, self.voice_keep] for v in pairs.voice]))
            out[part] = (p_face, p_voice)
        return out

    def scores(self, pairs: PairDataset) -> dict[str, np.ndarray]:
        """Every available measure's score, ``{measure: (N,)}``."""
        out = {}
        for part, (p_face, p_voice) in self.posteriors(pairs).items():
            out[f"js-{part}"] = js_divergence(p_face, p_voice)
            out[f"dot-{part}"] = dot_disagreement(p_face, p_voice)
        return out

    def score(self, pairs: PairDataset) -> PairScores:
        s = self.scores(pairs)[self.measure]
        return PairScores(anomaly=s, p_abnormal=s, predicted=s >= self.threshold)


@dataclass
class DisagreementMethod(Method):
    """Training-free comparison of a face and a voice reader's posteriors (see the module docstring)."""

    measure: str = "auto"
    voice: str = "auto"
    c: float = 0.1
    name: ClassVar[str] = "disagreement"
    title: ClassVar[str] = "Reader disagreement (JS / 1 - sum p_f p_v)"

    def __post_init__(self) -> None:
        if self.measure not in MEASURES + ("auto",):
            raise ValueError(f"measure must be one of {MEASURES + ('auto',)}, not {self.measure!r}")
        if self.voice not in ("auto", "reader", "fit"):
            raise ValueError(f"voice must be 'auto', 'reader' or 'fit', not {self.voice!r}")

    def _fit_models(self, data: PairDataset, voice_mode: str, voice_keep: np.ndarray
                    ) -> tuple[dict[str, _Linear], dict[str, _Linear] | None]:
        face_x = _pooled(data.face)
        targets = {"valence": (data.face_label, data.voice_label, len(data.class_names))}  # the corpus's classes
        f_emo, v_emo = emotion_index(data, "face"), emotion_index(data, "voice")
        if f_emo is not None and v_emo is not None:
            targets["emotion"] = (f_emo, v_emo, len(READER_EMOTIONS))
        face = {k: _Linear(n, self.c).fit(face_x, yf) for k, (yf, _, n) in targets.items()}
        voice = None
        if voice_mode == "fit":
            voice_x = _pooled([v[:, voice_keep] for v in data.voice])
            voice = {k: _Linear(n, self.c).fit(voice_x, yv) for k, (_, yv, n) in targets.items()}
        return face, voice

    def fit(self, train: PairDataset, valid: PairDataset, control: TrainingControl | None = None
            ) -> DisagreementScorer:
        names = train.voice_feature_names
        reader_cols = {part: [i for i, n in enumerate(names) if n.startswith(f"{_POSTERIOR_PREFIX}{part}:")]
                       for part in ("valence", "emotion")}
        has_reader = all(reader_cols.values())
        voice_mode = self.voice if self.voice != "auto" else ("reader" if has_reader else "fit")
        if voice_mode == "reader" and not has_reader:
            raise DataError("the disagreement rule with voice='reader' needs a voice reader's reading in the voice "
                            "frames (load RAVDESS with voice_features='reader:<checkpoint>').")
        if voice_mode == "reader" and train.class_names != ("negative", "neutral", "positive"):
            raise DataError(f"the voice reader reads 3 valences; {train.name} has classes {train.class_names}.")
        keep = np.array([not n.startswith(_POSTERIOR_PREFIX) for n in names], bool)
        face, voice = self._fit_models(train, voice_mode, keep)
        scorer = DisagreementScorer(face, voice, "", 0.5, train.face_dim, keep,
                                    reader_cols if voice_mode == "reader" else None)
        from sklearn.metrics import roc_auc_score

        valid_scores = scorer.scores(valid)
        y = valid.is_abnormal
        scorer.valid_auc = {m: float(roc_auc_score(y, s)) for m, s in valid_scores.items()} if y.any() and (
            ~y).any() else {m: 0.5 for m in valid_scores}
        if self.measure == "auto":
            scorer.measure = max(MEASURES, key=lambda m: scorer.valid_auc.get(m, -1.0))
        elif self.measure not in valid_scores:
            raise DataError(f"measure {self.measure!r} needs emotion labels that map onto the reader's 7 emotions; "
                            f"{train.name} has none.")
        else:
            scorer.measure = self.measure
        scorer.threshold = float(youden_threshold(y.astype(int), valid_scores[scorer.measure]))
        if self.config.train.refit:  # the choices stay; the models learn from train + valid
            from crossemo_core.data.container import concatenate

            scorer.face, scorer.voice = self._fit_models(concatenate([train, valid]), voice_mode, keep)
        return scorer


__all__ = ["MEASURES", "DisagreementMethod", "DisagreementScorer", "dot_disagreement", "js_divergence"]
