"""Training and evaluation material for the clip model, built from ../shared/data (never shipped).

- Faces: FER2013 images (``fer2013.npz``). A "video" of a face is one image repeated at FACE_FPS (5) frames per
  second with a fresh small random warp, brightness change and noise in every frame (:func:`face_frames`), then the
  expression network's logits per frame. FER2013 has no identities; its Training split gives the training faces and its
  PublicTest split is cut in two fixed halves (even / odd position): half A for validation, half B held apart.
- Voices: RAVDESS speech (``ravdess/audio/Actor_XX``), valence by the shared README's mapping. Actors are split
  into training (1-14), validation (15-17) and held apart (18-20); no actor is in two parts.
- Voices are also used once more as :func:`degrade`-d copies (other microphones, rooms and noise), so the model
  and its atypical-input gate know more than RAVDESS's studio sound.
- Pairs: a voice window with a face of the same valence (normal) or of another valence (abnormal, the positive
  class), half and half. Faces and voices always come from different people. With ``match="emotion"`` a normal
  face shows the voice's own emotion (not just its valence). Every pair also carries both sides' emotion in the
  7-emotion space the two corpora share (:data:`CLIP_EMOTIONS`, FER2013's; RAVDESS calm counts as neutral), for
  training on emotions (``TrainConfig.training_labels = "emotions"``); anomalies stay defined on valence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.expression import FER_CLASSES, FER_TO_VALENCE, ExpressionModel, augment_batch
from crossemo_core.data.container import PairDataset
from crossemo_core.data.labels import ravdess_emotion_to_3class
from crossemo_core.errors import DataError
from crossemo_core.features.voice import VoiceFeatureExtractor, load_audio
from crossemo_core.readers.augment import codec_round_trip

ACTORS = {"train": tuple(range(1, 15)), "valid": (15, 16, 17), "heldout": (18, 19, 20)}
DUPLICATE_TAKES = ("03-01-03-01-02-02-07",)  # byte-identical to 03-01-03-01-02-01-07 (shared README 1.1)
_NAME = re.compile(r"^03-01-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
VIDEO_AUGMENT = dict(max_rotate_deg=6.0, max_shift=0.04, scale=(0.95, 1.05), flip=False, jitter=0.12, noise=0.02)
"""Frame-to-frame variation of a synthetic face video (milder than the expression network's training warp)."""
CLIP_EMOTIONS = FER_CLASSES
"""The emotion space faces and voices share: FER2013's 7 classes, in FER label order."""
RAVDESS_TO_CLIP_EMOTION = {1: 6, 2: 6, 3: 3, 4: 4, 5: 0, 6: 2, 7: 1, 8: 5}
"""RAVDESS emotion code (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised) ->
index in :data:`CLIP_EMOTIONS` (calm -> neutral). Valence is kept: ``FER_TO_VALENCE`` of the result equals
``ravdess_emotion_to_3class`` of the code."""
MATCHES = ("valence", "emotion")


def clip_emotion(ravdess_code: int) -> int:
    """Index in :data:`CLIP_EMOTIONS` of a RAVDESS emotion code (1..8)."""
    if ravdess_code not in RAVDESS_TO_CLIP_EMOTION:
        raise DataError(f"unknown RAVDESS emotion code {ravdess_code}; expected 1..8.")
    return RAVDESS_TO_CLIP_EMOTION[ravdess_code]


def _check_match(match: str) -> None:
    if match not in MATCHES:
        raise DataError(f"match must be one of {MATCHES}, not {match!r}.")


@dataclass
class VoiceClip:
    clip_id: str
    actor: int
    emotion: int
    valence: int
    track: seq.VoiceTrack

    @property
    def clip_emotion(self) -> int:
        """The voice's emotion as an index in :data:`CLIP_EMOTIONS`."""
        return clip_emotion(self.emotion)


@dataclass
class FacePool:
    """FER2013 images of one part, with their valence and emotion (FER label = index in :data:`CLIP_EMOTIONS`)."""

    images: np.ndarray  # (N, 48, 48) uint8
    valence: np.ndarray  # (N,)
    index: np.ndarray  # (N,) row in fer2013.npz
    emotion: np.ndarray | None = None  # (N,) FER label; None: derived pools without emotions

    def sample(self, valence: int, rng: np.random.Generator) -> int:
        """A random row of the given valence."""
        return int(rng.choice(np.flatnonzero(self.valence == valence)))

    def sample_emotion(self, emotion: int, rng: np.random.Generator) -> int:
        """A random row showing ``emotion`` (index in :data:`CLIP_EMOTIONS`)."""
        if self.emotion is None:
            raise DataError("this face pool has no emotion labels; build it with fer_pools().")
        rows = np.flatnonzero(self.emotion == emotion)
        if len(rows) == 0:
            raise DataError(f"the face pool has no {CLIP_EMOTIONS[emotion]} face.")
        return int(rng.choice(rows))


def fer_pools(path: str | Path) -> dict[str, FacePool]:
    """FER2013 Training -> ``train``; PublicTest even positions -> ``valid``; odd positions -> ``heldout``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"FER2013 not found at {path}.")
    d = np.load(path)
    images, labels, usage = d["images"], d["labels"].astype(np.int64), d["usage"].astype(str)
    public = np.flatnonzero(usage == "PublicTest")
    parts = {"train": np.flatnonzero(usage == "Training"), "valid": public[0::2], "heldout": public[1::2]}
    return {k: FacePool(images[v], FER_TO_VALENCE[labels[v]], v, labels[v]) for k, v in parts.items()}


def degrade(signal: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible other recording of the same speech: a random band limit (high-pass 60-300 Hz, low-pass
    3.4-8 kHz, 2nd-order Butterworth), white or pink noise at 15-40 dB SNR, and a random gain of -20..+6 dB."""
    from scipy.signal import butter, sosfilt

    x = np.asarray(signal, dtype=np.float64)
    lo, hi = rng.uniform(60, 300), min(rng.uniform(3400, 8000), 0.45 * sr)
    x = sosfilt(butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos"), x)
    noise = rng.standard_normal(len(x))
    if rng.random() < 0.5:  # pink: 1/f power
        spec = np.fft.rfft(noise)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
        noise = np.fft.irfft(spec, n=len(x))
    frame = max(1, int(0.025 * sr))
    n = len(x) // frame
    speech = np.percentile(np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)), 90) if n else x.std()
    snr = rng.uniform(15, 40)
    x = x + noise / max(noise.std(), 1e-12) * speech * 10 ** (-snr / 20)
    x *= 10 ** (rng.uniform(-20, 6) / 20)
    return np.clip(x, -1, 1).astype(np.float32)


def ravdess_clips(root: str | Path, actors: tuple[int, ...], extractor: VoiceFeatureExtractor | None = None,
                  progress: Callable[[int, int], None] | None = None, degraded: bool = False,
                  seed: int = 0, aac_bit_rates: tuple[int, ...] = ()) -> list[VoiceClip]:
    """Voice tracks (loudness-normalised features + VAD) of the RAVDESS speech clips of ``actors``
    (``degraded``: of a :func:`degrade`-d copy of each clip instead, ids suffixed ``+deg``). With ``aac_bit_rates``
    each signal then goes through an AAC round trip at one of those bit rates (bit/s, drawn per clip), as the audio
    of an MP4 file does: the same clips, ids and lengths, coded (the voice twins of :func:`voice_twins`)."""
    audio = Path(root) / "audio"
    files = sorted(p for a in actors for p in (audio / f"Actor_{a:02d}").glob("03-01-*.*")
                   if p.suffix in (".flac", ".wav") and p.stem not in DUPLICATE_TAKES)
    if not files:
        raise DataError(f"no RAVDESS audio for actors {actors} under {audio}.")
    extractor = extractor or VoiceFeatureExtractor()
    out = []
    for i, p in enumerate(files):
        m = _NAME.match(p.stem)
        if m is None:
            continue
        emotion, actor = int(m.group(1)), int(m.group(5))
        signal, sr = load_audio(p)
        if degraded:
            signal = degrade(signal, sr, np.random.default_rng([seed, i]))
        if aac_bit_rates:
            if sr != seq.AUDIO_RATE:
                raise DataError(f"{p}: an AAC twin needs {seq.AUDIO_RATE} Hz audio, this file is at {sr} Hz.")
            signal = codec_round_trip(signal, "m4a", int(np.random.default_rng([seed, i, 1]).choice(aac_bit_rates)))
        out.append(VoiceClip(p.stem + ("+deg" if degraded else ""), actor, emotion,
                             int(ravdess_emotion_to_3class(np.array([emotion]))[0]),
                             seq.voice_track(signal, sr, extractor)))
        if progress:
            progress(i + 1, len(files))
    return out


def voice_twins(pairs: PairDataset, twins: list[VoiceClip]) -> list[np.ndarray]:
    """The twin of every voice window of ``pairs`` (built by :func:`window_pairs`, ids ``CLIP@START``): the same
    window of the twin clip with the same id, or the window itself where the twin clip has no speech there."""
    windows = {f"{c.clip_id}@{start:.1f}": (c.track, start, end)  # the ids window_pairs gives
               for c in twins for start, end in seq.window_starts(c.track.duration_s)}
    out = []
    for voice, pair_id in zip(pairs.voice, pairs.clip_id):
        window = seq.voice_window(*windows[pair_id]) if pair_id in windows else None
        out.append(voice if window is None else window)
    return out


def face_frames(image: np.ndarray, n: int, gen: torch.Generator, flip: bool) -> torch.Tensor:
    """``(n, 48, 48)`` float frames of one face with frame-to-frame variation (see :data:`VIDEO_AUGMENT`)."""
    x = torch.from_numpy(np.ascontiguousarray(image[:, ::-1] if flip else image)).float()
    return augment_batch(x[None].expand(n, -1, -1), gen, **VIDEO_AUGMENT)


def face_logit_sequences(model: ExpressionModel, pool: FacePool, picks: list[tuple[int, int]], seed: int,
                         batch_frames: int = 4096) -> list[np.ndarray]:
    """Logit sequences ``(n_i, 7)`` for ``picks`` = [(pool row, n frames)], computed in large batches."""
    gen = torch.Generator().manual_seed(seed)
    frames, bounds = [], [0]
    out: list[np.ndarray] = []
    pending = 0

    def flush() -> None:
        nonlocal frames, bounds, pending
        if not frames:
            return
        logits = model.logits(torch.cat(frames).numpy())
        out.extend(logits[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
        frames, bounds, pending = [], [0], 0

    for row, n in picks:
        frames.append(face_frames(pool.images[row], n, gen, flip=bool(torch.rand(1, generator=gen) < 0.5)))
        pending += n
        bounds.append(pending)
        if pending >= batch_frames:
            flush()
    flush()
    return out


def _face_row(c: VoiceClip, face_valence: int, pool: FacePool, rng: np.random.Generator, match: str) -> int:
    """A face for voice clip ``c``: of ``face_valence``; a normal face shows the voice's emotion with
    ``match="emotion"``."""
    if match == "emotion" and face_valence == c.valence:
        return pool.sample_emotion(c.clip_emotion, rng)
    return pool.sample(face_valence, rng)


def window_pairs(clips: list[VoiceClip], pool: FacePool, model: ExpressionModel, face_extractor: str,
                 repeats: int, seed: int, name: str, frame_keep: tuple[float, float] = (0.6, 1.0),
                 match: str = "valence") -> PairDataset:
    """Window-level pairs: every speech window of every clip, ``repeats`` times, each with a face of the same
    valence (probability 1/2; with ``match="emotion"`` a face of the voice's own emotion) or of another valence;
    faces miss a random share of frames (``frame_keep``). ``face_emotion`` / ``voice_emotion`` hold both sides'
    emotions in :data:`CLIP_EMOTIONS` when the pool has them. ``match="valence"`` draws exactly the pairs it drew
    before emotions were added (same seed, same pairs)."""
    _check_match(match)
    rng = np.random.default_rng(seed)
    voices, face_val, voice_val, speakers, ids, picks, voice_emo = [], [], [], [], [], [], []
    per_window = int(round(seq.WINDOW_S * seq.FACE_FPS))
    for c in clips:
        for start, end in seq.window_starts(c.track.duration_s):
            v = seq.voice_window(c.track, start, end)
            if v is None:
                continue
            for _ in range(repeats):
                fv = c.valence if rng.random() < 0.5 else int(rng.choice([k for k in range(3) if k != c.valence]))
                n = max(3, int(round(per_window * rng.uniform(*frame_keep))))
                voices.append(v)
                face_val.append(fv)
                voice_val.append(c.valence)
                speakers.append(f"actor_{c.actor:02d}")
                ids.append(f"{c.clip_id}@{start:.1f}")
                picks.append((_face_row(c, fv, pool, rng, match), n))
                voice_emo.append(c.clip_emotion)
    faces = face_logit_sequences(model, pool, picks, seed)
    emotions = {}
    if pool.emotion is not None:
        emotions = {"face_emotion": pool.emotion[[r for r, _ in picks]].astype(np.int64),
                    "voice_emotion": np.array(voice_emo, dtype=np.int64), "emotion_names": CLIP_EMOTIONS}
    return PairDataset(face=faces, voice=voices, face_label=np.array(face_val), voice_label=np.array(voice_val),
                       speaker=np.array(speakers), clip_id=np.array(ids), face_feature_names=seq.FACE_FEATURE_NAMES,
                       voice_feature_names=VoiceFeatureExtractor().feature_names, name=name,
                       extractor={"face": face_extractor, "voice": seq.VOICE_EXTRACTOR}, **emotions)


@dataclass
class ClipPairing:
    """One clip-level test item: a voice clip and a FER face (pool row), normal or abnormal."""

    clip: VoiceClip
    face_row: int
    face_valence: int

    @property
    def abnormal(self) -> bool:
        return self.face_valence != self.clip.valence


def clip_pairings(clips: list[VoiceClip], pool: FacePool, seed: int, match: str = "valence") -> list[ClipPairing]:
    """Two pairings per voice clip: one with a face of the same valence (``match="emotion"``: of the voice's own
    emotion), one with a face of another valence."""
    _check_match(match)
    rng = np.random.default_rng(seed)
    out = []
    for c in clips:
        other = int(rng.choice([k for k in range(3) if k != c.valence]))
        for fv in (c.valence, other):
            out.append(ClipPairing(c, _face_row(c, fv, pool, rng, match), fv))
    return out
