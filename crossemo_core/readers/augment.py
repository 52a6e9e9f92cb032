"""Recording-condition augmentation for the voice reader: who speaks and how it was recorded.

Each augmentation is one named, randomised transform of a mono float32 signal at 16 kHz, built on maintained
libraries: audiomentations (tempo, pitch, coloured noise, telephone band, gain), pyroomacoustics (simulated rooms,
whose impulse responses are drawn once per :class:`Augmenter` and convolved with scipy) and PyAV (lossy codec round
trips through AAC, MP3 and Opus, with ffmpeg's own encoders). :meth:`Augmenter.apply` runs a list of them in a fixed
order; :meth:`Augmenter.versions` gives the copies of one utterance that training uses: one per augmentation and a
few random chains, each tagged with what was applied (so an ablation can leave one augmentation out).
"""
from __future__ import annotations

import argparse
import io
from dataclasses import dataclass

import numpy as np

RATE = 16000
AUGMENTATIONS = ("speed", "pitch", "noise", "reverb", "telephone", "codec", "gain")
"""Augmentation names, in the order a chain applies them."""


def add_augmentations_argument(parser: argparse.ArgumentParser) -> None:
    """``--augmentations A ...`` for a command that trains voice readers: the augmented copies to train on
    (default: all of :data:`AUGMENTATIONS`)."""
    parser.add_argument("--augmentations", nargs="*", default=list(AUGMENTATIONS), choices=AUGMENTATIONS,
                        metavar="AUGMENTATION",
                        help="augmented copies to train on (default: all; a copy whose chain holds another one is "
                             "not used; the option alone: clean recordings only; known: "
                             f"{', '.join(AUGMENTATIONS)})")


CODECS = (("m4a", 24_000), ("mp3", 32_000), ("ogg", 16_000))
"""(file format of :func:`crossemo_core.clip.synth.encode_audio`: AAC, MP3, Opus; bit rate): low bit rates, as in
calls and compressed uploads."""


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of each augmentation (units in the names) and how many random chains :meth:`Augmenter.versions`
    adds per utterance."""

    tempo: tuple[float, float] = (0.85, 1.15)
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    snr_db: tuple[float, float] = (5.0, 30.0)
    rt60_s: tuple[float, float] = (0.15, 0.8)
    n_rooms: int = 24
    telephone_hz: tuple[float, float] = (300.0, 3400.0)
    gain_db: tuple[float, float] = (-12.0, 12.0)
    n_chains: int = 2
    chain_length: tuple[int, int] = (2, 4)


def _rooms(cfg: AugmentConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Impulse responses of ``cfg.n_rooms`` simulated shoebox rooms (pyroomacoustics, image source method)."""
    import pyroomacoustics as pra

    out = []
    while len(out) < cfg.n_rooms:
        dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 3.5])
        rt60 = rng.uniform(*cfg.rt60_s)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # a room too large for that reverberation time
            continue
        room = pra.ShoeBox(dims, fs=RATE, materials=pra.Material(absorption), max_order=min(max_order, 12))
        src = rng.uniform(0.5, dims - 0.5)
        mic = rng.uniform(0.5, dims - 0.5)
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float32)
        out.append(rir / (np.abs(rir).max() + 1e-9))
    return out


def codec_round_trip(signal: np.ndarray, fmt: str, bit_rate: int) -> np.ndarray:
    """Encode ``signal`` (16 kHz mono float32) as ``fmt`` ("m4a" AAC, "mp3", "ogg" Opus) at ``bit_rate`` bit/s with
    PyAV's ffmpeg and decode it back to 16 kHz mono, aligned and of the same length."""
    import av

    from crossemo_core.clip.synth import encode_audio

    chunks = []
    with av.open(io.BytesIO(encode_audio(signal, RATE, fmt, bit_rate)), mode="r") as inp:
        back = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in inp.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in back.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in back.resample(None)]
    decoded = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    # encoders add priming samples at the start; align by cross-correlation over the first 100 ms of lag
    lag = _best_lag(signal, decoded, max_lag=RATE // 10)
    decoded = decoded[lag:lag + len(signal)]
    return np.pad(decoded, (0, len(signal) - len(decoded))).astype(np.float32)


def _best_lag(reference: np.ndarray, delayed: np.ndarray, max_lag: int) -> int:
    n = min(len(reference), len(delayed) - max_lag, RATE)
    if n <= 0:
        return 0
    scores = [float(np.dot(reference[:n], delayed[k:k + n])) for k in range(0, max_lag, 8)]
    return int(np.argmax(scores)) * 8


class Augmenter:
    """Applies named augmentations (:data:`AUGMENTATIONS`) with a random generator of its own."""

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0) -> None:
        import audiomentations as am

        self.config = cfg = config or AugmentConfig()
        self.rng = np.random.default_rng(seed)
        self.room_irs = _rooms(cfg, np.random.default_rng(seed + 1))
        self._tempo = am.TimeStretch(min_rate=cfg.tempo[0], max_rate=cfg.tempo[1], leave_length_unchanged=False, p=1.0)
        self._pitch = am.PitchShift(min_semitones=cfg.pitch_semitones[0], max_semitones=cfg.pitch_semitones[1], p=1.0)
        self._noise = am.AddColorNoise(min_snr_db=cfg.snr_db[0], max_snr_db=cfg.snr_db[1], p=1.0)
        self._telephone = am.Compose([
            am.HighPassFilter(min_cutoff_freq=cfg.telephone_hz[0] * 0.8, max_cutoff_freq=cfg.telephone_hz[0] * 1.2, p=1.0),
            am.LowPassFilter(min_cutoff_freq=cfg.telephone_hz[1] * 0.85, max_cutoff_freq=cfg.telephone_hz[1] * 1.1, p=1.0)])
        self._gain = am.Gain(min_gain_db=cfg.gain_db[0], max_gain_db=cfg.gain_db[1], p=1.0)

    def _seed_audiomentations(self) -> None:
        # audiomentations draws from numpy's and random's global generators; seed them from ours for reproducibility
        import random

        seed = int(self.rng.integers(2**31))
        np.random.seed(seed)
        random.seed(seed)

    def one(self, name: str, signal: np.ndarray) -> np.ndarray:
        """``signal`` (float32, 16 kHz) with augmentation ``name`` applied at a random strength (what it draws from
        ``self.rng`` is mirrored by :meth:`_advance`)."""
        self._seed_audiomentations()
        if name == "speed":
            return self._tempo(signal, RATE)
        if name == "pitch":
            return self._pitch(signal, RATE)
        if name == "noise":
            return self._noise(signal, RATE)
        if name == "reverb":
            from scipy.signal import fftconvolve

            ir = self.room_irs[int(self.rng.integers(len(self.room_irs)))]
            wet = fftconvolve(signal, ir)[:len(signal)].astype(np.float32)
            return wet * (np.abs(signal).max() / (np.abs(wet).max() + 1e-9))
        if name == "telephone":
            return self._telephone(signal, RATE)
        if name == "codec":
            return codec_round_trip(signal, *CODECS[int(self.rng.integers(len(CODECS)))])
        if name == "gain":
            return np.clip(self._gain(signal, RATE), -1, 1)
        raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")

    def apply(self, names: tuple[str, ...], signal: np.ndarray) -> np.ndarray:
        """Apply ``names`` in :data:`AUGMENTATIONS` order."""
        for name in AUGMENTATIONS:
            if name in names:
                signal = self.one(name, signal)
        return signal.astype(np.float32)

    def versions(self, signal: np.ndarray) -> list[tuple[tuple[str, ...], np.ndarray]]:
        """The training copies of one utterance: ``((), clean)``, one ``((name,), ...)`` per augmentation, then
        ``config.n_chains`` random chains of 2-4 augmentations."""
        out: list[tuple[tuple[str, ...], np.ndarray]] = [((), signal)]
        out += [((name,), self.apply((name,), signal)) for name in AUGMENTATIONS]
        for _ in range(self.config.n_chains):
            chain = self._random_chain()
            out.append((chain, self.apply(chain, signal)))
        return out

    def first_chain(self, signal: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        """The first random chain :meth:`versions` would make from the generator's current state (the utterance's
        degraded copy), without computing the single-augmentation copies before it: the generator is advanced
        exactly as they advance it."""
        for name in AUGMENTATIONS:
            self._advance(name)
        chain = self._random_chain()
        return chain, self.apply(chain, signal)

    def _random_chain(self) -> tuple[str, ...]:
        lo, hi = self.config.chain_length
        k = int(self.rng.integers(lo, hi + 1))
        return tuple(AUGMENTATIONS[i] for i in sorted(self.rng.choice(len(AUGMENTATIONS), size=k, replace=False)))

    def _advance(self, name: str) -> None:
        """Draw from the generator what :meth:`one` draws for ``name`` (keep the two in step)."""
        self.rng.integers(2**31)
        if name == "reverb":
            self.rng.integers(len(self.room_irs))
        elif name == "codec":
            self.rng.integers(len(CODECS))
