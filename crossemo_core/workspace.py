"""What an interactive session works with: a loaded corpus, its split, a detector, and the files a user hands in.

Helpers for front ends (no user-interface imports):

* :func:`load_dataset` / :func:`load_uploaded`: a corpus by kind from a path, or from uploaded bytes written to a
  temporary folder that is always removed, with a size cap.
* :func:`evaluation_parts`: the train/valid/test parts to show a detector on. A checkpoint that recorded its
  split (``metadata["split_speakers"]``) and was trained on this corpus gets *its own* split back, so its test
  pairs are never pairs it was trained on.
* :func:`initial_detector`: the same network with the run's initial weights (the "before training" views).
* :func:`checkpoint_bytes` / :func:`detector_from_bytes`: checkpoints as bytes for downloads and uploads.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector
from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.experiment import load_corpus, split_pairs
from crossemo_core.model import SIRHCL, seeded_build
from crossemo_core.paths import NamedBytes, file_target_problem
from crossemo_core.training import fit_verdict

__all__ = ["DATA_KINDS", "UPLOAD_ROLES", "DEFAULT_MAX_UPLOAD_BYTES", "parse_actors", "load_dataset", "check_usable",
           "load_uploaded", "load_csd_files", "evaluation_parts", "EvaluationParts", "initial_detector",
           "checkpoint_bytes", "detector_from_bytes", "existing_file", "resolve_path", "save_target"]

#: Dataset kinds a user can choose, with their labels.
DATA_KINDS: dict[str, str] = {
    "demo": "Bundled demo (synthetic)",
    "ravdess": "RAVDESS folder",
    "misa": "MOSI/MOSEI features: MISA pickle (.pkl)",
    "mmsa": "MOSI/MOSEI features: MMSA pickle (aligned_50.pkl / unaligned_50.pkl)",
    "csd": "MOSI/MOSEI features: CMU-SDK computational sequences (.csd)",
}
#: The files each kind needs when uploaded: role -> description.
UPLOAD_ROLES: dict[str, dict[str, str]] = {
    "misa": {"pickle": "MISA segment pickle (.pkl)"},
    "mmsa": {"pickle": "MMSA pickle (.pkl)"},
    "csd": {"face": "face features (.csd)", "voice": "voice features (.csd)", "labels": "sentiment labels (.csd)"},
}
DEFAULT_MAX_UPLOAD_BYTES = 500 * 1024 * 1024

ProgressFn = Callable[[int, int], None]


def resolve_path(path: str | os.PathLike[str], base: str | Path | None = None) -> Path:
    """``~`` expanded; a relative path is taken from ``base`` (default: the current folder); ``..`` resolved."""
    text = str(path).strip().strip('"').strip("'")
    if not text:
        raise DataError("no path was given.")
    try:
        p = Path(text).expanduser()
    except RuntimeError:  # "~name/..." for a user this machine does not have
        raise DataError(f"{text}: there is no user {text[1:].split('/', 1)[0]!r} on this machine, so '~' "
                        "cannot be expanded.") from None
    if not p.is_absolute():
        p = Path(base or Path.cwd()) / p
    return Path(os.path.normpath(p))


def save_target(path: str | os.PathLike[str], base: str | Path | None = None) -> Path:
    """:func:`resolve_path`, which must name a file to write: not a folder, nor a device or a pipe that writing a file
    there would replace (:class:`DataError` otherwise)."""
    p = resolve_path(path, base)
    problem = file_target_problem(p)
    if problem:
        raise DataError(f"{p}: {problem}")
    return p


def existing_file(path: str | os.PathLike[str], base: str | Path | None = None) -> Path:
    """:func:`resolve_path`, which must name a file that exists (a folder or a missing path: :class:`DataError`)."""
    p = resolve_path(path, base)
    try:
        if p.is_file():
            return p
        reason = "a folder, not a file" if p.is_dir() else "no such file"
    except (OSError, ValueError) as exc:  # a denied folder on the way, a NUL byte, a name too long
        reason = f"cannot be looked at ({getattr(exc, 'strerror', None) or exc})"
    raise DataError(f"{p}: {reason}.")


def parse_actors(text: str | None) -> list[int] | None:
    """``"1-4, 7"`` -> ``[1, 2, 3, 4, 7]``; empty -> None (every actor). Numbers outside RAVDESS's 1-24 are
    refused (a range such as ``1-1000000000`` was expanded whole, in the app's server, before any check)."""
    from crossemo_core.data.loaders.ravdess import ACTORS

    if text is None or not text.strip():
        return None
    out: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise DataError(f"cannot read actors {text!r}: use numbers and ranges such as '1-4, 7'.")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise DataError(f"actor range {part!r} goes backwards.")
        if lo not in ACTORS or hi not in ACTORS:
            raise DataError(f"actor {hi if lo in ACTORS else lo} in {part!r}: RAVDESS has actors {ACTORS.start}-"
                            f"{ACTORS.stop - 1}.")
        out.update(range(lo, hi + 1))
    return sorted(out)


def load_dataset(kind: str, path: str | os.PathLike[str] | None = None, *, actors: list[int] | None = None,
                 report: list[str] | None = None, progress: ProgressFn | None = None,
                 base: str | Path | None = None) -> PairDataset:
    """Load a corpus of ``kind`` (see :data:`DATA_KINDS`) from ``path`` (ignored for the demo).

    ``actors`` selects RAVDESS actors; ``progress(done, total)`` follows RAVDESS feature extraction.
    """
    if kind not in DATA_KINDS:
        raise DataError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATA_KINDS)}.")
    if kind == "demo":
        return load_corpus("demo")
    root = resolve_path(path or "", base)
    if not root.exists():
        raise DataError(f"{root} does not exist.")
    options: dict[str, Any] = {}
    if kind == "ravdess":
        if not root.is_dir():
            raise DataError(f"{root} is not a folder; a RAVDESS folder holds face_au.csv and audio/Actor_XX/.")
        if actors is not None:
            options["actors"] = actors
    elif kind in ("misa", "mmsa") and root.is_dir():
        raise DataError(f"{root} is a folder; give the path of the .pkl file itself.")
    return load_corpus(kind, root, report=report, progress=progress if kind == "ravdess" else None, **options)


def check_usable(corpus: PairDataset) -> PairDataset:
    """``corpus`` when the app's pages can use it, else :class:`DataError`: every page splits the data by speaker
    into train, validation and test parts (:func:`evaluation_parts`), which needs at least 3 speakers."""
    from crossemo_core.data.protocol import speaker_disjoint_split

    try:
        speaker_disjoint_split(corpus.speaker)
    except DataError as exc:
        raise DataError(f"{corpus.display_name} cannot be used: {exc} Every page splits the data by speaker into "
                        f"train, validation and test parts.") from None
    return corpus


def load_csd_files(paths: Mapping[str, str | os.PathLike[str]], *, report: list[str] | None = None,
                   base: str | Path | None = None) -> PairDataset:
    """CMU-SDK computational sequences from three paths: ``paths["face"]``, ``["voice"]``, ``["labels"]``."""
    missing = [desc for role, desc in UPLOAD_ROLES["csd"].items() if not str(paths.get(role) or "").strip()]
    if missing:
        raise DataError("missing path: " + ", ".join(missing) + ".")
    resolved = {role: resolve_path(paths[role], base) for role in UPLOAD_ROLES["csd"]}
    for role, p in resolved.items():
        if not p.is_file():
            raise DataError(f"{p} ({UPLOAD_ROLES['csd'][role]}) is not a file.")
    from crossemo_core.data.loaders import load_csd

    return load_csd(resolved["face"], resolved["voice"], resolved["labels"], report=report)


def load_uploaded(kind: str, files: Mapping[str, tuple[str, bytes]], *, report: list[str] | None = None,
                  max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> PairDataset:
    """Load a corpus from uploaded files: ``files[role] = (file name, content)`` (roles: :data:`UPLOAD_ROLES`).

    The files are read from memory: nothing is written to disk.
    """
    if kind not in UPLOAD_ROLES:
        raise DataError(f"{DATA_KINDS.get(kind, kind)} cannot be uploaded; enter its path instead.")
    roles = UPLOAD_ROLES[kind]
    missing = [desc for role, desc in roles.items() if role not in files]
    if missing:
        raise DataError("missing upload: " + ", ".join(missing) + ".")
    total = sum(len(content) for _, content in files.values())
    if total > max_bytes:
        raise DataError(f"the upload is {total / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB limit; "
                        f"enter the file's path on this machine instead.")
    uploaded = {role: NamedBytes(Path(name).name or f"{role}.bin", content) for role, (name, content) in files.items()}
    stem = Path(uploaded[next(iter(roles))].name).stem
    if kind == "csd":
        from crossemo_core.data.loaders import load_csd

        return load_csd(uploaded["face"], uploaded["voice"], uploaded["labels"], report=report)
    if kind == "misa":
        from crossemo_core.data.loaders import load_misa

        return load_misa(uploaded["pickle"], name=stem, report=report)
    from crossemo_core.data.loaders import load_mmsa

    return load_mmsa(uploaded["pickle"], name=stem, report=report)


@dataclass
class EvaluationParts:
    """The parts to show a detector on and how they were chosen (``note``: one line for the user)."""

    parts: dict[str, PairDataset]
    seed: int
    rate: float
    from_checkpoint: bool
    note: str


def evaluation_parts(corpus: PairDataset, detector: Detector | None, seed: int, rate: float) -> EvaluationParts:
    """The split to evaluate on: the checkpoint's own (speakers, seed, rate) when it recorded one that fits this
    corpus, else a fresh speaker-disjoint split with ``seed`` and ``rate``."""
    recorded = (detector.metadata.get("split_speakers") if detector is not None else None) or None
    if recorded and all(k in recorded for k in ("train", "valid", "test")):
        present = set(np.unique(corpus.speaker).tolist())
        wanted = {k: set(map(str, v)) for k, v in recorded.items() if k in ("train", "valid", "test")}
        if wanted["test"] and wanted["test"] <= present and wanted["train"] & present:
            fold = {k: np.flatnonzero(np.isin(corpus.speaker, sorted(v))) for k, v in wanted.items()}
            if all(len(fold[k]) for k in ("train", "valid", "test")):
                tseed, trate = int(detector.config.train.seed), float(detector.config.train.abnormal_rate)
                parts = split_pairs(corpus, seed=tseed, rate=trate, fold=fold)
                return EvaluationParts(parts, tseed, trate, True,
                                       f"the checkpoint's own speaker split (seed {tseed}, inconsistent-pair rate "
                                       f"{trate}) is used, so its test speakers were never seen in training.")
    parts = split_pairs(corpus, seed=seed, rate=rate)
    note = f"speaker-disjoint split with seed {seed}, inconsistent-pair rate {rate}."
    if detector is not None and recorded:
        note += (" The checkpoint's recorded split does not fit this dataset; if it was trained on these speakers, "
                 "test results may be optimistic.")
    return EvaluationParts(parts, seed, rate, False, note)


def initial_detector(detector: Detector, train: PairDataset | None = None,
                     valid: PairDataset | None = None) -> Detector:
    """The detector's network with the initial weights of its training run (seeded by the run's seed), its
    normaliser, and, when ``train``/``valid`` are given, a Beta mixture fitted on those initial scores."""
    model, _ = seeded_build(lambda: SIRHCL(detector.config.model), detector.config.train.seed, torch.device("cpu"))
    model.eval()
    before = Detector(config=detector.config, model=model, normalizer=detector.normalizer,
                      schema=dict(detector.schema), threshold=0.5,
                      metadata={"stage": "initial weights (before training)"})
    if train is not None and valid is not None:
        fit_verdict(before, train, valid, "posterior")
    return before


def checkpoint_bytes(detector: Detector) -> bytes:
    """The checkpoint file's bytes (for a download)."""
    with tempfile.TemporaryDirectory(prefix="crossemo-ckpt-") as tmp:
        return detector.save(Path(tmp) / "checkpoint.pt").read_bytes()


def detector_from_bytes(content: bytes, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                        name: str = "the uploaded checkpoint") -> Detector:
    """A detector from an uploaded checkpoint's bytes (read without executing code; temp file removed); messages
    call it ``name`` (the upload's file name), not by its temporary path."""
    if len(content) > max_bytes:
        raise CheckpointError(f"{name} is {len(content) / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB "
                              f"limit.")
    with tempfile.TemporaryDirectory(prefix="crossemo-ckpt-") as tmp:
        p = Path(tmp) / "upload.pt"
        p.write_bytes(content)
        try:
            return Detector.load(p)
        except CheckpointError as exc:
            raise CheckpointError(str(exc).replace(str(p), name)) from None
