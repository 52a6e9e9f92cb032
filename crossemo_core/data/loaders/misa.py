"""CMU-MOSI/MOSEI in the MISA/MMIM pickle format (e.g. ``mosi/dev.pkl``).

The file is a pickle of a list of segments ``((word_ids[L], visual[L, dv], acoustic[L, da], words[L], ...),
label[[1, 1]], "videoid[k]")``. Face = visual (FACET), voice = acoustic (COVAREP); the sentiment score in
[-3, 3] gives the class by :func:`~crossemo_core.data.labels.sentiment_to_3class`.

This module also holds the helpers shared by the research-corpus loaders (``mmsa``, ``csd``): every loader takes a
``report`` list to which it appends one human-readable line per thing it repaired, dropped or skipped (nothing is
appended for clean data); the same lines are logged on the ``crossemo_core.data`` logger.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from crossemo_core.data.container import LABEL_SETS, PairDataset
from crossemo_core.data.labels import sentiment_to_3class
from crossemo_core.data.safe_pickle import DEFAULT_MAX_BYTES, load_pickle
from crossemo_core.data.sanitize import NonFinitePolicy, sanitize_sequences
from crossemo_core.errors import DataError
from crossemo_core.paths import NamedBytes

logger = logging.getLogger("crossemo_core.data")

EmptyPolicy = Literal["drop", "refuse"]
PathLike = str | os.PathLike[str] | NamedBytes
"""A file on disk, or an in-memory one (an upload: read without being written to disk)."""


def source_name(path: PathLike) -> str:
    """How messages name ``path``: the path, or an in-memory file's name."""
    return path.name if isinstance(path, NamedBytes) else str(path)


def default_name(path: PathLike) -> str:
    """A dataset's default name: ``folder/stem`` of a path, the stem of an in-memory file's name."""
    p = Path(path.name if isinstance(path, NamedBytes) else path)
    return f"{p.parent.name}/{p.stem}" if p.parent.name and not isinstance(path, NamedBytes) else p.stem


# ---------------------------------------------------------------------------------------------- shared helpers
def note(report: list[str] | None, name: str, line: str) -> None:
    """Append ``line`` to ``report`` (when given) and log it with the dataset name."""
    if report is not None:
        report.append(line)
    logger.info("%s: %s", name, line)


def feature_names(prefix: str, dim: int) -> tuple[str, ...]:
    """``prefix_00 .. prefix_{dim-1}``, zero-padded to at least two digits."""
    width = max(2, len(str(dim - 1)))
    return tuple(f"{prefix}_{i:0{width}d}" for i in range(dim))


def check_band(neutral_band: Sequence[float]) -> tuple[float, float]:
    band = tuple(float(x) for x in neutral_band)
    if len(band) != 2:
        raise DataError(f"neutral_band must be (low, high), not {neutral_band!r}.")
    return band  # type: ignore[return-value]


def assemble(face: list[np.ndarray], voice: list[np.ndarray], sentiment: Sequence[float],
             speaker: Sequence[str], clip_id: Sequence[str], face_names: Sequence[str],
             voice_names: Sequence[str], *, name: str, source: str, nonfinite: NonFinitePolicy,
             neutral_band: Sequence[float], empty: EmptyPolicy, report: list[str] | None,
             extractor: dict[str, str] | None = None) -> PairDataset:
    """Build a loaded corpus (face_label == voice_label) from per-segment 2-D arrays.

    ``face[i]`` is ``(L_face_i, d_face)`` and ``voice[i]`` is ``(L_voice_i, d_voice)``; segments where either length
    is 0 are dropped (counted in ``report``) or refused per ``empty``; NaN/inf go through
    :func:`~crossemo_core.data.sanitize.sanitize_sequences`.
    """
    if empty not in ("drop", "refuse"):
        raise ValueError(f"empty must be 'drop' or 'refuse', not {empty!r}")
    low, high = check_band(neutral_band)
    n_total = len(face)
    keep = [i for i in range(n_total) if face[i].shape[0] > 0 and voice[i].shape[0] > 0]
    if len(keep) < n_total:
        kept = set(keep)
        gone = [i for i in range(n_total) if i not in kept]
        what = (f"{len(gone)} of {n_total} segment(s) have an empty face or voice sequence "
                f"(first: {clip_id[gone[0]]})")
        if empty == "refuse":
            raise DataError(f"{source}: {what}. Pass empty='drop' to leave them out.")
        if not keep:
            raise DataError(f"{source}: all {n_total} segment(s) have an empty face or voice sequence; "
                            "nothing to load.")
        note(report, name, f"{what}; dropped")
    face, frep = sanitize_sequences([face[i] for i in keep], "face", nonfinite, source)
    voice, vrep = sanitize_sequences([voice[i] for i in keep], "voice", nonfinite, source)
    for rep in (frep, vrep):
        if rep.n_values:
            note(report, name, f"{rep} repaired")
    sent = np.asarray([sentiment[i] for i in keep], dtype=np.float64)
    bad = ~np.isfinite(sent)
    if bad.any():
        first = clip_id[keep[int(np.argmax(bad))]]
        raise DataError(f"{source}: {int(bad.sum())} sentiment label(s) are NaN or inf (first: {first}).")
    labels = sentiment_to_3class(sent, low, high)
    return PairDataset(
        face=face, voice=voice, face_label=labels, voice_label=labels.copy(),
        speaker=np.array([speaker[i] for i in keep], dtype=str),
        clip_id=np.array([clip_id[i] for i in keep], dtype=str),
        face_feature_names=tuple(face_names), voice_feature_names=tuple(voice_names), name=name,
        class_names=LABEL_SETS[3], sentiment=sent, extractor=dict(extractor or {}))


def as_2d(value: Any, what: str) -> np.ndarray:
    """``value`` as a numeric 2-D array, or a DataError saying what was found."""
    try:
        arr = np.asarray(value)
        complex_numbers = np.iscomplexobj(arr)  # float32 would drop the imaginary part with only a warning
        if not complex_numbers:
            arr = arr.astype(np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{what} is not a numeric array (found {type(value).__name__}).") from None
    if complex_numbers:
        raise DataError(f"{what} holds complex numbers; features are real numbers.")
    if arr.ndim != 2:
        raise DataError(f"{what} has shape {arr.shape}; expected (length, features).")
    return arr


# ---------------------------------------------------------------------------------------------- MISA loader
def _segment_ids(segment: Any, where: str) -> tuple[str, str]:
    """(speaker, clip_id) from ``"videoid[k]"`` or a tuple ``(videoid, k, ...)``."""
    if isinstance(segment, bytes):
        segment = segment.decode("utf-8", "replace")
    if isinstance(segment, (str, np.str_)):
        seg = str(segment)
        return (seg.rsplit("[", 1)[0] if "[" in seg else seg), seg
    if isinstance(segment, (tuple, list)) and segment:
        vid = str(segment[0])
        return vid, (f"{vid}[{segment[1]}]" if len(segment) > 1 else vid)
    raise DataError(f"{where}: index 2 (segment id) should be a str like 'videoid[k]' or a tuple, "
                    f"found {type(segment).__name__}.")


def load_misa(path: PathLike, *, name: str | None = None, nonfinite: NonFinitePolicy = "repair",
              neutral_band: Sequence[float] = (0.0, 0.0), empty: EmptyPolicy = "drop",
              report: list[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> PairDataset:
    """Load a MISA/MMIM segment pickle as a :class:`PairDataset`.

    Each list entry is ``(features, label, segment)``: ``features`` a tuple of 4+ items with visual ``[L_v, dv]``
    at index 1 and acoustic ``[L_a, da]`` at index 2 (lengths may differ; both are kept whole), ``label`` one float
    (any shape of size 1), ``segment`` ``"videoid[k]"`` (or ``(videoid, k)``). Speaker = video id.
    Feature names are ``facet_00..`` and ``covarep_00..``. Lines about repaired NaN/inf and dropped empty segments
    go to ``report``. The pickle is read with :func:`~crossemo_core.data.safe_pickle.load_pickle`.
    """
    src = source_name(path)
    name = name or default_name(path)
    data = load_pickle(path, max_bytes=max_bytes)
    if not isinstance(data, list):
        raise DataError(f"{src}: expected a list of segments (MISA format), found {type(data).__name__}.")
    if not data:
        raise DataError(f"{src}: the list of segments is empty.")
    face: list[np.ndarray] = []
    voice: list[np.ndarray] = []
    sentiment: list[float] = []
    speaker: list[str] = []
    clip: list[str] = []
    dims: tuple[int, int] | None = None
    for i, rec in enumerate(data):
        where = f"{src}: segment {i}"
        if not isinstance(rec, (tuple, list)) or len(rec) < 3:
            found = f"{type(rec).__name__} of length {len(rec)}" if isinstance(rec, (tuple, list)) \
                else type(rec).__name__
            raise DataError(f"{where}: expected a tuple (features, label, segment_id), found {found}.")
        feats, label, segment = rec[0], rec[1], rec[2]
        if not isinstance(feats, (tuple, list)) or len(feats) < 4:
            found = f"{type(feats).__name__} of length {len(feats)}" if isinstance(feats, (tuple, list)) \
                else type(feats).__name__
            raise DataError(f"{where}: index 0 should be a tuple (word_ids, visual, acoustic, words, ...) of 4+ "
                            f"items, found {found}.")
        vis = as_2d(feats[1], f"{where}: index 0[1] (visual)")
        aco = as_2d(feats[2], f"{where}: index 0[2] (acoustic)")
        if dims is None:
            dims = (vis.shape[1], aco.shape[1])
            first = i
        elif (vis.shape[1], aco.shape[1]) != dims:
            raise DataError(f"{where}: feature dimensions visual {vis.shape[1]} / acoustic {aco.shape[1]} differ "
                            f"from segment {first}'s {dims[0]} / {dims[1]}; all segments need the same features.")
        try:
            lab = np.asarray(label, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise DataError(f"{where}: index 1 (label) is not a number (found {type(label).__name__}).") from None
        if lab.size != 1:
            raise DataError(f"{where}: index 1 (label) should hold one sentiment score, found shape "
                            f"{np.shape(label)}.")
        spk, cid = _segment_ids(segment, where)
        face.append(vis)
        voice.append(aco)
        sentiment.append(float(lab[0]))
        speaker.append(spk)
        clip.append(cid)
    assert dims is not None
    return assemble(face, voice, sentiment, speaker, clip, feature_names("facet", dims[0]),
                    feature_names("covarep", dims[1]), name=name, source=src, nonfinite=nonfinite,
                    neutral_band=neutral_band, empty=empty, report=report,
                    extractor={"face": "FACET (MISA pickle)", "voice": "COVAREP (MISA pickle)"})


__all__ = ["load_misa"]
