"""A trained detector: network + normalisation + fitted Beta mixture + threshold, and its checkpoint file.

Checkpoint file: ``torch.save({"format": ..., "weights": state_dict, "meta": json_text})``, read back with
``torch.load(weights_only=True)`` so loading never executes code. ``meta`` holds the config, the feature schema
(names, dimensions, extractor ids and versions, classes), normalisation statistics, the Beta mixture parameters,
the decision threshold and the protocol/training metadata. Writes are atomic (temp file + rename).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossemo_core.batching import FeatureNormalizer, PairTensors
from crossemo_core.config import ExperimentConfig
from crossemo_core.data.container import PairDataset
from crossemo_core.data.labels import anomaly_type
from crossemo_core.errors import CheckpointError, CrossemoError
from crossemo_core.evaluation import detection_metrics, per_type_metrics
from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.model import GLOBAL_RNG_LOCK, SIRHCL
from crossemo_core.model_files import one_line, read_torch_file
from crossemo_core.paths import atomic_writer

CHECKPOINT_FORMAT = "crossemo-checkpoint/1"
SCORING_BATCH = 1024


def feature_schema(data: PairDataset) -> dict[str, Any]:
    """What a checkpoint needs from data to be usable on it."""
    return {"face_feature_names": list(data.face_feature_names), "voice_feature_names": list(data.voice_feature_names),
            "face_dim": data.face_dim, "voice_dim": data.voice_dim, "class_names": list(data.class_names),
            "extractor": dict(data.extractor)}


def schema_mismatch(expected: dict[str, Any], data: PairDataset) -> list[str]:
    """Human-readable differences between a checkpoint's schema and ``data``'s; empty when compatible."""
    found = feature_schema(data)
    problems = []
    for side in ("face", "voice"):
        if expected[f"{side}_dim"] != found[f"{side}_dim"]:
            problems.append(f"{side} features: checkpoint expects {expected[f'{side}_dim']} columns, data has "
                            f"{found[f'{side}_dim']}")
        elif expected[f"{side}_feature_names"] != found[f"{side}_feature_names"]:
            problems.append(f"{side} feature names differ from the checkpoint's")
    if expected["class_names"] != found["class_names"]:
        problems.append(f"classes: checkpoint {expected['class_names']}, data {found['class_names']}")
    for side, version in expected.get("extractor", {}).items():
        if found["extractor"].get(side, version) != version:
            problems.append(f"{side} extractor: checkpoint {version}, data {found['extractor'][side]}")
    return problems


@dataclass
class ScoredPairs:
    """Scores of N pairs: cosine similarity ``(N,)``, posterior of inconsistency ``(N,)``, verdict ``(N,)`` bool."""

    similarity: np.ndarray
    p_abnormal: np.ndarray
    predicted: np.ndarray


@dataclass
class Detector:
    """Everything needed to score new pairs the way the training run did."""

    config: ExperimentConfig
    model: SIRHCL
    normalizer: FeatureNormalizer
    schema: dict[str, Any]
    mixture: BetaMixture | None = None
    threshold: float = 0.5  # verdict "abnormal" when p_abnormal >= threshold (0.5: the paper's posterior rule)
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ scoring
    def check_compatible(self, data: PairDataset) -> None:
        problems = schema_mismatch(self.schema, data)
        if problems:
            raise CheckpointError(f"the checkpoint does not fit {data.name}: " + "; ".join(problems) + ".")

    @torch.no_grad()
    def embed(self, data: PairDataset, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """Residual embeddings of every pair: face ``(N, E)`` and voice ``(N, E)`` (eval mode)."""
        self.check_compatible(data)
        device = torch.device(device)
        tensors = PairTensors.build(data, self.normalizer)
        self.model.to(device).eval()
        faces, voices = [], []
        for index in tensors.batches(SCORING_BATCH, shuffle=False, drop_singletons=False):
            f, fl, v, vl, _, _ = tensors.batch(index, device)
            faces.append(self.model.embed_face(f, fl).cpu())
            voices.append(self.model.embed_voice(v, vl).cpu())
        return torch.cat(faces).numpy(), torch.cat(voices).numpy()

    def similarity(self, data: PairDataset, device: torch.device | str = "cpu") -> np.ndarray:
        """``(N,)`` cosine similarity of each pair's face and voice embeddings, in [-1, 1]."""
        face, voice = self.embed(data, device)
        return cosine_rows(face, voice)

    def posterior_abnormal(self, similarity: np.ndarray) -> np.ndarray:
        """``(N,)`` posterior probability of inconsistency from the fitted Beta mixture."""
        if self.mixture is None:
            raise CheckpointError("this detector has no fitted Beta mixture yet; train it to the end first.")
        return self.mixture.posterior_abnormal(similarity_to_score(similarity))

    def score(self, data: PairDataset, device: torch.device | str = "cpu") -> ScoredPairs:
        sim = self.similarity(data, device)
        p = self.posterior_abnormal(sim)
        return ScoredPairs(similarity=sim, p_abnormal=p, predicted=p >= self.threshold)

    def evaluate(self, data: PairDataset, device: torch.device | str = "cpu") -> dict[str, Any]:
        """Metrics on ``data`` (abnormal = positive) with per anomaly type results."""
        scored = self.score(data, device)
        metrics = detection_metrics(data.is_abnormal, scored.p_abnormal, scored.predicted)
        types = anomaly_type(data.face_label, data.voice_label, data.class_names)
        metrics["per_type"] = per_type_metrics(types, scored.p_abnormal, scored.predicted)
        return metrics

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": self.config.to_dict(),
            "schema": self.schema,
            "normalizer": self.normalizer.to_dict(),
            "mixture": None if self.mixture is None else self.mixture.get_parameters(),
            "threshold": self.threshold,
            "metadata": self.metadata,
        }
        payload = {"format": CHECKPOINT_FORMAT, "weights": self.model.state_dict(),
                   "meta": json.dumps(meta, default=_json_default)}
        with atomic_writer(path) as f:
            torch.save(payload, f)
        return path

    @classmethod
    def load(cls, path: str | Path, map_location: str = "cpu") -> "Detector":
        """Read a checkpoint without executing code; clear errors for missing, corrupt or foreign files."""
        path = Path(path)
        payload = read_torch_file(path, "crossemo checkpoint", map_location)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a crossemo checkpoint (format {CHECKPOINT_FORMAT} expected).")
        try:
            meta = json.loads(payload["meta"])
            config = ExperimentConfig.from_dict(meta["config"])
            with GLOBAL_RNG_LOCK:  # its random start is overwritten; only keep clear of runs being seeded
                model = SIRHCL(config.model)
            model.load_state_dict(payload["weights"])
            model.eval()
            mixture = None if meta["mixture"] is None else BetaMixture.from_parameters(meta["mixture"])
            threshold = float(meta["threshold"])
            metadata = meta.get("metadata", {})
            if not math.isfinite(threshold):
                raise CheckpointError(f"its threshold is {threshold}")
            if not isinstance(metadata, dict):
                raise CheckpointError(f"its metadata is a {type(metadata).__name__}, not a table")
            return cls(config=config, model=model, normalizer=FeatureNormalizer.from_dict(meta["normalizer"]),
                       schema=_checked_schema(meta["schema"], config), mixture=mixture, threshold=threshold,
                       metadata=metadata)
        except CrossemoError as exc:  # a setting out of range in the stored config
            raise CheckpointError(f"{path} is damaged or from an incompatible version: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - KeyError, ValueError, RuntimeError (load_state_dict), ...
            raise CheckpointError(f"{path} is damaged or from an incompatible version ({one_line(exc)}).") from None


def _checked_schema(schema: Any, config: ExperimentConfig) -> dict[str, Any]:
    """A stored :func:`feature_schema`, checked against the network's sizes (:class:`CheckpointError` otherwise)."""
    if not isinstance(schema, dict):
        raise CheckpointError(f"its feature schema is a {type(schema).__name__}, not a table")
    for side, dim in (("face", config.model.face_dim), ("voice", config.model.voice_dim)):
        names = schema.get(f"{side}_feature_names")
        if schema.get(f"{side}_dim") != dim:
            raise CheckpointError(f"its feature schema gives {schema.get(f'{side}_dim')!r} {side} columns, its "
                                  f"network takes {dim}")
        if not (isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names)):
            raise CheckpointError(f"its feature schema lacks the names of its {dim} {side} columns")
    classes, extractor = schema.get("class_names"), schema.get("extractor", {})
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise CheckpointError("its feature schema lacks the class names")
    if not (isinstance(extractor, dict) and all(isinstance(v, str) for v in extractor.values())):
        raise CheckpointError("its feature schema's extractor versions are not a table of names")
    return schema


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``(N, E)`` arrays."""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-8)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
