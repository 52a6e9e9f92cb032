"""The bundled demo corpus: a synthetic set described by ``assets/demo/demo.json``.

The file holds the generator's arguments and a SHA-256 fingerprint of the arrays they produce, so the demo is
identical on every machine (and the bundled checkpoint stays valid); a generator change that alters the data is
caught by the fingerprint instead of silently breaking the shipped checkpoint.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from crossemo_core.data.container import PairDataset
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.errors import DataError

DEMO_SPEC = Path(__file__).resolve().parents[3] / "assets" / "demo" / "demo.json"


def fingerprint(data: PairDataset) -> str:
    """SHA-256 over every array and label of ``data`` (order-sensitive)."""
    h = hashlib.sha256()
    for seq in (*data.face, *data.voice):
        h.update(np.ascontiguousarray(seq, dtype=np.float32).tobytes())
    for arr in (data.face_label, data.voice_label, data.speaker.astype("U"), data.clip_id.astype("U")):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def load_demo(spec: str | Path | None = None) -> PairDataset:
    """Generate the demo corpus from its spec file and check its fingerprint."""
    path = Path(spec) if spec is not None else DEMO_SPEC
    if path.is_dir():
        path = path / "demo.json"
    try:
        content = json.loads(path.read_text())
        arguments = content["generator"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"the demo spec {path} is missing or unreadable: {exc}") from None
    if not isinstance(arguments, dict):
        raise DataError(f"the demo spec {path}: 'generator' must be a table of make_synthetic's arguments, not a "
                        f"{type(arguments).__name__}.")
    try:
        data = make_synthetic(**arguments)
    except (TypeError, ValueError) as exc:  # an unknown argument, a value out of range or too large
        raise DataError(f"the demo spec {path} has a bad generator argument: {exc}") from None
    expected = content.get("fingerprint")
    if expected and fingerprint(data) != expected:
        raise DataError(f"the demo data generated from {path} differ from the bundled fingerprint: the synthetic "
                        f"generator changed. Regenerate the demo and its checkpoint (scripts/make_demo.py).")
    return data
