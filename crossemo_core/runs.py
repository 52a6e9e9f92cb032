"""Finished training runs: how a new model compares with the one in use, and the workspace folder that keeps runs.

A new model never replaces the one in use by itself. :func:`compare_models` scores both on the *same* test pairs
(the new run's test speakers) and checks the new run's Beta mixture; the result (:class:`RunComparison`) says
whether the new model is worth using and, when not, why (near chance, a degenerate mixture, behind the model in
use). A front end shows that card and lets the person decide.

:class:`RunStore` keeps every finished run in a workspace folder (``$CROSSEMO_WORKSPACE``, default ``workspace/``
beside the app), one folder per run::

    <workspace>/runs/<run id>/run.json   settings, data, per-epoch history, step losses, test metrics, comparison
    <workspace>/runs/<run id>/model.pt   the detector (SIR-HCL runs only), a normal crossemo checkpoint

Both files are written atomically (the JSON last), so a crash leaves either a whole run or none; a damaged run
folder is skipped with a note, never a crash.
"""
from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, schema_mismatch
from crossemo_core.errors import CheckpointError
from crossemo_core.paths import atomic_write_text
from crossemo_core.training import EpochEvent, StepEvent

__all__ = ["NEAR_CHANCE_AUC", "MixtureHealth", "ModelCheck", "RunComparison", "RunStore", "StoredRun",
           "check_model", "compare_models", "fmt_metric", "mixture_health"]

NEAR_CHANCE_AUC = 0.6
"""A model whose AUC on its test pairs is below this is called near chance and never offered as the default."""
MIN_COMPONENT_GAP = 0.05
"""Beta component means closer than this (on the [0, 1] score scale) are one component, not two."""
MIN_COMPONENT_WEIGHT = 0.02
FLAT_POSTERIOR_SD = 0.02
"""Posteriors of inconsistency whose spread over the test pairs is below this say the same thing for every pair."""
RUN_FILE, MODEL_FILE = "run.json", "model.pt"
RUN_FORMAT = "crossemo-run/1"
MAX_STORED_STEPS = 3000


# ---------------------------------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class MixtureHealth:
    """Whether a detector's Beta mixture separates consistent from inconsistent pairs at all.

    ``component_means``: (consistent, inconsistent) component means on the [0, 1] score scale (``(1 + cos) / 2``);
    ``posterior_sd``: spread of the posterior of inconsistency over the test pairs; ``problems``: plain words, empty
    when healthy."""

    separated: bool
    component_means: tuple[float, float] | None
    component_weights: tuple[float, float] | None
    posterior_sd: float
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ModelCheck:
    """One detector on one set of test pairs: AUC, TPR (inconsistent pairs caught), FPR (consistent pairs flagged),
    accuracy at the detector's own threshold, and its mixture's health."""

    auc: float
    tpr: float
    fpr: float
    accuracy: float
    n_pairs: int
    threshold: float
    mixture: MixtureHealth


@dataclass(frozen=True)
class RunComparison:
    """A new run's model against the model in use, on the new run's test pairs.

    ``flags``: reasons not to use the new model (near chance, degenerate mixture, behind the model in use);
    ``notes``: what to keep in mind (e.g. the model in use saw some of these test speakers in training);
    ``recommended``: True when the new model has no flag; a front end activates it only when the person says so.
    """

    candidate: ModelCheck
    current: ModelCheck | None
    flags: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def recommended(self) -> bool:
        return not self.flags

    @property
    def summary(self) -> str:
        """One sentence for the card's header."""
        c = self.candidate
        head = f"New model: AUC {fmt_metric(c.auc)} on {c.n_pairs} test pairs"
        if self.current is not None:
            head += f" (model in use: {fmt_metric(self.current.auc)} on the same pairs)"
        if self.flags:
            return head + ". Not recommended: " + "; ".join(self.flags) + "."
        return head + ". It looks sound; use it if you want it."

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": asdict(self.candidate), "current": None if self.current is None else asdict(self.current),
                "flags": list(self.flags), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunComparison":
        def check(m: dict[str, Any] | None) -> ModelCheck | None:
            if m is None:
                return None
            h = m["mixture"]
            health = MixtureHealth(bool(h["separated"]), _pair(h["component_means"]), _pair(h["component_weights"]),
                                   float(h["posterior_sd"]), tuple(h["problems"]))
            return ModelCheck(float(m["auc"]), float(m["tpr"]), float(m["fpr"]), float(m["accuracy"]),
                              int(m["n_pairs"]), float(m["threshold"]), health)

        candidate = check(d["candidate"])
        assert candidate is not None
        return cls(candidate, check(d.get("current")), tuple(d.get("flags", ())), tuple(d.get("notes", ())))


def _pair(v: Any) -> tuple[float, float] | None:
    return None if v is None else (float(v[0]), float(v[1]))


def fmt_metric(x: float | None) -> str:
    """A metric as shown to people: three decimals, or "n/a" when missing or undefined (NaN)."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def mixture_health(detector: Detector, p_inconsistent: np.ndarray) -> MixtureHealth:
    """Is the fitted Beta mixture two distinct components, and do its posteriors on ``p_inconsistent``'s pairs
    (``(N,)``) say different things for different pairs?"""
    problems: list[str] = []
    mix = detector.mixture
    sd = float(np.std(p_inconsistent)) if len(p_inconsistent) else float("nan")
    if mix is None:
        return MixtureHealth(False, None, None, sd, ("no fitted Beta mixture",))
    normal = int(mix.normal_component_)
    means = mix.means_
    m = (float(means[normal]), float(means[1 - normal]))
    w = (float(mix.weights_[normal]), float(mix.weights_[1 - normal]))
    if abs(m[0] - m[1]) < MIN_COMPONENT_GAP:
        problems.append(f"its two Beta components lie on top of each other (means {m[0]:.2f} and {m[1]:.2f})")
    if min(w) < MIN_COMPONENT_WEIGHT:
        problems.append(f"one Beta component holds almost no pairs (weights {w[0]:.2f} and {w[1]:.2f})")
    if not sd >= FLAT_POSTERIOR_SD:
        problems.append(f"its probability of inconsistency is flat (about {float(np.mean(p_inconsistent)):.2f} for "
                        f"every test pair)")
    return MixtureHealth(not problems, m, w, sd, tuple(problems))


def check_model(detector: Detector, pairs: PairDataset) -> ModelCheck:
    """Score ``detector`` on ``pairs`` (inconsistent = positive) and check its mixture."""
    from crossemo_core.evaluation import detection_metrics

    scored = detector.score(pairs)
    m = detection_metrics(pairs.is_abnormal, scored.p_abnormal, scored.predicted)
    return ModelCheck(float(m["auc"]), float(m["tpr"]), float(m["fpr"]), float(m["accuracy"]), int(m["n_pairs"]),
                      float(detector.threshold), mixture_health(detector, scored.p_abnormal))


def compare_models(candidate: Detector, current: Detector | None, test_pairs: PairDataset) -> RunComparison:
    """Both detectors on the same ``test_pairs`` (the new run's test speakers). The model in use is left out when
    it does not fit these features; a note says when it saw some of these speakers in training (its numbers are
    then optimistic)."""
    new = check_model(candidate, test_pairs)
    flags: list[str] = []
    notes: list[str] = []
    if new.auc is None or math.isnan(new.auc):
        flags.append("no AUC: the test pairs are all consistent or all inconsistent")
    elif not new.auc >= NEAR_CHANCE_AUC:
        flags.append(f"near chance (AUC {fmt_metric(new.auc)} < {NEAR_CHANCE_AUC})")
    flags.extend(f"degenerate mixture: {p}" for p in new.mixture.problems)
    old = None
    if current is not None and schema_mismatch(current.schema, test_pairs):
        notes.append("The model in use does not fit this data's features, so it could not be scored on these pairs.")
    elif current is not None:
        old = check_model(current, test_pairs)
        if new.auc < old.auc:
            flags.append(f"behind the model in use (AUC {fmt_metric(new.auc)} vs {fmt_metric(old.auc)})")
        seen = _seen_speakers(current, test_pairs)
        if seen:
            notes.append(f"The model in use was trained on {len(seen)} of these test speakers "
                         f"({', '.join(seen[:5])}{', ...' if len(seen) > 5 else ''}), so its numbers here are "
                         f"optimistic.")
    return RunComparison(new, old, tuple(flags), tuple(notes))


def _seen_speakers(detector: Detector, pairs: PairDataset) -> list[str]:
    speakers = (detector.metadata.get("split") or {}).get("speakers") or {}
    trained = {str(s) for part in ("train", "valid") for s in speakers.get(part, [])}
    return sorted(trained & {str(s) for s in set(pairs.speaker)})


# ---------------------------------------------------------------------------------------------------- workspace
@dataclass
class StoredRun:
    """One finished run as kept in the workspace (see :class:`RunStore`)."""

    run_id: str
    folder: Path
    created: str
    method: str
    state: str
    data_name: str
    data_kind: str
    elapsed: float
    settings: dict[str, Any]
    test_metrics: dict[str, Any]
    epochs: list[EpochEvent]
    steps: list[StepEvent]
    comparison: RunComparison | None
    has_model: bool
    schema: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    def detector(self) -> Detector:
        """The run's model (SIR-HCL runs); a one-line :class:`CheckpointError` when there is none or it is damaged."""
        if not self.has_model:
            raise CheckpointError(f"run {self.run_id} ({self.method}) has no model to use; only SIR-HCL runs do.")
        return Detector.load(self.model_path)

    def fits(self, data: PairDataset) -> bool:
        return self.schema is not None and not schema_mismatch(self.schema, data)

    def label(self) -> str:
        auc = self.test_metrics.get("auc")
        flag = "" if self.comparison is None or self.comparison.recommended else " [flagged]"
        return (f"{self.created[:16].replace('T', ' ')} · {self.method} · {self.data_name} · "
                f"{len([e for e in self.epochs if e.phase == 'select'])} epoch(s) · {self.state} · "
                f"test AUC {fmt_metric(auc)}{flag}")


class RunStore:
    """The runs kept in one workspace folder (``root/runs/<run id>/``); see the module docstring."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def runs_folder(self) -> Path:
        return self.root / "runs"

    def save(self, *, method: str, state: str, data_name: str, data_kind: str, elapsed: float,
             settings: dict[str, Any], test_metrics: dict[str, Any], epochs: Sequence[EpochEvent],
             steps: Sequence[StepEvent], comparison: RunComparison | None, detector: Detector | None) -> StoredRun:
        """Write a finished run (the model first, then ``run.json``); returns it as listed later."""
        created = datetime.now(timezone.utc).astimezone()
        run_id = f"{created:%Y%m%d-%H%M%S}-{re.sub(r'[^a-z0-9]+', '-', method.lower())}-{secrets.token_hex(3)}"
        folder = self.runs_folder / run_id
        folder.mkdir(parents=True, exist_ok=False)
        if detector is not None:
            detector.save(folder / MODEL_FILE)
        stride = max(1, math.ceil(len(steps) / MAX_STORED_STEPS))
        record = {
            "format": RUN_FORMAT, "run_id": run_id, "created": created.isoformat(timespec="seconds"),
            "method": method, "state": state, "data_name": data_name, "data_kind": data_kind,
            "elapsed": float(elapsed), "settings": settings, "test_metrics": _plain(test_metrics),
            "epochs": [asdict(e) for e in epochs], "steps": [asdict(s) for s in list(steps)[::stride]],
            "comparison": None if comparison is None else comparison.to_dict(),
            "has_model": detector is not None, "schema": None if detector is None else detector.schema,
        }
        atomic_write_text(folder / RUN_FILE, json.dumps(_plain(record), indent=1, allow_nan=True))
        return self._read(folder)

    def runs(self) -> tuple[list[StoredRun], list[str]]:
        """Every readable run, newest first, and one note per folder that could not be read."""
        if not self.runs_folder.is_dir():
            return [], []
        found, notes = [], []
        for folder in sorted(self.runs_folder.iterdir(), reverse=True):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                found.append(self._read(folder))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                notes.append(f"skipped {folder.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return found, notes

    def get(self, run_id: str) -> StoredRun:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", run_id or ""):
            raise CheckpointError(f"{run_id!r} is not a run id.")
        folder = self.runs_folder / run_id
        try:
            return self._read(folder)
        except FileNotFoundError:
            raise CheckpointError(f"no run {run_id} in {self.runs_folder}.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"run {run_id} is damaged ({type(exc).__name__}).") from None

    @staticmethod
    def _read(folder: Path) -> StoredRun:
        d = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        if d.get("format") != RUN_FORMAT:
            raise ValueError(f"not a {RUN_FORMAT} record")
        has_model = bool(d["has_model"]) and (folder / MODEL_FILE).is_file()
        return StoredRun(
            run_id=str(d["run_id"]), folder=folder, created=str(d["created"]), method=str(d["method"]),
            state=str(d["state"]), data_name=str(d["data_name"]), data_kind=str(d["data_kind"]),
            elapsed=float(d["elapsed"]), settings=dict(d["settings"]), test_metrics=dict(d["test_metrics"]),
            epochs=[EpochEvent(**e) for e in d["epochs"]], steps=[StepEvent(**s) for s in d["steps"]],
            comparison=None if d["comparison"] is None else RunComparison.from_dict(d["comparison"]),
            has_model=has_model, schema=d.get("schema"))


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays to Python values, tuples to lists, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
