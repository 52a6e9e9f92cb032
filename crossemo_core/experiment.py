"""High-level runs shared by the command line, the app and the benchmarks.

``load_corpus`` -> :func:`run`: :func:`split_for` (speaker-disjoint parts, the corpus's official folds where it has
them, abnormal pairs made inside each part) -> train a method (:mod:`crossemo_core.baselines`, SIR-HCL by default,
on the one :class:`~crossemo_core.training.Trainer`) -> test metrics. :func:`cross_validate` runs :func:`run` over
speaker folds and seeds (one executor task each) and reports mean +- sd.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, replace
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
from crossemo_core.training import TrainingControl, TrainingResult

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
    if None in (face, voice, labels):
        raise DataError(f"{root} is a file, not a folder: a CMU-SDK corpus is the folder holding face.csd, voice.csd "
                        f"and labels.csd.")
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


@dataclass(frozen=True)
class SplitRecord:
    """How a run's pairs were split into train/valid/test; saved with every checkpoint (``metadata["split"]``).

    ``kind``: ``official`` (the corpus's own folds, e.g. MMSA's), ``fold`` (speaker fold ``fold`` of ``n_folds``
    made with ``seed``) or ``seeded`` (a 3:1:1 speaker-disjoint split made with ``seed``). Abnormal pairs are made
    inside each part at ``rate``."""

    kind: str
    seed: int
    rate: float
    fold: int | None
    n_folds: int | None
    speakers: dict[str, list[str]]
    test_protocol: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_for(corpus: PairDataset, seed: int, rate: float, fold: int | None = None,
              n_folds: int | None = None) -> tuple[dict[str, PairDataset], SplitRecord]:
    """The parts of one run: speaker fold ``fold`` of ``n_folds`` when given, else the corpus's official folds
    when it has them, else a seeded 3:1:1 speaker-disjoint split; with the record that says which."""
    if n_folds:
        if fold is None or not 0 <= fold < n_folds:
            raise DataError(f"fold must lie in 0..{n_folds - 1}, not {fold}.")
        kind, indices = "fold", speaker_folds(corpus.speaker, n_folds=n_folds, seed=seed)[fold]
    elif (official := official_folds(corpus)) is not None:
        kind, indices = "official", official
    else:
        kind, indices = "seeded", None
    parts = split_pairs(corpus, seed=seed, rate=rate, fold=indices)
    record = SplitRecord(kind=kind, seed=seed, rate=rate, fold=fold if n_folds else None, n_folds=n_folds or None,
                         speakers={k: sorted(set(map(str, v.speaker.tolist()))) for k, v in parts.items()},
                         test_protocol=dict(parts["test"].protocol))
    return parts, record


@dataclass
class RunResult:
    """One run: its parts and split record, the fitted scorer, its test scores and metrics, and (for methods
    trained by the :class:`~crossemo_core.training.Trainer` into a detector) the training result."""

    parts: dict[str, PairDataset]
    split: SplitRecord
    scorer: Any
    test_scores: Any
    test_metrics: dict[str, Any]
    training: TrainingResult | None
    fit_seconds: float
    score_seconds: float

    @property
    def detector(self) -> Any:
        """The trained :class:`~crossemo_core.detector.Detector` (SIR-HCL and the methods on its network)."""
        return getattr(self.scorer, "detector", None)


def run(corpus: PairDataset, config: ExperimentConfig, *, method: str = "sir-hcl",
        method_settings: dict[str, Any] | None = None, fold: int | None = None, n_folds: int | None = None,
        control: TrainingControl | None = None, metadata: dict[str, Any] | None = None) -> RunResult:
    """The one way a run is assembled (command line, cross-validation, benchmark, the app's jobs, the Python API):
    split (:func:`split_for`, by ``config.train.seed`` and ``abnormal_rate``), train ``method`` selecting on the
    valid part (``control``: callbacks, stop flag, Ctrl-C), score the test part. A detector's metadata gets the
    split record (and ``metadata``), so a saved checkpoint says which speakers it never saw."""
    from crossemo_core.baselines import evaluate_scores

    parts, split = split_for(corpus, config.train.seed, config.train.abnormal_rate, fold, n_folds)
    started = time.perf_counter()
    scorer = fit_method(method, config, method_settings or {}, parts["train"], parts["valid"], control)
    fitted = time.perf_counter()
    scores = scorer.score(parts["test"])
    metrics = evaluate_scores(parts["test"], scores)
    result = RunResult(parts=parts, split=split, scorer=scorer, test_scores=scores, test_metrics=metrics,
                       training=getattr(scorer, "training", None), fit_seconds=fitted - started,
                       score_seconds=time.perf_counter() - fitted)
    if result.detector is not None:
        result.detector.metadata.update({**(metadata or {}), "split": split.to_dict(),
                                         "split_speakers": split.speakers, "test_protocol": split.test_protocol})
    return result


def fit_method(method: str, config: ExperimentConfig, method_settings: dict[str, Any], train: PairDataset,
               valid: PairDataset, control: TrainingControl | None = None) -> Any:
    """Fit ``method`` on ``train`` (selecting on ``valid``): one network, or ``config.train.runs`` of them with the
    seeds of :meth:`~crossemo_core.config.TrainConfig.run_seeds`, read as one
    (:class:`~crossemo_core.baselines.base.EnsembleScorer`)."""
    from crossemo_core.baselines import EnsembleScorer, make_method

    members = []
    for seed in config.train.run_seeds():
        member = config if config.train.runs == 1 else replace(config, train=replace(config.train, seed=seed, runs=1))
        members.append(make_method(method, member, **method_settings).fit(train, valid, control))
        if control is not None and control.stop_event is not None and control.stop_event.is_set():
            break  # stopped: the networks trained so far (an interrupted one says so in its training result)
    return members[0] if len(members) == 1 else EnsembleScorer.from_members(members, train, valid)


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
    config = config_for(corpus, task.preset, seed=task.seed, **dict(task.overrides))
    return run(corpus, config, fold=task.fold, n_folds=task.n_folds).test_metrics


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
