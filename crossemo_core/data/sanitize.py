"""Non-finite feature values: count them, then repair or refuse (a loader option)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from crossemo_core.errors import DataError

NonFinitePolicy = Literal["repair", "refuse"]


@dataclass(frozen=True)
class NonFiniteReport:
    """How many NaN/inf values one modality had and in how many sequences."""

    modality: str
    n_values: int
    n_sequences: int

    def __str__(self) -> str:
        return f"{self.modality}: {self.n_values} {NONFINITE} value(s) in {self.n_sequences} sequence(s)"


NONFINITE = "NaN/inf"
"""How a :class:`NonFiniteReport` names the values (a loader's note about them holds it)."""


def sanitize_sequences(sequences: list[np.ndarray], modality: str, policy: NonFinitePolicy = "repair",
                       source: str = "") -> tuple[list[np.ndarray], NonFiniteReport]:
    """Return float32 copies of ``sequences`` with NaN/inf handled by ``policy``.

    ``repair`` replaces NaN by 0 and +-inf by the largest finite magnitude of float32 clipped to +-1e6 (features are
    standardised later, so 0 is the neutral value); ``refuse`` raises :class:`DataError` naming the count. A
    modality whose every value is NaN or inf raises :class:`DataError` under either policy.
    """
    if policy not in ("repair", "refuse"):
        raise ValueError(f"non-finite policy must be 'repair' or 'refuse', not {policy!r}")
    out: list[np.ndarray] = []
    n_values = n_sequences = 0
    for seq in sequences:
        arr = np.asarray(seq, dtype=np.float32)
        bad = ~np.isfinite(arr)
        if bad.any():
            n_values += int(bad.sum())
            n_sequences += 1
            if policy == "repair":
                arr = np.nan_to_num(arr, nan=0.0, posinf=1e6, neginf=-1e6)
        out.append(arr)
    report = NonFiniteReport(modality, n_values, n_sequences)
    where = f" in {source}" if source else ""
    if n_values and n_values == sum(a.size for a in out):
        raise DataError(f"{modality}: every one of its {n_values} feature values is NaN or inf{where}; there is "
                        f"nothing to repair: those features are missing.")
    if n_values and policy == "refuse":
        raise DataError(f"{report}{where}. To replace them (NaN -> 0, inf -> +-1e6), give --nonfinite repair "
                        f"(nonfinite='repair' in Python).")
    return out, report
