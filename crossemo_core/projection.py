"""2-D maps of face and voice embeddings (the paper's Fig. 8): t-SNE or UMAP, deterministic by seed.

Face and voice embeddings of the same pairs are projected *together*, so a map shows whether the two modalities
of one affective class meet (after training) or sit apart (the "modality gap" before training). Embeddings are
L2-normalised first: the model compares them by cosine similarity, and on unit vectors Euclidean distance is a
monotone function of cosine distance.

UMAP (``umap-learn``) is imported only when asked for: its numba code compiles on first use, which takes tens of
seconds; front ends should run :func:`project` in a background thread (see :mod:`crossemo_core.session`).
With ``random_state`` set UMAP runs single-threaded and is reproducible.

Neither t-SNE nor UMAP reports its own progress, so :func:`expected_seconds` estimates how long a projection of N
points takes: from the last projection with the same method in this process (scaled by N), or before any, from a
rough prior measured on a 2-core machine (plus the first UMAP run's import and compilation). Front ends show the
elapsed time against that estimate.
"""
from __future__ import annotations

import importlib.util
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from crossemo_core.data.container import PairDataset
from crossemo_core.errors import DataError

__all__ = ["METHODS", "METHOD_LABELS", "PAIR_KINDS", "umap_available", "project", "sample_pairs", "embedding_map",
           "expected_seconds"]

METHODS = ("tsne", "umap")
METHOD_LABELS = {"tsne": "t-SNE", "umap": "UMAP"}

#: ``pair_kind`` values: the pair's face and voice carry the same class, or different ones.
PAIR_KINDS = ("consistent", "inconsistent")

#: Rough seconds of a projection before any was measured in this process: fixed + per point (t-SNE and warm UMAP,
#: one thread, 2-core machine: t-SNE 800 points 2.3 s, 144 points 1.0 s; UMAP 800 points 1.7 s).
_PRIOR_SECONDS = {"tsne": (0.6, 0.0025), "umap": (0.3, 0.002)}
#: The first UMAP run in a process also imports umap and compiles its numba code (13 s measured on an idle 2-core
#: machine; more on a busy one).
UMAP_FIRST_RUN_S = 20.0
_measured: dict[str, tuple[int, float]] = {}  # method -> (points, seconds) of its last projection in this process
_umap_warm = False
_timing_lock = threading.Lock()

#: Legend texts of the pair colouring (Fig. 8: green = face; blue / pink = voice with the same / another class).
PAIR_STATUS = ("face", "voice, same class as its face", "voice, different class from its face")


def umap_available() -> bool:
    """True when ``umap-learn`` is installed (checked without importing it)."""
    return importlib.util.find_spec("umap") is not None


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def project(points: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
            n_neighbors: int = 15, threads: int | None = 1) -> np.ndarray:
    """``(N, D)`` points to ``(N, 2)`` coordinates with t-SNE or UMAP; same inputs and seed, same output.

    ``perplexity`` (t-SNE) and ``n_neighbors`` (UMAP) are reduced automatically for small N. ``threads`` caps the
    OpenMP/BLAS threads of the fit (None: no cap). The default, 1, is deliberate: these maps have a few hundred
    points, and on a busy 2-core machine two OpenMP threads spin-waiting for each other made a t-SNE of 205 points
    take 120 s instead of 7 s.
    """
    if method not in METHODS:
        raise DataError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}.")
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"points must be a 2-D array (points x dimensions); got shape {x.shape}.")
    n = x.shape[0]
    if n < 4:
        raise DataError(f"a 2-D map needs at least 4 points; got {n}.")
    if not np.isfinite(x).all():
        raise DataError("the embeddings contain NaN or inf values; the model may have diverged.")
    if threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(threads)):
            return project(x, method, seed, perplexity, n_neighbors, threads=None)
    if method == "tsne":
        from sklearn.manifold import TSNE

        started = time.perf_counter()
        tsne = TSNE(n_components=2, perplexity=float(min(perplexity, (n - 1) / 3.0)), init="pca",
                    learning_rate="auto", random_state=seed, method="barnes_hut" if n > 200 else "exact")
        coords = tsne.fit_transform(x).astype(np.float64)
        with _timing_lock:
            _measured["tsne"] = (n, time.perf_counter() - started)
        return coords
    if not umap_available():
        raise DataError("UMAP needs the umap-learn package (pip install umap-learn); t-SNE works without it.")
    global _umap_warm
    with _timing_lock:
        first = not _umap_warm
    started = time.perf_counter()
    coords = _umap(x, n, seed, n_neighbors)
    with _timing_lock:
        if not first:  # the first run's time is mostly import and compilation: not a rate for the next ones
            _measured["umap"] = (n, time.perf_counter() - started)
        _umap_warm = True
    return coords


def _umap(x: np.ndarray, n: int, seed: int, n_neighbors: int) -> np.ndarray:
    import warnings

    import umap  # noqa: PLC0415 - slow import (numba), on purpose only here

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state" and numba chatter
        reducer = umap.UMAP(n_components=2, n_neighbors=int(max(2, min(n_neighbors, n - 1))), min_dist=0.1,
                            random_state=seed, init="spectral" if n > 10 else "random")
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def expected_seconds(method: str, n_points: int) -> float:
    """About how many seconds :func:`project` takes for ``n_points`` points with ``method`` here and now: the last
    projection with that method in this process scaled linearly by the number of points, or a prior before any
    (for UMAP: plus :data:`UMAP_FIRST_RUN_S` until its first run has compiled)."""
    if method not in METHODS:
        raise DataError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}.")
    n = max(int(n_points), 1)
    with _timing_lock:
        last = _measured.get(method)
        cold = method == "umap" and not _umap_warm
    if last is not None and not cold:
        return max(last[1] * n / max(last[0], 1), 0.1)
    fixed, per_point = _PRIOR_SECONDS[method]
    return fixed + per_point * n + (UMAP_FIRST_RUN_S if cold else 0.0)


def sample_pairs(n: int, max_pairs: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_pairs`` of ``n`` pairs (all when ``max_pairs`` is None or >= n)."""
    if max_pairs is None or max_pairs >= n:
        return np.arange(n)
    if max_pairs < 2:
        raise DataError("max_pairs must be at least 2.")
    return np.sort(np.random.default_rng(seed).choice(n, size=max_pairs, replace=False))


def embedding_map(face: np.ndarray, voice: np.ndarray, data: PairDataset, method: str = "tsne", seed: int = 0,
                  max_pairs: int | None = 600, **options: Any) -> pd.DataFrame:
    """Project the face and voice embeddings of ``data``'s pairs jointly; one row per point.

    Args:
        face, voice: ``(N, E)`` embeddings of the N pairs of ``data`` (e.g. from ``Detector.embed``).
        data: the pairs (labels, ids).
        method: ``"tsne"`` or ``"umap"``.
        seed: drives the pair sample and the projection.
        max_pairs: project at most this many pairs (a seeded sample), for speed; None = all.
        options: passed to :func:`project` (``perplexity``, ``n_neighbors``).
    Returns:
        DataFrame with ``x``, ``y``, ``modality`` ("face"/"voice"), ``emotion`` (the class of that side),
        ``pair`` (index in ``data``), ``pair_kind`` ("consistent"/"inconsistent": whether the pair's face and voice
        carry the same class), ``status`` (one of
        :data:`PAIR_STATUS`), ``clip_id`` (the clip the point's signal comes from), ``speaker``.
    """
    face, voice = np.asarray(face), np.asarray(voice)
    if face.shape != voice.shape or face.ndim != 2 or face.shape[0] != len(data):
        raise DataError(f"face {face.shape} and voice {voice.shape} embeddings must both be (pairs, dims) with "
                        f"{len(data)} pairs.")
    idx = sample_pairs(len(data), max_pairs, seed)
    if len(idx) < 2:
        raise DataError(f"a map of face and voice points needs at least 2 pairs (4 points); got {len(idx)}.")
    coords = project(np.vstack([_unit_rows(face[idx]), _unit_rows(voice[idx])]), method=method, seed=seed,
                     **options)
    m = len(idx)
    abnormal = data.is_abnormal[idx]
    names = np.asarray(data.class_names)
    voice_status = np.where(abnormal, PAIR_STATUS[2], PAIR_STATUS[1])
    return pd.DataFrame({
        "x": coords[:, 0],
        "y": coords[:, 1],
        "modality": ["face"] * m + ["voice"] * m,
        "emotion": np.concatenate([names[data.face_label[idx]], names[data.voice_label[idx]]]),
        "pair": np.concatenate([idx, idx]),
        "pair_kind": np.tile(np.where(abnormal, PAIR_KINDS[1], PAIR_KINDS[0]), 2),
        "status": np.concatenate([np.full(m, PAIR_STATUS[0], dtype=object), voice_status]),
        "clip_id": np.concatenate([data.clip_id[idx], data.voice_clip_id[idx]]),
        "speaker": np.tile(data.speaker[idx], 2),
    })
