"""Verdict on a clip: do the emotion of the face and the emotion of the voice agree, and where do they not?

Pipeline (:class:`ClipScorer`): decode (:mod:`.decode`, audio aligned to the video's start by timestamps) -> face
mesh, FER-framed crops, geometry (:mod:`.face`) -> expression logits (:mod:`.expression`) and the face reader's
emotions per frame (:mod:`crossemo_core.readers.face`) -> voice features with voice-activity detection
(:mod:`.sequences`) -> sliding windows (2 s, hop 0.5 s) -> per window: the shipped SIR-HCL clip model (the core's
:class:`~crossemo_core.detector.Detector`: embeddings, cosine similarity, Beta-mixture posterior), the face reading
over the window's frames and the voice reader on the window's audio (:mod:`crossemo_core.readers.voice`) -> the
evidence combiner (:mod:`.combine`) -> an atypical-input gate (:mod:`.gate`) -> a :class:`ClipVerdict`.

The clip's probability of inconsistency is the evidence combiner's: a logistic regression, fitted and calibrated on
validation clips, over the embedding's posterior (Beta mixture at the mean window similarity) and the disagreement
of the two readings pooled over the judged windows (:data:`~crossemo_core.clip.combine.RULE` says it in a
sentence). The verdict is "inconsistent" at 0.5 or above, with weak / moderate / strong evidence, else
"consistent", or "undetermined" with its reason: a face covers less than half of the clip's time, less than 0.5 s of
speech, no window with both, most windows unlike anything seen in training (per-modality kNN gate), or both readers
uncertain. A verdict whose sources pull in opposite directions, or that goes against the valences it prints, carries
a sentence saying so (:attr:`ClipVerdict.conflict`).

Per-person baseline (optional): a calm, neutral clip of the same person. The mean of its face rows and voice rows
(model inputs) is subtracted from the clip's and replaced by the training population's neutral mean, and the voice
reader reads relative to that recording; the result goes through the same combiner.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.combine import (DEFAULT_COMBINER, RULE, EvidenceCombiner, evidence_features, sources_disagree,
                                        strength)
from crossemo_core.clip.decode import AUDIO_RATE, ClipLimits, Source, decode_media
from crossemo_core.clip.expression import ExpressionModel
from crossemo_core.clip.face import GEOMETRY_NAMES, FaceFrame, FaceTrack
from crossemo_core.clip.gate import KnnGate
from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, cosine_rows
from crossemo_core.errors import CheckpointError
from crossemo_core.features.voice import VoiceFeatureExtractor
from crossemo_core.paths import CHECKPOINTS
from crossemo_core.readers.face import reading_of
from crossemo_core.readers.reading import Reading
from crossemo_core.readers.voice import DEFAULT_VOICE_READER, SpeakerBaseline, VoiceReader
from crossemo_core.settings import clip_checkpoint

DEFAULT_CLIP_CHECKPOINT = CHECKPOINTS / "clip.pt"
"""The shipped clip model; ``$CROSSEMO_CLIP_CHECKPOINT`` replaces it as the default (``--checkpoint`` wins)."""
DEFAULT_FER_CHECKPOINT = CHECKPOINTS / "fer_expression.pt"
VOICE_NAMES = VoiceFeatureExtractor().feature_names
SILENCE_PEAK = 1e-4
ATYPICAL_SHARE = 0.5
"""The clip is "unlike anything seen in training" when more than this share of its scored windows is."""


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ the model
@dataclass
class WindowScores:
    """Scores of N windows."""

    similarity: np.ndarray
    p_inconsistent: np.ndarray  # the embedding's posterior (Beta mixture)
    face_atypical: np.ndarray
    voice_atypical: np.ndarray
    face_distance: np.ndarray
    voice_distance: np.ndarray


@dataclass
class ClipModel:
    """The SIR-HCL detector trained on clip features, the expression network it was trained with, the gate and the
    population's neutral means (for the per-person baseline)."""

    detector: Detector
    expression: ExpressionModel
    gate: KnnGate | None
    population: dict[str, np.ndarray]
    face_extractor: str
    path: Path | None = None
    emotion_names: tuple[str, ...] | None = None  # the head's outputs when it was trained on emotions, else None

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, expression: str | Path | None = None) -> "ClipModel":
        path = Path(checkpoint or clip_checkpoint() or DEFAULT_CLIP_CHECKPOINT)
        if checkpoint is None and not path.is_file():
            raise CheckpointError(f"the shipped clip model {path} is missing; reinstall crossemo or train one with "
                                  f"scripts/train_clip_model.py.")
        detector = Detector.load(path)
        meta = detector.metadata.get("clip")
        if not isinstance(meta, dict):
            raise CheckpointError(f"{path} is not a clip checkpoint (it was trained on "
                                  f"{detector.metadata.get('dataset', 'another kind of data')}, not on clip features); "
                                  f"use checkpoints/clip.pt or one made by scripts/train_clip_model.py.")
        if expression is not None:
            fer_path = Path(expression)
        else:
            fer_path = path.parent / meta["fer_file"]
            fer_path = fer_path if fer_path.is_file() else DEFAULT_FER_CHECKPOINT
        if not fer_path.is_file():
            raise CheckpointError(f"the expression network {fer_path} does not exist; the clip model {path.name} "
                                  f"needs {meta['fer_file']} (sha256 {meta['fer_sha256'][:12]}).")
        sha = file_sha256(fer_path)
        if sha != meta["fer_sha256"]:
            raise CheckpointError(f"the clip model {path.name} was trained with the expression network "
                                  f"{meta['fer_file']} (sha256 {meta['fer_sha256'][:12]}); {fer_path} is a "
                                  f"different one (sha256 {sha[:12]}).")
        gate = KnnGate.from_dict(meta["gate"]) if meta.get("gate") else None
        population = {k: np.asarray(v, dtype=np.float32) for k, v in meta.get("population", {}).items()}
        names = _head_emotions(path, detector, meta)
        return cls(detector=detector, expression=ExpressionModel.load(fer_path), gate=gate, population=population,
                   face_extractor=seq.face_extractor_id(sha), path=path, emotion_names=names)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold)

    def pairs(self, face: Sequence[np.ndarray], voice: Sequence[np.ndarray]) -> PairDataset:
        n = len(face)
        return PairDataset(face=list(face), voice=list(voice), face_label=np.zeros(n, np.int64),
                           voice_label=np.zeros(n, np.int64), speaker=np.array(["clip"] * n),
                           clip_id=np.array([f"window_{i}" for i in range(n)]),
                           face_feature_names=seq.FACE_FEATURE_NAMES, voice_feature_names=VOICE_NAMES,
                           name="clip", class_names=tuple(self.detector.schema["class_names"]),
                           extractor={"face": self.face_extractor, "voice": seq.VOICE_EXTRACTOR})

    @torch.no_grad()
    def score_windows(self, face: Sequence[np.ndarray], voice: Sequence[np.ndarray]) -> WindowScores:
        """Scores of windows given their face sequences ``(n_i, 7)`` and voice sequences ``(m_i, 47)``."""
        face_emb, voice_emb = self.detector.embed(self.pairs(face, voice))
        sim = cosine_rows(face_emb, voice_emb)
        n = len(sim)
        if self.gate is not None:
            fd, vd = self.gate.distance(face_emb, "face"), self.gate.distance(voice_emb, "voice")
            fa, va = fd > self.gate.thresholds["face"], vd > self.gate.thresholds["voice"]
        else:
            fd = vd = np.zeros(n)
            fa = va = np.zeros(n, dtype=bool)
        return WindowScores(similarity=sim, p_inconsistent=self.detector.posterior_abnormal(sim), face_atypical=fa,
                            voice_atypical=va, face_distance=fd, voice_distance=vd)


# ------------------------------------------------------------------------------------------------ analysis
@dataclass
class ClipAnalysis:
    """Everything read from a clip before the model judges it."""

    name: str
    voice_name: str | None
    duration_s: float
    track: FaceTrack
    face_logits: np.ndarray  # (n_found, 7)
    voice: seq.VoiceTrack | None
    envelope: np.ndarray  # (k,) peak |amplitude| per 10 ms, for the waveform plot
    still: bool
    notes: list[str] = field(default_factory=list)
    face_emotions: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # (n_found, 7) face reader
    audio: np.ndarray | None = None  # 16 kHz mono, for the voice reader
    fps: float = seq.FACE_FPS

    @property
    def face_fraction(self) -> float:
        """Share of the clip's time covered by frames with a face: frames with a face (within the analysed span)
        against the frames the sampling rate gives for that span, so a video holding one frame beside 6 s of voice
        covers 1/30 of it, not 100 %."""
        if not self.track.frames:
            return 0.0
        times = self.track.times
        inside = times < self.duration_s + 1e-6 if self.duration_s > 0 else np.ones(len(times), bool)
        expected = max(int(inside.sum()), int(np.floor(self.duration_s * self.fps + 1e-6)), 1)
        return float(min(1.0, self.track.found[inside].sum() / expected)) if inside.any() else 0.0

    @property
    def speech_s(self) -> float:
        return 0.0 if self.voice is None else self.voice.speech_s

    def face_rows(self) -> np.ndarray:
        return self.face_logits

    def voice_rows(self, windows: list[tuple[float, float]] | None = None) -> list[np.ndarray]:
        if self.voice is None:
            return []
        out = [seq.voice_window(self.voice, a, b) for a, b in (windows or seq.window_starts(self.duration_s))]
        return [v for v in out if v is not None]


@dataclass
class Calibration:
    """Shifts added to every face row ``(7,)`` / voice row ``(47,)``: population neutral mean - person's mean."""

    face_shift: np.ndarray | None = None
    voice_shift: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    voice_reader: SpeakerBaseline | None = None  # the voice reader's per-person baseline

    def face(self, x: np.ndarray | None) -> np.ndarray | None:
        return x if x is None or self.face_shift is None else (x + self.face_shift).astype(np.float32)

    def voice(self, x: np.ndarray | None) -> np.ndarray | None:
        return x if x is None or self.voice_shift is None else (x + self.voice_shift).astype(np.float32)

    @classmethod
    def from_rows(cls, population: dict[str, np.ndarray], face_rows: np.ndarray | None,
                  voice_rows: list[np.ndarray] | None, name: str = "the baseline") -> "Calibration":
        cal = cls()
        if face_rows is not None and len(face_rows) >= 5 and "face" in population:
            cal.face_shift = population["face"] - face_rows.mean(0)
        else:
            cal.notes.append(f"{name}: too few frames with a face; the face was not calibrated.")
        if voice_rows and "voice" in population:
            cal.voice_shift = population["voice"] - np.concatenate(voice_rows).mean(0)
        else:
            cal.notes.append(f"{name}: no speech; the voice was not calibrated.")
        return cal


# ------------------------------------------------------------------------------------------------ verdict
@dataclass
class Window:
    start: float
    end: float
    status: str  # "scored", "no face", "no speech", "no face or speech"
    similarity: float | None = None
    p_inconsistent: float | None = None
    face_valence: str | None = None
    voice_valence: str | None = None
    atypical: str | None = None  # "face", "voice", "face and voice"
    face: Reading | None = None  # the face reader over the window's frames
    voice: Reading | None = None  # the voice reader on the window's audio
    p_embedding: float | None = None  # the SIR-HCL posterior alone

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 2), "end": round(self.end, 2), "status": self.status,
                "similarity": _r(self.similarity), "p_inconsistent": _r(self.p_inconsistent),
                "p_embedding": _r(self.p_embedding), "face_valence": self.face_valence,
                "face_confidence": _r(self.face.confidence) if self.face else None,
                "face_emotion": self.face.top_emotion if self.face else None, "voice_valence": self.voice_valence,
                "voice_confidence": _r(self.voice.confidence) if self.voice else None,
                "voice_emotion": self.voice.top_emotion if self.voice else None, "atypical": self.atypical}


@dataclass
class ClipVerdict:
    """A verdict a person can read; :meth:`to_dict` is the JSON the command line prints."""

    file: str
    voice_file: str | None
    verdict: str  # "consistent", "inconsistent", "undetermined"
    reason: str
    p_inconsistent: float | None
    similarity: float | None
    threshold: float
    face: dict[str, Any]
    voice: dict[str, Any]
    timeline: list[Window]
    duration_s: float
    face_fraction: float
    speech_s: float
    geometry: dict[str, dict[str, float]]
    notes: list[str]
    calibrated: bool
    checkpoint: str
    strength: str | None = None  # "weak", "moderate", "strong" evidence (decided verdicts)
    p_embedding: float | None = None  # the embedding's posterior alone
    p_readings: float | None = None  # the readings' disagreement alone (calibrated)
    conflict: str | None = None  # the sentence saying that the sources disagree, when they do
    rule: str = RULE
    # for views (not in the JSON)
    thumbnails: list[tuple[float, np.ndarray]] = field(default_factory=list, repr=False)
    envelope: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    geometry_series: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "voice_file": self.voice_file, "verdict": self.verdict,
                "p_inconsistent": _r(self.p_inconsistent), "similarity": _r(self.similarity),
                "threshold": _r(self.threshold), "reason": self.reason, "face": self.face, "voice": self.voice,
                "timeline": [w.to_dict() for w in self.timeline], "duration_s": round(self.duration_s, 2),
                "face_found_fraction": round(self.face_fraction, 3), "speech_s": round(self.speech_s, 2),
                "geometry": self.geometry, "calibrated_with_baseline": self.calibrated, "notes": self.notes,
                "checkpoint": self.checkpoint, "strength": self.strength, "p_embedding": _r(self.p_embedding),
                "p_readings": _r(self.p_readings), "conflict": self.conflict, "rule": self.rule}

    @property
    def label(self) -> str:
        """The verdict in graded words: ``"inconsistent (strong evidence)"``, ``"undetermined"``."""
        return self.verdict if self.strength is None else f"{self.verdict} ({self.strength} evidence)"

    def summary(self) -> str:
        """One plain sentence for people (the conflict sentence follows when the sources disagree)."""
        if self.verdict == "undetermined":
            return f"Undetermined: {self.reason}"
        text = (f"{self.label.capitalize()}: probability of inconsistency {self.p_inconsistent:.2f}. "
                f"{self.reason[0].upper()}{self.reason[1:]}")
        return text + (f" {self.conflict}" if self.conflict else "")


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


class ClipScorer:
    """Loads the clip model and mediapipe once; :meth:`score` judges one clip (thread-safe: one at a time)."""

    def __init__(self, checkpoint: str | Path | None = None, expression: str | Path | None = None,
                 limits: ClipLimits | None = None, voice_reader: str | Path | None = None,
                 combiner: str | Path | None = None) -> None:
        from crossemo_core.readers.face import DEFAULT_EXPRESSION, DEFAULT_STACKER, FaceReader

        self.model = ClipModel.load(checkpoint, expression)
        fps = float(self.model.detector.metadata["clip"].get("windows", {}).get("face_fps", seq.FACE_FPS))
        self.limits = replace(limits or ClipLimits(), fps=fps)  # sample faces at the rate the model was trained on
        self.extractor = VoiceFeatureExtractor()
        voice_path = Path(voice_reader or DEFAULT_VOICE_READER)
        self.voice_reader = VoiceReader.load(voice_path)
        self.face_reader = FaceReader.load(with_landmarker=False)  # reads the crops the face tracker already cut
        self.models = {"clip": file_sha256(self.model.path) if self.model.path else "",
                       "voice_reader": file_sha256(voice_path), "face_reader": file_sha256(DEFAULT_STACKER),
                       "face_expression": file_sha256(DEFAULT_EXPRESSION)}
        """sha256 of every model whose outputs the verdict combines (the combiner is pinned to them)."""
        combiner_path = Path(combiner or DEFAULT_COMBINER)
        self.combiner = (EvidenceCombiner.load(combiner_path, self.models)
                         if combiner is not None or (checkpoint is None and combiner_path.is_file()) else None)
        self._faces = None
        self._lock = threading.Lock()

    @property
    def faces(self):  # noqa: ANN201 - FaceAnalyzer, created on first use (mediapipe takes ~3 s to import)
        if self._faces is None:
            from crossemo_core.clip.face import FaceAnalyzer
            self._faces = FaceAnalyzer()
        return self._faces

    def close(self) -> None:
        if self._faces is not None:
            self._faces.close()
            self._faces = None

    # -------------------------------------------------------------------------------------------- reading
    def analyse(self, source: Source, voice: Source | None = None) -> ClipAnalysis:
        """Decode a clip (and a separate voice recording) and extract face and voice features."""
        with self._lock:
            return self._analyse(source, voice)

    def _analyse(self, source: Source, voice: Source | None) -> ClipAnalysis:
        faces = self.faces
        faces.reset()
        track = FaceTrack()

        def on_frame(t: float, rgb: np.ndarray) -> None:
            track.frames.append(faces.analyse(t, rgb))

        media = decode_media(source, limits=self.limits, want_audio=voice is None, on_frame=on_frame,
                             need_video=True, need_audio=voice is None)
        notes = list(media.notes)
        if voice is not None:
            vmedia = decode_media(voice, limits=self.limits, want_video=False, need_audio=True)
            notes += vmedia.notes
            audio, voice_name = vmedia.audio, vmedia.name
        else:
            audio, voice_name = media.audio, None
        audio_s = 0.0 if audio is None else len(audio) / AUDIO_RATE
        if media.is_image:
            still = faces.analyse(0.0, media.image, still=True)
            fps = self.limits.fps
            n = max(1, int(np.ceil(audio_s * fps)))
            track.frames = [FaceFrame(t=i / fps, n_faces=still.n_faces, crop=still.crop, thumb=still.thumb,
                                      geometry=still.geometry, box=still.box) for i in range(n)]
            duration = audio_s
        else:
            duration = audio_s if audio is not None else media.duration_s
            if voice is not None and abs(media.duration_s - audio_s) > 1.0:
                notes.append(f"the video ({media.duration_s:.1f} s) and the voice ({audio_s:.1f} s) differ in length; "
                             f"they were aligned at their start and only {duration:.1f} s of voice was judged.")
        if track.max_faces > 1:
            notes.append(f"several faces were seen (up to {track.max_faces} in one frame); the largest face was "
                         f"analysed in each frame.")
        voice_track = None
        envelope = np.zeros(0, np.float32)
        if audio is not None and len(audio) >= 0.1 * AUDIO_RATE and float(np.max(np.abs(audio))) >= SILENCE_PEAK:
            voice_track = seq.voice_track(audio, AUDIO_RATE, self.extractor)
        if audio is not None and len(audio):
            k = AUDIO_RATE // 100  # 10 ms
            m = len(audio) // k
            envelope = np.abs(audio[: m * k]).reshape(m, k).max(1).astype(np.float32) if m else envelope
        if media.is_image and track.frames and track.frames[0].crop is not None:  # one photo: one crop, repeated
            logits = np.repeat(self.model.expression.logits(track.frames[0].crop[None]), len(track.frames), axis=0)
            emotions = np.repeat(self.face_reader.read_crops(track.frames[0].crop[None], use_blendshapes=False)
                                 .emotions, len(track.frames), axis=0)
        else:
            crops = track.crops()
            logits = self.model.expression.logits(crops)
            emotions = self.face_reader.read_crops(crops, use_blendshapes=False).emotions if len(crops) else \
                np.zeros((0, 7))
        return ClipAnalysis(name=media.name, voice_name=voice_name, duration_s=duration, track=track,
                            face_logits=logits, voice=voice_track, envelope=envelope, still=media.is_image,
                            notes=notes, face_emotions=emotions, audio=audio, fps=self.limits.fps)

    def calibration(self, baseline: Source | ClipAnalysis) -> Calibration:
        """A person's baseline from a calm, neutral clip of them (a file, or an analysis already made)."""
        a = baseline if isinstance(baseline, ClipAnalysis) else self.analyse(baseline)
        cal = Calibration.from_rows(self.model.population, a.face_rows(), a.voice_rows(), name=a.name)
        if a.audio is not None and a.speech_s >= seq.MIN_CLIP_SPEECH_S:
            cal.voice_reader = self.voice_reader.baseline_stats(a.audio)
        return cal

    # -------------------------------------------------------------------------------------------- judging
    def score(self, source: Source, voice: Source | None = None,
              baseline: Source | ClipAnalysis | Calibration | None = None) -> ClipVerdict:
        """Judge one clip (see the module docstring)."""
        cal = baseline if isinstance(baseline, Calibration) or baseline is None else self.calibration(baseline)
        return self.judge(self.analyse(source, voice), cal)

    def judge(self, a: ClipAnalysis, cal: Calibration | None = None) -> ClipVerdict:
        cal = cal or Calibration()
        windows = seq.window_starts(a.duration_s) if a.duration_s > 0 else []
        times, found = a.track.times, a.track.found
        face_seqs, voice_seqs, timeline = [], [], []
        for start, end in windows:
            f = (cal.face(seq.face_window(times, found, a.face_logits, start, end, a.fps)) if len(times) else None)
            v = cal.voice(seq.voice_window(a.voice, start, end)) if a.voice is not None else None
            status = ("scored" if f is not None and v is not None else "no face" if v is not None
                      else "no speech" if f is not None else "no face or speech")
            timeline.append(Window(start, end, status))
            if status == "scored":
                face_seqs.append(f)
                voice_seqs.append(v)
        scored = [w for w in timeline if w.status == "scored"]
        sim = p = p_emb = p_read = None
        face_reading = voice_reading = None
        atypical_reason = None
        if scored:
            s = self.model.score_windows(face_seqs, voice_seqs)
            self._read_windows(a, scored, cal)
            face_val = np.stack([w.face.valence_array() for w in scored])
            voice_val = np.stack([w.voice.valence_array() for w in scored])
            window_p = self._combine(s.similarity, s.p_inconsistent, face_val, voice_val)[0]
            for i, w in enumerate(scored):
                w.similarity, w.p_embedding, w.p_inconsistent = (float(s.similarity[i]), float(s.p_inconsistent[i]),
                                                                 float(window_p[i]))
                w.face_valence, w.voice_valence = w.face.top_valence, w.voice.top_valence
                flags = [m for m, flag in (("face", s.face_atypical[i]), ("voice", s.voice_atypical[i])) if flag]
                w.atypical = " and ".join(flags) or None
            sim = float(np.mean(s.similarity))
            p_emb = float(self.model.detector.posterior_abnormal(np.array([sim]))[0])
            face_reading, voice_reading = _pool([w.face for w in scored]), _pool([w.voice for w in scored])
            ps, pr = self._combine(np.array([sim]), np.array([p_emb]), face_reading.valence_array()[None],
                                   voice_reading.valence_array()[None])
            p, p_read = float(ps[0]), (None if pr is None else float(pr[0]))
            odd = [m for m, flags in (("face", s.face_atypical), ("voice", s.voice_atypical))
                   if flags.mean() > ATYPICAL_SHARE]
            if odd:
                pct = 100 * (1 - self.model.gate.contamination)
                atypical_reason = (f"the {' and the '.join(odd)} {'is' if len(odd) == 1 else 'are'} unlike anything "
                                   f"the model saw in training (in most windows the embedding is farther from the "
                                   f"training data than {pct:g} % of validation clips); the model's answer would not "
                                   f"be trustworthy.")
        reason = self._undetermined_reason(a, scored) or atypical_reason
        if reason is None and face_reading.uncertain and voice_reading.uncertain:
            reason = (f"both readers are uncertain: the face reads {_says(face_reading)} and the voice reads "
                      f"{_says(voice_reading)}; neither is sure enough of a valence to compare them.")
        conflict = grade = None
        if reason:
            verdict = "undetermined"
        else:
            verdict = "inconsistent" if p >= 0.5 else "consistent"
            grade = strength(p)
            reason = _explain(verdict, face_reading, voice_reading, scored, sim, p_emb)
            conflict = _conflict(verdict, face_reading, voice_reading, p_emb, p_read)
        return ClipVerdict(
            file=a.name, voice_file=a.voice_name, verdict=verdict, reason=reason, p_inconsistent=p, similarity=sim,
            threshold=0.5, face=_side_summary(face_reading), voice=_side_summary(voice_reading),
            timeline=timeline, duration_s=a.duration_s, face_fraction=a.face_fraction, speech_s=a.speech_s,
            geometry=_geometry_summary(a.track), notes=a.notes + cal.notes,
            calibrated=cal.face_shift is not None or cal.voice_shift is not None,
            checkpoint=self.model.path.name if self.model.path else "clip model",
            strength=grade, p_embedding=p_emb, p_readings=p_read, conflict=conflict,
            rule=RULE if self.combiner is not None else UNCOMBINED_RULE,
            thumbnails=_thumbnails(a.track, windows), envelope=a.envelope,
            geometry_series=_geometry_series(a.track))

    def _read_windows(self, a: ClipAnalysis, scored: list[Window], cal: Calibration) -> None:
        """Each scored window's face reading (the face reader's emotions over its frames with a face) and voice
        reading (the voice reader on its audio, relative to the person's baseline when one was given)."""
        rows = np.cumsum(a.track.found) - 1
        for w in scored:
            inside = (a.track.times >= w.start - 1e-6) & (a.track.times < w.end - 1e-6) & a.track.found
            w.face = reading_of(a.face_emotions[rows[inside]].mean(0), seconds=w.end - w.start)
        audio = a.audio if a.audio is not None else np.zeros(0, np.float32)
        cuts = [audio[int(w.start * AUDIO_RATE):int(w.end * AUDIO_RATE)] for w in scored]
        for w, r in zip(scored, self.voice_reader.read_many(cuts, cal.voice_reader)):
            w.voice = r

    def _combine(self, similarity: np.ndarray, p_embedding: np.ndarray, face_valence: np.ndarray,
                 voice_valence: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated P(inconsistent) from both sources, and from the readings alone (None without a combiner:
        the embedding's posterior is then used as it is)."""
        if self.combiner is None:
            return np.asarray(p_embedding, float), None
        x = evidence_features(similarity, face_valence, voice_valence)
        return self.combiner.probability(x), self.combiner.readings_only(x)

    def _undetermined_reason(self, a: ClipAnalysis, scored: list[Window]) -> str | None:
        if a.still and a.face_fraction < seq.MIN_FACE_FRACTION:
            return ("no face was found in the photo. Use a photo of the face from the front, well lit, filling a "
                    "good part of the picture.")
        if a.face_fraction < seq.MIN_FACE_FRACTION:
            return (f"no face in most frames: a face was found in {a.face_fraction:.0%} of the sampled frames "
                    f"(at least {seq.MIN_FACE_FRACTION:.0%} are needed). Film the face from the front, well lit, "
                    f"filling a good part of the picture.")
        if a.speech_s < seq.MIN_CLIP_SPEECH_S:
            return (f"no speech: {a.speech_s:.1f} s of voiced speech was found (at least {seq.MIN_CLIP_SPEECH_S} s "
                    f"is needed); silence and noise are not judged.")
        if not scored:
            return "no stretch of the clip has both a visible face and speech at the same time."
        return None


UNCOMBINED_RULE = ("The probability of inconsistency is the embedding's posterior alone (this clip model has no "
                   "fitted evidence combiner, so the readings are shown but not weighed).")


def _says(r: Reading) -> str:
    return f"{r.top_emotion} ({r.top_valence} {r.confidence:.2f})"


def _pool(readings: list[Reading]) -> Reading:
    """The mean of several readings of one side (each window weighs the same)."""
    first = readings[0]

    def mean(get: Any) -> np.ndarray:
        return np.mean([list(get(r).values()) for r in readings], axis=0)

    arousal = mean(lambda r: r.arousal) if first.arousal is not None else None
    return Reading.from_arrays(first.modality, tuple(first.emotions), mean(lambda r: r.emotions),
                               mean(lambda r: r.valence), arousal, sum(r.seconds for r in readings))


def _explain(verdict: str, face: Reading, voice: Reading, scored: list[Window], similarity: float,
             p_embedding: float) -> str:
    """The one-line reason in plain words, e.g. "the face reads happy (positive 0.82) while the voice reads sad
    (negative 0.71); their valences differ in 4 of 5 windows; face-voice similarity 0.12"."""
    differ = sum(w.face_valence != w.voice_valence for w in scored)
    joint = "while" if face.top_valence != voice.top_valence else "and"
    count = (f"their valences differ in {differ} of {len(scored)} windows" if verdict == "inconsistent" else
             f"their valences match in {len(scored) - differ} of {len(scored)} windows")
    return (f"the face reads {_says(face)} {joint} the voice reads {_says(voice)}; {count}; the face and voice "
            f"embeddings have similarity {similarity:.2f} (alone they give P(inconsistent) {p_embedding:.2f}).")


def _conflict(verdict: str, face: Reading, voice: Reading, p_embedding: float, p_readings: float | None) -> str | None:
    """The sentence a verdict carries when its sources disagree, or when it goes against the valences it prints."""
    same = face.top_valence == voice.top_valence
    if p_readings is not None and sources_disagree(p_embedding, p_readings):
        return (f"The embedding and the readings disagree: the embedding alone says "
                f"{'inconsistent' if p_embedding >= 0.5 else 'consistent'} ({p_embedding:.2f}), the readings alone "
                f"{'inconsistent' if p_readings >= 0.5 else 'consistent'} ({p_readings:.2f}); the verdict weighs "
                f"both, so treat it with care.")
    if (verdict == "consistent" and not same) or (verdict == "inconsistent" and same):
        why = "the readings are unsure" if min(face.confidence, voice.confidence) < 0.6 else \
            "the embedding outweighs them"
        alone = f", the readings alone {p_readings:.2f}" if p_readings is not None else ""
        return (f"The verdict goes against the printed readings ({face.top_valence} face, {voice.top_valence} "
                f"voice) because {why}: the embedding alone gives {p_embedding:.2f}{alone}.")
    return None


def _side_summary(r: Reading | None) -> dict[str, Any]:
    """One side's pooled reading for the JSON and the views (``probs`` are its emotion probabilities)."""
    if r is None:
        return {"emotion": None, "probs": {}, "valence": None, "valence_probs": {}}
    d = r.to_dict()
    return {"emotion": d["emotion"], "probs": d["emotions"], "valence": d["valence"],
            "valence_probs": d["valence_probs"], "confidence": d["confidence"], "uncertain": d["uncertain"],
            "arousal_probs": d["arousal_probs"]}


def _head_emotions(path: Path, detector: Detector, meta: dict) -> tuple[str, ...] | None:
    """The emotions a clip model's shared head outputs (checked against its outputs and their valences), or None for
    a valence head."""
    outputs = detector.model.classifier.out_features
    emotions = meta.get("emotions")
    if not emotions:
        if outputs != len(seq.VALENCE):
            raise CheckpointError(f"{path.name}: its head has {outputs} outputs but the checkpoint names no emotions "
                                  f"for them (a valence head has {len(seq.VALENCE)}).")
        return None
    names, valence = tuple(emotions["names"]), np.asarray(emotions["valence"], dtype=np.int64)
    if len(names) != outputs or len(valence) != outputs or valence.min() < 0 or valence.max() >= len(seq.VALENCE):
        raise CheckpointError(f"{path.name}: its head has {outputs} outputs but the checkpoint names "
                              f"{len(names)} emotions with {len(valence)} valences.")
    return names


def _geometry_summary(track: FaceTrack) -> dict[str, dict[str, float]]:
    g = track.geometry()
    if len(g) == 0:
        return {}
    return {n: {"median": _r(float(np.median(g[:, i])), 3), "p10": _r(float(np.percentile(g[:, i], 10)), 3),
                "p90": _r(float(np.percentile(g[:, i], 90)), 3)} for i, n in enumerate(GEOMETRY_NAMES)}


def _geometry_series(track: FaceTrack) -> dict[str, np.ndarray]:
    rows = [(f.t, f.geometry) for f in track.frames if f.geometry is not None]
    if not rows:
        return {}
    t = np.array([r[0] for r in rows])
    g = np.stack([r[1] for r in rows])
    return {"t": t, **{n: g[:, i] for i, n in enumerate(GEOMETRY_NAMES)}}


def _thumbnails(track: FaceTrack, windows: list[tuple[float, float]], every_s: float = 1.0) -> list[tuple[float, np.ndarray]]:
    """A face thumbnail about every ``every_s`` seconds (the frame nearest each mark that has a face)."""
    withface = [(f.t, f.thumb) for f in track.frames if f.thumb is not None]
    if not withface:
        return []
    end = max(track.times.max() if len(track.times) else 0.0, windows[-1][1] if windows else 0.0)
    times = np.array([t for t, _ in withface])
    out, seen = [], set()
    for mark in np.arange(0.0, end + 1e-6, every_s):
        i = int(np.argmin(np.abs(times - mark)))
        if i not in seen and abs(times[i] - mark) <= every_s / 2:
            seen.add(i)
            out.append(withface[i])
    return out


def score_clip(source: Source, voice: Source | None = None, checkpoint: str | Path | None = None) -> ClipVerdict:
    """One-off convenience: load the model, judge one clip, release mediapipe."""
    scorer = ClipScorer(checkpoint)
    try:
        return scorer.score(source, voice)
    finally:
        scorer.close()

