"""The one way the project's small model files are written and read: a dict of tensors with a ``format`` tag and a
JSON ``meta`` string, saved with ``torch.save`` atomically and loaded with ``torch.load(weights_only=True)`` (no
pickle code runs), every failure a one-line :class:`~crossemo_core.errors.CheckpointError`."""
from __future__ import annotations

import io
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from crossemo_core.errors import CheckpointError
from crossemo_core.paths import atomic_write

T = TypeVar("T")


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as float16 (half the size; predictions change by about 1e-3)."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def full(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def save_model_file(path: str | Path, fmt: str, meta: dict[str, Any], tensors: dict[str, Any]) -> Path:
    """Write ``{"format": fmt, "meta": json(meta), **tensors}`` to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save({"format": fmt, "meta": json.dumps(meta), **tensors}, buf)
    return atomic_write(path, buf.getvalue())


def load_model_file(path: str | Path, fmt: str, what: str, build: Callable[[dict[str, Any], dict[str, Any]], T]) -> T:
    """Read a file written by :func:`save_model_file` and ``build(payload, meta)`` from it. ``what`` names the
    file for messages ("voice reader"): missing, not of format ``fmt``, or damaged -> :class:`CheckpointError`."""
    path = Path(path)
    payload = read_torch_file(path, what)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise CheckpointError(f"{path} is not a crossemo {what} ({fmt} expected).")
    try:
        meta = json.loads(payload["meta"])
        if not isinstance(meta, dict):
            raise TypeError(f"its meta is a JSON {type(meta).__name__}, not an object")
        return build(payload, meta)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - KeyError, ValueError, RuntimeError (load_state_dict), ...
        raise CheckpointError(f"{path} is not a readable {what}: it is damaged or from an incompatible version "
                              f"({one_line(exc)}).") from None


def read_torch_file(path: str | Path, what: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` to ``map_location``, torch's warnings silenced. Every failure is a
    one-line :class:`CheckpointError` naming the file and saying why in words, never torch's advice to load with
    ``weights_only=False`` (which would run whatever code the file holds)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder, not a file.")
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist.")
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path} is not a readable {what}: the file is empty (0 bytes).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": noise for a file that is refused
            return torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged, foreign or unsafe files
        raise CheckpointError(f"{path} is not a readable {what}: {load_failure(exc)}. Nothing was executed.") \
            from None


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_failure(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in words, on one line."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        found = _GLOBAL.search(text)
        if found:
            return (f"it asks to run {found.group(1)} while loading, which a file of weights never needs; it may be "
                    f"malicious and was refused")
        return "it is damaged, or not a PyTorch model file"
    if isinstance(exc, EOFError):
        return "it ends early (truncated or incomplete download)"
    if isinstance(exc, (zipfile.BadZipFile, RuntimeError)) and ("zip" in text.lower() or "PytorchStreamReader" in text):
        return "it is damaged or truncated (its zip archive cannot be read)"
    if isinstance(exc, MemoryError):
        return "it declares more data than fits in memory (damaged?)"
    if isinstance(exc, OSError):
        return f"it cannot be read ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, (KeyError, IndexError, ValueError, TypeError, AttributeError, pickle.UnpicklingError)):
        return "it is damaged, or not a PyTorch model file"
    return f"it is damaged, or not a PyTorch model file ({one_line(exc)})"


def one_line(exc: BaseException, limit: int = 160) -> str:
    """``TypeName: message`` of an exception on one line, at most ``limit`` characters of message; torch's advice
    about ``weights_only`` is never quoted."""
    if isinstance(exc, KeyError) and exc.args:
        return f"entry {exc.args[0]!r} is missing"
    text = " ".join(str(exc).split())
    if "weights_only" in text:
        text = ""
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
