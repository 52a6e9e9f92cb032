"""Resumable run cache: one JSON file per finished run, named by its :meth:`RunSpec.key`.

A run is written atomically (temporary file + rename) as soon as it finishes, so an interrupted benchmark loses at
most the runs in progress, and rerunning the same command computes only what is missing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from crossemo_core.paths import atomic_write


class RunCache:
    """Finished runs under ``directory`` (created on first write); ``valid(record)`` (optional) says whether a
    record read back has the shape the suite's tables need."""

    def __init__(self, directory: str | Path, valid: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.directory = Path(directory)
        self.valid = valid

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of a finished run, or None (also for an unreadable or malformed file, which is then
        recomputed)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(record, dict) or (self.valid is not None and not self.valid(record)):
            return None
        return record

    def put(self, key: str, record: dict[str, Any]) -> None:
        atomic_write(self.path(key), json.dumps(json_safe(record)).encode())


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python numbers, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def is_number(x: Any, or_none: bool = True) -> bool:
    """A finite int or float (not a bool), or None when ``or_none`` (:func:`json_safe` writes NaN as None): what a
    run record's metrics may hold (the run cache's validators)."""
    try:
        return (x is None and or_none) or (not isinstance(x, bool) and isinstance(x, (int, float))
                                           and math.isfinite(float(x)))
    except OverflowError:
        return False
