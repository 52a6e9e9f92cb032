"""Where the project's own files live, the one way it writes a file (atomically), and an in-memory file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

REPO = Path(__file__).resolve().parent.parent
"""The repository root (the folder holding ``crossemo_core/``)."""
CHECKPOINTS = REPO / "checkpoints"
"""Shipped model files and their cards."""


@dataclass(frozen=True)
class NamedBytes:
    """An in-memory file (e.g. an upload): its name (for messages and the extension check) and its bytes. Loaders
    that take one read it without writing it to disk."""

    name: str
    data: bytes


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: the bytes go to a temporary file beside ``path``, which is renamed
    into place only when the ``with`` block ends without an exception. A failure (full disk, Ctrl-C, a bug) leaves
    any earlier file at ``path`` intact and no temporary file behind. Creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary shareable files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_writer`. Returns ``path``."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


PROBE_BYTES = 64 * 1024
"""Size of the probe file :func:`check_writable` writes: an output target must have at least this much room."""


def file_target_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` without replacing something that is not a file (a folder, or a
    device or a pipe, which writing a file there would replace), or None."""
    if path.is_dir():
        return "is a folder; give a file name."
    if path.exists() and not path.is_file():
        return "exists and is not a regular file (a device or a pipe); give a file name."
    return None


def check_writable(path: str | os.PathLike[str], option: str, folder: bool = False,
                   inputs: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """Check, before any work, that an output can be written at ``path`` (a file, or with ``folder`` a folder):
    the folder exists or can be made, is writable and has room for a small probe file (written and removed), and it
    is none of the command's ``inputs`` (the output would replace one). Raises
    :class:`~crossemo_core.errors.OutputError` naming ``option``; returns ``path``."""
    from crossemo_core.errors import OutputError

    path = Path(path)
    for given in inputs:
        if given is not None and not folder and path.exists() and Path(given).exists():
            with contextlib.suppress(OSError):
                if os.path.samefile(path, given):
                    raise OutputError(f"{option} {path} is one of the command's inputs; writing it would replace "
                                      f"it. Give another file name.")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: exists and is not a folder.")
    problem = None if folder else file_target_problem(path)
    if problem:
        raise OutputError(f"{option} {path}: {problem}")
    where = path if folder else path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot create the folder {where} ({exc.strerror or exc}).") from None
    try:
        with tempfile.TemporaryFile(dir=where, prefix=".crossemo-probe-") as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {where} ({exc.strerror or exc}).") from None
    return path


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: what failed and on which file (no errno number)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else reason


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_writer`. Returns ``path``."""
    return atomic_write(path, text.encode("utf-8"))
