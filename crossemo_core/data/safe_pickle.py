"""Load pickles of plain data (numpy arrays, lists, dicts, str, numbers) without running code from the file.

``pickle.load`` calls whatever callable a file names, so a pickle from the internet can run any command.
:func:`load_pickle` resolves every global the file names against a fixed allow-list of constructors that only
build data (numpy array/dtype/scalar reconstruction, builtin containers and scalars) and refuses anything else with
:class:`~crossemo_core.errors.UnsafePickleError` *before* calling it.

Two more checks close what the allow-list leaves open. A numpy dtype's pickled state carries numpy's internal flags;
a forged state (e.g. "holds Python objects" on a float64) would make numpy treat the array's raw bytes as object
pointers, so every dtype state is applied to a copy first and refused unless it gives the dtype numpy itself builds
from the same description. And a length declared in the file (a byte string, a frame) that is larger than the whole
file is refused before anything is allocated, so a few bytes cannot make the loader claim gigabytes. Both need the
pure-Python unpickler, whose opcodes can be replaced one by one (~3x slower than the C one: 18 ms for MOSI's
1.4 MB dev.pkl).
"""
from __future__ import annotations

import builtins
import codecs
import collections
import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from crossemo_core.errors import DataError, UnsafePickleError
from crossemo_core.paths import NamedBytes

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


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler, see the module docstring
    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, fh: BinaryIO, size: int) -> None:
        super().__init__(fh, encoding="latin1")
        self._size = size
        file_read = self._file_read

        def read(n: int = -1) -> bytes:
            if n is not None and n > size:
                raise pickle.UnpicklingError(f"it declares {n:,} bytes of data in a file of {size:,} bytes")
            return file_read(n)

        self._file_read = read

    def _load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._size:  # bytearray(n) would fill n bytes of memory before reading them
            raise pickle.UnpicklingError(f"it declares {n:,} bytes of data in a file of {self._size:,} bytes")
        buf = bytearray(n)
        self.readinto(buf)
        self.append(buf)

    def _load_build(self) -> None:
        inst = self.stack[-2]
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
    dispatch[pickle.BUILD[0]] = _load_build

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


def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """Refuse a numpy dtype state that gives a dtype other than the one numpy builds from the same description
    (forged internal flags, item size or alignment). The state is tried on a copy; ``dtype`` is left untouched."""
    probe = np.dtype(dtype, False, True)  # an independent copy
    probe.__setstate__(state)  # ValueError/TypeError for a malformed state: the caller reports a corrupt pickle
    try:
        if probe.names is not None:
            fields = [probe.fields[n] for n in probe.names]
            spec: dict[str, Any] = {"names": list(probe.names), "formats": [f[0] for f in fields],
                                    "offsets": [f[1] for f in fields], "itemsize": probe.itemsize}
            if any(len(f) > 2 for f in fields):
                spec["titles"] = [f[2] if len(f) > 2 else None for f in fields]
            canonical = np.dtype(spec, align=bool(probe.isalignedstruct))
        elif probe.subdtype is not None:
            canonical = np.dtype(probe.subdtype)
        else:
            canonical = np.dtype(probe.str)
    except Exception:  # noqa: BLE001 - numpy refuses the description itself (e.g. overlapping object fields)
        canonical = None
    if canonical is None or (probe.flags, probe.itemsize, probe.alignment) != \
            (canonical.flags, canonical.itemsize, canonical.alignment):
        raise UnsafePickleError(
            f"the pickle holds a numpy dtype ({probe.str}) whose internal state does not match its description "
            f"(flags {probe.flags}, item size {probe.itemsize}); numpy would misread the array's memory. The file "
            f"is corrupt or malicious and was not loaded.")


def load_pickle(source: str | os.PathLike[str] | bytes | NamedBytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    """Unpickle a file path (or the bytes of a pickle, or an in-memory file) that holds only plain data.

    Raises:
        UnsafePickleError: the pickle names a callable outside :data:`ALLOWED_GLOBALS` (named in the message).
        DataError: missing file, a directory, empty file, file larger than ``max_bytes``, truncated or corrupt data.
    """
    if isinstance(source, NamedBytes):
        _check_size(source.name, len(source.data), max_bytes)
        return _unpickle(io.BytesIO(source.data), source.name, len(source.data))
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, size = "the pickle data", len(source)
        _check_size(label, size, max_bytes)
        return _unpickle(io.BytesIO(bytes(source)), label, size)
    path = Path(source)
    label = str(path)
    if not path.exists():
        raise DataError(f"{label}: file not found.")
    if path.is_dir():
        raise DataError(f"{label}: is a folder; expected a pickle file.")
    if not path.is_file():
        raise DataError(f"{label}: not a regular file (a device or a pipe); expected a pickle file.")
    size = path.stat().st_size
    _check_size(label, size, max_bytes)
    with open(path, "rb") as fh:
        return _unpickle(fh, label, size)


def _check_size(label: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise DataError(f"{label}: the file is empty (0 bytes); expected a pickle.")
    if size > max_bytes:
        raise DataError(f"{label}: {size:,} bytes is more than the limit of {max_bytes:,} bytes; pass a larger "
                        "max_bytes if you trust this file and have the memory.")


_OTHER_FORMATS = ((b"PK\x03\x04", "a zip archive (a PyTorch checkpoint, .npz or .zip?)"),
                  (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a CMU-MultimodalSDK .csd?)"),
                  (b"\x1f\x8b", "a gzip-compressed file (unpack it first)"),
                  (b"BZh", "a bzip2-compressed file (unpack it first)"),
                  (b"\xfd7zXZ\x00", "an xz-compressed file (unpack it first)"),
                  (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF", "a PDF document"))


def _unpickle(fh: BinaryIO, label: str, size: int) -> object:
    head = fh.read(8)
    fh.seek(0)
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            raise DataError(f"{label}: this is {what}, not a pickle.")
    try:
        return _RestrictedUnpickler(fh, size).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{label}: {err}") from None
    except EOFError:
        raise DataError(f"{label}: the pickle ends early (truncated or incomplete download).") from None
    except MemoryError:
        raise DataError(f"{label}: not a readable pickle: it declares more data than fits in memory (corrupt or "
                        f"truncated).") from None
    except KeyError as err:  # the pure-Python unpickler has no opcode for this byte
        key = err.args[0] if err.args else None
        what = f"0x{key:02x}" if isinstance(key, int) else repr(key)[:40]
        raise DataError(f"{label}: not a readable pickle (corrupt or truncated): invalid load key {what}.") from None
    except Exception as err:  # UnpicklingError, ValueError, TypeError, ... from corrupt opcodes or arguments
        text = " ".join(str(err).split())[:200]
        raise DataError(f"{label}: not a readable pickle (corrupt or truncated): {type(err).__name__}: {text}") \
            from None


__all__ = ["ALLOWED_GLOBALS", "DEFAULT_MAX_BYTES", "load_pickle"]
