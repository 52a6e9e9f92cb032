"""CMU-MOSI/MOSEI/SIMS in the MMSA pickle format (``aligned_50.pkl`` / ``unaligned_50.pkl``).

The pickle is ``{"train": S, "valid": S, "test": S}`` where each split ``S`` is a dict with ``vision`` float
``[N, L_v, dv]``, ``audio`` float ``[N, L_a, da]``, ``id`` ``[N]`` strings ``"videoid$_$clip"``,
``regression_labels`` ``[N]`` sentiment in [-3, 3] (or [-1, 1] for SIMS) and optionally ``vision_lengths`` /
``audio_lengths`` ``[N]`` ints (the valid prefix of each padded sequence). Other keys (text, BERT ids, ...) are
ignored. Face = vision, voice = audio, speaker = video id (text before ``$_$``), clip id = the ``id`` as stored.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from crossemo_core.data.container import PairDataset, concatenate
from crossemo_core.data.loaders.misa import (
    EmptyPolicy,
    PathLike,
    assemble,
    check_band,
    default_name,
    feature_names,
    logger,
    source_name,
)
from crossemo_core.data.safe_pickle import DEFAULT_MAX_BYTES, load_pickle
from crossemo_core.data.sanitize import NonFinitePolicy
from crossemo_core.errors import DataError

SPLITS = ("train", "valid", "test")
REQUIRED_FIELDS = ("vision", "audio", "id", "regression_labels")


def load_mmsa_splits(path: PathLike, *, name: str | None = None, nonfinite: NonFinitePolicy = "repair",
                     neutral_band: Sequence[float] = (0.0, 0.0), empty: EmptyPolicy = "drop",
                     report: list[str] | None = None,
                     max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, PairDataset]:
    """The official ``train`` / ``valid`` / ``test`` folds of an MMSA pickle, each as a :class:`PairDataset`.

    Dataset names are ``"<name> <split>"``; report lines are prefixed with the split (``"valid: voice: ..."``).
    """
    return _load(path, SPLITS, name, nonfinite, neutral_band, empty, report, max_bytes)


def load_mmsa(path: PathLike, *, split: str | None = None, name: str | None = None,
              nonfinite: NonFinitePolicy = "repair", neutral_band: Sequence[float] = (0.0, 0.0),
              empty: EmptyPolicy = "drop", report: list[str] | None = None,
              max_bytes: int = DEFAULT_MAX_BYTES) -> PairDataset:
    """One official split of an MMSA pickle, or (``split=None``) train + valid + test concatenated in that order.

    Use :func:`load_mmsa_splits` to keep the official folds apart.
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown MMSA split {split!r}; choose one of {', '.join(SPLITS)} (or None for all).")
    splits = SPLITS if split is None else (split,)
    parts = _load(path, splits, name, nonfinite, neutral_band, empty, report, max_bytes)
    for part_name, part in parts.items():
        part.official_split = np.full(len(part), part_name)
    if split is not None:
        return parts[split]
    return concatenate([parts[s] for s in SPLITS], name=_base_name(path, name))


def _base_name(path: PathLike, name: str | None) -> str:
    return name or default_name(path)


def _load(path: PathLike, splits: Sequence[str], name: str | None, nonfinite: NonFinitePolicy,
          neutral_band: Sequence[float], empty: EmptyPolicy, report: list[str] | None,
          max_bytes: int) -> dict[str, PairDataset]:
    src = source_name(path)
    check_band(neutral_band)
    base = _base_name(path, name)
    data = load_pickle(path, max_bytes=max_bytes)
    if not isinstance(data, dict):
        raise DataError(f"{src}: expected a dict with keys {', '.join(SPLITS)} (MMSA format), "
                        f"found {type(data).__name__}.")
    missing = [s for s in splits if s not in data]
    if missing:
        raise DataError(f"{src}: missing split key(s) {', '.join(map(repr, missing))}; found keys "
                        f"{sorted(map(str, data))}.")
    out: dict[str, PairDataset] = {}
    for split in splits:
        lines: list[str] = []
        out[split] = _load_split(data[split], f"{src} [{split}]", f"{base} {split}", nonfinite, neutral_band,
                                 empty, lines)
        if report is not None:
            report.extend(f"{split}: {line}" for line in lines)
    return out


def _load_split(d: Any, src: str, name: str, nonfinite: NonFinitePolicy, neutral_band: Sequence[float],
                empty: EmptyPolicy, report: list[str]) -> PairDataset:
    if not isinstance(d, dict):
        raise DataError(f"{src}: expected a dict of arrays, found {type(d).__name__}.")
    missing = [k for k in REQUIRED_FIELDS if k not in d]
    if missing:
        raise DataError(f"{src}: missing key(s) {', '.join(map(repr, missing))}; found {sorted(map(str, d))}.")
    arrays = {}
    for key in ("vision", "audio"):
        arr = np.asarray(d[key])
        if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise DataError(f"{src}: '{key}' must be an array of real numbers [N, length, features]; found shape "
                            f"{arr.shape} dtype {arr.dtype}.")
        arrays[key] = arr
    ids = np.asarray(d["id"])
    if ids.ndim != 1:
        raise DataError(f"{src}: 'id' must be 1-D [N]; found shape {ids.shape}.")
    ids = ids.astype(str)
    try:
        labels = np.asarray(d["regression_labels"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{src}: 'regression_labels' is not numeric.") from None
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{src}: 'regression_labels' must be 1-D [N]; found shape {labels.shape}.")
    counts = {"vision": len(arrays["vision"]), "audio": len(arrays["audio"]), "id": len(ids),
              "regression_labels": len(labels)}
    if len(set(counts.values())) != 1:
        raise DataError(f"{src}: fields disagree on the number of samples N: {counts}.")
    n = counts["id"]
    if n == 0:
        raise DataError(f"{src}: the split holds no samples.")
    seqs: dict[str, list[np.ndarray]] = {}
    for key in ("vision", "audio"):
        arr = arrays[key]
        lengths = _lengths(d.get(f"{key}_lengths"), f"{key}_lengths", n, arr.shape[1], src)
        seqs[key] = [arr[i, :lengths[i]] for i in range(n)]
    speaker = [s.split("$_$", 1)[0] for s in ids]
    logger.debug("%s: %d samples, vision %s, audio %s", name, n, arrays["vision"].shape, arrays["audio"].shape)
    return assemble(seqs["vision"], seqs["audio"], labels, speaker, list(ids),
                    feature_names("vision", arrays["vision"].shape[2]),
                    feature_names("audio", arrays["audio"].shape[2]), name=name, source=src,
                    nonfinite=nonfinite, neutral_band=neutral_band, empty=empty, report=report,
                    extractor={"face": "MMSA vision", "voice": "MMSA audio"})


def _lengths(value: Any, key: str, n: int, max_len: int, src: str) -> np.ndarray:
    """Valid lengths ``[N]`` from ``value`` (None: every sequence uses the full padded length)."""
    if value is None:
        return np.full(n, max_len, dtype=np.int64)
    raw = np.asarray(value)
    if raw.ndim != 1 or len(raw) != n:
        raise DataError(f"{src}: '{key}' must be 1-D with N={n} entries; found shape {raw.shape}.")
    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(raw == np.round(raw))):
        raise DataError(f"{src}: '{key}' must hold whole numbers; found dtype {raw.dtype}.")
    lengths = raw.astype(np.int64)
    bad = np.flatnonzero((lengths < 0) | (lengths > max_len))
    if len(bad):
        raise DataError(f"{src}: '{key}' has {len(bad)} value(s) outside [0, {max_len}] (the padded length), "
                        f"first {int(lengths[bad[0]])} at sample {int(bad[0])}.")
    return lengths


__all__ = ["SPLITS", "load_mmsa", "load_mmsa_splits"]
