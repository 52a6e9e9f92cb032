"""Training and evaluating the voice reader: augmented spectrogram cache, one supervised loop, UAR metrics.

:func:`spectrogram_cache` computes, once per utterance, the log-mels of its clean recording and of its augmented
copies (:meth:`~crossemo_core.readers.augment.Augmenter.versions`) and keeps them on disk outside the repository
(``$CROSSEMO_CACHE`` or ``~/.cache/crossemo``), keyed by the file's content hash and every setting that shapes them.
:func:`train_voice_reader` draws, every epoch, ``views`` copies of each training utterance among those its
``augmentations`` allow, crops them, masks random bands and frames (SpecAugment), and trains the three heads with
class-weighted cross-entropy, every corpus (or, with ``speaker_balance``, every speaker) weighing the same. The
epoch kept is the one with the best valence UAR on validation speakers (never the test ones); training resumes from
its last finished epoch when given a ``resume`` path. :func:`fit_prosody_view` adds the prosody view;
:func:`evaluate_mels` gives valence, emotion and arousal UAR.
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import soundfile as sf
import torch
from torch import nn

from crossemo_core.errors import DataError
from crossemo_core.features.voice import read_cached_array
from crossemo_core.optim import optimiser_step
from crossemo_core.paths import atomic_write
from crossemo_core.readers.augment import AUGMENTATIONS, AugmentConfig, Augmenter
from crossemo_core.readers.reading import unweighted_average_recall, valence_from_emotions
from crossemo_core.readers.voice import (PROSODY_TASKS, FrontendConfig, LinearHead, NetConfig, NormStats,
                                         ProsodyHead, SpeakerBaseline, VoiceEmotionNet, VoiceReader, log_mel,
                                         normalise, pad_batch)
from crossemo_core.readers.voice_corpora import VOICE_EMOTIONS, Utterance
from crossemo_core.settings import cache_root, option_number

CACHE_VERSION = 1
MAX_VTLP = 0.3
TRAINING_OPTIONS = ("speaker_adversary", "vtlp", "average_best", "speaker_balance")
"""The :class:`VoiceTrainConfig` fields that commands training voice readers take as options
(:func:`add_training_option_arguments`); each is off at 0 (False)."""


def load_signal(path: Path) -> np.ndarray:
    """A 16 kHz corpus file as float32 mono, as recorded: its constant offset is kept (unlike every recording the
    readers are asked to read, :class:`~crossemo_core.features.voice.DcBlocker`): networks trained on the corpora
    with the offset removed measured lower on 3 of 4 unseen-speaker tests with one seed (``docs/readers.md``,
    "Tried: training on audio without its offset")."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != 16000:
        raise DataError(f"{path} is at {sr} Hz; the voice corpora here are 16 kHz.")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: audio contains NaN or inf samples.")
    return x.mean(axis=1)


Versions = list[tuple[tuple[str, ...], np.ndarray]]
"""An utterance's log-mels: ``[(augmentations applied, (n_mels, T) float16), ...]``, clean first."""


class _Versions:
    """An utterance's training copies (clean, then :meth:`Augmenter.versions`), drawn from a generator seeded by
    ``seed`` and the file's content, so both caches make the same copies whatever order they meet the files in."""

    def __init__(self, augment: AugmentConfig | None, seed: int) -> None:
        self.augment, self.seed = augment, seed
        self._augmenter: Augmenter | None = None

    def __call__(self, path: Path, digest: str) -> list[tuple[tuple[str, ...], np.ndarray]]:
        signal = load_signal(path)
        if self.augment is None:
            return [((), signal)]
        if self._augmenter is None:
            self._augmenter = Augmenter(self.augment, self.seed)
        self._augmenter.rng = np.random.default_rng([self.seed, int(digest[:8], 16)])
        return self._augmenter.versions(signal)


def spectrogram_cache(utterances: list[Utterance], frontend: FrontendConfig, augment: AugmentConfig | None,
                      seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict[str, Versions]:
    """``{utterance.key: versions}``; ``augment=None`` keeps the clean recording only. Computed once, then read."""
    spectrogram = {k: v for k, v in asdict(frontend).items() if k != "normalisation"}  # applied later, not cached
    tag = json.dumps([CACHE_VERSION, spectrogram, asdict(augment) if augment else None, seed], sort_keys=True)
    folder = cache_root() / "voice_reader" / hashlib.sha256(tag.encode()).hexdigest()[:16]
    make = _Versions(augment, seed)
    out: dict[str, Versions] = {}
    for i, u in enumerate(utterances):
        digest = hashlib.sha256(u.path.read_bytes()).hexdigest()
        file = folder / f"{digest[:24]}.npz"
        versions = _read_versions(file)
        if versions is None:
            versions = [(names, log_mel(s, frontend).astype(np.float16)) for names, s in make(u.path, digest)]
            buf = io.BytesIO()
            np.savez(buf, names=np.array(json.dumps([list(n) for n, _ in versions])),
                     **{f"m{k}": m for k, (_, m) in enumerate(versions)})
            atomic_write(file, buf.getvalue())
        out[u.key] = versions
        if progress:
            progress(i + 1, len(utterances))
    return out


def prosody_cache(utterances: list[Utterance], augment: AugmentConfig, seed: int = 0,
                  progress: Callable[[int, int], None] | None = None,
                  features: str = "statistics") -> dict[str, np.ndarray]:
    """``{utterance.key: (2, D)}``: the prosody features ``features`` (:data:`~crossemo_core.readers.prosody.
    PROSODY_FEATURES`) of the clean recording and of its first random-chain copy (the same copy
    :func:`spectrogram_cache` holds, from the same seeds). Computed once per set, then read; ``statistics+egemaps``
    joins the two sets' caches."""
    from crossemo_core.readers.prosody import EGEMAPS_COUNT, PROSODY_FEATURES, PROSODY_NAMES, prosody_features

    if features not in PROSODY_FEATURES:
        raise ValueError(f"unknown prosody features {features!r}; known: {', '.join(PROSODY_FEATURES)}")
    if "+" in features:
        parts = [prosody_cache(utterances, augment, seed, progress, f) for f in features.split("+")]
        return {u.key: np.concatenate([p[u.key] for p in parts], axis=1) for u in utterances}
    if features == "statistics":
        tag = json.dumps([CACHE_VERSION, list(PROSODY_NAMES), asdict(augment), seed], sort_keys=True)
        folder = cache_root() / "voice_prosody" / hashlib.sha256(tag.encode()).hexdigest()[:16]
    else:
        from crossemo_core.readers.prosody import EGEMAPS_LEVEL_DBFS, EGEMAPS_TRIM_DB

        tag = json.dumps([CACHE_VERSION, features, EGEMAPS_TRIM_DB, EGEMAPS_LEVEL_DBFS, asdict(augment), seed],
                         sort_keys=True)
        folder = cache_root() / "voice_egemaps_prosody" / hashlib.sha256(tag.encode()).hexdigest()[:16]
    augmenter: Augmenter | None = None
    out: dict[str, np.ndarray] = {}
    is_entry = prosody_entry_test(len(PROSODY_NAMES) if features == "statistics" else EGEMAPS_COUNT)
    for i, u in enumerate(utterances):
        digest = hashlib.sha256(u.path.read_bytes()).hexdigest()
        file = folder / f"{digest[:24]}.npy"
        cached = read_cached_array(file, is_entry)
        if cached is not None:
            out[u.key] = cached
        else:
            augmenter = augmenter or Augmenter(augment, seed)
            augmenter.rng = np.random.default_rng([seed, int(digest[:8], 16)])  # as _Versions seeds it
            signal = load_signal(u.path)
            _, chain = augmenter.first_chain(signal)
            out[u.key] = np.stack([prosody_features(signal, features), prosody_features(chain, features)])
            buf = io.BytesIO()
            np.save(buf, out[u.key])
            atomic_write(file, buf.getvalue())
        if progress:
            progress(i + 1, len(utterances))
    return out


def prosody_entry_test(width: int) -> Callable[[np.ndarray], bool]:
    """What :func:`prosody_cache` takes from its cache: ``(2, width)`` floats, the clean utterance's row and its
    augmented copy's (for :func:`~crossemo_core.features.voice.read_cached_array`)."""
    return lambda a: a.shape == (2, width) and a.dtype.kind == "f"


def _read_versions(file: Path) -> Versions | None:
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            names = json.loads(str(z["names"]))
            return [(tuple(n), z[f"m{k}"]) for k, n in enumerate(names)]
    except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
        return None


@dataclass(frozen=True)
class VoiceTrainConfig:
    """Settings of one training run (saved in the checkpoint's ``meta["training"]``)."""

    epochs: int = 30
    patience: int = 8
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    crop_frames: int = 300
    views: int = 2
    """Copies of each training utterance per epoch, drawn among the clean one and the allowed augmented ones."""
    augmentations: tuple[str, ...] = AUGMENTATIONS
    freq_mask: int = 8
    time_mask: int = 40
    head_weights: tuple[float, float, float] = (1.0, 1.0, 0.5)
    """Loss weight of the emotion, valence and arousal heads."""
    speaker_norm_rate: float = 0.5
    """Share of training samples normalised by their speaker's neutral recordings (the per-person baseline) instead
    of their own statistics, so that one network reads both with and without a baseline."""
    speaker_adversary: float = 0.0
    """Strength of a speaker-adversarial head (0: none). A small classifier learns to tell the training speakers
    apart from the embedding while the embedding, through a gradient reversal layer (Ganin and Lempitsky, 2015),
    learns to hide them; the reversal ramps from 0 to this strength over the run. The head is dropped after
    training: the reader's file and its reading are unchanged in form."""
    average_best: int = 0
    """0: the reader is the network of the epoch with the best validation valence UAR. ``k >= 2``: the mean of the
    weights of the ``k`` epochs with the best validation valence UAR (the latest ``k`` without validation; fewer when
    early stopping ends the run sooner), a uniform "soup" of epochs along one run after SWAD (Cha et al. 2021, which
    seeks flat minima for domains not trained on), with its batch-norm statistics estimated again on the training
    utterances (:func:`average_weights`, :func:`reestimate_batch_norm`). The average is kept even where it reads the
    validation speakers worse than the best epoch: both scores are in the reader's ``meta["training"]``."""
    vtlp: float = 0.0
    """Vocal tract length perturbation (Jaitly and Hinton, 2013; 0: none): each training crop's mel bands are read as
    if the speaker's spectrum were stretched along frequency by a factor drawn uniformly from ``[1 - vtlp,
    1 + vtlp]`` (:func:`warp_mel_frequencies`), another speaker's formants from the same speech."""
    speaker_balance: bool = False
    """False: every training corpus weighs the same in the loss (and in the prosody view's fit). True: every training
    speaker weighs the same, so a corpus weighs by its number of speakers (TESS's 2 speakers then weigh 2 of 10 or 2
    of 19 training speakers instead of half of a two-corpus run; :func:`sample_weights`)."""
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.augmentations) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; known: {', '.join(AUGMENTATIONS)}")
        if self.epochs < 1 or self.batch < 2 or self.views < 1 or self.crop_frames < 30:
            raise ValueError("epochs >= 1, batch >= 2, views >= 1 and crop_frames >= 30 are required")
        if not 0.0 <= self.speaker_adversary <= 10.0:
            raise ValueError(f"speaker_adversary must be in [0, 10], got {self.speaker_adversary}")
        if not 0.0 <= self.vtlp <= MAX_VTLP:
            raise ValueError(f"vtlp must be in [0, {MAX_VTLP}], got {self.vtlp}")
        if self.average_best == 1 or not 0 <= self.average_best <= self.epochs:
            raise ValueError(f"average_best must be 0 or 2..epochs ({self.epochs}), got {self.average_best}")

    def identity(self) -> dict[str, object]:
        """The settings as a dict for run keys: the :data:`TRAINING_OPTIONS` only when used, so runs made before they
        existed keep their keys."""
        out = asdict(self)
        for name in TRAINING_OPTIONS:
            if not out[name]:
                del out[name]
        return out


def add_training_option_arguments(parser: argparse.ArgumentParser) -> None:
    """``--speaker-adversary STRENGTH``, ``--vtlp WARP``, ``--average-best K`` and ``--speaker-balance`` for a
    command that trains voice readers (:data:`TRAINING_OPTIONS`; read back with :func:`training_options`)."""
    parser.add_argument("--speaker-adversary", type=option_number("--speaker-adversary", minimum=0.0, maximum=10.0),
                        default=0.0, metavar="STRENGTH",
                        help="train against a speaker classifier through gradient reversal of this strength "
                             "(0, the default: none)")
    parser.add_argument("--vtlp", type=option_number("--vtlp", minimum=0.0, maximum=MAX_VTLP), default=0.0,
                        metavar="WARP",
                        help="vocal tract length perturbation: stretch each training crop's spectrum along frequency "
                             "by a factor in [1 - WARP, 1 + WARP] (0, the default: none)")
    parser.add_argument("--average-best", type=option_number("--average-best", minimum=0, whole=True), default=0,
                        metavar="K",
                        help="the reader is the mean of the weights of the K epochs with the best validation valence "
                             "UAR (0, the default: the best epoch alone)")
    parser.add_argument("--speaker-balance", action="store_true",
                        help="every training speaker weighs the same in the loss and the prosody view's fit "
                             "(default: every corpus)")


def training_options(args: argparse.Namespace) -> dict[str, float | bool]:
    """The :data:`TRAINING_OPTIONS` parsed by :func:`add_training_option_arguments`, as ``VoiceTrainConfig``
    keyword arguments."""
    return {name: getattr(args, name) for name in TRAINING_OPTIONS}


def warp_mel_frequencies(mel: np.ndarray, factor: float, frontend: FrontendConfig) -> np.ndarray:
    """``(n_mels, T)`` log-mel -> the same speech with its spectrum stretched along frequency by ``factor``: band
    ``k`` takes the value the input has at frequency ``f_k / factor`` (``f_k`` the band's centre; linear
    interpolation between bands, the edge bands held beyond the range). ``factor > 1`` moves formants up, as a
    shorter vocal tract does."""
    centres = _mel_centres(frontend.n_mels, frontend.fmin_hz, frontend.fmax_hz)
    position = np.interp(centres / factor, centres, np.arange(len(centres), dtype=np.float64))
    low = np.minimum(np.floor(position).astype(int), len(centres) - 2)
    share = (position - low)[:, None]
    return ((1 - share) * mel[low] + share * mel[low + 1]).astype(mel.dtype)


@functools.lru_cache(maxsize=4)
def _mel_centres(n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(n_mels + 2, fmin=fmin_hz, fmax=fmax_hz)[1:-1]


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several state dicts of one network (integer buffers, such as batch norm's batch
    count, take their largest value)."""
    if not states:
        raise ValueError("no states to average")
    return {name: (torch.stack([s[name].float() for s in states]).mean(0).to(first.dtype)
                   if first.is_floating_point() else torch.stack([s[name] for s in states]).max(0).values)
            for name, first in states[0].items()}


@torch.no_grad()
def reestimate_batch_norm(net: VoiceEmotionNet, mels: Iterable[np.ndarray], batch: int) -> None:
    """Batch-norm running statistics of ``net`` estimated afresh from the normalised log-mels ``mels``, in batches of
    ``batch`` in the order given (pass them shuffled: a batch of one speaker has a smaller spread than training's
    mixed batches), as the mean over the batches of each batch's statistics (a last batch of one is left out: batch
    norm needs two). Weights unchanged; the network is left in eval mode, its momenta as they were."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative mean over the batches
        net.train()
        group: list[np.ndarray] = []
        for mel in mels:
            group.append(mel)
            if len(group) == batch:
                net.embed(*pad_batch(group))
                group = []
        if len(group) >= 2:
            net.embed(*pad_batch(group))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.eval()


def _resume_key(config: VoiceTrainConfig, net_config: NetConfig, frontend: FrontendConfig) -> str:
    """The settings a resume state must have been made with (the front end too: its spectrograms are the input), as
    canonical JSON."""
    return json.dumps({"train": config.identity(), "net": asdict(net_config), "frontend": asdict(frontend)},
                      sort_keys=True)


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-strength`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:  # type: ignore[override]
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.strength * grad, None


class SpeakerAdversary(nn.Module):
    """``(B, embedding)`` -> ``(B, n_speakers)`` logits, reading the embedding through a gradient reversal of
    ``strength`` (set per step by the training loop)."""

    def __init__(self, embedding: int, n_speakers: int, hidden: int = 128) -> None:
        super().__init__()
        self.strength = 0.0
        self.classify = nn.Sequential(nn.Linear(embedding, hidden), nn.ReLU(inplace=True),
                                      nn.Linear(hidden, n_speakers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.classify(_ReverseGradient.apply(z, self.strength))


def reversal_strength(progress: float, strength: float) -> float:
    """DANN's ramp: 0 at the start of training, ``strength`` at the end (``progress`` in [0, 1])."""
    return strength * (2.0 / (1.0 + float(np.exp(-10.0 * progress))) - 1.0)


def _labels(utts: list[Utterance]) -> dict[str, np.ndarray]:
    return {"emotion": np.array([u.emotion_index for u in utts]), "valence": np.array([u.valence for u in utts]),
            "arousal": np.array([u.arousal for u in utts])}


def _class_weights(y: np.ndarray, n: int) -> torch.Tensor:
    counts = np.bincount(y[y >= 0], minlength=n).astype(float)
    w = np.where(counts > 0, counts.sum() / (n * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def _crop(mel: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    if mel.shape[1] <= frames:
        return mel
    start = int(rng.integers(0, mel.shape[1] - frames + 1))
    return mel[:, start:start + frames]


def _spec_augment(x: torch.Tensor, mask: torch.Tensor, cfg: VoiceTrainConfig, rng: np.random.Generator) -> None:
    for i in range(x.shape[0]):
        f = int(rng.integers(0, cfg.freq_mask + 1))
        f0 = int(rng.integers(0, x.shape[1] - f + 1))
        x[i, f0:f0 + f] = 0
        length = int(mask[i].sum())
        t = int(rng.integers(0, min(cfg.time_mask, length // 4) + 1))
        t0 = int(rng.integers(0, length - t + 1))
        x[i, :, t0:t0 + t] = 0


@dataclass
class TrainRecord:
    """What a run did: per-epoch losses and validation metrics, the epoch kept, the wall time."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_uar: float = float("nan")
    seconds: float = 0.0


def train_voice_reader(train: list[Utterance], valid: list[Utterance], cache: dict[str, Versions],
                       frontend: FrontendConfig, config: VoiceTrainConfig = VoiceTrainConfig(),
                       net_config: NetConfig = NetConfig(), resume: str | Path | None = None,
                       on_epoch: Callable[[dict[str, float]], None] | None = None) -> tuple[VoiceReader, TrainRecord]:
    """Train on ``train`` (augmented copies from ``cache``), keep the epoch with the best valence UAR on ``valid``
    (clean recordings). With ``resume``, state is saved there after every epoch and a run restarts from it."""
    if not train:
        raise DataError("no training utterances.")
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)  # initial weights and dropout draw from torch's generator (saved for resume)
    net = VoiceEmotionNet(frontend.n_mels, net_config)
    speakers = sorted({u.speaker for u in train})
    adversary = SpeakerAdversary(net_config.embedding, len(speakers)) if config.speaker_adversary else None
    trained = list(net.parameters()) + (list(adversary.parameters()) if adversary else [])
    opt = torch.optim.AdamW(trained, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train) * config.views // config.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch,
                                                pct_start=0.15)
    labels = _labels(train)
    losses = {name: nn.CrossEntropyLoss(weight=_class_weights(labels[name], n), ignore_index=-1, reduction="none")
              for name, n in (("emotion", len(VOICE_EMOTIONS)), ("valence", 3), ("arousal", 2))}
    sample_weight = sample_weights(train, config.speaker_balance).astype(np.float32)
    speaker_index = np.array([speakers.index(u.speaker) for u in train])
    neutral = {spk: b.norm for spk, b in speaker_baselines(train, cache, frontend).items()}
    allowed = [[k for k, (names, _) in enumerate(cache[u.key]) if set(names) <= set(config.augmentations)]
               for u in train]
    record, best_state, start_epoch = TrainRecord(), None, 0
    best_states: list[tuple[float, int, dict[str, torch.Tensor]]] = []  # (score, epoch, state), best first
    if resume is not None and Path(resume).is_file():
        state = torch.load(resume, map_location="cpu", weights_only=True)
        if state.get("config") != _resume_key(config, net_config, frontend):
            raise DataError(f"{resume} holds a run with other settings than this one (or from a version that did "
                            "not record them); delete it or resume into another file.")
        net.load_state_dict(state["net"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        record = TrainRecord(**state["record"])
        best_state, start_epoch = state["best"], state["epoch"]
        best_states = [tuple(entry) for entry in state.get("best_states", [])]
    t0 = time.perf_counter() - record.seconds
    valid_mels = [cache[u.key][0][1] for u in valid]
    for epoch in range(start_epoch, config.epochs):
        net.train()
        if adversary is not None:
            adversary.train()
        items = np.array([(i, int(rng.choice(allowed[i]))) for i in range(len(train)) for _ in range(config.views)])
        items = items[rng.permutation(len(items))]
        total = speaker_total = 0.0
        for s in range(0, len(items), config.batch):
            chunk = items[s:s + config.batch]
            if len(chunk) < 2:
                continue
            mels = []
            for i, v in chunk:
                full = cache[train[i].key][v][1].astype(np.float32)
                if full.shape[1] < 10:
                    full = cache[train[i].key][0][1].astype(np.float32)
                use_baseline = train[i].speaker in neutral and rng.random() < config.speaker_norm_rate
                stats = neutral[train[i].speaker] if use_baseline else NormStats.of([full], frontend.normalisation)
                mel = normalise(_crop(full, config.crop_frames, rng), stats)
                if config.vtlp:
                    mel = warp_mel_frequencies(mel, float(rng.uniform(1 - config.vtlp, 1 + config.vtlp)), frontend)
                mels.append(mel)
            x, mask = pad_batch(mels)
            _spec_augment(x, mask, config, rng)
            z = net.embed(x, mask)
            out = net.read_embedding(z)
            idx = chunk[:, 0]
            w = torch.from_numpy(sample_weight[idx])
            loss = sum(hw * (losses[name](out[name], torch.from_numpy(labels[name][idx])) * w).mean()
                       for hw, name in zip(config.head_weights, ("emotion", "valence", "arousal")))
            task_loss = loss.item()
            if adversary is not None:
                adversary.strength = reversal_strength(sched.last_epoch / sched.total_steps,
                                                       config.speaker_adversary)
                speaker_loss = nn.functional.cross_entropy(adversary(z), torch.from_numpy(speaker_index[idx]))
                loss = loss + speaker_loss
                speaker_total += speaker_loss.item() * len(chunk)
            optimiser_step(opt, loss)
            sched.step()
            total += task_loss * len(chunk)
        reader = VoiceReader(net, frontend, net_config)
        metrics = evaluate_mels(reader, valid_mels, valid) if valid else {}
        row = {"epoch": epoch + 1, "loss": total / len(items), "seconds": time.perf_counter() - t0,
               **({"speaker_loss": speaker_total / len(items)} if adversary is not None else {}),
               **{f"valid_{k}": v for k, v in metrics.items() if isinstance(v, float)}}
        record.history.append(row)
        if valid:
            score = float(metrics["valence_uar"])
            better = best_state is None or score > record.best_valid_uar or np.isnan(record.best_valid_uar)
        else:
            score, better = float(epoch), True  # without validation the latest epochs are kept
        if better:
            record.best_epoch, record.best_valid_uar = epoch + 1, score if valid else float("nan")
            best_state = copy.deepcopy(net.state_dict())
        if config.average_best:
            best_states = sorted(best_states + [(score, epoch + 1, copy.deepcopy(net.state_dict()))],
                                 key=_rank_of)[:config.average_best]
        record.seconds = time.perf_counter() - t0
        if resume is not None:
            buf = io.BytesIO()
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                        "record": asdict(record), "best": best_state, "epoch": epoch + 1,
                        "config": _resume_key(config, net_config, frontend),
                        **({"best_states": best_states} if config.average_best else {}),
                        **({"adversary": adversary.state_dict()} if adversary is not None else {})}, buf)
            atomic_write(resume, buf.getvalue())
        if on_epoch:
            on_epoch(row)
        if valid and epoch + 1 - record.best_epoch >= config.patience:
            break
    net.load_state_dict(best_state)
    net.eval()
    averaged: dict[str, object] = {}
    if len(best_states) >= 2:
        net.load_state_dict(average_weights([state for _, _, state in best_states]))
        clean = (cache[train[i].key][0][1].astype(np.float32) for i in rng.permutation(len(train)))
        crops = (normalise(_crop(m, config.crop_frames, rng), NormStats.of([m], frontend.normalisation)) for m in clean)
        reestimate_batch_norm(net, crops, config.batch)
        reader = VoiceReader(net, frontend, net_config)
        valid_uar = evaluate_mels(reader, valid_mels, valid)["valence_uar"] if valid else None
        averaged = {"averaged_epochs": sorted(epoch for _, epoch, _ in best_states),
                    "averaged_valid_valence_uar": valid_uar}
    meta = {"training": {**asdict(config), "best_epoch": record.best_epoch,
                         "best_valid_valence_uar": record.best_valid_uar, **averaged,
                         "seconds": round(record.seconds, 1)}}
    return VoiceReader(net, frontend, net_config, meta), record


def _rank_of(entry: tuple[float, int, dict[str, torch.Tensor]]) -> tuple[float, int]:
    """Sort key of a kept epoch ``(score, epoch, state)``: best score first (a NaN score last), earlier epoch first."""
    score, epoch, _ = entry
    return (float("inf") if np.isnan(score) else -score, epoch)


def speaker_baselines(utts: list[Utterance], cache: dict[str, Versions], frontend: FrontendConfig,
                      prosody: dict[str, np.ndarray] | None = None,
                      per_speaker: int | None = None) -> dict[str, SpeakerBaseline]:
    """Each speaker's per-person baseline from the clean neutral recordings among ``utts`` (the first
    ``per_speaker`` of them when given). Speakers without a neutral recording are left out."""
    by: dict[str, list[Utterance]] = {}
    for u in utts:
        if u.is_neutral and (per_speaker is None or len(by.get(u.speaker, [])) < per_speaker):
            by.setdefault(u.speaker, []).append(u)
    out = {}
    for spk, us in by.items():
        norm = NormStats.of([cache[u.key][0][1].astype(np.float32) for u in us], frontend.normalisation)
        rows = np.stack([prosody[u.key][0] for u in us]).mean(0) if prosody else np.zeros(0, np.float32)
        out[spk] = SpeakerBaseline(norm, rows)
    return out


def sample_weights(utts: list[Utterance], speaker_balance: bool = False) -> np.ndarray:
    """``(N,)`` loss weights of ``utts``, mean 1: every corpus weighs the same, or with ``speaker_balance`` every
    speaker (speakers are unique across corpora)."""
    groups = np.array([u.speaker if speaker_balance else u.corpus for u in utts])
    names, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return len(utts) / (len(names) * counts[index].astype(np.float64))


def fit_prosody_view(reader: VoiceReader, train: list[Utterance], valid: list[Utterance],
                     cache: dict[str, Versions], prosody: dict[str, np.ndarray], weight: float = 0.5,
                     report: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
                     features: str = "statistics", speaker_balance: bool = False) -> dict[float, float]:
    """Fit the reader's :class:`ProsodyHead` on ``train`` (clean and degraded rows, every corpus weighing the same,
    or every speaker with ``speaker_balance``, as the network was trained;
    the relative models on rows minus the speaker's neutral mean) and mix it in at ``weight``. ``prosody`` holds
    the rows of the feature set ``features`` (:func:`prosody_cache` with the same name).

    The weight is fixed, not chosen on ``valid``: validation speakers come from the training corpora, and there the
    prosody view looked better than it does on a corpus neither view saw (leave-one-corpus-out), so choosing on
    them would tune for the wrong case. The valence UAR on ``valid`` at each ``report`` weight is returned (and
    kept in ``meta``) for the record."""
    labels = _labels(train)
    x = np.concatenate([prosody[u.key] for u in train])  # rows: clean, degraded, clean, degraded, ...
    w = np.repeat(sample_weights(train, speaker_balance), 2)
    neutral = speaker_baselines(train, cache, reader.frontend, prosody)
    has_base = np.repeat([u.speaker in neutral for u in train], 2)
    base = np.concatenate([np.stack([neutral[u.speaker].prosody] * 2) if u.speaker in neutral
                           else np.zeros((2, x.shape[1])) for u in train])
    absolute, relative = {}, {}
    for task, n in PROSODY_TASKS:
        y = np.repeat(labels[task], 2)
        absolute[task] = LinearHead.fit(x, y, w, n)
        if has_base.any():
            relative[task] = LinearHead.fit((x - base)[has_base], y[has_base], w[has_base], n)
    reader.prosody = ProsodyHead(absolute, relative or None, features)
    reader.prosody_weight = weight
    if not valid:
        return {}
    net = reader.probabilities([cache[u.key][0][1].astype(np.float32) for u in valid])
    pros = reader.prosody.proba(np.stack([prosody[u.key][0] for u in valid]))
    y = _labels(valid)["valence"]
    scores = {}
    for w in report:
        mixed = {task: (1 - w) * net[task] + w * pros[task] for task in pros}
        scores[w] = unweighted_average_recall(y, mixed["valence"].argmax(1), 3)
    reader.meta["prosody_weight_valid_uar"] = {str(k): v for k, v in scores.items()}
    return scores


def evaluate_mels(reader: VoiceReader, mels: list[np.ndarray], utts: list[Utterance],
                  baselines: dict[str, SpeakerBaseline] | None = None,
                  prosody_rows: np.ndarray | None = None) -> dict[str, object]:
    """Valence / emotion / arousal UAR and valence accuracy of ``reader`` on log-mels of ``utts`` (and, when the
    reader has a prosody view, their ``prosody_rows``); with ``baselines`` each utterance is normalised by its
    speaker's baseline. Also the valence UAR of each view alone."""
    bases = [baselines.get(u.speaker) for u in utts] if baselines else [None] * len(utts)
    net = reader.probabilities([m.astype(np.float32) for m in mels], [b.norm if b else None for b in bases])
    y = _labels(utts)
    out: dict[str, object] = {"valence_uar_network": unweighted_average_recall(y["valence"],
                                                                             net["valence"].argmax(1), 3)}
    probs = net
    if reader.prosody is not None and prosody_rows is not None:
        pros = {task: np.concatenate([reader.prosody.proba(row[None], b.prosody if b else None)[task]
                                      for row, b in zip(prosody_rows, bases)]) for task, _ in PROSODY_TASKS}
        out["valence_uar_prosody"] = unweighted_average_recall(y["valence"], pros["valence"].argmax(1), 3)
        probs = reader.combine(net, pros)
    pred_v = probs["valence"].argmax(1)
    emo = y["emotion"] >= 0
    aro = y["arousal"] >= 0
    confusion = np.zeros((3, 3), int)
    np.add.at(confusion, (y["valence"], pred_v), 1)
    from_emotions = valence_from_emotions(VOICE_EMOTIONS, probs["emotion"]).argmax(1)
    return {"n": len(utts), "valence_uar": unweighted_average_recall(y["valence"], pred_v, 3),
            "valence_uar_from_emotions": unweighted_average_recall(y["valence"], from_emotions, 3),
            "valence_accuracy": float(np.mean(pred_v == y["valence"])),
            "emotion_uar": unweighted_average_recall(y["emotion"][emo], probs["emotion"][emo].argmax(1),
                                                     len(VOICE_EMOTIONS)),
            "arousal_uar": unweighted_average_recall(y["arousal"][aro], probs["arousal"][aro].argmax(1), 2),
            "valence_confusion": confusion.tolist(), **out}
