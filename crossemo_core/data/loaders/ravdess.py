"""RAVDESS speech: clip-level facial action units + the project's own voice features (shared/data README, sec. 1).

Layout of ``root``::

    face_au.csv                              clip_id, actor, emotion, intensity, statement, repetition, 35 AU columns
    audio/Actor_XX/03-01-EE-II-SS-RR-AA.flac  (or .wav) one file per face row; any subset of actors may be present

The audio id is the face ``clip_id`` with its first (modality) field ``01`` replaced by ``03``. Pair ``i`` holds
face ``(1, 35)`` (the clip means of the AU columns, named as in the csv) and voice ``(frames, d)`` from
:class:`~crossemo_core.features.voice.VoiceFeatureExtractor` (10 ms hop), both labelled with
:func:`~crossemo_core.data.labels.ravdess_emotion_to_3class` of the clip's emotion. Voice features are cached on
disk by file content (:class:`~crossemo_core.features.voice.FeatureCache`), so a second load reads no audio.
The cache holds the raw extractor output; ``voice_preprocessing`` (default ``VOICE_PREPROCESSING``,
``"trim+f0fill+pool5"`` [ours]) is applied after it, per clip, and is named in ``extractor["voice"]``.

``voice_features="reader:<checkpoint>"`` (or ``"reader"`` for ``checkpoints/voice_reader_external.pt``, trained on
TESS + EmoDB only) replaces those frames by a trained voice reader's frame features and appends its reading of the
clip (:mod:`crossemo_core.data.loaders.reader_voice`); the extractor id then names the checkpoint by content.
"""
from __future__ import annotations

import multiprocessing
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossemo_core.data.container import PairDataset
from crossemo_core.data.labels import RAVDESS_EMOTIONS, ravdess_emotion_to_3class
from crossemo_core.data.loaders.misa import PathLike, note
from crossemo_core.data.loaders.reader_voice import ReaderFrameExtractor, parse_voice_features
from crossemo_core.data.sanitize import NonFinitePolicy, sanitize_sequences
from crossemo_core.errors import DataError
from crossemo_core.features.sequence import canonical_preprocessing, preprocess_voice
from crossemo_core.features.voice import (
    EXTRACTOR_ID,
    EXTRACTOR_VERSION,
    FeatureCache,
    VoiceFeatureExtractor,
    file_sha256,
    load_audio,
)

NAME = "RAVDESS"
META_COLUMNS = ("clip_id", "actor", "emotion", "intensity", "statement", "repetition")
N_AU = 35
FACE_EXTRACTOR = "openface-au-clip/1"
AUDIO_SUFFIXES = (".flac", ".wav")
ACTORS = range(1, 25)
"""RAVDESS's actor numbers (24 actors)."""
VOICE_PREPROCESSING = "trim+f0fill+pool5"
"""Default ``voice_preprocessing`` of :func:`load_ravdess` [ours] (see :mod:`crossemo_core.features.sequence`):
leading/trailing silence dropped, unvoiced log_f0 interpolated, 5 frames averaged (20 frames per second). RAVDESS
voices go from 294-528 frames to 24-87 (median 39); an epoch of the "fast" preset from ~30 s to ~3.5 s on 2 CPU
threads (docs/notes/ravdess.md)."""
_CLIP_ID = re.compile(r"^\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")

ProgressFn = Callable[[int, int], None]


def load_ravdess(root: PathLike, *, actors: Iterable[int] | None = None, cache_dir: PathLike | None = None,
                 nonfinite: NonFinitePolicy = "repair", drop_duplicates: bool = True,
                 report: list[str] | None = None, progress: ProgressFn | None = None,
                 workers: int | None = None, voice_preprocessing: str = VOICE_PREPROCESSING,
                 voice_features: str = "librosa") -> PairDataset:
    """Load RAVDESS speech clips as face/voice pairs (face_label == voice_label).

    Args:
        root: folder with ``face_au.csv`` and ``audio/Actor_XX/``.
        actors: actor numbers to keep (e.g. ``[1, 2]``); None keeps every actor in the csv.
        cache_dir: voice feature cache; None uses ``$CROSSEMO_CACHE`` or ``~/.cache/crossemo/features``.
        nonfinite: what to do with NaN/inf features: ``"repair"`` (count and replace) or ``"refuse"``.
        drop_duplicates: drop clips whose audio file is byte-identical to an earlier clip's (sorted by clip id),
            e.g. the documented duplicate take 03-01-03-01-02-02-07 of 03-01-03-01-02-01-07.
        report: list to which human-readable lines are appended (skipped clips, duplicates, cache use).
        progress: ``progress(done, total)`` after each clip's voice features are ready.
        workers: processes for computing features (None or 1: this process, ~0.04 s per clip). Two spawned workers
            were slower on the shared 2-core development host (240 clips: 21.2 s vs 9.5 s; each worker also pays
            ~3 s of imports and JIT); try more on idle multi-core machines. Spawning needs an
            ``if __name__ == "__main__"`` guard in scripts; without one it falls back to this process.
        voice_preprocessing: [ours] steps applied to each clip's voice frames after extraction (and after the
            cache, which always holds the raw extractor output), e.g. ``"trim+f0fill+pool5"``; ``"none"`` keeps the
            raw 10 ms frames. See :mod:`crossemo_core.features.sequence`. Anything but ``"none"`` is appended to
            the voice extractor id (``"librosa-voice/1+trim+pool5"``) so checkpoints refuse other preprocessing.
        voice_features: ``"librosa"`` (default: the project's librosa frames, then ``voice_preprocessing``),
            ``"reader"`` or ``"reader:<checkpoint>"`` [ours]: a voice reader's pooled frame features plus its reading
            of the clip (:mod:`crossemo_core.data.loaders.reader_voice`; ``voice_preprocessing`` does not apply).
            Use a reader that never heard the actors it is tested on (``"reader"``: TESS + EmoDB only).
    Returns:
        PairDataset named "RAVDESS": face ``(1, 35)`` float32, voice ``(frames, d_voice)`` float32 per clip.
    Raises:
        DataError: missing ``face_au.csv``/columns/``audio`` folder, a wrong number of AU columns, unparsable or
            inconsistent clip ids, no requested actor, or no clip left with readable audio.
    """
    spec = canonical_preprocessing(voice_preprocessing)  # fail before any work on a bad spec
    reader_checkpoint = parse_voice_features(voice_features)
    root = Path(root)
    table, au_columns = _read_table(root, report)
    table = _select_actors(table, actors, root, report)
    audio_dir = root / "audio"
    if not audio_dir.is_dir():
        raise DataError(f"{NAME}: no audio folder at {audio_dir}; expected audio/Actor_XX/03-01-EE-II-SS-RR-AA.flac.")

    paths = [_audio_path(audio_dir, cid, actor) for cid, actor in zip(table["clip_id"], table["actor"])]
    missing = [cid for cid, p in zip(table["clip_id"], paths) if p is None]
    if missing:
        absent = sorted({int(a) for a, p in zip(table["actor"], paths)
                         if p is None and not (audio_dir / f"Actor_{int(a):02d}").is_dir()})
        where = f"; no audio folder for actor(s) {absent}" if absent else ""
        note(report, NAME, f"{len(missing)} of {len(table)} clip(s) skipped: audio file missing "
                           f"(first: {_audio_id(missing[0])}){where}")
    keep = [i for i, p in enumerate(paths) if p is not None]
    if not keep:
        raise DataError(f"{NAME}: none of the {len(table)} clip(s) in {root / 'face_au.csv'} has an audio file "
                        f"under {audio_dir} (looked for Actor_XX/<audio id>.flac or .wav).")
    table = table.iloc[keep].reset_index(drop=True)
    paths = [paths[i] for i in keep]
    digests = [file_sha256(p) for p in paths]

    if drop_duplicates:
        first: dict[str, int] = {}
        dup = [(i, first[d]) for i, d in enumerate(digests) if first.setdefault(d, i) != i]  # (copy, original)
        if dup:
            pairs = ", ".join(f"{paths[i].stem} = {paths[j].stem}" for i, j in dup[:3])
            note(report, NAME, f"{len(dup)} duplicate take(s) dropped (byte-identical audio): {pairs}"
                               f"{' ...' if len(dup) > 3 else ''}")
            gone = {i for i, _ in dup}
            keep = [i for i in range(len(paths)) if i not in gone]
            table = table.iloc[keep].reset_index(drop=True)
            paths, digests = [paths[i] for i in keep], [digests[i] for i in keep]

    extractor: Any = VoiceFeatureExtractor()
    if reader_checkpoint is not None:
        extractor = ReaderFrameExtractor(reader_checkpoint)
        spec = "none"  # the reader has its own front end (silence trimmed) and frame rate
        if extractor.trained_on_ravdess():
            note(report, NAME, f"the voice reader {reader_checkpoint.name} was trained on RAVDESS actors "
                               f"({extractor.reader.meta.get('split', {}).get('train')}): speaker-disjoint "
                               f"results with it are not clean")
    voice, errors = _voice_features(paths, digests, extractor, FeatureCache(cache_dir), report, progress, workers)
    if errors:
        first_err = next(iter(errors.values()))
        note(report, NAME, f"{len(errors)} clip(s) skipped: unreadable audio (first: {first_err})")
        keep = [i for i in range(len(paths)) if i not in errors]
        if not keep:
            raise DataError(f"{NAME}: no clip has readable audio ({len(errors)} unreadable; first: {first_err}).")
        table = table.iloc[keep].reset_index(drop=True)
        voice = [voice[i] for i in keep]

    values = table[au_columns].to_numpy(dtype=np.float64)  # an empty cell is NaN, 1e400 is inf
    with np.errstate(over="ignore"):
        au = values.astype(np.float32)  # beyond float32's range (|x| > 3.4e38) -> inf, handled as inf
    face = [row[None, :] for row in au]
    face, face_rep = sanitize_sequences(face, "face", nonfinite, source=str(root / "face_au.csv"))
    if face_rep.n_values:  # where, for the person who fixes the csv
        r, c = np.argwhere(~np.isfinite(au))[0]
        cell = "empty or NaN" if np.isnan(values[r, c]) else f"{values[r, c]:g}"
        note(report, NAME, f"{face_rep} repaired: face_au.csv cells empty, NaN, inf or beyond float32 (first: "
                           f"{au_columns[c]} of {table['clip_id'].iloc[r]}, {cell}); NaN set to 0, inf to +-1e6")
    voice, voice_rep = sanitize_sequences(voice, "voice", nonfinite, source=str(audio_dir))
    voice_id = f"{EXTRACTOR_ID}/{EXTRACTOR_VERSION}" if reader_checkpoint is None else extractor.id
    if spec != "none":
        before = sum(len(v) for v in voice)
        voice = [preprocess_voice(v, extractor.feature_names, spec) for v in voice]
        voice_id += f"+{spec}"
        note(report, NAME, f"voice preprocessing {spec}: {before} -> {sum(len(v) for v in voice)} frames in total")
    if voice_rep.n_values:
        note(report, NAME, f"{voice_rep} repaired")
    labels = ravdess_emotion_to_3class(table["emotion"].to_numpy())
    emotions = table["emotion"].to_numpy().astype(np.int64) - 1  # the 8 acted emotions, for training on them
    data = PairDataset(
        face=face, voice=voice, face_label=labels, voice_label=labels.copy(),
        face_emotion=emotions, voice_emotion=emotions.copy(), emotion_names=tuple(RAVDESS_EMOTIONS.values()),
        speaker=np.array([f"actor_{int(a):02d}" for a in table["actor"]]),
        clip_id=table["clip_id"].to_numpy(), face_feature_names=tuple(au_columns),
        voice_feature_names=extractor.feature_names, name=NAME,
        extractor={"face": FACE_EXTRACTOR, "voice": voice_id})
    note(report, NAME, f"{len(data)} clip(s) of {data.summary()['n_speakers']} actor(s) loaded from {root}")
    return data


# ---------------------------------------------------------------------------------------------- table
def _read_table(root: Path, report: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``face_au.csv`` sorted by clip id, with checked ids and integer code columns; and the 35 AU column names.
    Rows repeated exactly are dropped with a note; one clip id on rows that differ is refused."""
    csv = root / "face_au.csv"
    if not csv.is_file():
        found = (" is a folder" if csv.is_dir() else " is not a regular file (a device or a pipe)") if csv.exists() \
            else " not found"
        raise DataError(f"{NAME}: face_au.csv{found} in {root}; expected {csv} to be a table (one row per clip: "
                        f"{', '.join(META_COLUMNS)}, then {N_AU} AU columns).")
    try:
        table = pd.read_csv(csv, dtype={"clip_id": str})
    except pd.errors.EmptyDataError:
        raise DataError(f"{NAME}: {csv} is empty; expected a header line ({', '.join(META_COLUMNS)}, then {N_AU} "
                        f"AU columns) and one row per clip.") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{NAME}: {csv} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                        f"{exc.start}): a binary file, or a table saved in another encoding; save it as a UTF-8 "
                        f"csv.") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"{NAME}: cannot read {csv} as csv: {' '.join(str(exc).split())}") from None
    _check_row_lengths(csv, len(table.columns))
    table.columns = [str(c).strip() for c in table.columns]
    absent = [c for c in META_COLUMNS if c not in table.columns]
    if absent:
        raise DataError(f"{NAME}: {csv} lacks column(s) {', '.join(absent)}; expected {', '.join(META_COLUMNS)} "
                        f"then {N_AU} AU columns.")
    au_columns = [c for c in table.columns if c not in META_COLUMNS]
    if len(au_columns) != N_AU:
        raise DataError(f"{NAME}: {csv} has {len(au_columns)} AU column(s) but {N_AU} are expected "
                        f"(17 AUxx_r + 18 AUxx_c); found: {', '.join(au_columns[:40]) or 'none'}.")
    if table.empty:
        raise DataError(f"{NAME}: {csv} has no rows.")
    text = [c for c in au_columns if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        bad = pd.to_numeric(table[text[0]], errors="coerce").isna() & table[text[0]].notna()
        raise DataError(f"{NAME}: {csv}: AU column(s) {', '.join(text)} hold non-numbers, e.g. "
                        f"{table[text[0]][bad].iloc[0]!r} in row {int(np.flatnonzero(bad)[0]) + 2}.")

    ids = table["clip_id"].astype(str).str.strip()
    bad_ids = ids[~ids.str.match(_CLIP_ID)]
    if len(bad_ids):
        raise DataError(f"{NAME}: {len(bad_ids)} clip id(s) in {csv} are not RAVDESS ids of seven two-digit fields "
                        f"MM-VV-EE-II-SS-RR-AA, e.g. {', '.join(repr(b) for b in bad_ids[:3])}.")
    table["clip_id"] = ids
    copies = table.duplicated(keep="first").to_numpy()
    if copies.any():
        note(report, NAME, f"{int(copies.sum())} row(s) of {csv.name} repeat an earlier row exactly and were dropped "
                           f"(first: {ids[copies].iloc[0]}, row {int(np.flatnonzero(copies)[0]) + 2})")
        table = table[~copies].reset_index(drop=True)
        ids = table["clip_id"]
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        raise DataError(f"{NAME}: {len(repeated)} clip id(s) occur on rows that differ in {csv}, e.g. {repeated[0]}; "
                        f"keep one row per clip.")
    fields = ids.str.split("-", expand=True).astype(int)
    for col, pos in (("actor", 6), ("emotion", 2)):
        values = pd.to_numeric(table[col], errors="coerce")
        if values.isna().any() or (values != values.round()).any():
            raise DataError(f"{NAME}: column '{col}' of {csv} must hold integer codes; row "
                            f"{int(np.flatnonzero(values.isna() | (values != values.round()))[0]) + 2} does not.")
        table[col] = values.astype(int)
        wrong = np.flatnonzero(table[col].to_numpy() != fields[pos].to_numpy())
        if len(wrong):
            raise DataError(f"{NAME}: column '{col}' disagrees with the clip id in {len(wrong)} row(s), e.g. "
                            f"{ids.iloc[wrong[0]]} has {col} {table[col].iloc[wrong[0]]}.")
    ravdess_emotion_to_3class(table["emotion"].to_numpy())  # raises for codes outside 1..8
    return table.sort_values("clip_id", kind="stable").reset_index(drop=True), au_columns


def _check_row_lengths(csv: Path, n_columns: int) -> None:
    """Refuse a row with fewer values than the header names (pandas would fill them with NaN, which the loader would
    then repair as if they were empty cells): the usual sign of a file cut short. Rows with more values pandas
    already refuses."""
    import csv as csv_module

    with open(csv, newline="", encoding="utf-8-sig", errors="replace") as fh:
        try:
            for line, row in enumerate(csv_module.reader(fh), start=1):
                if row and len(row) < n_columns:
                    break
            else:
                return
        except csv_module.Error:  # e.g. a field over the csv module's size limit: pandas read it, leave it be
            return
        last = not fh.read().strip()
    where = "the last row" if last else f"row {line}"
    raise DataError(f"{NAME}: {where} of {csv} has {len(row)} value(s) but the header names {n_columns} columns"
                    + (" (the file looks truncated: an incomplete download or copy?)." if last else "."))


def _select_actors(table: pd.DataFrame, actors: Iterable[int] | None, root: Path,
                   report: list[str] | None) -> pd.DataFrame:
    if actors is None:
        return table
    wanted = sorted({int(a) for a in actors})
    if not wanted:
        raise DataError(f"{NAME}: actors is empty; pass None for all actors or a list such as [1, 2].")
    present = set(table["actor"].tolist())
    absent = [a for a in wanted if a not in present]
    if len(absent) == len(wanted):
        raise DataError(f"{NAME}: none of actor(s) {wanted} is in {root / 'face_au.csv'} "
                        f"(actors there: {sorted(present)}).")
    if absent:
        note(report, NAME, f"actor(s) {absent} not in face_au.csv; loading {sorted(set(wanted) - set(absent))}")
    return table[table["actor"].isin(wanted)].reset_index(drop=True)


def _audio_id(clip_id: str) -> str:
    return "03" + clip_id[2:]


def _audio_path(audio_dir: Path, clip_id: str, actor: int) -> Path | None:
    folder = audio_dir / f"Actor_{int(actor):02d}"
    for suffix in AUDIO_SUFFIXES:
        p = folder / f"{_audio_id(clip_id)}{suffix}"
        if p.is_file():
            return p
    return None


# ---------------------------------------------------------------------------------------------- features
def _voice_features(paths: list[Path], digests: list[str], extractor: VoiceFeatureExtractor, cache: FeatureCache,
                    report: list[str] | None, progress: ProgressFn | None,
                    workers: int | None) -> tuple[list[np.ndarray], dict[int, str]]:
    """Features per path (cache first, then computed; in ``workers`` processes when > 1) and {index: error} failures."""
    total, done = len(paths), 0
    out: list[np.ndarray] = [np.empty((0, extractor.dim), np.float32)] * total
    errors: dict[int, str] = {}
    keys = [cache.key(d, extractor) for d in digests]
    todo = []
    if progress:
        progress(0, total)
    for i, key in enumerate(keys):
        cached = cache.load(key)
        if cached is not None and cached.shape[1] == extractor.dim:
            out[i] = cached
            cache.hits += 1
            done += 1
            if progress:
                progress(done, total)
        else:
            todo.append(i)
    cache.misses += len(todo)
    n_computed = len(todo)
    n_workers = max(1, int(workers or 1))
    start = time.perf_counter()
    if len(todo) > 1 and n_workers > 1:
        # spawn, not fork: the parent may hold torch/BLAS/UI threads, which forked children can deadlock on.
        try:
            with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                results = pool.map(_extract_file, [str(paths[i]) for i in todo], [extractor] * len(todo),
                                   chunksize=8)
                for i, (features, error) in zip(todo, results):
                    done = _finish(i, features, error, keys[i], cache, out, errors, done, total, progress)
        except BrokenProcessPool:  # e.g. run from stdin or a script without a __main__ guard: go on serially
            note(report, NAME, "worker processes could not start; extracting in this process instead")
        todo = [i for i in todo if out[i].shape[0] == 0 and i not in errors]
    for i in todo:  # serial path, or what a broken pool left
        done = _finish(i, *_extract_file(str(paths[i]), extractor), keys[i], cache, out, errors, done, total,
                       progress)
    seconds = time.perf_counter() - start
    failed = len(errors)
    note(report, NAME, f"voice features ({extractor.id}): {total - n_computed} from cache, {n_computed - failed} "
                       f"computed" + (f", {failed} unreadable" if failed else "")
                       + (f" in {seconds:.1f} s ({seconds / n_computed:.3f} s per clip)" if n_computed else "")
                       + f"; cache {cache.directory}")
    return out, errors


def _finish(i: int, features: np.ndarray | None, error: str | None, key: str, cache: FeatureCache,
            out: list[np.ndarray], errors: dict[int, str], done: int, total: int,
            progress: ProgressFn | None) -> int:
    if features is None:
        errors[i] = str(error)
    else:
        cache.store(key, features)
        out[i] = features
    done += 1
    if progress:
        progress(done, total)
    return done


def _extract_file(path: str, extractor: VoiceFeatureExtractor) -> tuple[np.ndarray | None, str | None]:
    """Worker: ``(features, None)`` or ``(None, message)`` for an unreadable file."""
    try:
        return extractor.extract(*load_audio(path)), None
    except DataError as exc:
        return None, str(exc)
