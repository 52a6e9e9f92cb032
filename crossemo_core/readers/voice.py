"""The voice reader: emotion, valence and arousal of one utterance, from a log-mel network.

Pipeline: 16 kHz mono signal -> log-mel spectrogram (:func:`log_mel`: 64 bands, 25 ms windows every 10 ms, leading
and trailing silence trimmed) -> normalisation (:func:`normalise`: per-band mean and scalar spread of the
utterance, or of the same speaker's calm *baseline* recording when one is given: speaker and channel normalisation)
-> :class:`VoiceEmotionNet` (1-D convolutions over time, attentive statistics pooling, three heads: 7 emotions,
3 valences, 2 arousal levels) -> :class:`~crossemo_core.readers.reading.Reading`. A second view,
:class:`ProsodyHead` (linear models over utterance statistics of pitch, loudness, voicing and spectral balance,
:mod:`~crossemo_core.readers.prosody`), gives valence and arousal too; the reading mixes both at
:attr:`VoiceReader.prosody_weight` (0.5: an even mix, fixed in advance). The two views fail on different corpora.

Arousal has its own head so that loud-negative (angry, fearful) and loud-positive (happy, surprised) speech are not
told apart by loudness alone: both are "high", and valence has to come from elsewhere. The valence a reading reports
is the valence head's softmax.

Checkpoint (``checkpoints/voice_reader.pt``): ``{"format": "crossemo-voice-reader/1", "weights": state_dict (float16),
"meta": json}`` read with ``torch.load(weights_only=True)``; ``meta`` holds the front-end and network settings, the
emotion names and the training record. Trained by ``scripts/train_voice_reader.py`` (card: ``voice_reader.md``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.features.voice import SILENCE_PEAK
from crossemo_core.model_files import full, half, load_model_file, save_model_file
from crossemo_core.paths import CHECKPOINTS
from crossemo_core.readers.reading import AROUSALS, VALENCES, Reading
from crossemo_core.readers.voice_corpora import VOICE_EMOTIONS

VOICE_FORMAT = "crossemo-voice-reader/1"
DEFAULT_VOICE_READER = CHECKPOINTS / "voice_reader.pt"
RATE = 16000
MIN_SPEECH_S = 0.3
"""Shortest stretch of speech (after trimming silence) the reader reads; shorter gets a note instead."""
SEGMENT_S, SEGMENT_HOP_S = 3.0, 1.5
"""A recording whose speech (:func:`speech_span`) lasts more than ``SEGMENT_S`` + ``SEGMENT_HOP_S`` is read in
segments of this length and hop, laid from the speech's start (the network was trained on crops of at most 3 s),
and the segments' probabilities are averaged, weighted by speech."""
FramesOf = Callable[[int, np.ndarray], "np.ndarray | None"]
"""``frames_of(first_sample, samples)`` -> the voice extractor frames of ``samples`` (the stretch of a recording
from ``first_sample`` on) when the caller has them at hand, else None (:meth:`VoiceReader.read_recording`)."""


@dataclass(frozen=True)
class FrontendConfig:
    """Log-mel front end. ``trim_db``: frames quieter than the loudest by more than this are silence at the ends;
    ``min_speech_run_ms``: speech starts at the first run of at least this long of such loud frames and ends at the
    last one, so a click or knock in the leading or trailing silence does not count as speech. Runs with fewer than
    ``edge_gap_ms`` of silent frames between them form one stretch of sound; a first or last stretch of fewer than
    ``min_edge_sound_ms`` of loud frames (a breath, a cough, a chair a second before or after the sentence) is
    dropped while a longer stretch remains, so the network does not read the long silence between it and the
    speech. Both count frames of ``hop_ms``: a sound of ``d`` ms makes about ``d + win_ms - hop_ms`` ms of loud frames.
    ``edge_gap_ms = 0`` joins no runs; ``min_edge_sound_ms = 0`` drops nothing."""

    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0
    fmin_hz: float = 60.0
    fmax_hz: float = 7600.0
    trim_db: float = 35.0
    min_speech_run_ms: float = 50.0
    edge_gap_ms: float = 400.0
    min_edge_sound_ms: float = 250.0
    normalisation: str = "utterance"
    """``"utterance"``: subtract each band's mean and divide by the spectrogram's spread (channel and speaker
    normalisation); ``"gain"``: subtract the overall mean level only (keeps the spectral tilt)."""

    def __post_init__(self) -> None:
        if self.normalisation not in ("utterance", "gain"):
            raise ValueError(f"normalisation must be 'utterance' or 'gain', got {self.normalisation!r}")
        for name in ("min_speech_run_ms", "edge_gap_ms", "min_edge_sound_ms"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)!r}")

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_ms * RATE / 1000))


SINGLE_FRAME_FRONTEND = FrontendConfig(min_speech_run_ms=0.0, min_edge_sound_ms=0.0)
"""The front end before session 16: speech from the first to the last single loud frame, no edge sound dropped.
A reader saved without a field of the front end takes the field's value from here (the rule it was trained with:
session 16's reader drops no edge sound), and the scripts whose documented runs (and files:
``voice_reader_external.pt``, the issue-14 fold readers) were made with it use it."""


def _mel_power(signal: np.ndarray, config: FrontendConfig) -> np.ndarray:
    """``(n_samples,)`` float 16 kHz mono -> ``(n_mels, T)`` mel power, frames of ``win_ms`` every ``hop_ms``."""
    import librosa

    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise DataError(f"a voice signal must be 1-D mono, got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise DataError("the voice signal holds NaN or infinite samples.")
    n_fft = int(round(config.win_ms * RATE / 1000))
    if len(signal) < n_fft:
        return np.zeros((config.n_mels, 0), np.float32)
    return librosa.feature.melspectrogram(y=signal, sr=RATE, n_fft=n_fft, hop_length=config.hop_samples,
                                          n_mels=config.n_mels, fmin=config.fmin_hz, fmax=config.fmax_hz,
                                          power=2.0, center=False)


def _loud_frames(mel: np.ndarray, config: FrontendConfig, reference_percentile: float = 100.0
                 ) -> tuple[int, int] | None:
    """First and last frame (inclusive) of the speech: frames within ``trim_db`` of the reference level (the loudest
    frame, or the ``reference_percentile`` of the frames' levels) in runs of ``min_speech_run_ms``, without a short
    sound at either edge (:class:`FrontendConfig`); None when no frame is loud enough."""
    if mel.shape[1] == 0:
        return None
    frame_db = 10 * np.log10(mel.sum(axis=0) + 1e-10)
    reference = frame_db.max() if reference_percentile >= 100 else np.percentile(frame_db, reference_percentile)
    loud = frame_db > max(reference - config.trim_db, -80.0)
    if not loud.any():
        return None
    run = max(1, int(round(config.min_speech_run_ms / config.hop_ms)))
    in_run = loud
    if run > 1 and loud.size >= run:
        run_starts = (np.convolve(loud, np.ones(run), "valid") == run).astype(float)
        if run_starts.any():  # else a very short or choppy recording: every loud frame counts
            in_run = np.convolve(run_starts, np.ones(run))[:loud.size] > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], in_run.astype(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2] - 1
    joined = starts[1:] - ends[:-1] - 1 < config.edge_gap_ms / config.hop_ms  # silent frames between runs
    starts, ends = starts[np.r_[True, ~joined]], ends[np.r_[~joined, True]]  # stretches of sound
    long_enough = np.flatnonzero(ends - starts + 1 >= config.min_edge_sound_ms / config.hop_ms)
    if not long_enough.size:  # nothing but short sounds (a few short words): keep them all
        return int(starts[0]), int(ends[-1])
    return int(starts[long_enough[0]]), int(ends[long_enough[-1]])


def log_mel(signal: np.ndarray, config: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """``(n_samples,)`` float 16 kHz mono -> ``(n_mels, T)`` float32 natural-log mel power, silence and short edge
    sounds at both ends trimmed (``T`` frames of ``hop_ms``; :class:`FrontendConfig`). A signal with no frame above
    the floor gives ``T == 0``."""
    mel = _mel_power(signal, config)
    loud = _loud_frames(mel, config)
    if loud is None:
        return np.zeros((config.n_mels, 0), np.float32)
    return np.log(mel[:, loud[0]:loud[1] + 1] + 1e-8).astype(np.float32)


SPAN_REFERENCE_PERCENTILE = 95.0
""":func:`speech_span` trims against this percentile of the frames' levels, not the loudest frame: one click or
knock (a few frames) in a long recording of quiet speech must not make the speech count as silence."""


def speech_span(signal: np.ndarray, config: FrontendConfig = FrontendConfig()) -> tuple[int, int]:
    """Sample range ``[start, end)`` of a recording's speech: leading and trailing frames quieter by more than
    ``trim_db`` than the :data:`SPAN_REFERENCE_PERCENTILE` of its frames' levels are cut, with the same run and
    edge-sound rules as :func:`log_mel` (which trims against the loudest frame instead); ``(0, 0)`` when nothing is
    loud enough."""
    loud = _loud_frames(_mel_power(signal, config), config, SPAN_REFERENCE_PERCENTILE)
    if loud is None:
        return 0, 0
    n_fft = int(round(config.win_ms * RATE / 1000))
    return loud[0] * config.hop_samples, min(len(signal), loud[1] * config.hop_samples + n_fft)


@dataclass(frozen=True)
class NormStats:
    """Per-band means ``(n_mels,)`` and one spread (natural-log units) used to normalise a spectrogram."""

    mean: np.ndarray
    spread: float

    @classmethod
    def of(cls, mels: list[np.ndarray], normalisation: str) -> "NormStats":
        """Statistics of one or more ``(n_mels, T)`` spectrograms (their frames pooled)."""
        frames = np.concatenate([m for m in mels if m.shape[1]], axis=1)
        if frames.shape[1] == 0:
            raise DataError("no speech to take statistics from.")
        mean = frames.mean(axis=1) if normalisation == "utterance" else np.full(frames.shape[0], frames.mean())
        return cls(mean.astype(np.float32), float(max((frames - mean[:, None]).std(), 1e-3)))


def normalise(mel: np.ndarray, stats: NormStats) -> np.ndarray:
    return ((mel - stats.mean[:, None]) / stats.spread).astype(np.float32)


# ------------------------------------------------------------------------------------------------ the network
@dataclass(frozen=True)
class NetConfig:
    channels: int = 128
    embedding: int = 128
    dropout: float = 0.3


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time: ``(B, C, T)`` + mask ``(B, T)`` -> ``(B, 2C)``."""

    def __init__(self, channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, 1, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(x).squeeze(1).masked_fill(~mask, -1e4)
        w = torch.softmax(logits, dim=1).unsqueeze(1)
        mean = (w * x).sum(dim=2)
        var = (w * (x - mean.unsqueeze(2)) ** 2).sum(dim=2)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=1)


class VoiceEmotionNet(nn.Module):
    """``(B, n_mels, T)`` normalised log-mel + ``(B, T)`` mask -> dict of logits: ``emotion (B, 7)``,
    ``valence (B, 3)``, ``arousal (B, 2)``; ``embed`` gives the ``(B, embedding)`` vector before the heads."""

    def __init__(self, n_mels: int, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        c = config.channels

        def block(c_in: int, c_out: int, k: int, d: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(c_in, c_out, k, dilation=d, padding=d * (k // 2)), nn.BatchNorm1d(c_out),
                                 nn.ReLU(inplace=True))

        self.body = nn.Sequential(block(n_mels, c, 5, 1), block(c, c, 3, 2), block(c, c, 3, 3), block(c, 2 * c, 1, 1))
        self.pool = AttentiveStatsPool(2 * c)
        self.embedding = nn.Sequential(nn.Linear(4 * c, config.embedding), nn.BatchNorm1d(config.embedding),
                                       nn.ReLU(inplace=True), nn.Dropout(config.dropout))
        self.heads = nn.ModuleDict({"emotion": nn.Linear(config.embedding, len(VOICE_EMOTIONS)),
                                    "valence": nn.Linear(config.embedding, len(VALENCES)),
                                    "arousal": nn.Linear(config.embedding, len(AROUSALS))})

    def embed(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.pool(self.body(x), mask))

    def read_embedding(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, embedding)`` -> the heads' logits."""
        return {name: head(z) for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.read_embedding(self.embed(x, mask))


def pad_batch(mels: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of ``(n_mels, T_i)`` -> ``(B, n_mels, max T)`` zero-padded tensor and ``(B, max T)`` bool mask."""
    t_max = max(m.shape[1] for m in mels)
    x = torch.zeros(len(mels), mels[0].shape[0], t_max)
    mask = torch.zeros(len(mels), t_max, dtype=torch.bool)
    for i, m in enumerate(mels):
        x[i, :, :m.shape[1]] = torch.from_numpy(np.asarray(m, dtype=np.float32))
        mask[i, :m.shape[1]] = True
    return x, mask


# ------------------------------------------------------------------------------------------------ prosody view
@dataclass
class LinearHead:
    """Standardisation + multinomial logistic regression, kept as arrays: ``(N, D)`` -> ``(N, K)`` probabilities."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, n_classes: int,
            c: float = 0.03) -> "LinearHead":
        """Class-balanced logistic regression (scikit-learn) on rows with a label (``y >= 0``)."""
        from sklearn.linear_model import LogisticRegression

        keep = y >= 0
        x, y, w = x[keep], y[keep], sample_weight[keep]
        mean, scale = x.mean(0), x.std(0) + 1e-6
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((x - mean) / scale, y,
                                                                                   sample_weight=w)
        coef = np.zeros((n_classes, x.shape[1]))
        intercept = np.full(n_classes, -1e3)
        if n_classes == 2:
            coef[1], intercept[:] = model.coef_[0], (0.0, model.intercept_[0])
        else:
            coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
        return cls(mean.astype(np.float32), scale.astype(np.float32), coef.astype(np.float32),
                   intercept.astype(np.float32))

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef.T + self.intercept
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{k}": torch.from_numpy(np.asarray(getattr(self, k), np.float32))
                for k in ("mean", "scale", "coef", "intercept")}

    @classmethod
    def from_tensors(cls, payload: dict[str, Any], prefix: str) -> "LinearHead":
        return cls(*(payload[f"{prefix}.{k}"].float().numpy() for k in ("mean", "scale", "coef", "intercept")))


PROSODY_TASKS = (("valence", len(VALENCES)), ("arousal", len(AROUSALS)))


@dataclass
class ProsodyHead:
    """Valence and arousal from the prosody feature set ``features``
    (:func:`~crossemo_core.readers.prosody.prosody_features`): ``absolute`` models read the features as they are,
    ``relative`` ones (``None`` when no training speaker had a neutral recording) read them minus the speaker's
    baseline (neutral) features."""

    absolute: dict[str, LinearHead]
    relative: dict[str, LinearHead] | None = None
    features: str = "statistics"

    def rows(self, signal: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        """The features this view reads, of one 16 kHz recording (``frames``: its voice extractor frames, when
        already at hand; see :func:`~crossemo_core.readers.prosody.prosody_functionals`)."""
        from crossemo_core.readers.prosody import prosody_features

        return prosody_features(signal, self.features, frames=frames)

    def proba(self, features: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, np.ndarray]:
        width = next(iter(self.absolute.values())).mean.shape[0]
        if np.atleast_2d(features).shape[1] != width:
            raise DataError(f"this prosody view reads {width} '{self.features}' features, got "
                            f"{np.atleast_2d(features).shape[1]}: compute them with ProsodyHead.rows(signal).")
        if baseline is None or self.relative is None:
            return {task: head.proba(features) for task, head in self.absolute.items()}
        return {task: head.proba(features - baseline) for task, head in self.relative.items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for kind in ("absolute", "relative"):
            for task, head in (getattr(self, kind) or {}).items():
                out.update(head.tensors(f"prosody.{kind}.{task}"))
        return out

    @classmethod
    def from_tensors(cls, payload: dict[str, Any], features: str = "statistics") -> "ProsodyHead":
        def heads(kind: str) -> dict[str, LinearHead] | None:
            if f"prosody.{kind}.valence.coef" not in payload:
                return None
            return {task: LinearHead.from_tensors(payload, f"prosody.{kind}.{task}") for task, _ in PROSODY_TASKS}

        return cls(heads("absolute") or {}, heads("relative"), features)


@dataclass(frozen=True)
class SpeakerBaseline:
    """A speaker's calm recording(s), summarised for both views: log-mel statistics and prosody statistics."""

    norm: NormStats
    prosody: np.ndarray


# ------------------------------------------------------------------------------------------------ the reader
@dataclass
class VoiceReader:
    """A trained :class:`VoiceEmotionNet` with its front end; reads signals into :class:`Reading` objects."""

    net: VoiceEmotionNet
    frontend: FrontendConfig
    net_config: NetConfig = NetConfig()
    meta: dict[str, Any] = field(default_factory=dict)
    prosody: ProsodyHead | None = None
    prosody_weight: float = 0.0
    """Weight of the prosody view in the valence and arousal the reader reports (the network has the rest)."""

    def spectrogram(self, signal: np.ndarray) -> np.ndarray:
        return log_mel(signal, self.frontend)

    def baseline_stats(self, baseline: np.ndarray) -> SpeakerBaseline:
        """Statistics of a calm recording of the same speaker, to normalise their other recordings by."""
        from crossemo_core.readers.prosody import prosody_functionals

        mel = self.spectrogram(baseline)
        if mel.shape[1] < MIN_SPEECH_S * 1000 / self.frontend.hop_ms:
            raise DataError("the baseline recording holds too little speech (needs at least "
                            f"{MIN_SPEECH_S:.1f} s).")
        rows = self.prosody.rows(baseline) if self.prosody is not None else prosody_functionals(baseline)
        return SpeakerBaseline(NormStats.of([mel], self.frontend.normalisation), rows)

    def combine(self, net: dict[str, np.ndarray], prosody: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """The network's probabilities with the prosody view's valence and arousal mixed in at
        :attr:`prosody_weight`."""
        if prosody is None or self.prosody_weight == 0:
            return net
        w = self.prosody_weight
        return {**net, **{task: (1 - w) * net[task] + w * prosody[task] for task in prosody}}

    @torch.no_grad()
    def probabilities(self, mels: list[np.ndarray],
                      baseline: NormStats | list[NormStats | None] | None = None) -> dict[str, np.ndarray]:
        """Raw log-mels ``[(n_mels, T_i)]`` -> ``{"emotion": (N, 7), "valence": (N, 3), "arousal": (N, 2)}``.
        ``baseline``: one speaker's statistics for all, one per spectrogram, or None (each its own)."""
        self.net.eval()
        stats = baseline if isinstance(baseline, list) else [baseline] * len(mels)
        normed = [normalise(m, b or NormStats.of([m], self.frontend.normalisation)) for m, b in zip(mels, stats)]
        out: dict[str, list[np.ndarray]] = {"emotion": [], "valence": [], "arousal": []}
        for i in range(0, len(normed), 64):
            x, mask = pad_batch(normed[i:i + 64])
            for name, logits in self.net(x, mask).items():
                out[name].append(torch.softmax(logits, dim=1).numpy())
        return {k: np.concatenate(v) if v else np.zeros((0, 1)) for k, v in out.items()}

    def read(self, signal: np.ndarray, baseline: SpeakerBaseline | None = None,
             frames: np.ndarray | None = None) -> Reading:
        """One utterance (16 kHz mono float) -> its reading; too little speech gives a uniform reading with a note.
        ``frames``: the signal's voice extractor frames when already at hand (:meth:`ProsodyHead.rows`)."""
        return self.read_many([signal], baseline, [frames])[0]

    def read_many(self, signals: list[np.ndarray], baseline: SpeakerBaseline | None = None,
                  frames: list[np.ndarray | None] | None = None) -> list[Reading]:
        """Several signals (e.g. the windows of a clip) in one batch (``frames``: each one's, as in :meth:`read`)."""
        if frames is not None and len(frames) != len(signals):
            raise ValueError(f"{len(frames)} frame arrays for {len(signals)} signals")
        reads = BatchedReads(self, baseline)
        for i, signal in enumerate(signals):
            reads.add(i, signal, None if frames is None else frames[i])
        return [r for _, r in reads.take(final=True)]

    def read_recording(self, signal: np.ndarray, baseline: SpeakerBaseline | None = None,
                       frames_of: FramesOf | None = None) -> Reading:
        """A recording of any length: one whose speech (:func:`speech_span`, silence at both ends trimmed) is short
        as one utterance, a longer one in segments (:data:`SEGMENT_S`, hop :data:`SEGMENT_HOP_S`, laid from the
        speech's start, so that a shift of the audio does not move them against the speech) whose probabilities are
        averaged, weighted by their speech. ``frames_of(first_sample, samples)``: the voice extractor frames of
        ``samples``, the stretch of ``signal`` from ``first_sample`` on, when the caller already has them (the
        clip's voice track), or None; each stretch it gives none for is extracted."""
        seg, hop = int(SEGMENT_S * RATE), int(SEGMENT_HOP_S * RATE)
        start, end = speech_span(signal, self.frontend)

        def frames(first: int, samples: np.ndarray) -> np.ndarray | None:
            return None if frames_of is None else frames_of(first, samples)

        if end - start <= seg + hop:
            return self.read(signal, baseline, frames(0, signal))
        speech = signal[start:end]  # the grid starts where the speech does, so shifting the audio does not move it
        starts = list(range(0, len(speech) - seg + 1, hop))
        if starts[-1] + seg < len(speech):
            starts.append(len(speech) - seg)
        pieces = [speech[s:s + seg] for s in starts]
        parts = [r for r in self.read_many(pieces, baseline, [frames(start + s, x) for s, x in zip(starts, pieces)])
                 if not r.note]
        if not parts:
            return self.read(speech, baseline, frames(start, speech))
        w = np.array([r.seconds for r in parts])
        w = w / w.sum()

        def mean(get: Callable[[Reading], dict[str, float]]) -> np.ndarray:
            return np.einsum("n,nk->k", w, np.array([list(get(r).values()) for r in parts]))

        return Reading.from_arrays("voice", VOICE_EMOTIONS, mean(lambda r: r.emotions), mean(lambda r: r.valence),
                                   mean(lambda r: r.arousal or {}), len(speech) / RATE,
                                   note=f"read in {len(parts)} segments of {SEGMENT_S:g} s")

    def save(self, path: str | Path) -> Path:
        meta = {**self.meta, "frontend": asdict(self.frontend), "net": asdict(self.net_config),
                "emotions": list(VOICE_EMOTIONS), "prosody_weight": self.prosody_weight}
        if self.prosody is not None:
            meta["prosody_features"] = self.prosody.features
        tensors: dict[str, Any] = {"weights": half(self.net.state_dict())}
        if self.prosody is not None:
            tensors["prosody"] = self.prosody.tensors()
        return save_model_file(path, VOICE_FORMAT, meta, tensors)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_VOICE_READER) -> "VoiceReader":
        def build(payload: dict[str, Any], meta: dict[str, Any]) -> "VoiceReader":
            if tuple(meta["emotions"]) != VOICE_EMOTIONS:
                raise CheckpointError(f"{path} reads other emotions ({meta['emotions']}) than this version.")
            # a field missing from a saved reader takes its value from before it existed (the rule it was trained with)
            frontend = FrontendConfig(**{**asdict(SINGLE_FRAME_FRONTEND), **meta["frontend"]})
            net_config = NetConfig(**meta["net"])
            net = VoiceEmotionNet(frontend.n_mels, net_config)
            net.load_state_dict(full(payload["weights"]))
            prosody = (ProsodyHead.from_tensors(payload["prosody"], meta.get("prosody_features", "statistics"))
                       if "prosody" in payload else None)
            return cls(net.eval(), frontend, net_config, meta, prosody, float(meta.get("prosody_weight", 0.0)))

        return load_model_file(path, VOICE_FORMAT, "voice reader", build)


class BatchedReads:
    """:meth:`VoiceReader.read_many` fed one signal at a time (the windows of a long recording as they are decoded),
    giving exactly the readings ``read_many`` gives for all of them at once.

    Why it matters: the network pads a batch to its longest spectrogram, and the padding reaches the convolutions
    near the end of the shorter ones, so a reading depends (slightly) on its batch. ``read_many`` reads the signals
    with enough speech in batches of 64 in order; :meth:`take` hands out readings in the same batches, and only for
    whole batches until ``final=True``. Each signal's spectrogram and prosody statistics are computed when it is
    added (the signal itself is not kept)."""

    BATCH = 64

    def __init__(self, reader: VoiceReader, baseline: SpeakerBaseline | None = None) -> None:
        self.reader, self.baseline = reader, baseline
        self._pending: list[tuple[Any, np.ndarray, np.ndarray | None]] = []  # key, log-mel, prosody (None: too short)
        self._min_frames = MIN_SPEECH_S * 1000 / reader.frontend.hop_ms

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Any, signal: np.ndarray, frames: np.ndarray | None = None) -> None:
        """Queue ``signal`` for reading under ``key``; ``frames``: its voice extractor frames when already at hand
        (:meth:`ProsodyHead.rows`). A signal whose peak is below
        :data:`~crossemo_core.features.voice.SILENCE_PEAK` (-80 dBFS: a muted microphone's hiss) holds no speech."""
        silent = float(np.max(np.abs(signal), initial=0.0)) < SILENCE_PEAK
        mel = self.reader.spectrogram(np.zeros(0, np.float32) if silent else signal)
        ok = mel.shape[1] >= self._min_frames
        rows = np.zeros(0) if ok else None  # empty: read by the network alone
        if ok and self.reader.prosody is not None and self.reader.prosody_weight > 0:
            try:
                rows = self.reader.prosody.rows(signal, frames)
            except DataError:  # too little voiced speech for the prosody features: the network reads it alone
                pass
        self._pending.append((key, mel, rows))

    def take(self, final: bool = False) -> list[tuple[Any, Reading]]:
        """``(key, reading)`` of the signals read so far, in the order added: every pending signal when ``final``,
        else those up to the last whole batch of 64 readable signals."""
        if not self._pending:
            return []
        if final:
            n = len(self._pending)
        else:
            ok_positions = [i for i, (_, _, p) in enumerate(self._pending) if p is not None]
            whole = len(ok_positions) // self.BATCH * self.BATCH
            # complete: everything before the first readable signal of the unfinished batch
            n = ok_positions[whole] if whole < len(ok_positions) else len(self._pending)
        group, self._pending = self._pending[:n], self._pending[n:]
        return self._read(group)

    def _read(self, group: list[tuple[Any, np.ndarray, np.ndarray | None]]) -> list[tuple[Any, Reading]]:
        ok = [i for i, (_, _, p) in enumerate(group) if p is not None]
        probs: dict[str, np.ndarray] = {}
        if ok:
            baseline = self.baseline
            probs = self.reader.probabilities([group[i][1] for i in ok], baseline.norm if baseline else None)
            with_rows = [j for j, i in enumerate(ok) if group[i][2].size]
            if self.reader.prosody is not None and self.reader.prosody_weight > 0 and with_rows:
                feats = np.stack([group[ok[j]][2] for j in with_rows])
                mixed = self.reader.combine({k: v[with_rows] for k, v in probs.items()},
                                            self.reader.prosody.proba(feats, baseline.prosody if baseline else None))
                for k, v in mixed.items():
                    probs[k][with_rows] = v
        out = []
        where = {i: j for j, i in enumerate(ok)}
        for i, (key, mel, _) in enumerate(group):
            seconds = mel.shape[1] * self.reader.frontend.hop_ms / 1000
            if i in where:
                j = where[i]
                out.append((key, Reading.from_arrays("voice", VOICE_EMOTIONS, probs["emotion"][j],
                                                     probs["valence"][j], probs["arousal"][j], seconds)))
            else:
                out.append((key, Reading.from_arrays(
                    "voice", VOICE_EMOTIONS, np.full(len(VOICE_EMOTIONS), 1 / len(VOICE_EMOTIONS)),
                    np.full(3, 1 / 3), np.full(2, 0.5), seconds,
                    note=f"less than {MIN_SPEECH_S:.1f} s of speech: nothing to read")))
        return out
