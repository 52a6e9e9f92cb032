"""Verdict on a clip: do the emotion of the face and the emotion of the voice agree, and where do they not?

Pipeline (:class:`ClipScorer`): decode (:mod:`.decode`) -> face mesh, FER-framed crops, geometry (:mod:`.face`)
-> expression logits (:mod:`.expression`) -> voice features with voice-activity detection (:mod:`.sequences`) ->
sliding windows (2 s, hop 0.5 s) -> the shipped SIR-HCL clip model (the core's :class:`~crossemo_core.detector.
Detector`: embeddings, cosine similarity, Beta-mixture posterior) -> an atypical-input gate (:mod:`.gate`) -> a
:class:`ClipVerdict`.

The clip's similarity is the mean of its scored windows' similarities and its posterior of inconsistency is the
Beta mixture's posterior at that mean. The verdict is "undetermined", with its reason, when a face is found in fewer
than half of the sampled frames, when the clip holds less than 0.5 s of speech, when no window has both, or when
most scored windows are unlike anything seen in training (per-modality kNN gate).

Per-person baseline (optional): a calm, neutral clip of the same person. The mean of its face rows and voice rows
(model inputs) is subtracted from the clip's and replaced by the training population's neutral mean, so that a
person whose resting face or voice differs from the training population's is judged relative to their own rest.

A clip model trained on emotions (``scripts/train_clip_model.py --labels emotions``) has a shared head with one
output per emotion (``metadata["clip"]["emotions"]``: names and each one's valence); the face's and the voice's
valence are then the sums of their emotions' probabilities, and the voice's "emotion" is the head's emotion. The
verdict itself needs only the similarity, so it is computed the same way for both kinds of model.
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.decode import AUDIO_RATE, ClipLimits, Source, decode_media
from crossemo_core.clip.expression import FER_CLASSES, ExpressionModel, softmax, valence_proba
from crossemo_core.clip.face import GEOMETRY_NAMES, FaceFrame, FaceTrack
from crossemo_core.clip.gate import KnnGate
from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, cosine_rows
from crossemo_core.errors import CheckpointError
from crossemo_core.features.voice import VoiceFeatureExtractor

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_CLIP_CHECKPOINT = REPO / "checkpoints" / "clip.pt"
"""The shipped clip model; ``$CROSSEMO_CLIP_CHECKPOINT`` replaces it as the default (``--checkpoint`` wins)."""
DEFAULT_FER_CHECKPOINT = REPO / "checkpoints" / "fer_expression.pt"
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
    p_inconsistent: np.ndarray
    face_valence: np.ndarray  # (N, 3) the shared head's probabilities on the face embedding
    voice_valence: np.ndarray  # (N, 3) ... on the voice embedding
    face_atypical: np.ndarray
    voice_atypical: np.ndarray
    face_distance: np.ndarray
    voice_distance: np.ndarray
    face_emotion: np.ndarray | None = None  # (N, E) the head's emotion probabilities (models trained on emotions)
    voice_emotion: np.ndarray | None = None


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
    emotion_valence: np.ndarray | None = None  # (E,) valence index of each emotion

    def head_to_valence(self, probs: np.ndarray) -> np.ndarray:
        """``(N, outputs)`` head probabilities -> ``(N, 3)`` valence probabilities (the identity for a valence head)."""
        if self.emotion_valence is None:
            return probs
        out = np.zeros((len(probs), len(seq.VALENCE)), dtype=probs.dtype)
        for e, v in enumerate(self.emotion_valence):
            out[:, v] += probs[:, e]
        return out

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, expression: str | Path | None = None) -> "ClipModel":
        path = Path(checkpoint or os.environ.get("CROSSEMO_CLIP_CHECKPOINT") or DEFAULT_CLIP_CHECKPOINT)
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
        names, valence = _head_emotions(path, detector, meta)
        return cls(detector=detector, expression=ExpressionModel.load(fer_path), gate=gate, population=population,
                   face_extractor=seq.face_extractor_id(sha), path=path, emotion_names=names, emotion_valence=valence)

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
        head = self.detector.model.classifier
        fp = torch.softmax(head(torch.from_numpy(face_emb)), dim=1).numpy()
        vp = torch.softmax(head(torch.from_numpy(voice_emb)), dim=1).numpy()
        fv, vv = self.head_to_valence(fp), self.head_to_valence(vp)
        fe, ve = (fp, vp) if self.emotion_names is not None else (None, None)
        n = len(sim)
        if self.gate is not None:
            fd, vd = self.gate.distance(face_emb, "face"), self.gate.distance(voice_emb, "voice")
            fa, va = fd > self.gate.thresholds["face"], vd > self.gate.thresholds["voice"]
        else:
            fd = vd = np.zeros(n)
            fa = va = np.zeros(n, dtype=bool)
        return WindowScores(similarity=sim, p_inconsistent=self.detector.posterior_abnormal(sim), face_valence=fv,
                            voice_valence=vv, face_atypical=fa, voice_atypical=va, face_distance=fd,
                            voice_distance=vd, face_emotion=fe, voice_emotion=ve)


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

    @property
    def face_fraction(self) -> float:
        """Share of the sampled frames (within the analysed span) in which a face was found."""
        if not self.track.frames:
            return 0.0
        times = self.track.times
        inside = times < self.duration_s + 1e-6 if self.duration_s > 0 else np.ones(len(times), bool)
        return float(self.track.found[inside].mean()) if inside.any() else 0.0

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

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 2), "end": round(self.end, 2), "status": self.status,
                "similarity": _r(self.similarity), "p_inconsistent": _r(self.p_inconsistent),
                "face_valence": self.face_valence, "voice_valence": self.voice_valence, "atypical": self.atypical}


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
                "checkpoint": self.checkpoint}

    def summary(self) -> str:
        """One plain sentence for people."""
        if self.verdict == "undetermined":
            return f"Undetermined: {self.reason}"
        agree = "agree" if self.verdict == "consistent" else "do not agree"
        return (f"The face ({self.face.get('valence', '?')}) and the voice ({self.voice.get('valence', '?')}) "
                f"{agree}: probability of inconsistency {self.p_inconsistent:.2f} (threshold {self.threshold:.2f}).")


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


class ClipScorer:
    """Loads the clip model and mediapipe once; :meth:`score` judges one clip (thread-safe: one at a time)."""

    def __init__(self, checkpoint: str | Path | None = None, expression: str | Path | None = None,
                 limits: ClipLimits | None = None) -> None:
        self.model = ClipModel.load(checkpoint, expression)
        fps = float(self.model.detector.metadata["clip"].get("windows", {}).get("face_fps", seq.FACE_FPS))
        self.limits = replace(limits or ClipLimits(), fps=fps)  # sample faces at the rate the model was trained on
        self.extractor = VoiceFeatureExtractor()
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
        else:
            logits = self.model.expression.logits(track.crops())
        return ClipAnalysis(name=media.name, voice_name=voice_name, duration_s=duration, track=track,
                            face_logits=logits, voice=voice_track, envelope=envelope, still=media.is_image,
                            notes=notes)

    def calibration(self, baseline: Source | ClipAnalysis) -> Calibration:
        """A person's baseline from a calm, neutral clip of them (a file, or an analysis already made)."""
        a = baseline if isinstance(baseline, ClipAnalysis) else self.analyse(baseline)
        return Calibration.from_rows(self.model.population, a.face_rows(), a.voice_rows(), name=a.name)

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
            f = cal.face(seq.face_window(times, found, a.face_logits, start, end)) if len(times) else None
            v = cal.voice(seq.voice_window(a.voice, start, end)) if a.voice is not None else None
            status = ("scored" if f is not None and v is not None else "no face" if v is not None
                      else "no speech" if f is not None else "no face or speech")
            timeline.append(Window(start, end, status))
            if status == "scored":
                face_seqs.append(f)
                voice_seqs.append(v)
        scored = [w for w in timeline if w.status == "scored"]
        sim = p = None
        voice_probs = voice_emotions = None
        atypical_reason = None
        if scored:
            s = self.model.score_windows(face_seqs, voice_seqs)
            for i, w in enumerate(scored):
                w.similarity, w.p_inconsistent = float(s.similarity[i]), float(s.p_inconsistent[i])
                w.face_valence = seq.VALENCE[int(s.face_valence[i].argmax())]
                w.voice_valence = seq.VALENCE[int(s.voice_valence[i].argmax())]
                flags = [m for m, flag in (("face", s.face_atypical[i]), ("voice", s.voice_atypical[i])) if flag]
                w.atypical = " and ".join(flags) or None
            sim = float(np.mean(s.similarity))
            p = float(self.model.detector.posterior_abnormal(np.array([sim]))[0])
            voice_probs = s.voice_valence.mean(0)
            voice_emotions = None if s.voice_emotion is None else s.voice_emotion.mean(0)
            odd = [m for m, flags in (("face", s.face_atypical), ("voice", s.voice_atypical))
                   if flags.mean() > ATYPICAL_SHARE]
            if odd:
                pct = 100 * (1 - self.model.gate.contamination)
                atypical_reason = (f"the {' and the '.join(odd)} {'is' if len(odd) == 1 else 'are'} unlike anything "
                                   f"the model saw in training (in most windows the embedding is farther from the "
                                   f"training data than {pct:g} % of validation clips); the model's answer would not "
                                   f"be trustworthy.")
        reason = self._undetermined_reason(a, scored) or atypical_reason
        if reason:
            verdict = "undetermined"
        else:
            verdict = "inconsistent" if p >= self.model.threshold else "consistent"
            reason = (f"the probability of inconsistency, {p:.2f}, is "
                      f"{'at or above' if verdict == 'inconsistent' else 'below'} the threshold "
                      f"{self.model.threshold:.2f} ({len(scored)} of {len(timeline)} windows with a face and speech).")
        return ClipVerdict(
            file=a.name, voice_file=a.voice_name, verdict=verdict, reason=reason, p_inconsistent=p, similarity=sim,
            threshold=self.model.threshold, face=self._face_summary(a),
            voice=self._voice_summary(voice_probs, voice_emotions),
            timeline=timeline, duration_s=a.duration_s, face_fraction=a.face_fraction, speech_s=a.speech_s,
            geometry=_geometry_summary(a.track), notes=a.notes + cal.notes,
            calibrated=cal.face_shift is not None or cal.voice_shift is not None,
            checkpoint=self.model.path.name if self.model.path else "clip model",
            thumbnails=_thumbnails(a.track, windows), envelope=a.envelope,
            geometry_series=_geometry_series(a.track))

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

    def _face_summary(self, a: ClipAnalysis) -> dict[str, Any]:
        if len(a.face_logits) == 0:
            return {"emotion": None, "probs": {}, "valence": None, "valence_probs": {}}
        probs = softmax(a.face_logits).mean(0)
        val = valence_proba(probs[None])[0]
        return {"emotion": FER_CLASSES[int(probs.argmax())], "probs": {c: _r(v, 3) for c, v in zip(FER_CLASSES, probs)},
                "valence": seq.VALENCE[int(val.argmax())],
                "valence_probs": {c: _r(v, 3) for c, v in zip(seq.VALENCE, val)}}

    def _voice_summary(self, probs: np.ndarray | None, emotions: np.ndarray | None = None) -> dict[str, Any]:
        """The voice's valence from the shared head; its "emotion" is the head's emotion for a model trained on
        emotions, else the valence again (the keys are the same for both)."""
        if probs is None:
            return {"emotion": None, "probs": {}, "valence": None, "valence_probs": {}}
        d = {c: _r(v, 3) for c, v in zip(seq.VALENCE, probs)}
        label = seq.VALENCE[int(np.argmax(probs))]
        if emotions is None or self.model.emotion_names is None:
            return {"emotion": label, "probs": d, "valence": label, "valence_probs": d}
        names = self.model.emotion_names
        return {"emotion": names[int(np.argmax(emotions))], "probs": {c: _r(v, 3) for c, v in zip(names, emotions)},
                "valence": label, "valence_probs": d}


def _head_emotions(path: Path, detector: Detector, meta: dict) -> tuple[tuple[str, ...] | None, np.ndarray | None]:
    """The emotions a clip model's shared head outputs and their valences, or (None, None) for a valence head."""
    outputs = detector.model.classifier.out_features
    emotions = meta.get("emotions")
    if not emotions:
        if outputs != len(seq.VALENCE):
            raise CheckpointError(f"{path.name}: its head has {outputs} outputs but the checkpoint names no emotions "
                                  f"for them (a valence head has {len(seq.VALENCE)}).")
        return None, None
    names, valence = tuple(emotions["names"]), np.asarray(emotions["valence"], dtype=np.int64)
    if len(names) != outputs or len(valence) != outputs or valence.min() < 0 or valence.max() >= len(seq.VALENCE):
        raise CheckpointError(f"{path.name}: its head has {outputs} outputs but the checkpoint names "
                              f"{len(names)} emotions with {len(valence)} valences.")
    return names, valence


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

