"""The one typed container for a set of face/voice pairs.

A :class:`PairDataset` holds N pairs. Pair ``i`` is a face sequence ``face[i]`` of shape
``(L_face_i, d_face)`` and a voice sequence ``voice[i]`` of shape ``(L_voice_i, d_voice)``; lengths vary per
pair and per modality. Each side carries its own affective label. A corpus as loaded has
``face_label == voice_label``; the abnormal-pair protocol (:mod:`crossemo_core.data.protocol`) then swaps
voices between pairs of the same speaker and records which pair each voice came from in ``voice_source``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from crossemo_core.errors import DataError

LABEL_SETS: dict[int, tuple[str, ...]] = {
    3: ("negative", "neutral", "positive"),
    7: ("strong negative", "negative", "weak negative", "neutral", "weak positive", "positive", "strong positive"),
}


@dataclass
class PairDataset:
    """N face/voice pairs with per-side labels.

    Attributes:
        face: N float32 arrays, each ``(L_face_i, d_face)``, ``L_face_i >= 1``.
        voice: N float32 arrays, each ``(L_voice_i, d_voice)``, ``L_voice_i >= 1``.
        face_label, voice_label: ``(N,)`` int64 class indices in ``[0, len(class_names))``.
        speaker: ``(N,)`` str speaker (or video) id; splits never share a speaker.
        clip_id: ``(N,)`` str id of the clip the *face* comes from.
        face_feature_names, voice_feature_names: one name per feature column.
        name: the dataset's name, shown wherever the data is shown.
        class_names: names of the label classes (index = label value).
        sentiment: optional ``(N,)`` float continuous score the labels were derived from (MOSI-style).
        synthetic: True for generated data; every view must say so.
        voice_source: ``(N,)`` int64 index of the pair whose voice sits in pair ``i`` (``i`` itself when untouched).
        protocol: metadata of the abnormal-pair protocol that produced this set (empty when none was applied).
        extractor: id and version of the feature extractors, e.g. ``{"voice": "librosa-voice/1"}``.
        voice_clip_id: ``(N,)`` str id of the clip the *voice* comes from (``clip_id`` when untouched).
        official_split: ``(N,)`` str "train"/"valid"/"test" when the corpus ships official folds, else None.
        face_emotion, voice_emotion: optional ``(N,)`` int64 finer emotion categories of each side, indices into
            ``emotion_names`` (e.g. RAVDESS's 8 acted emotions). Training may use them
            (``TrainConfig.training_labels = "emotions"``); anomalies are always defined on ``class_names``.
        emotion_names: names of those categories, or None when the corpus has none.
        voice_twin: optional N float32 arrays ``(L_i, d_voice)``: the same speech as ``voice[i]``, recorded or
            coded differently (e.g. through a lossy codec). Training asks a voice and its twin for the same
            embedding when ``LossConfig.consistency`` > 0; None when the set has no twins.
    """

    face: list[np.ndarray]
    voice: list[np.ndarray]
    face_label: np.ndarray
    voice_label: np.ndarray
    speaker: np.ndarray
    clip_id: np.ndarray
    face_feature_names: tuple[str, ...]
    voice_feature_names: tuple[str, ...]
    name: str
    class_names: tuple[str, ...] = LABEL_SETS[3]
    sentiment: np.ndarray | None = None
    synthetic: bool = False
    voice_source: np.ndarray | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    extractor: dict[str, str] = field(default_factory=dict)
    voice_clip_id: np.ndarray | None = None
    official_split: np.ndarray | None = None
    face_emotion: np.ndarray | None = None
    voice_emotion: np.ndarray | None = None
    emotion_names: tuple[str, ...] | None = None
    voice_twin: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.face)
        self.face_label = np.asarray(self.face_label, dtype=np.int64)
        self.voice_label = np.asarray(self.voice_label, dtype=np.int64)
        self.speaker = np.asarray(self.speaker).astype(str)
        self.clip_id = np.asarray(self.clip_id).astype(str)
        self.voice_clip_id = (self.clip_id.copy() if self.voice_clip_id is None
                              else np.asarray(self.voice_clip_id).astype(str))
        self.face_feature_names = tuple(self.face_feature_names)
        self.voice_feature_names = tuple(self.voice_feature_names)
        self.class_names = tuple(self.class_names)
        if self.voice_source is None:
            self.voice_source = np.arange(n, dtype=np.int64)
        self.voice_source = np.asarray(self.voice_source, dtype=np.int64)
        if self.sentiment is not None:
            self.sentiment = np.asarray(self.sentiment, dtype=np.float64)
        if self.official_split is not None:
            self.official_split = np.asarray(self.official_split).astype(str)
        if self.face_emotion is not None:
            self.face_emotion = np.asarray(self.face_emotion, dtype=np.int64)
        if self.voice_emotion is not None:
            self.voice_emotion = np.asarray(self.voice_emotion, dtype=np.int64)
        if self.emotion_names is not None:
            self.emotion_names = tuple(self.emotion_names)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`DataError` with a clear message when the container is inconsistent."""
        n = len(self.face)
        if n == 0:
            raise DataError(f"{self.name}: the dataset holds no pairs.")
        per_pair = {
            "voice": len(self.voice),
            "face_label": len(self.face_label),
            "voice_label": len(self.voice_label),
            "speaker": len(self.speaker),
            "clip_id": len(self.clip_id),
            "voice_source": len(self.voice_source),
            "voice_clip_id": len(self.voice_clip_id),
        }
        if self.sentiment is not None:
            per_pair["sentiment"] = len(self.sentiment)
        if self.official_split is not None:
            per_pair["official_split"] = len(self.official_split)
        emotion_fields = (self.face_emotion, self.voice_emotion, self.emotion_names)
        if any(f is not None for f in emotion_fields) and not all(f is not None for f in emotion_fields):
            raise DataError(f"{self.name}: face_emotion, voice_emotion and emotion_names go together; give all three "
                            "or none.")
        if self.face_emotion is not None:
            per_pair["face_emotion"] = len(self.face_emotion)
            per_pair["voice_emotion"] = len(self.voice_emotion)
        if self.voice_twin is not None:
            per_pair["voice_twin"] = len(self.voice_twin)
        wrong = {k: v for k, v in per_pair.items() if v != n}
        if wrong:
            raise DataError(f"{self.name}: {n} face sequences but {wrong}; every field needs one entry per pair.")
        sides = [("face", self.face, self.face_feature_names), ("voice", self.voice, self.voice_feature_names)]
        if self.voice_twin is not None:
            sides.append(("voice twin", self.voice_twin, self.voice_feature_names))
        for side, seqs, names in sides:
            dims = {s.shape[1] if s.ndim == 2 else -1 for s in seqs}
            if -1 in dims:
                bad = next(i for i, s in enumerate(seqs) if s.ndim != 2)
                raise DataError(f"{self.name}: {side} sequence of pair {bad} ({self.clip_id[bad]}) has shape "
                                f"{seqs[bad].shape}; expected (length, features).")
            if len(dims) != 1:
                raise DataError(f"{self.name}: {side} sequences have different feature dimensions {sorted(dims)}.")
            (dim,) = dims
            if dim == 0:
                raise DataError(f"{self.name}: the {side} features have no columns (every sequence is (length, 0)); "
                                f"there is nothing to compare.")
            if dim != len(names):
                raise DataError(f"{self.name}: {side} features have {dim} columns but {len(names)} feature names.")
            empty = [i for i, s in enumerate(seqs) if s.shape[0] == 0]
            if empty:
                raise DataError(f"{self.name}: {len(empty)} empty {side} sequence(s), first at pair {empty[0]} "
                                f"({self.clip_id[empty[0]]}).")
        c = len(self.class_names)
        for side, lab in (("face", self.face_label), ("voice", self.voice_label)):
            if lab.min() < 0 or lab.max() >= c:
                raise DataError(f"{self.name}: {side} labels must lie in [0, {c - 1}] for classes "
                                f"{self.class_names}; found {lab.min()}..{lab.max()}.")
        if self.emotion_names is not None:
            e = len(self.emotion_names)
            for side, lab in (("face", self.face_emotion), ("voice", self.voice_emotion)):
                if lab.min() < 0 or lab.max() >= e:
                    raise DataError(f"{self.name}: {side} emotions must lie in [0, {e - 1}] for "
                                    f"{self.emotion_names}; found {lab.min()}..{lab.max()}.")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.face)

    @property
    def face_dim(self) -> int:
        return len(self.face_feature_names)

    @property
    def voice_dim(self) -> int:
        return len(self.voice_feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def training_labels(self, kind: str = "classes") -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """Face labels ``(N,)``, voice labels ``(N,)`` and their names for training on ``kind``: "classes" (the
        labels anomalies are defined on) or "emotions" (the finer categories, when the corpus has them)."""
        if kind == "classes":
            return self.face_label, self.voice_label, self.class_names
        if kind != "emotions":
            raise DataError(f"training labels must be 'classes' or 'emotions', not {kind!r}.")
        if self.emotion_names is None:
            raise DataError(f"{self.name} has no finer emotion labels to train on (only {self.class_names}); "
                            "use training_labels='classes'.")
        return self.face_emotion, self.voice_emotion, self.emotion_names

    @property
    def is_abnormal(self) -> np.ndarray:
        """``(N,)`` bool: True where face and voice labels differ (the positive class of every metric)."""
        return self.face_label != self.voice_label

    @property
    def face_lengths(self) -> np.ndarray:
        return np.array([s.shape[0] for s in self.face], dtype=np.int64)

    @property
    def voice_lengths(self) -> np.ndarray:
        return np.array([s.shape[0] for s in self.voice], dtype=np.int64)

    @property
    def display_name(self) -> str:
        """The name as shown to users; synthetic data is always labelled so."""
        return f"{self.name} (synthetic)" if self.synthetic and "synthetic" not in self.name.lower() else self.name

    def subset(self, indices: Sequence[int] | np.ndarray) -> "PairDataset":
        """A new dataset with the pairs at ``indices`` (``voice_source`` is re-indexed when it stays inside)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or len(idx) == 0:
            raise DataError(f"{self.name}: a subset needs a non-empty 1-D list of indices.")
        position = {int(old): new for new, old in enumerate(idx)}
        source = np.array([position.get(int(self.voice_source[i]), -1) for i in idx], dtype=np.int64)
        if (source < 0).any():
            # A voice came from a pair outside the subset: keep it as the pair's own voice from now on.
            source = np.where(source < 0, np.arange(len(idx)), source)
        return PairDataset(
            face=[self.face[i] for i in idx],
            voice=[self.voice[i] for i in idx],
            face_label=self.face_label[idx],
            voice_label=self.voice_label[idx],
            speaker=self.speaker[idx],
            clip_id=self.clip_id[idx],
            face_feature_names=self.face_feature_names,
            voice_feature_names=self.voice_feature_names,
            name=self.name,
            class_names=self.class_names,
            sentiment=None if self.sentiment is None else self.sentiment[idx],
            synthetic=self.synthetic,
            voice_source=source,
            protocol=dict(self.protocol),
            extractor=dict(self.extractor),
            voice_clip_id=self.voice_clip_id[idx],
            official_split=None if self.official_split is None else self.official_split[idx],
            face_emotion=None if self.face_emotion is None else self.face_emotion[idx],
            voice_emotion=None if self.voice_emotion is None else self.voice_emotion[idx],
            emotion_names=self.emotion_names,
            voice_twin=None if self.voice_twin is None else [self.voice_twin[i] for i in idx],
        )

    def with_labels(self, face_label: np.ndarray, voice_label: np.ndarray,
                    class_names: tuple[str, ...]) -> "PairDataset":
        """The same pairs relabelled (e.g. 3-class -> 7-class from ``sentiment``)."""
        return replace(self, face_label=face_label, voice_label=voice_label, class_names=class_names,
                       protocol=dict(self.protocol), extractor=dict(self.extractor))

    def summary(self) -> dict[str, Any]:
        """Counts a person wants to see before training: pairs, speakers, classes per modality, lengths."""
        face_counts = np.bincount(self.face_label, minlength=self.n_classes)
        voice_counts = np.bincount(self.voice_label, minlength=self.n_classes)
        return {
            "name": self.display_name,
            "synthetic": self.synthetic,
            "n_pairs": len(self),
            "n_speakers": int(len(np.unique(self.speaker))),
            "n_abnormal": int(self.is_abnormal.sum()),
            "face_dim": self.face_dim,
            "voice_dim": self.voice_dim,
            "face_classes": dict(zip(self.class_names, face_counts.tolist())),
            "voice_classes": dict(zip(self.class_names, voice_counts.tolist())),
            "face_length": _length_stats(self.face_lengths),
            "voice_length": _length_stats(self.voice_lengths),
            "protocol": {k: v for k, v in self.protocol.items() if k != "voice_source"},
        }


def _length_stats(lengths: np.ndarray) -> dict[str, float]:
    return {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())}


def concatenate(datasets: Sequence[PairDataset], name: str | None = None) -> PairDataset:
    """Join datasets with the same feature schema and classes into one."""
    if not datasets:
        raise DataError("concatenate needs at least one dataset.")
    first = datasets[0]
    for d in datasets[1:]:
        if (d.face_feature_names, d.voice_feature_names, d.class_names) != (
                first.face_feature_names, first.voice_feature_names, first.class_names):
            raise DataError(f"cannot join {first.name} and {d.name}: feature names or classes differ.")
    offsets = np.cumsum([0] + [len(d) for d in datasets[:-1]])
    has_sentiment = all(d.sentiment is not None for d in datasets)
    has_emotions = all(d.emotion_names is not None and d.emotion_names == first.emotion_names for d in datasets)
    return PairDataset(
        face=[s for d in datasets for s in d.face],
        voice=[s for d in datasets for s in d.voice],
        face_label=np.concatenate([d.face_label for d in datasets]),
        voice_label=np.concatenate([d.voice_label for d in datasets]),
        speaker=np.concatenate([d.speaker for d in datasets]),
        clip_id=np.concatenate([d.clip_id for d in datasets]),
        face_feature_names=first.face_feature_names,
        voice_feature_names=first.voice_feature_names,
        name=name or first.name,
        class_names=first.class_names,
        sentiment=np.concatenate([d.sentiment for d in datasets]) if has_sentiment else None,
        synthetic=any(d.synthetic for d in datasets),
        voice_source=np.concatenate([d.voice_source + o for d, o in zip(datasets, offsets)]),
        extractor=dict(first.extractor),
        voice_clip_id=np.concatenate([d.voice_clip_id for d in datasets]),
        official_split=(np.concatenate([d.official_split for d in datasets])
                        if all(d.official_split is not None for d in datasets) else None),
        face_emotion=np.concatenate([d.face_emotion for d in datasets]) if has_emotions else None,
        voice_emotion=np.concatenate([d.voice_emotion for d in datasets]) if has_emotions else None,
        emotion_names=first.emotion_names if has_emotions else None,
        # a part without twins lends each voice as its own twin (no consistency pull on those pairs)
        voice_twin=([s for d in datasets for s in (d.voice if d.voice_twin is None else d.voice_twin)]
                    if any(d.voice_twin is not None for d in datasets) else None),
    )
