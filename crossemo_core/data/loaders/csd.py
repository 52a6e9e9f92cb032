"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5): face + voice feature files aligned to a labels file.

A computational sequence has one root group ``<root>`` (any name) holding ``data/<video_id>/features [n, d]`` and
``data/<video_id>/intervals [n, 2]`` (start/end seconds of each row) plus a ``metadata`` group whose datasets hold
JSON-encoded strings, among them ``"dimension names"`` (one name per feature column).

:func:`load_csd` pairs a face file and a voice file (e.g. ``CMU_MOSI_Visual_Facet_41.csd`` and
``CMU_MOSI_COVAREP.csd``) with a labels file (e.g. ``CMU_MOSI_Opinion_Labels.csd``, one row per segment with the
sentiment score in column 0): segment ``k`` (row ``k``) of video ``v`` becomes the pair ``v[k]`` whose face / voice
sequences are the rows of ``v`` whose intervals overlap the segment's interval, in time order. ``v[k]`` is the same
clip id the MISA pickles use.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from crossemo_core.data.container import PairDataset
from crossemo_core.data.loaders.misa import PathLike, assemble, check_band, note, source_name
from crossemo_core.data.sanitize import NonFinitePolicy
from crossemo_core.errors import DataError
from crossemo_core.paths import NamedBytes

CsdData = dict[str, tuple[np.ndarray, np.ndarray]]
"""video id -> (features ``[n, d]``, intervals ``[n, 2]`` seconds)."""


# ---------------------------------------------------------------------------------------------- reading
@contextmanager
def _open_root(path: PathLike) -> Iterator[tuple[h5py.Group, str]]:
    """The root group of a .csd file (or an in-memory one: never written to disk) opened read-only, and its name."""
    src = source_name(path)
    if isinstance(path, NamedBytes):
        target: Any = io.BytesIO(path.data)
    else:
        target = Path(path)
        if not target.exists():
            raise DataError(f"{src}: file not found.")
        if not target.is_file():
            raise DataError(f"{src}: not a regular file; expected a .csd (HDF5) computational sequence.")
    try:
        fh = h5py.File(target, "r")
    except OSError as err:
        raise DataError(f"{src}: not an HDF5 file, so not a CMU-MultimodalSDK computational sequence (.csd) "
                        f"({err}).") from None
    with fh:
        groups = [k for k in fh if _stored_here(fh, k) and isinstance(fh[k], h5py.Group)]
        if len(groups) != 1:
            raise DataError(f"{src}: a computational sequence has exactly one root group; found "
                            f"{len(groups)} ({', '.join(groups) or 'none'}).")
        root = fh[groups[0]]
        if "data" not in root or not _stored_here(root, "data") or not isinstance(root["data"], h5py.Group):
            raise DataError(f"{src}: root group '{groups[0]}' has no 'data' group (found: "
                            f"{', '.join(root) or 'nothing'}); not a computational sequence.")
        yield root, groups[0]


def _read_data(root: h5py.Group, src: str, videos: set[str] | None) -> CsdData:
    out: CsdData = {}
    dim: tuple[int, str] | None = None
    for vid in root["data"]:
        if videos is not None and vid not in videos:
            continue
        where = f"{src}: video '{vid}'"
        if not _stored_here(root["data"], vid):
            raise DataError(f"{where} is a link instead of data stored in the file.")
        g = root["data"][vid]
        missing = [k for k in ("features", "intervals") if not isinstance(g, h5py.Group) or k not in g]
        if missing:
            raise DataError(f"{where} lacks {' and '.join(missing)}; each video needs features [n, d] and "
                            "intervals [n, 2].")
        feats = _numbers(g, "features", where)
        iv = np.asarray(_numbers(g, "intervals", where), dtype=np.float64)
        if feats.ndim != 2:
            raise DataError(f"{where}: features have shape {feats.shape}; expected [n, d].")
        if iv.ndim != 2 or iv.shape[1] != 2:
            raise DataError(f"{where}: intervals have shape {iv.shape}; expected [n, 2] (start, end).")
        if len(feats) != len(iv):
            raise DataError(f"{where}: {len(feats)} feature rows but {len(iv)} intervals.")
        if not np.isfinite(iv).all():
            raise DataError(f"{where}: {int((~np.isfinite(iv)).sum())} interval value(s) are NaN or inf.")
        if dim is None:
            dim = (feats.shape[1], vid)
        elif feats.shape[1] != dim[0]:
            raise DataError(f"{where}: {feats.shape[1]} feature columns but video '{dim[1]}' has {dim[0]}; "
                            "all videos need the same features.")
        out[vid] = (feats, iv)
    return out


MAX_METADATA_BYTES = 10e6
"""The largest metadata entry read from a .csd file (feature names and descriptions are a few kB)."""
MAX_DATASET_BYTES = 2e9
"""The largest features or intervals array of one video read from a .csd file (a small compressed file can declare
an array of hundreds of GB)."""


def _numbers(group: h5py.Group, name: str, where: str) -> np.ndarray:
    """``group[name]``, an array of numbers stored in this very file (not a link to elsewhere, whose target could be
    missing or any file on this machine), of at most :data:`MAX_DATASET_BYTES`."""
    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise DataError(f"{where}: its {name} are a link ({type(link).__name__}) instead of data stored in the file.")
    data = group[name]
    if not isinstance(data, h5py.Dataset) or data.dtype.kind not in "fiub" or data.shape is None:
        kind = (("empty" if data.shape is None else f"of type {data.dtype}") if isinstance(data, h5py.Dataset)
                else "a group")
        raise DataError(f"{where}: its {name} are {kind}; expected an array of numbers.")
    size = data.size * max(data.dtype.itemsize, 4)
    if size > MAX_DATASET_BYTES:
        raise DataError(f"{where}: its {name} declare {data.shape} values ({size / 1e9:.3g} GB), more than the "
                        f"{MAX_DATASET_BYTES / 1e9:g} GB read from one video.")
    try:
        return np.asarray(data[()])
    except OSError as exc:  # a damaged chunk
        raise DataError(f"{where}: its {name} cannot be read ({str(exc).splitlines()[0]}).") from None


def _decode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else [_decode(v) for v in value.ravel()]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _read_metadata(root: h5py.Group) -> dict[str, Any]:
    """The ``metadata`` attributes and datasets stored in the file itself; links and entries larger than
    :data:`MAX_METADATA_BYTES` are left out (metadata only names and describes the features)."""
    meta: dict[str, Any] = {}
    if "metadata" in root and _stored_here(root, "metadata"):
        group = root["metadata"]
        meta.update({k: _decode(v) for k, v in group.attrs.items()})
        if isinstance(group, h5py.Group):
            for k in group:
                ds = group[k] if _stored_here(group, k) else None
                if (isinstance(ds, h5py.Dataset) and ds.shape is not None
                        and ds.size * max(ds.dtype.itemsize, 1) <= MAX_METADATA_BYTES):
                    meta[k] = _decode(ds[()])
    return meta


def _stored_here(group: h5py.Group, name: str) -> bool:
    """Whether ``group[name]`` is stored in this file (a hard link), not a link to elsewhere or to nothing."""
    return isinstance(group.get(name, getlink=True), h5py.HardLink)


def read_csd(path: PathLike, videos: Sequence[str] | None = None) -> CsdData:
    """All (or the listed) videos of a computational sequence: ``{video: (features [n, d], intervals [n, 2])}``."""
    with _open_root(path) as (root, _):
        return _read_data(root, source_name(path), None if videos is None else set(videos))


def read_csd_metadata(path: PathLike) -> dict[str, Any]:
    """The ``metadata`` entries of a computational sequence, JSON-decoded where possible."""
    with _open_root(path) as (root, _):
        return _read_metadata(root)


# ---------------------------------------------------------------------------------------------- writing
def write_csd(path: PathLike, root_name: str, data: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
              dimension_names: Sequence[str] | None = None, metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``{video: (features [n, d], intervals [n, 2])}`` as a computational sequence readable by the SDK.

    Metadata entries are stored as the SDK does: one JSON-encoded string per dataset under ``<root>/metadata``
    (``"root name"`` and, when given, ``"dimension names"`` are filled in). Overwrites ``path``.
    """
    if not data:
        raise DataError("write_csd needs at least one video.")
    dims = set()
    for vid, (feats, iv) in data.items():
        f, i = np.asarray(feats), np.asarray(iv)
        if not vid or "/" in vid:
            raise DataError(f"video id {vid!r} cannot be an HDF5 group name (empty or contains '/').")
        if f.ndim != 2 or i.ndim != 2 or i.shape[1] != 2 or len(f) != len(i):
            raise DataError(f"video '{vid}': need features [n, d] and intervals [n, 2] with the same n; got "
                            f"{f.shape} and {i.shape}.")
        dims.add(f.shape[1])
    if len(dims) != 1:
        raise DataError(f"all videos need the same number of feature columns; found {sorted(dims)}.")
    (dim,) = dims
    if dimension_names is not None and len(dimension_names) != dim:
        raise DataError(f"{len(dimension_names)} dimension names for {dim} feature columns.")
    entries: dict[str, Any] = {"root name": root_name, "computational sequence version": "1.0",
                               **dict(metadata or {})}
    if dimension_names is not None:
        entries["dimension names"] = list(dimension_names)
    with h5py.File(path, "w") as fh:
        root = fh.create_group(root_name)
        group = root.create_group("data")
        for vid, (feats, iv) in data.items():
            g = group.create_group(vid)
            g.create_dataset("features", data=np.asarray(feats))
            g.create_dataset("intervals", data=np.asarray(iv, dtype=np.float64))
        meta = root.create_group("metadata")
        for key, value in entries.items():
            meta.create_dataset(key, data=np.array([json.dumps(value)], dtype=object), dtype=h5py.string_dtype())


# ---------------------------------------------------------------------------------------------- pairing
def _overlapping(iv: np.ndarray, start: float, end: float) -> np.ndarray:
    """Row indices (in time order) of intervals ``iv [n, 2]`` that overlap ``[start, end]``.

    Intervals overlap when they share time; a zero-length interval (frame or segment) overlaps whatever contains it.
    """
    s, e = iv[:, 0], iv[:, 1]
    shared = (s < end) & (e > start)
    touching = (s <= end) & (e >= start) & ((s == e) | (start == end))
    rows = np.flatnonzero(shared | touching)
    return rows[np.argsort(s[rows], kind="stable")]


def _names(meta: dict[str, Any], dim: int, prefix: str, src: str, name: str,
           report: list[str] | None) -> tuple[str, ...]:
    names = meta.get("dimension names")
    if isinstance(names, list) and len(names) == dim:
        return tuple(str(x) for x in names)
    if names is not None:
        note(report, name, f"{src}: metadata 'dimension names' does not list {dim} names; using {prefix}_0..")
    return tuple(f"{prefix}_{i}" for i in range(dim))


def _holds_the_labels(feats: CsdData, labels: CsdData) -> bool:
    """Whether a feature file is a labels file: the labelled segments' rows, one column of them the sentiment."""
    if not all(np.array_equal(iv, labels[v][1]) for v, (_, iv) in feats.items()):
        return False
    columns = set(range(next(iter(feats.values()))[0].shape[1]))
    for v, (f, _) in feats.items():
        columns = {j for j in columns if np.array_equal(f[:, j], labels[v][0][:, 0])}
    return bool(columns)


def load_csd(face_csd: PathLike, voice_csd: PathLike, labels_csd: PathLike, *, name: str | None = None,
             nonfinite: NonFinitePolicy = "repair", neutral_band: Sequence[float] = (0.0, 0.0),
             report: list[str] | None = None) -> PairDataset:
    """Pairs from face, voice and labels computational sequences (see the module docstring).

    Each labelled segment (row ``k`` of video ``v`` in ``labels_csd``; sentiment = column 0) becomes pair ``v[k]``
    with face rows ``[L_face, d_face]`` and voice rows ``[L_voice, d_voice]`` overlapping its interval; segments
    whose video is missing from a feature file or that no face / voice row overlaps are skipped and counted in
    ``report``. Speaker = video id. Feature names come from each file's ``dimension names`` metadata when it fits,
    else ``face_{i}`` / ``voice_{i}``.
    """
    check_band(neutral_band)
    labels_name = source_name(labels_csd)
    with _open_root(labels_csd) as (root, _):
        labels = _read_data(root, labels_name, None)
        label_meta = _read_metadata(root)
    if not labels:
        raise DataError(f"{labels_name}: the labels file holds no videos.")
    if name is None:
        ds_name = label_meta.get("dataset name")
        name = ds_name if isinstance(ds_name, str) and ds_name else Path(labels_name).stem
    label_dim = next(iter(labels.values()))[0].shape[1]
    if label_dim == 0:
        raise DataError(f"{labels_name}: labels have 0 columns; expected the sentiment score in column 0.")
    if label_dim > 1:
        note(report, name, f"labels have {label_dim} columns; column 0 is used as the sentiment score")
    sides = {}
    for side, path in (("face", face_csd), ("voice", voice_csd)):
        path_name = source_name(path)
        with _open_root(path) as (root, root_name):
            feats = _read_data(root, path_name, set(labels))
            meta = _read_metadata(root)
        if not feats:
            raise DataError(f"{path_name}: none of the {len(labels)} labelled videos is in this {side} file.")
        if _holds_the_labels(feats, labels):
            raise DataError(f"{path_name}: this {side} file holds the labels of {labels_name}, not {side} features "
                            f"(a model would read the answer itself); give the {side} features' file.")
        dim = next(iter(feats.values()))[0].shape[1]
        sides[side] = (feats, _names(meta, dim, side, path_name, name, report), root_name)
    face_data, voice_data = sides["face"][0], sides["voice"][0]

    face: list[np.ndarray] = []
    voice: list[np.ndarray] = []
    sentiment: list[float] = []
    speaker: list[str] = []
    clip: list[str] = []
    skipped: Counter[str] = Counter()
    n_segments = 0
    for vid, (lab, seg_iv) in labels.items():
        for k, (start, end) in enumerate(seg_iv):
            n_segments += 1
            if vid not in face_data:
                skipped["video not in the face file"] += 1
                continue
            if vid not in voice_data:
                skipped["video not in the voice file"] += 1
                continue
            f_rows = _overlapping(face_data[vid][1], start, end)
            v_rows = _overlapping(voice_data[vid][1], start, end)
            if len(f_rows) == 0 or len(v_rows) == 0:
                skipped["no overlapping face frame" if len(f_rows) == 0 else "no overlapping voice frame"] += 1
                continue
            face.append(face_data[vid][0][f_rows])
            voice.append(voice_data[vid][0][v_rows])
            sentiment.append(float(lab[k, 0]))
            speaker.append(vid)
            clip.append(f"{vid}[{k}]")
    reasons = ", ".join(f"{why}: {n}" for why, n in sorted(skipped.items()))
    if not face:
        raise DataError(f"no labelled segment of {labels_name} has both face and voice frames ({reasons}).")
    if skipped:
        note(report, name, f"{sum(skipped.values())} of {n_segments} labelled segment(s) skipped ({reasons})")
    return assemble(face, voice, sentiment, speaker, clip, sides["face"][1], sides["voice"][1], name=name,
                    source=f"{source_name(face_csd)} + {source_name(voice_csd)}", nonfinite=nonfinite,
                    neutral_band=neutral_band, empty="refuse", report=report,
                    extractor={"face": f"csd:{sides['face'][2]}", "voice": f"csd:{sides['voice'][2]}"})


__all__ = ["CsdData", "load_csd", "read_csd", "read_csd_metadata", "write_csd"]
