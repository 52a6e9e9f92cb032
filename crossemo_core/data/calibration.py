"""Per-person baseline calibration [ours]: standardise each speaker's features by that speaker's own reference clips.

People differ in resting face and voice (a naturally low voice, a habitual frown). Calibration removes a speaker's
own baseline before any model sees the data: for every speaker and modality, the mean and standard deviation of
every feature over all frames of the speaker's *reference* clips are computed, and all of that speaker's sequences
are standardised with them.

- ``reference="neutral"``: the speaker's clips labelled neutral (a "neutral baseline recording"). This reads the
  labels of the speaker's neutral clips, also for test speakers: it simulates a deployment where each person first
  records a neutral baseline. A speaker with no neutral clip falls back to all of its clips (counted).
- ``reference="all"``: all of the speaker's clips (no labels used).

The standard deviation is floored at ``std_floor_ratio`` (0.1) x the feature's standard deviation over all of the
speaker's frames, and at 1e-6 absolutely, so a feature that is constant in the few reference clips (e.g. an action
unit never present in a neutral face) does not blow up.

A voice reader's reading appended to the voice frames (channels named ``reader_p:...``, see
:mod:`crossemo_core.data.loaders.reader_voice`) is left as it is: those are probabilities, not measurements.

It is a corpus transform (apply it before the abnormal-pair protocol and the splits); it is never a default, and
results with it are reported separately from the main numbers. The extractor ids get a ``+speaker-<reference>``
suffix so a checkpoint trained on calibrated data refuses uncalibrated data.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from crossemo_core.data.container import PairDataset
from crossemo_core.errors import DataError

POSTERIOR_PREFIX = "reader_p:"
"""Voice channels that hold a reader's probabilities (:data:`crossemo_core.data.loaders.reader_voice.POSTERIOR_PREFIX`)."""

CalibrationReference = Literal["neutral", "all"]
CALIBRATION_REFERENCES: tuple[str, ...] = ("neutral", "all")
STD_FLOOR = 1e-6


@dataclass(frozen=True)
class CalibrationReport:
    """What :func:`calibrate_speakers` did."""

    reference: str
    n_speakers: int
    n_fallback: int
    """Speakers without any neutral clip, calibrated on all of their clips instead."""

    def __str__(self) -> str:
        return (f"per-speaker calibration on {self.reference} clips: {self.n_speakers} speaker(s)"
                + (f", {self.n_fallback} without a neutral clip calibrated on all of their clips"
                   if self.n_fallback else ""))


def calibrate_speakers(corpus: PairDataset, reference: CalibrationReference = "neutral",
                       std_floor_ratio: float = 0.1) -> tuple[PairDataset, CalibrationReport]:
    """Standardise every speaker's face and voice features by the statistics of its reference clips.

    Args:
        corpus: a corpus before the abnormal-pair protocol (``face_label == voice_label``).
        reference: ``"neutral"`` or ``"all"`` (see the module docstring).
        std_floor_ratio: floor of the reference standard deviation, relative to the speaker's overall one.
    Returns:
        the calibrated corpus (same pairs, labels and ids; float32 features) and a report.
    """
    if reference not in CALIBRATION_REFERENCES:
        raise DataError(f"calibration reference must be one of {CALIBRATION_REFERENCES}, got {reference!r}.")
    if (corpus.face_label != corpus.voice_label).any():
        raise DataError("calibrate the corpus before the abnormal-pair protocol (face and voice labels differ).")
    neutral = corpus.class_names.index("neutral") if "neutral" in corpus.class_names else None
    if reference == "neutral" and neutral is None:
        raise DataError(f"{corpus.name} has no 'neutral' class ({corpus.class_names}); use reference 'all'.")
    face, voice = list(corpus.face), list(corpus.voice)
    n_fallback = 0
    speakers = np.unique(corpus.speaker)
    for speaker in speakers:
        members = np.flatnonzero(corpus.speaker == speaker)
        ref = members
        if reference == "neutral":
            ref = members[corpus.face_label[members] == neutral]
            if len(ref) == 0:
                ref, n_fallback = members, n_fallback + 1
        for seqs, names in ((face, corpus.face_feature_names), (voice, corpus.voice_feature_names)):
            mean, std = _reference_stats([seqs[i] for i in ref], [seqs[i] for i in members], std_floor_ratio)
            keep = np.array([str(n).startswith(POSTERIOR_PREFIX) for n in names], bool)
            if len(keep) == len(mean) and keep.any():
                mean, std = np.where(keep, 0.0, mean).astype(np.float32), np.where(keep, 1.0, std).astype(np.float32)
            for i in members:
                seqs[i] = ((seqs[i] - mean) / std).astype(np.float32)
    suffix = f"+speaker-{reference}"
    calibrated = replace(
        corpus, face=face, voice=voice, protocol=dict(corpus.protocol),
        extractor={**{k: v + suffix for k, v in corpus.extractor.items()},
                   **{k: suffix.lstrip("+") for k in ("face", "voice") if k not in corpus.extractor}})
    return calibrated, CalibrationReport(reference=reference, n_speakers=len(speakers), n_fallback=n_fallback)


def _reference_stats(reference: list[np.ndarray], everything: list[np.ndarray],
                     floor_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    ref = np.concatenate(reference).astype(np.float64)
    overall = np.concatenate(everything).astype(np.float64)
    std = np.maximum(ref.std(0), np.maximum(floor_ratio * overall.std(0), STD_FLOOR))
    return ref.mean(0).astype(np.float32), std.astype(np.float32)
