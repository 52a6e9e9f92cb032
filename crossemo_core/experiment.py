"""High-level runs shared by the command line, the app and the benchmarks.

``load_corpus`` -> ``split_pairs`` (speaker-disjoint parts, protocol applied inside each part) -> ``Trainer`` ->
``Detector.evaluate``. ``cross_validate`` repeats this over speaker folds and seeds and reports mean +- sd.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crossemo_core.config import ExperimentConfig, preset_config
from crossemo_core.data.container import LABEL_SETS, PairDataset
from crossemo_core.data.labels import sentiment_to_7class
from crossemo_core.data.protocol import make_abnormal_pairs, speaker_disjoint_split, speaker_folds
from crossemo_core.errors import DataError
from crossemo_core.evaluation import mean_sd
from crossemo_core.executors import Executor, LocalExecutor
from crossemo_core.training import Trainer, TrainingCallback, TrainingResult

DATASETS = ("demo", "ravdess", "misa", "mmsa", "csd")


def load_corpus(dataset: str, root: str | Path | None = None, report: list[str] | None = None,
                progress: Callable[[int, int], None] | None = None, n_classes: int = 3,
                **options: Any) -> PairDataset:
    """Load a corpus by dataset kind.

    ``demo``: the bundled synthetic set (``root`` ignored unless given); ``ravdess``: a RAVDESS-layout folder;
    ``misa``: a MISA/MMIM pickle; ``mmsa``: an MMSA ``aligned_50.pkl``/``unaligned_50.pkl``; ``csd``: a folder
    with ``face.csd``, ``voice.csd`` and ``labels.csd`` (or the three paths in ``options``).
    ``n_classes=7`` relabels by the paper's Table I (needs a continuous sentiment score).
    """
    corpus = _load_corpus(dataset, root, report, progress, **options)
    if n_classes == 3:
        return corpus
    if n_classes != 7:
        raise DataError(f"classes must be 3 or 7, not {n_classes}.")
    if corpus.sentiment is None:
        raise DataError(f"{corpus.name} has no continuous sentiment score, so it has no 7-class labels "
                        f"(Table I needs scores in [-3, 3]).")
    labels = sentiment_to_7class(corpus.sentiment)
    return corpus.with_labels(labels, labels, LABEL_SETS[7])


def _load_corpus(dataset: str, root: str | Path | None, report: list[str] | None,
                 progress: Callable[[int, int], None] | None, **options: Any) -> PairDataset:
    from crossemo_core.data import loaders

    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    if dataset == "demo":
        return loaders.load_demo(root)
    if root is None:
        raise DataError(f"dataset {dataset!r} needs --root PATH.")
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root} does not exist.")
    if dataset == "ravdess":
        return loaders.load_ravdess(root, report=report, progress=progress, **options)
    if dataset == "misa":
        return loaders.load_misa(root, report=report, **options)
    if dataset == "mmsa":
        return loaders.load_mmsa(root, report=report, **options)
    face, voice, labels = (options.pop(k, None) for k in ("face_csd", "voice_csd", "labels_csd"))
    if root.is_dir():
        face, voice, labels = (face or root / "face.csd", voice or root / "voice.csd", labels or root / "labels.csd")
    return loaders.load_csd(face, voice, labels, report=report, **options)


def protocol_seed(seed: int, part: str) -> int:
    """Each split part gets its own protocol seed, derived from the run seed."""
    return seed * 1000 + {"train": 1, "valid": 2, "test": 3, "all": 4}[part]


def apply_protocol(parts: dict[str, PairDataset], rate: float, seed: int) -> dict[str, PairDataset]:
    """Make abnormal pairs inside every part (partners come from the same speaker, so never cross parts)."""
    return {name: make_abnormal_pairs(part, rate, protocol_seed(seed, name))[0] for name, part in parts.items()}


def official_folds(corpus: PairDataset) -> dict[str, np.ndarray] | None:
    """The corpus's own train/valid/test indices when it ships official folds (MMSA), else None."""
    if corpus.official_split is None:
        return None
    return {name: np.flatnonzero(corpus.official_split == name) for name in ("train", "valid", "test")}


def config_for(corpus: PairDataset, preset: str = "fast", **overrides: Any) -> ExperimentConfig:
    """:func:`~crossemo_core.config.preset_config` for ``corpus``: its feature dimensions, and a head with one output
    per training label (the classes, or the emotions with ``training_labels="emotions"``)."""
    _, _, names = corpus.training_labels(overrides.get("training_labels", "classes"))
    return preset_config(preset, corpus.face_dim, corpus.voice_dim, len(names), **overrides)


def split_pairs(corpus: PairDataset, seed: int = 0, rate: float = 0.5,
                fold: dict[str, np.ndarray] | None = None) -> dict[str, PairDataset]:
    """Speaker-disjoint train/valid/test (3:1:1 by ``seed``, or the given ``fold``) with abnormal pairs made."""
    indices = fold if fold is not None else speaker_disjoint_split(corpus.speaker, seed=seed)
    for name in ("train", "valid", "test"):
        if len(indices[name]) == 0:
            raise DataError(f"the {name} part of the split is empty; the corpus has too few speakers.")
    return apply_protocol({name: corpus.subset(indices[name]) for name in ("train", "valid", "test")}, rate, seed)


@dataclass
class RunResult:
    """One training run and its test metrics."""

    training: TrainingResult
    test_metrics: dict[str, Any]
    parts: dict[str, PairDataset]


def train_and_test(corpus: PairDataset, config: ExperimentConfig, fold: dict[str, np.ndarray] | None = None,
                   callbacks: Sequence[TrainingCallback] = ()) -> RunResult:
    """Split, train (selecting on valid), fit the verdict, and evaluate on the test part."""
    parts = split_pairs(corpus, seed=config.train.seed, rate=config.train.abnormal_rate, fold=fold)
    trainer = Trainer(config, callbacks=list(callbacks))
    result = trainer.fit(parts["train"], parts["valid"], metadata={
        "split_speakers": {k: sorted(set(v.speaker.tolist())) for k, v in parts.items()}})
    return RunResult(result, result.detector.evaluate(parts["test"]), parts)


@dataclass(frozen=True)
class FoldTask:
    """One fold of one seed of a cross-validation: an independent task for an executor."""

    seed: int
    fold: int
    n_folds: int
    preset: str
    overrides: tuple[tuple[str, Any], ...]


def run_fold(corpus: PairDataset, task: FoldTask) -> dict[str, Any]:
    """Train on the fold's train speakers (selecting on its valid speakers) and return its test metrics."""
    fold = speaker_folds(corpus.speaker, n_folds=task.n_folds, seed=task.seed)[task.fold]
    config = config_for(corpus, task.preset, seed=task.seed, **dict(task.overrides))
    return train_and_test(corpus, config, fold=fold).test_metrics


def cross_validate(corpus: PairDataset, preset: str = "fast", seeds: Sequence[int] = (0, 1, 2), n_folds: int = 5,
                   on_run: Callable[[int, int, dict[str, Any]], None] | None = None,
                   executor: Executor | None = None, **overrides: Any) -> dict[str, Any]:
    """Speaker-disjoint cross-validation over folds and seeds; per-seed metrics are pooled over folds' test pairs
    by averaging fold metrics, then mean +- sd is taken over seeds. Each fold of each seed is one task of
    ``executor`` (default: one after another in this process); every executor gives the same numbers."""
    if "seed" in overrides:
        raise DataError("cross-validation runs every seed of ``seeds``; a 'seed' setting would be ignored, so give "
                        "the seeds instead (--seeds).")
    settings = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
    tasks = [FoldTask(seed, k, n_folds, preset, settings) for seed in seeds for k in range(n_folds)]
    config_for(corpus, preset, **overrides)  # a bad setting fails here, before any task starts
    speaker_folds(corpus.speaker, n_folds=n_folds, seed=tasks[0].seed)  # as does a corpus with too few speakers

    def done(index: int, metrics: dict[str, Any]) -> None:
        if on_run is not None:
            on_run(tasks[index].seed, tasks[index].fold, metrics)

    with contextlib.nullcontext(executor) if executor is not None else LocalExecutor() as runner:
        metrics = runner.map(run_fold, tasks, shared=corpus, on_done=done)
    per_seed = []
    for seed in seeds:
        fold_metrics = [m for t, m in zip(tasks, metrics) if t.seed == seed]
        per_seed.append({key: value["mean"] for key, value in mean_sd(fold_metrics).items()
                         if isinstance(value, dict) and "mean" in value})
    return {"per_seed": per_seed, "summary": mean_sd(per_seed), "seeds": list(seeds), "n_folds": n_folds,
            "preset": preset, "overrides": {k: v for k, v in overrides.items() if v is not None}}
