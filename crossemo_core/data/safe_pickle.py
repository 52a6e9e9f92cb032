"""Load pickles of plain data (numpy arrays, lists, dicts, str, numbers) without running code from the file.

``pickle.load`` calls whatever callable a file names, so a pickle from the internet can run any command.
:func:`load_pickle` resolves every global the file names against a fixed allow-list of constructors that only
build data (numpy array/dtype/scalar reconstruction, builtin containers and scalars) and refuses anything else with
:class:`~crossemo_core.errors.UnsafePickleError` *before* calling it.
"""
from __future__ import annotations

import builtins
import codecs
import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from crossemo_core.errors import DataError, UnsafePickleError

DEFAULT_MAX_BYTES = 4 * 2**30  # 4 GiB

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Protocol 2 pickles store bytes as codecs.encode(latin-1 text); harmless, also allowed by torch's loader.
        ("_codecs", "encode"): codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = _multiarray._reconstruct
        table[(mod, "scalar")] = _multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol 5 arrays
        table[(mod, "_frombuffer")] = _numeric._frombuffer
    for name in ("list", "dict", "tuple", "set", "frozenset", "complex", "slice", "bytes", "bytearray"):
        table[("builtins", name)] = getattr(builtins, name)
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _allowed()
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        key = (_PY2_MODULES.get(module, module), name)
        if key not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"the pickle asks to call {module}.{name}, which is not plain data; the file may be malicious "
                f"and was not loaded. Only numpy arrays and builtin containers/scalars are accepted.")
        return ALLOWED_GLOBALS[key]

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"the pickle uses a persistent id ({str(pid)[:80]!r}), which is not plain data; "
                                "the file may be malicious and was not loaded.")


def load_pickle(source: str | os.PathLike[str] | bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    """Unpickle a file path (or the bytes of a pickle) that holds only plain data.

    Raises:
        UnsafePickleError: the pickle names a callable outside :data:`ALLOWED_GLOBALS` (named in the message).
        DataError: missing file, a directory, empty file, file larger than ``max_bytes``, truncated or corrupt data.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, size = "the pickle data", len(source)
        _check_size(label, size, max_bytes)
        return _unpickle(io.BytesIO(bytes(source)), label)
    path = Path(source)
    label = str(path)
    if not path.exists():
        raise DataError(f"{label}: file not found.")
    if not path.is_file():
        raise DataError(f"{label}: not a regular file (a directory?); expected a pickle file.")
    _check_size(label, path.stat().st_size, max_bytes)
    with open(path, "rb") as fh:
        return _unpickle(fh, label)


def _check_size(label: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise DataError(f"{label}: the file is empty (0 bytes); expected a pickle.")
    if size > max_bytes:
        raise DataError(f"{label}: {size:,} bytes is more than the limit of {max_bytes:,} bytes; pass a larger "
                        "max_bytes if you trust this file and have the memory.")


_OTHER_FORMATS = ((b"PK\x03\x04", "a zip archive (a PyTorch checkpoint, .npz or .zip?)"),
                  (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a CMU-MultimodalSDK .csd?)"))


def _unpickle(fh: BinaryIO, label: str) -> object:
    head = fh.read(8)
    fh.seek(0)
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            raise DataError(f"{label}: this is {what}, not a pickle.")
    try:
        return _RestrictedUnpickler(fh, encoding="latin1").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{label}: {err}") from None
    except EOFError:
        raise DataError(f"{label}: the pickle ends early (truncated or incomplete download).") from None
    except Exception as err:  # UnpicklingError, ValueError, TypeError, ... from corrupt opcodes or arguments
        text = " ".join(str(err).split())[:200]
        raise DataError(f"{label}: not a readable pickle (corrupt or truncated): {type(err).__name__}: {text}") \
            from None


__all__ = ["ALLOWED_GLOBALS", "DEFAULT_MAX_BYTES", "load_pickle"]
