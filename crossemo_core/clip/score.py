"""Score: each window's inputs -> the window's evidence and its calibrated probability (the fourth step).

Per window (:class:`~crossemo_core.clip.windows.WindowInput` in, :class:`Window` out): the SIR-HCL clip model
(:class:`ClipModel`: the core's :class:`~crossemo_core.detector.Detector`, or several runs of it whose cosine
similarities are averaged; face and voice embeddings, similarity, Beta-mixture posterior), the atypical-input gate,
the face reading (the face reader's emotions over the window's frames), the voice reading (the voice reader on the
window's audio) and the evidence combiner's probability of inconsistency from that window's evidence.
:class:`WindowScorer` takes windows in time order, in groups of any size, and gives each the same scores whatever
the groups: a window spanning two pieces of a long recording is scored as in a whole-file pass (the voice reader's
batches are kept as ``read_many`` would make them, :class:`~crossemo_core.readers.voice.BatchedReads`).
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.decode import AUDIO_RATE
from crossemo_core.clip.expression import ExpressionModel
from crossemo_core.clip.gate import KnnGate
from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, cosine_rows
from crossemo_core.errors import CheckpointError
from crossemo_core.features.voice import VoiceFeatureExtractor, file_sha256
from crossemo_core.mixture import BetaMixture, fit_similarity_mixture, similarity_to_score
from crossemo_core.model_files import one_line
from crossemo_core.paths import CHECKPOINTS
from crossemo_core.readers.face import reading_of
from crossemo_core.readers.reading import Reading
from crossemo_core.readers.voice import BatchedReads, FramesOf, SpeakerBaseline
from crossemo_core.settings import clip_checkpoint

DEFAULT_CLIP_CHECKPOINT = CHECKPOINTS / "clip.pt"
"""The shipped clip model; ``$CROSSEMO_CLIP_CHECKPOINT`` replaces it as the default (``--checkpoint`` wins)."""
DEFAULT_FER_CHECKPOINT = CHECKPOINTS / "fer_expression.pt"
RECORDING_READ_S = 60.0
"""A recording up to this long gets its clip-level voice reading from the voice reader on the stretch its judged
windows span, read as one recording (:meth:`WindowScorer.read_recording`), not from the mean of the windows'
readings: a 2 s window's reading moves by up to ~0.15 when the speech moves 100 ms against the window's edges (the
reader trims and normalises each window by its own loudest frames), the whole utterance's by ~0.01 (60 validation
takes: p95 of the largest valence change 0.087 -> 0.015, valence accuracy 0.70 -> 0.77). A longer recording (a
session) pools its windows' readings: hundreds of windows average the edge effects out, and reading it again would
cost the streaming analysis ~50 % more of the voice reader's time."""
VOICE_NAMES = VoiceFeatureExtractor().feature_names


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
    """The SIR-HCL clip model: the detector trained on clip features (or several runs of the same recipe, different
    seeds, whose similarities are averaged window by window), the expression network it was trained with, the gate
    and the population's neutral means (for the per-person baseline).

    Runs: a checkpoint's ``metadata["clip"]["ensemble"]`` names the other runs' files (beside it, pinned by sha256)
    and holds the Beta mixture fitted on the mean similarity; the gate and the metadata are the first run's."""

    detector: Detector  # the first run
    expression: ExpressionModel
    gate: KnnGate | None
    population: dict[str, np.ndarray]
    face_extractor: str
    path: Path | None = None
    emotion_names: tuple[str, ...] | None = None  # the head's outputs when it was trained on emotions, else None
    others: tuple[Detector, ...] = ()  # the other runs whose similarities are averaged with the first's
    mixture: BetaMixture | None = None  # the Beta mixture of the (mean) similarity; None: the first run's own
    face_fps: float = seq.FACE_FPS  # the rate its faces were sampled at in training (frames/s)

    def __post_init__(self) -> None:
        if self.others and self.mixture is None:
            raise ValueError("a clip model of several runs needs the Beta mixture of their mean similarity.")

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
        fer_file, fer_sha = meta.get("fer_file"), meta.get("fer_sha256")
        if not (isinstance(fer_file, str) and isinstance(fer_sha, str)) or (
                meta.get("gate") is not None and not isinstance(meta["gate"], dict)) or not isinstance(
                meta.get("population", {}), dict):
            raise CheckpointError(f"{path} is a damaged clip checkpoint: its clip metadata (expression network, gate "
                                  f"or population) is missing or malformed.")
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
        try:
            gate = KnnGate.from_dict(meta["gate"]) if meta.get("gate") else None
            width = detector.config.model.embedding_size
            if gate is not None and any(p.shape[1] != width for p in gate.prototypes.values()):
                raise ValueError(f"gate prototypes of another width than the network's {width}-wide embeddings")
            population = {k: np.asarray(v, dtype=np.float32) for k, v in meta.get("population", {}).items()}
            face_fps = float(meta.get("windows", {}).get("face_fps", seq.FACE_FPS))
            if not 0 < face_fps <= 60:
                raise ValueError(f"face rate {face_fps} frames/s")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path} is a damaged clip checkpoint: its clip metadata (gate, population or "
                                  f"windows) is malformed ({one_line(exc)}).") from None
        names = _head_emotions(path, detector, meta)
        others, mixture = _other_runs(path, detector, meta)
        # the float network the clip model was trained on, never an int8 copy beside it
        return cls(detector=detector, expression=ExpressionModel.load(fer_path, int8=False), gate=gate,
                   population=population, face_extractor=seq.face_extractor_id(sha), path=path,
                   emotion_names=names, others=others, mixture=mixture, face_fps=face_fps)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold)

    @property
    def runs(self) -> tuple[Detector, ...]:
        """Every run whose similarities are averaged, the first one first."""
        return (self.detector, *self.others)

    def pairs(self, face: Sequence[np.ndarray], voice: Sequence[np.ndarray]) -> PairDataset:
        """The windows as the core's pair container (unlabelled: the detector embeds pairs of sequences)."""
        n = len(face)
        return PairDataset(face=list(face), voice=list(voice), face_label=np.zeros(n, np.int64),
                           voice_label=np.zeros(n, np.int64), speaker=np.array(["clip"] * n),
                           clip_id=np.array([f"window_{i}" for i in range(n)]),
                           face_feature_names=seq.FACE_FEATURE_NAMES, voice_feature_names=VOICE_NAMES,
                           name="clip", class_names=tuple(self.detector.schema["class_names"]),
                           extractor={"face": self.face_extractor, "voice": seq.VOICE_EXTRACTOR})

    def similarity(self, pairs: PairDataset) -> np.ndarray:
        """``(N,)`` the runs' mean cosine similarity of each pair's face and voice embeddings, in [-1, 1]."""
        return np.mean([run.similarity(pairs) for run in self.runs], axis=0)

    def posterior_abnormal(self, similarity: np.ndarray) -> np.ndarray:
        """``(N,)`` the Beta mixture's posterior of inconsistency at each (mean) similarity."""
        if self.mixture is None:
            return self.detector.posterior_abnormal(similarity)
        return self.mixture.posterior_abnormal(similarity_to_score(np.asarray(similarity)))

    @torch.no_grad()
    def score_windows(self, face: Sequence[np.ndarray], voice: Sequence[np.ndarray]) -> WindowScores:
        """Scores of windows given their face sequences ``(n_i, 7)`` and voice sequences ``(m_i, 47)``: the runs'
        mean similarity, its posterior, and the gate on the first run's embeddings."""
        pairs = self.pairs(face, voice)
        face_emb, voice_emb = self.detector.embed(pairs)
        sim = np.mean([cosine_rows(face_emb, voice_emb)] + [run.similarity(pairs) for run in self.others], axis=0)
        n = len(sim)
        if self.gate is not None:
            fd, vd = self.gate.distance(face_emb, "face"), self.gate.distance(voice_emb, "voice")
            fa, va = fd > self.gate.thresholds["face"], vd > self.gate.thresholds["voice"]
        else:
            fd = vd = np.zeros(n)
            fa = va = np.zeros(n, dtype=bool)
        return WindowScores(similarity=sim, p_inconsistent=self.posterior_abnormal(sim), face_atypical=fa,
                            voice_atypical=va, face_distance=fd, voice_distance=vd)


def save_runs(first: Detector, others: Sequence[tuple[int, Detector]], out: str | Path,
              train: PairDataset) -> list[Path]:
    """Write a clip model that averages several training runs of one recipe; returns the files written, ``out``
    first.

    ``first`` carries the clip metadata (gate, population, expression network). Each of ``others`` (seed, detector)
    is written beside ``out`` as ``<stem>_seed<seed>.pt``, a clip model of its own without a gate (the gate is fitted
    in the first run's embedding space); then ``out``, the first run with the others' file names and sha256 and the
    Beta mixture of all runs' mean similarity on ``train`` (the first run's training pairs, initialised from their
    labels, as training fits a single run's) in ``metadata["clip"]["ensemble"]``. Sets the detectors' ``metadata``
    to what their files hold."""
    out = Path(out)
    seeds = [seed for seed, _ in others]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"each run needs a seed of its own (its file is named with it); got {seeds}")
    meta = {k: v for k, v in first.metadata["clip"].items() if k != "ensemble"}
    records = []
    for seed, other in others:
        other.metadata = {**other.metadata, "clip": {**copy.deepcopy(meta), "gate": None},
                          "dataset": first.metadata.get("dataset", "clip")}
        file = other.save(out.with_name(f"{out.stem}_seed{seed}{out.suffix}"))
        records.append({"file": file.name, "sha256": file_sha256(file), "seed": int(seed),
                        "best_valid_auc": other.metadata.get("best_valid_auc")})
    if records:
        runs = [first] + [other for _, other in others]
        similarity = np.mean([run.similarity(train) for run in runs], axis=0)
        mixture = fit_similarity_mixture(similarity, train.is_abnormal, first.config.train.mixture_var_floor)
        meta["ensemble"] = {"runs": records, "mixture": mixture.get_parameters(),
                            "mixture_fitted_on": f"the mean similarity of all {len(runs)} runs on the first run's "
                                                 f"{len(train)} training window pairs"}
    first.metadata = {**first.metadata, "clip": meta}
    return [first.save(out)] + [out.with_name(r["file"]) for r in records]


def _other_runs(path: Path, first: Detector, meta: dict) -> tuple[tuple[Detector, ...], BetaMixture | None]:
    """The other runs a clip checkpoint averages with it (files beside it, each checked by sha256 and against the first
    run's inputs) and the Beta mixture of their mean similarity; ``((), None)`` for a single run."""
    ensemble = meta.get("ensemble")
    if ensemble is None:
        return (), None
    runs = ensemble.get("runs") if isinstance(ensemble, dict) else None
    if not isinstance(runs, list) or not runs or not all(
            isinstance(r, dict) and isinstance(r.get("file"), str) and isinstance(r.get("sha256"), str) and
            re.fullmatch(r"\w[\w.-]*\.pt", r["file"]) for r in runs) or len({r["sha256"] for r in runs}) < len(runs):
        raise CheckpointError(f"{path} is a damaged clip checkpoint: its list of the other runs it averages is "
                              f"malformed (a file name that is not a .pt beside it, or a run listed twice).")
    try:
        mixture = BetaMixture.from_parameters(ensemble["mixture"])
    except Exception as exc:  # noqa: BLE001 - KeyError, TypeError, ValueError from a damaged parameter record
        raise CheckpointError(f"{path} is a damaged clip checkpoint: the Beta mixture of its runs' mean similarity "
                              f"is unreadable ({type(exc).__name__}).") from None
    others = []
    for run in runs:
        file = path.parent / run["file"]
        if not file.is_file():
            raise CheckpointError(f"the clip model {path.name} averages {len(runs) + 1} runs; {run['file']} (sha256 "
                                  f"{run['sha256'][:12]}) is missing beside it.")
        sha = file_sha256(file)
        if sha != run["sha256"]:
            raise CheckpointError(f"the clip model {path.name} averages {run['file']} with sha256 "
                                  f"{run['sha256'][:12]}; the file beside it is a different one (sha256 {sha[:12]}).")
        other = Detector.load(file)
        other_meta = other.metadata.get("clip")
        if (other.schema != first.schema or not isinstance(other_meta, dict)
                or other_meta.get("fer_sha256") != meta["fer_sha256"]
                or other.model.classifier.out_features != first.model.classifier.out_features):
            raise CheckpointError(f"{run['file']} is not a run of the same recipe as {path.name} (other inputs, "
                                  f"expression network or outputs).")
        others.append(other)
    return tuple(others), mixture


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


# ------------------------------------------------------------------------------------------------ baseline
@dataclass
class Calibration:
    """A person's baseline: shifts added to every face row ``(7,)`` / voice row ``(47,)`` (population neutral mean -
    the person's mean) and the voice reader's statistics of the person's calm recording."""

    face_shift: np.ndarray | None = None
    voice_shift: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    voice_reader: SpeakerBaseline | None = None  # the voice reader's per-person baseline

    def face(self, x: np.ndarray | None) -> np.ndarray | None:
        return x if x is None or self.face_shift is None else (x + self.face_shift).astype(np.float32)

    def voice(self, x: np.ndarray | None) -> np.ndarray | None:
        return x if x is None or self.voice_shift is None else (x + self.voice_shift).astype(np.float32)

    @property
    def active(self) -> bool:
        return self.face_shift is not None or self.voice_shift is not None

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


# ------------------------------------------------------------------------------------------------ windows
WindowStatus = Literal["scored", "no face", "no speech", "no face or speech"]
"""Whether a window was judged, or what it lacked."""


@dataclass
class Window:
    """One window's result: when, whether it was judged (``status``), and its evidence and probability."""

    start: float
    end: float
    status: WindowStatus
    similarity: float | None = None
    p_inconsistent: float | None = None
    face_valence: str | None = None
    voice_valence: str | None = None
    atypical: str | None = None  # "face", "voice", "face and voice"
    face: Reading | None = None  # the face reader over the window's frames
    voice: Reading | None = None  # the voice reader on the window's audio
    p_embedding: float | None = None  # the SIR-HCL posterior alone

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 2), "end": round(self.end, 2), "status": self.status,
                "similarity": _r(self.similarity), "p_inconsistent": _r(self.p_inconsistent),
                "p_embedding": _r(self.p_embedding), "face_valence": self.face_valence,
                "face_confidence": _r(self.face.confidence) if self.face else None,
                "face_emotion": self.face.top_emotion if self.face else None, "voice_valence": self.voice_valence,
                "voice_confidence": _r(self.voice.confidence) if self.voice else None,
                "voice_emotion": self.voice.top_emotion if self.voice else None, "atypical": self.atypical}


    def to_record(self) -> dict[str, Any]:
        """Everything of the window, exactly (for the resume journal of an interrupted analysis)."""
        from dataclasses import asdict

        d = {k: getattr(self, k) for k in ("start", "end", "status", "similarity", "p_inconsistent", "face_valence",
                                            "voice_valence", "atypical", "p_embedding")}
        d = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}
        d["face"] = None if self.face is None else asdict(self.face)
        d["voice"] = None if self.voice is None else asdict(self.voice)
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> "Window":
        return cls(**{**d, "face": None if d.get("face") is None else Reading(**d["face"]),
                      "voice": None if d.get("voice") is None else Reading(**d["voice"])})


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _nominal_weight(inp: Any) -> float:
    """The weight of a window's nominal place in its ensemble: its own when it is one of the offsets, 0 when it is
    not, 1 when the window has no ensemble (no offset fits inside the recording)."""
    for weight, f, v in (inp.jitter or ()):
        if f is inp.face and v is inp.voice:
            return float(weight)
    return 0.0 if inp.jitter else 1.0


Combine = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray | None]"]
"""``(similarity, p_embedding, face_valence (N, 3), voice_valence (N, 3))`` -> calibrated P(inconsistent) and the
readings' own probability (None without a fitted combiner)."""


class WindowScorer:
    """Windows in (time order, any grouping) -> :class:`Window` results in the same order.

    :meth:`add` embeds a group's judged windows at once and starts their readings; :meth:`take` returns the windows
    whose voice readings are done (all of them with ``final=True``), each with its combined probability. With
    ``threaded_reads`` the voice reader's per-window work (spectrogram, prosody statistics: most of a window's cost)
    runs in a thread of its own, so that a long recording's pieces keep two cores busy; the readings are the same.
    ``similarities`` / ``face_atypical`` / ``voice_atypical`` keep the judged windows' raw values in order (the
    clip's mean similarity and gate shares are computed from them as a whole-file pass computes them)."""

    def __init__(self, model: ClipModel, voice_reader: Any, combine: Combine,
                 calibration: Calibration | None = None, threaded_reads: bool = False,
                 frames_of: FramesOf | None = None) -> None:
        self.model, self.combine = model, combine
        self.frames_of = frames_of  # the recording's voice extractor frames, for read_recording (None: extracted)
        self.cal = calibration or Calibration()
        self._reads = BatchedReads(voice_reader, self.cal.voice_reader)
        self._reader = _ReaderThread(self._reads) if threaded_reads else None
        self._pending: list[tuple[Window, int | None]] = []  # window, row of its raw scores (judged windows)
        self._raw: dict[int, tuple[float, float]] = {}  # row -> (similarity, embedding posterior), until combined
        self.similarities: list[np.ndarray] = []
        self.face_atypical: list[np.ndarray] = []
        self.voice_atypical: list[np.ndarray] = []
        self._rows = 0
        self._span: tuple[float, float] | None = None  # start of the first judged window, end of the last (s)
        self._recording: tuple[tuple[float, float], Reading] | None = None  # recording_reading's, for its span

    def add(self, inputs: Sequence[Any]) -> None:
        """Start scoring windows (:class:`~crossemo_core.clip.windows.WindowInput`, in time order)."""
        cal = self.cal
        faces, voices, judged = [], [], []
        for inp in inputs:
            f, v = cal.face(inp.face), cal.voice(inp.voice)
            status = ("scored" if f is not None and v is not None else "no face" if v is not None
                      else "no speech" if f is not None else "no face or speech")
            w = Window(inp.start, inp.end, status)
            row = None
            if status == "scored":
                row = self._rows + len(judged)
                faces.append(f)
                voices.append(v)
                judged.append((w, inp, row))
            self._pending.append((w, row))
        if not judged:
            return
        self._rows += len(judged)
        self._span = (judged[0][0].start if self._span is None else self._span[0], judged[-1][0].end)
        reads = self._reader if self._reader is not None else self._reads
        for _, inp, row in judged:  # queued first: a reading thread works while the clip model runs below
            reads.add(row, inp.audio if inp.audio is not None else np.zeros(0, np.float32), inp.voice_frames)
        # The clip model reads each window at the offsets of its ensemble too (seq.JITTER_S; one batch for all):
        # the window's similarity is their weighted mean, its gate flags are those of the nominal place.
        weights, owner = [], []
        for i, (_, inp, _) in enumerate(judged):
            for weight, f, v in (inp.jitter or ()):
                if f is inp.face and v is inp.voice:
                    continue  # the nominal place, already in the batch
                faces.append(cal.face(f))
                voices.append(cal.voice(v))
                weights.append(weight)
                owner.append(i)
        s = self.model.score_windows(faces, voices)
        n = len(judged)
        sim = s.similarity[:n].astype(np.float64)
        if owner:
            nominal = np.array([_nominal_weight(inp) for _, inp, _ in judged])
            total = nominal * sim + np.bincount(owner, np.asarray(weights) * s.similarity[n:], minlength=n)
            sim = total / (nominal + np.bincount(owner, weights, minlength=n))
        post = self.model.posterior_abnormal(sim)
        self.similarities.append(sim)
        self.face_atypical.append(s.face_atypical[:n])
        self.voice_atypical.append(s.voice_atypical[:n])
        for i, (w, inp, row) in enumerate(judged):
            self._raw[row] = (sim[i], post[i])
            flags = [m for m, flag in (("face", s.face_atypical[i]), ("voice", s.voice_atypical[i])) if flag]
            w.atypical = " and ".join(flags) or None
            w.face = reading_of(inp.face_emotions.mean(0), seconds=w.end - w.start)

    def restore(self, windows: Sequence[Window]) -> None:
        """Count ``windows`` (finished before, by an analysis that was interrupted) as scored by this scorer: the
        clip's mean similarity and gate shares then cover them too."""
        judged = [w for w in windows if w.status == "scored" and w.similarity is not None]
        if judged:
            self.similarities.append(np.array([w.similarity for w in judged]))
            self.face_atypical.append(np.array(["face" in (w.atypical or "") for w in judged]))
            self.voice_atypical.append(np.array(["voice" in (w.atypical or "") for w in judged]))
            self._rows += len(judged)
            self._span = (judged[0].start if self._span is None else self._span[0], judged[-1].end)

    def take(self, final: bool = False) -> list[Window]:
        """The windows, from the oldest, whose results are complete (every pending one when ``final``)."""
        if self._reader is not None:
            readings = dict(self._reader.take(final))
        else:
            readings = dict(self._reads.take(final=final))
        done: list[tuple[Window, int | None]] = []
        for w, row in self._pending:
            if row is not None and w.voice is None:
                if row not in readings:
                    break
                w.voice = readings[row]
            done.append((w, row))
        self._pending = self._pending[len(done):]
        judged = [(w, row) for w, row in done if row is not None]
        if judged:
            sims = np.array([self._raw[row][0] for _, row in judged])
            posts = np.array([self._raw[row][1] for _, row in judged])
            face_val = np.stack([w.face.valence_array() for w, _ in judged])
            voice_val = np.stack([w.voice.valence_array() for w, _ in judged])
            window_p = self.combine(sims, posts, face_val, voice_val)[0]
            for i, (w, row) in enumerate(judged):
                w.similarity, w.p_embedding, w.p_inconsistent = (float(sims[i]), float(posts[i]), float(window_p[i]))
                w.face_valence, w.voice_valence = w.face.top_valence, w.voice.top_valence
                del self._raw[row]
        return [w for w, _ in done]

    def read_recording(self, audio: np.ndarray, first_sample: int) -> Reading:
        """The voice reader on a stretch of the recording (its samples from ``first_sample`` on) read as one
        recording (its own segments past 4.5 s; relative to the person's calm recording when the baseline has one),
        with the voice extractor frames :attr:`frames_of` still holds for it instead of extracting them again."""
        in_recording = self.frames_of
        at_stretch = None if in_recording is None else (
            lambda first, samples: in_recording(first_sample + first, samples))
        return self._reads.reader.read_recording(np.asarray(audio, np.float32), self.cal.voice_reader, at_stretch)

    def recording_reading(self, audio: np.ndarray) -> Reading | None:
        """The clip's voice reading (:data:`RECORDING_READ_S`): :meth:`read_recording` on the stretch of ``audio``
        (this recording's, from its start, at :data:`~.decode.AUDIO_RATE`) that the judged windows span; None when
        no window was judged. Read once for that span and kept, so that it can be read while the voice reader's
        thread is still busy and asked for again by the verdict."""
        if self._span is None:
            return None
        if self._recording is None or self._recording[0] != self._span:
            start, end = self._span
            first = int(start * AUDIO_RATE)
            self._recording = (self._span, self.read_recording(audio[first:int(np.ceil(end * AUDIO_RATE))], first))
        return self._recording[1]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class _ReaderThread:
    """:class:`~crossemo_core.readers.voice.BatchedReads` fed from a thread of its own: :meth:`add` queues a window's
    audio, :meth:`take` returns the readings of the whole batches added so far (everything, after waiting, when
    ``final``). At most :attr:`BACKLOG` windows wait (64 s of windows, 8 MB of audio): without a bound, a reader slower
    than the rest let its backlog grow over an hour (peak 1.2 GB instead of 0.9 GB)."""

    BACKLOG = 128

    def __init__(self, reads: BatchedReads) -> None:
        import queue
        import threading

        self.reads = reads
        self.queue: Any = queue.Queue(maxsize=self.BACKLOG)  # the scoring thread waits when reading lags behind
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="crossemo-voice-reading", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    with self.lock:
                        self.reads.add(*item)
            except BaseException as exc:  # noqa: BLE001 - handed to take()
                self.error = exc
            finally:
                self.queue.task_done()

    def add(self, key: Any, audio: np.ndarray, frames: np.ndarray | None = None) -> None:
        self.queue.put((key, audio, frames))

    def take(self, final: bool) -> list[tuple[Any, Reading]]:
        if final:
            self.queue.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        with self.lock:
            return self.reads.take(final=final)

    def close(self) -> None:
        self.queue.put(None)
