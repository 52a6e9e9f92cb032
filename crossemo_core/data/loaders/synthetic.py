"""A generated corpus with the schema of the real ones, for demos, tests and benchmarks.

Every clip has one affective class (negative / neutral / positive) and a sentiment score consistent with it;
its face sequence and its voice sequence are both generated from that class, so ``face_label == voice_label``
as in a real corpus before the abnormal-pair protocol is applied.

How a sequence is made, per modality (face and voice have separate, independent parameters):

* A low-dimensional latent trajectory ``z_t`` (``t = 0 .. L-1``, ``u = t / (L - 1)`` the clip's relative time)::

      z_t = strength * intensity * (mu_c + amp * v_c * cos(2*pi*cycles_c*u + phase) * exp(-decay_c * u))
            + clip_offset + ar_t

  ``mu_c`` is a class-specific mean offset, ``v_c`` a class-specific oscillation direction orthogonal to the
  means, ``cycles_c`` / ``decay_c`` a class-specific frequency and decay over the clip, ``phase`` random per
  clip, ``intensity`` grows with ``|sentiment|`` (1 for neutral), ``clip_offset`` a class-independent latent
  offset per clip and ``ar_t`` a class-independent, temporally correlated (AR(1)) latent nuisance.
* ``z_t`` is projected to the feature dimension through a fixed random mixing matrix, a per-speaker offset
  (standard deviation ``speaker_shift`` per feature) is added, then i.i.d. Gaussian noise (``noise``), and last
  a fixed per-feature scale and bias, so features are neither centred nor on one scale.

The class signal is weak in a single frame and becomes clear only when integrated over time; part of it (the
frequency and decay) is invisible to a temporal mean and needs a sequence model. The clip offset and the AR
nuisance share the class subspace and do not average out, so no model reaches 100 %.

The mixing matrices, class trajectories and feature scales (the "world") depend only on the feature dimensions,
not on ``seed``: datasets made with different seeds are independent draws (speakers, clips, noise) from the same
distribution, so one can train on one seed and evaluate on another. Same arguments, same arrays.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from crossemo_core.data.container import LABEL_SETS, PairDataset
from crossemo_core.errors import DataError

#: Benchmark preset: the size of CMU-MOSEI as used in the paper (16,326 pairs), fixed length 50, MOSEI dims.
#: 907 speakers x 18 clips = 16,326 pairs (~356 MB of float32). ``make_synthetic(**MOSEI_SIZE)`` takes about
#: 1.5 s of CPU; add ``seed=`` / ``name=`` as usual (the preset sets neither, so both stay free to pass).
MOSEI_SIZE: dict = dict(n_speakers=907, clips_per_speaker=18, face_dim=35, voice_dim=74,
                        face_length=(50, 50), voice_length=(50, 50))

#: Named difficulty levels; a number is the divisor of the class signal strength (higher = harder).
DIFFICULTY_LEVELS: dict[str, float] = {"easy": 0.6, "medium": 1.0, "hard": 1.6}

_LATENT = 6                 # latent subspace dimension
_WORLD_SEED = 20240917      # fixes the world (mixing matrices, class trajectories) independently of `seed`
_MEAN_SIZE = 0.16           # class mean-offset magnitude in the latent space (before mixing)
_OSC_SIZE = 0.35            # class oscillation amplitude in the latent space
_CLIP_OFFSET_SD = 0.055     # class-independent per-clip latent offset
_AR_SD = 0.08               # stationary sd of the AR(1) latent nuisance
_AR_RHO = 0.8               # its frame-to-frame correlation
_MODALITY_SALT = {"face": 1, "voice": 2}
_CHUNK = 1024               # clips generated per block


MAX_BYTES = 4e9
"""The largest corpus :func:`make_synthetic` makes (float32 features at the longest sequences): a spec asking for
more is refused instead of exhausting the memory."""


def make_synthetic(n_speakers: int = 20, clips_per_speaker: int = 30, face_dim: int = 35, voice_dim: int = 74,
                   face_length: tuple[int, int] = (8, 24), voice_length: tuple[int, int] = (20, 60),
                   class_weights: Sequence[float] = (0.4, 0.2, 0.4), noise: float = 1.0,
                   speaker_shift: float = 0.5, difficulty: float | str = "medium", seed: int = 0,
                   name: str = "demo (synthetic)") -> PairDataset:
    """Generate a synthetic face/voice corpus (``synthetic=True``, ``face_label == voice_label``).

    Args:
        n_speakers: number of speakers (at least 3, so speaker-disjoint train/val/test splits exist).
        clips_per_speaker: clips per speaker (at least 1).
        face_dim, voice_dim: feature dimensions; columns are named ``face_au_00 ..`` and ``voice_f_00 ..``.
        face_length, voice_length: inclusive ``(low, high)`` range of sequence lengths; each clip draws its face
            length and its voice length independently and uniformly from them.
        class_weights: relative frequency of negative, neutral, positive (positive numbers, normalised here).
        noise: standard deviation of the i.i.d. per-frame, per-feature Gaussian noise (>= 0).
        speaker_shift: standard deviation of the per-speaker, per-feature offset (>= 0); per-speaker
            normalisation removes it.
        difficulty: ``"easy"``, ``"medium"``, ``"hard"`` or a positive number dividing the class signal strength
            (1 = medium).
        seed: draws speakers, classes, sentiment, lengths and noise; same seed, identical arrays.
        name: dataset name; `` (synthetic)`` is appended when it does not say "synthetic".

    Returns:
        A :class:`PairDataset` with 3 classes, a sentiment score per clip (negative in [-3, -0.5], neutral 0,
        positive in [0.5, 3]) and speakers ``syn<seed>-spk<k>``.
    """
    n_speakers = _int_at_least("n_speakers", n_speakers, 3)
    clips_per_speaker = _int_at_least("clips_per_speaker", clips_per_speaker, 1)
    face_dim = _int_at_least("face_dim", face_dim, 1)
    voice_dim = _int_at_least("voice_dim", voice_dim, 1)
    face_length = _length_range("face_length", face_length)
    voice_length = _length_range("voice_length", voice_length)
    weights = _class_weights(class_weights)
    noise = _non_negative("noise", noise)
    speaker_shift = _non_negative("speaker_shift", speaker_shift)
    strength = 1.0 / _difficulty(difficulty)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}.")
    size = 4 * n_speakers * clips_per_speaker * (face_length[1] * face_dim + voice_length[1] * voice_dim)
    if size > MAX_BYTES:
        raise ValueError(f"these sizes make up to {size / 1e9:.3g} GB of features; at most {MAX_BYTES / 1e9:g} GB "
                         f"are generated.")
    if "synthetic" not in name.lower():
        name = f"{name} (synthetic)"

    n = n_speakers * clips_per_speaker
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
    speaker_idx = np.repeat(np.arange(n_speakers), clips_per_speaker)
    label = rng.choice(3, size=n, p=weights).astype(np.int64)
    magnitude = rng.uniform(0.5, 3.0, size=n)
    sentiment = np.where(label == 0, -magnitude, np.where(label == 2, magnitude, 0.0))
    # Low-intensity clips carry a weaker signal (0.5 at |s| = 0.5 .. 1 at |s| = 3); neutral clips carry their own.
    intensity = np.where(label == 1, 1.0, 0.4 + 0.2 * np.abs(sentiment))

    face = _modality("face", face_dim, face_length, label, intensity, speaker_idx, n_speakers, noise,
                     speaker_shift, strength, rng)
    voice = _modality("voice", voice_dim, voice_length, label, intensity, speaker_idx, n_speakers, noise,
                      speaker_shift, strength, rng)

    width = max(3, len(str(n_speakers - 1)))
    speakers = np.array([f"syn{seed}-spk{k:0{width}d}" for k in range(n_speakers)])
    clip_width = max(2, len(str(clips_per_speaker - 1)))
    clip_id = np.array([f"{speakers[s]}-clip{j:0{clip_width}d}"
                        for s in range(n_speakers) for j in range(clips_per_speaker)])
    return PairDataset(
        face=face, voice=voice, face_label=label, voice_label=label.copy(), speaker=speakers[speaker_idx],
        clip_id=clip_id,
        face_feature_names=tuple(f"face_au_{j:02d}" for j in range(face_dim)),
        voice_feature_names=tuple(f"voice_f_{j:02d}" for j in range(voice_dim)),
        name=name, class_names=LABEL_SETS[3], sentiment=sentiment, synthetic=True,
        extractor={"face": "synthetic/1", "voice": "synthetic/1"},
    )


# ---------------------------------------------------------------------------------------------------- generation
def _world(modality: str, dim: int) -> dict[str, np.ndarray]:
    """The fixed, seed-independent structure of one modality for a given feature dimension."""
    w = np.random.default_rng(np.random.SeedSequence([_WORLD_SEED, _MODALITY_SALT[modality], dim]))
    basis, _ = np.linalg.qr(w.standard_normal((_LATENT, _LATENT)))
    q = basis.T  # rows: orthonormal latent directions
    # Class means: a triangle in the plane (q0, q1) -- negative and positive opposite along q0, neutral off-axis.
    means = np.stack([-q[0] + 0.35 * q[1], -0.9 * q[1], q[0] + 0.35 * q[1]]) * _MEAN_SIZE
    # Oscillation directions in the orthogonal complement (q2..q5): invisible to the mean offset.
    osc_dirs = np.stack([q[2], (q[3] + q[4]) / np.sqrt(2), (q[4] - q[5] + q[2]) / np.sqrt(3)]) * _OSC_SIZE
    cycles = w.permutation(np.array([1.0, 2.0, 3.0])) * w.uniform(0.85, 1.15, size=3)
    decay = w.permutation(np.array([0.0, 1.2, 2.8]))
    mixing = w.standard_normal((_LATENT, dim))
    feature_scale = np.exp(0.3 * w.standard_normal(dim))
    feature_bias = w.standard_normal(dim)
    return dict(means=means, osc_dirs=osc_dirs, cycles=cycles, decay=decay, mixing=mixing,
                feature_scale=feature_scale, feature_bias=feature_bias)


def _modality(modality: str, dim: int, length_range: tuple[int, int], label: np.ndarray, intensity: np.ndarray,
              speaker_idx: np.ndarray, n_speakers: int, noise: float, speaker_shift: float, strength: float,
              rng: np.random.Generator) -> list[np.ndarray]:
    """All sequences of one modality, generated as one padded block (vectorised over clips and frames)."""
    world = _world(modality, dim)
    n = len(label)
    lengths = rng.integers(length_range[0], length_range[1] + 1, size=n)
    t_max = int(lengths.max())
    t = np.arange(t_max, dtype=np.float64)
    u = t[None, :] / np.maximum(lengths - 1, 1)[:, None]                             # (n, T) relative time
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
    cycles = world["cycles"][label][:, None]
    decay = world["decay"][label][:, None]
    wave = np.cos(2.0 * np.pi * cycles * u + phase[:, None]) * np.exp(-decay * u)   # (n, T)
    scale = (strength * intensity)[:, None]
    latent = _ar1(rng, n, t_max)                                                       # (n, T, latent)
    latent += (scale * wave).astype(np.float32)[:, :, None] * world["osc_dirs"][label][:, None, :].astype(np.float32)
    clip_offset = scale * world["means"][label] + _CLIP_OFFSET_SD * rng.standard_normal((n, _LATENT))
    latent += clip_offset.astype(np.float32)[:, None, :]
    # The fixed per-feature scale and bias are folded into the mixing matrix, the noise and the speaker offsets.
    feature_scale = world["feature_scale"]
    mixing = (world["mixing"] * feature_scale).astype(np.float32)
    noise_scale = (noise * feature_scale).astype(np.float32)
    offsets = speaker_shift * rng.standard_normal((n_speakers, dim)) * feature_scale + world["feature_bias"]
    offsets = offsets.astype(np.float32)
    # Chunks of clips keep the temporaries small and in cache; the chunk size is fixed, so draws are deterministic.
    x = np.empty((n, t_max, dim), dtype=np.float32)
    buf = np.empty((min(n, _CHUNK), t_max, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        block, eps = x[start:stop], buf[:stop - start]
        np.matmul(latent[start:stop], mixing, out=block)
        if noise > 0:
            rng.standard_normal(dtype=np.float32, out=eps)
            eps *= noise_scale
            block += eps
        block += offsets[speaker_idx[start:stop]][:, None, :]
    if length_range[0] == length_range[1]:
        return list(x)  # fixed length: views of one block, no padding to cut
    return [np.ascontiguousarray(x[i, :lengths[i]]) for i in range(n)]


def _ar1(rng: np.random.Generator, n: int, t_max: int) -> np.ndarray:
    """``(n, t_max, _LATENT)`` float32 stationary AR(1) process with sd ``_AR_SD`` and correlation ``_AR_RHO``."""
    out = rng.standard_normal((t_max, n, _LATENT), dtype=np.float32)
    out[0] *= np.float32(_AR_SD)
    out[1:] *= np.float32(_AR_SD * np.sqrt(1.0 - _AR_RHO ** 2))
    carry = np.empty((n, _LATENT), dtype=np.float32)
    for k in range(1, t_max):
        np.multiply(out[k - 1], np.float32(_AR_RHO), out=carry)
        out[k] += carry
    return out.transpose(1, 0, 2)


# ---------------------------------------------------------------------------------------------------- validation
def _int_at_least(what: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be an integer, got {value!r}.")
    if value < low:
        raise ValueError(f"{what} must be at least {low}, got {value}.")
    return int(value)


def _length_range(what: str, value: object) -> tuple[int, int]:
    try:
        low, high = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (low, high) pair of lengths, got {value!r}.") from None
    low = _int_at_least(f"{what} low", low, 1)
    high = _int_at_least(f"{what} high", high, 1)
    if low > high:
        raise ValueError(f"{what} range ({low}, {high}) is empty: low must not exceed high.")
    return low, high


def _class_weights(value: object) -> np.ndarray:
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"class_weights must be 3 positive numbers (negative, neutral, positive), "
                        f"got {value!r}.") from None
    if w.shape != (3,):
        raise DataError(f"class_weights must be 3 positive numbers (negative, neutral, positive), got {value!r}.")
    if not np.isfinite(w).all() or (w <= 0).any():
        raise DataError(f"class_weights must all be positive and finite, got {w.tolist()}.")
    return w / w.sum()


def _non_negative(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}.")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}.")
    return float(value)


def _difficulty(value: object) -> float:
    if isinstance(value, str):
        if value not in DIFFICULTY_LEVELS:
            raise ValueError(f"difficulty must be one of {sorted(DIFFICULTY_LEVELS)} or a positive number, "
                             f"got {value!r}.")
        return DIFFICULTY_LEVELS[value]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTY_LEVELS)} or a positive number, "
                         f"got {value!r}.")
    return float(value)


__all__ = ["make_synthetic", "MOSEI_SIZE", "DIFFICULTY_LEVELS"]
