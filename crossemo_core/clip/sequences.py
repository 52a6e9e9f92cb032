"""The clip model's inputs: face and voice sequences of one time window, built the same way for training
(scripts/train_clip_model.py) and for scoring a clip (crossemo_core.clip.verdict).

- **Face**: one row per sampled video frame (:data:`FACE_FPS` per second) in which a face was found: the 7 logits of the
  expression network (:mod:`crossemo_core.clip.expression`) on the FER-framed crop.
- **Voice**: the core's frame-level voice features (:class:`~crossemo_core.features.voice.VoiceFeatureExtractor`,
  10 ms frames) of the loudness-normalised signal, cut to the window, trimmed to its first..last speech frame,
  ``log_f0`` filled over unvoiced frames and mean-pooled by 5 (20 rows per second), i.e. the core's
  ``f0fill+pool5`` preprocessing (:mod:`crossemo_core.features.sequence`).

A window is judged only when a face is found in at least :data:`MIN_FACE_FRACTION` of its frames and it holds
speech (:func:`speech_frames`): energy-active frames in at least :data:`MIN_SPEECH_FRACTION` of it, of which at
least :data:`MIN_VOICED_FRACTION` voiced. Silence is not judged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossemo_core.clip.expression import FER_CLASSES
from crossemo_core.features.sequence import preprocess_voice
from crossemo_core.features.voice import (EXTRACTOR_ID, EXTRACTOR_VERSION, VoiceFeatureExtractor, floor_voicing,
                                          speech_mask)

WINDOW_S = 2.0
HOP_S = 0.5
FACE_FPS = 5.0
"""Face frames analysed per second. [ours] 5, not the 10 the issue gives as an example: the face mesh and the
expression network are most of a verdict's time (benchmarks/bench_clip.py), and expressions last 0.5-4 s. A
checkpoint records the rate it was trained with and the scorer samples video at that rate."""
VOICE_HOP_S = 0.01
JITTER_S = (-0.225, -0.175, -0.125, -0.075, -0.025, 0.025, 0.075, 0.125, 0.175, 0.225)
"""Offsets (seconds) at which the clip model reads each window, face and voice together: a window's similarity is
the mean of the similarities of ``[start + d, end + d)`` (offsets that would leave the recording are skipped). They
tile the hop (:data:`HOP_S`) evenly, so the windows of a recording together read the clip model at every 50 ms:
their mean no longer depends on where the window grid falls on the speech. One reading at the nominal place
flipped between similarity ~0 and ~1 when the audio moved by 100 ms (the recurrent encoders' final state depends
on where the sequence starts). [ours] Chosen on validation clips (docs/clip.md, Stability)."""
JITTER_WEIGHTS = (1.0,) * len(JITTER_S)
MIN_FACE_FRACTION = 0.5
MIN_SPEECH_FRACTION = 0.25
MIN_VOICED_FRACTION = 0.15
MIN_CLIP_SPEECH_S = 0.5
"""Below this much speech (energy-active and voiced) in the whole clip, the verdict is "no speech"."""
TARGET_LEVEL_DB = -20.0
"""Loudness normalisation: the 90th percentile of frame RMS (25 ms frames) is brought to this level (dBFS)."""
VAD = {"margin_db": 35.0, "floor_db": -60.0, "hangover": 5}
"""Energy VAD settings (:func:`crossemo_core.features.voice.speech_mask`), applied after loudness normalisation."""
VOICE_STEPS = "f0fill+pool5"
AUDIO_RATE = 16000

FACE_FEATURE_NAMES = tuple(f"fer_logit_{c}" for c in FER_CLASSES)
VOICE_EXTRACTOR = f"{EXTRACTOR_ID}/{EXTRACTOR_VERSION}+level{int(TARGET_LEVEL_DB)}+speechwin+{VOICE_STEPS}"
VALENCE = ("negative", "neutral", "positive")


def face_extractor_id(fer_sha256: str) -> str:
    """The face extractor id stored in the clip checkpoint: it names the exact expression network used."""
    return f"fer-expression-logits/{fer_sha256[:12]}"


LOUDNESS_FRAME_S = 0.025


def loudness_gain(frame_rms: np.ndarray) -> float:
    """The gain :func:`normalise_loudness` applies, from the RMS of every 25 ms frame of the signal."""
    level = 20 * np.log10(max(float(np.percentile(frame_rms, 90)), 1e-9))
    return 10 ** (np.clip(TARGET_LEVEL_DB - level, -40.0, 40.0) / 20)


def frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    """RMS (float64) of each whole ``frame``-sample frame of ``x``, from its first sample."""
    n = len(x) // frame
    return np.sqrt(np.mean(x[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))


def normalise_loudness(signal: np.ndarray, sr: int) -> np.ndarray:
    """``signal`` scaled so its 90th-percentile frame RMS is :data:`TARGET_LEVEL_DB` (gain capped at +-40 dB; the
    result is clipped to [-1, 1]). Recordings made at different gains then give comparable energy and MFCC-0."""
    x = np.asarray(signal, dtype=np.float32)
    gain = _loudness_gain_of(x, sr)
    return x if gain is None else apply_gain(x, gain)


def _loudness_gain_of(x: np.ndarray, sr: int) -> float | None:
    frame = max(1, int(LOUDNESS_FRAME_S * sr))
    return None if len(x) // frame == 0 else loudness_gain(frame_rms(x, frame))


def apply_gain(x: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float32) * gain, -1.0, 1.0).astype(np.float32)


@dataclass
class VoiceTrack:
    """Frame-level voice features of a whole clip and its speech frames."""

    features: np.ndarray  # (frames, 47) raw extractor output, 10 ms hop
    active: np.ndarray  # (frames,) bool energy VAD
    voiced: np.ndarray  # (frames,) bool voicing >= 0.5
    details: np.ndarray | None = None
    """``(frames, 3 * n_mfcc + 3)``: log F0 and periodicity before the energy floor, and the MFCCs, deltas and
    flatness of the audio before the gain
    (:meth:`~crossemo_core.features.voice.VoiceFeatureExtractor.extract_with_details`)."""
    gain: float = 1.0
    """The loudness gain the audio was multiplied by (and clipped to [-1, 1]) before the features were computed."""

    @property
    def duration_s(self) -> float:
        return len(self.features) * VOICE_HOP_S

    @property
    def speech_s(self) -> float:
        return float((self.active & self.voiced).sum()) * VOICE_HOP_S

    def frames(self, a: int, z: int) -> "VoiceTrack":
        """Frames ``a .. z - 1`` (copies)."""
        return VoiceTrack(self.features[a:z].copy(), self.active[a:z].copy(), self.voiced[a:z].copy(),
                          None if self.details is None else self.details[a:z].copy(), self.gain)

    def then(self, later: "VoiceTrack") -> "VoiceTrack":
        """This track followed by ``later`` (the frames right after, computed with the same gain)."""
        if later.gain != self.gain:
            raise ValueError(f"voice features computed with gain {later.gain:g} cannot follow those with {self.gain:g}")
        details = (np.concatenate([self.details, later.details])
                   if self.details is not None and later.details is not None else None)
        return VoiceTrack(np.concatenate([self.features, later.features]), np.concatenate([self.active, later.active]),
                          np.concatenate([self.voiced, later.voiced]), details, self.gain)

    def raw_frames(self, a: int, audio: np.ndarray) -> np.ndarray | None:
        """The extractor's frames of ``audio`` alone (16 kHz, the recording's samples from frame ``a``'s centre on,
        before the gain), cut from this track instead of extracted again; None without the details or the frames.
        The columns a gain changes are taken from the details (MFCCs, deltas, flatness of the audio before the gain)
        or computed again from ``audio`` (``rms_db``: cheap, and an edge frame would otherwise hear past the stretch,
        while the loudest frame sets the voicing floor, :func:`~crossemo_core.features.voice.floor_voicing`, and the
        voice reader's loudness statistics). What still differs from an extraction of ``audio`` alone: the spectrum,
        pitch and deltas of the frames within ~60 ms of its ends, which hear the recording around it instead of
        zeros. A caller must not use a stretch the gain clipped (the features after a clipping gain are not the
        audio's)."""
        ex = _EXTRACTOR
        z = a + 1 + len(audio) // ex.hop
        if (self.details is None or a < 0 or z > len(self.features) or len(audio) == 0
                or self.features.shape[1] != ex.dim or self.details.shape[1] != len(_DETAILS)):
            return None
        raw = self.features[a:z].copy()
        raw[:, _BEFORE_GAIN] = self.details[a:z, _DETAIL_OF]
        raw[:, ex.feature_names.index("rms_db")] = ex.rms_db(audio)
        return floor_voicing(raw, self.details[a:z], ex.feature_names)


_EXTRACTOR = VoiceFeatureExtractor()
_DETAILS = _EXTRACTOR.detail_names()
_DETAIL_OF = [i for i, n in enumerate(_DETAILS) if n in _EXTRACTOR.feature_names]
_BEFORE_GAIN = [_EXTRACTOR.feature_names.index(_DETAILS[i]) for i in _DETAIL_OF]


def voice_track(signal: np.ndarray, sr: int, extractor: VoiceFeatureExtractor | None = None) -> VoiceTrack:
    """Loudness-normalise, extract the features and find the speech frames."""
    extractor = extractor or VoiceFeatureExtractor()
    x = np.asarray(signal, dtype=np.float32)
    gain = _loudness_gain_of(x, sr)
    features, details = extractor.extract_with_details(x if gain is None else apply_gain(x, gain), sr,
                                                       1.0 if gain is None else gain)
    names = extractor.feature_names
    return VoiceTrack(features=features, active=speech_mask(features, names, **VAD),
                      voiced=features[:, names.index("voicing")] >= 0.5,
                      details=details, gain=1.0 if gain is None else gain)


VOICE_MARGIN_S = 0.5
"""Context read on each side of a stretch whose features :func:`voice_track_part` computes: more than any frame's
features reach (the pitch frame's 64 ms, the deltas' 4 frames, the speech mask's 5-frame hangover)."""


def voice_track_part(signal: np.ndarray, gain: float, max_db: float,
                     extractor: VoiceFeatureExtractor | None = None) -> VoiceTrack:
    """:func:`voice_track` of a stretch of a long recording, given what depends on the whole recording: the loudness
    ``gain`` and the loudest frame's ``rms_db`` after it (``max_db``; the voicing floor and the speech mask are set
    from it). The frames more than :data:`VOICE_MARGIN_S` from the stretch's ends (or at the recording's own ends)
    are those :func:`voice_track` gives for the whole recording."""
    extractor = extractor or VoiceFeatureExtractor()
    names = extractor.feature_names
    features, details = extractor.extract_with_details(apply_gain(signal, gain), AUDIO_RATE, gain)
    # voicing (and log F0, which follows it) under the whole recording's floor, not this stretch's
    features = floor_voicing(features, details, names, max_db)
    return VoiceTrack(features=features, active=speech_mask_at(features[:, names.index("rms_db")], max_db),
                      voiced=features[:, names.index("voicing")] >= 0.5, details=details, gain=gain)


def speech_mask_at(rms_db: np.ndarray, max_db: float) -> np.ndarray:
    """:func:`~crossemo_core.features.voice.speech_mask` with :data:`VAD` settings, the loudest frame given."""
    level = np.asarray(rms_db).astype(np.float64)
    active = level > max(VAD["floor_db"], float(max_db) - VAD["margin_db"])
    hangover = VAD["hangover"]
    if hangover > 0 and active.any():
        active = np.convolve(active.astype(np.int64), np.ones(2 * hangover + 1, dtype=np.int64), "same") > 0
    return active


def voice_window(track: VoiceTrack, start_s: float, end_s: float,
                 names: tuple[str, ...] = VoiceFeatureExtractor().feature_names, first: int = 0) -> np.ndarray | None:
    """The model's voice sequence for ``[start_s, end_s)``, or None when the window holds no speech. ``first``: the
    recording's frame index of the track's first frame (a stretch of a long recording)."""
    a = int(round(start_s / VOICE_HOP_S))
    b = min(int(round(end_s / VOICE_HOP_S)), first + len(track.features))
    if b - a < 10:
        return None
    a, b = a - first, b - first
    active = track.active[a:b]
    if active.mean() < MIN_SPEECH_FRACTION or (active & track.voiced[a:b]).sum() < MIN_VOICED_FRACTION * active.sum():
        return None
    idx = np.flatnonzero(active)
    return preprocess_voice(track.features[a + idx[0]: a + idx[-1] + 1], names, VOICE_STEPS)


def face_window(times: np.ndarray, found: np.ndarray, logits: np.ndarray, start_s: float,
                end_s: float, fps: float = FACE_FPS) -> np.ndarray | None:
    """The model's face sequence for ``[start_s, end_s)``: logits ``(n, 7)`` of the frames with a face, or None when
    a face covers less than :data:`MIN_FACE_FRACTION` of the window's time (frames with a face against the frames
    ``fps`` would give: a video with one frame does not cover a 2 s window).

    ``times`` ``(T,)`` and ``found`` ``(T,)`` cover every sampled frame; ``logits`` ``(found.sum(), 7)`` only those
    with a face, in order.
    """
    inside = (times >= start_s - 1e-6) & (times < end_s - 1e-6)
    expected = max(int(inside.sum()), int(np.floor((end_s - start_s) * fps + 1e-6)), 1)
    if inside.sum() == 0 or found[inside].sum() < MIN_FACE_FRACTION * expected:
        return None
    rows = np.cumsum(found) - 1  # row of each found frame in ``logits``
    return logits[rows[inside & found]].astype(np.float32)


def window_starts(duration_s: float) -> list[tuple[float, float]]:
    """Windows of :data:`WINDOW_S` every :data:`HOP_S` covering ``[0, duration_s]`` (the last one ends at the end);
    a clip shorter than one window gives one window over the whole clip."""
    if duration_s <= WINDOW_S + 1e-6:
        return [(0.0, max(duration_s, 1e-3))]
    starts = list(np.arange(0.0, duration_s - WINDOW_S + 1e-6, HOP_S))
    if duration_s - (starts[-1] + WINDOW_S) > 0.1:
        starts.append(duration_s - WINDOW_S)
    return [(float(s), float(s) + WINDOW_S) for s in starts]
