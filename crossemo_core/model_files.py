"""The one way the project's small model files are written and read: a dict of tensors with a ``format`` tag and a
JSON ``meta`` string, saved with ``torch.save`` atomically and loaded with ``torch.load(weights_only=True)`` (no
pickle code runs), every failure a one-line :class:`~crossemo_core.errors.CheckpointError`."""
from __future__ import annotations

import io
import json
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
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != fmt:
            raise CheckpointError(f"{path} is not a crossemo {what} ({fmt} expected).")
        return build(payload, json.loads(payload["meta"]))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"{path} is not a readable {what} ({type(exc).__name__}).") from None
