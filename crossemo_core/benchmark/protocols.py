"""What one benchmark run is, and how it is run: data, split, method, metrics.

A :class:`RunSpec` fixes everything that determines a result (data and its transforms, abnormal rate, seed, fold,
method and its settings, config overrides); :func:`execute` trains the method on the fold's train part (selecting
on valid) and evaluates it on the test part. Runs are speaker-disjoint: ``n_folds >= 3`` uses
:func:`~crossemo_core.data.protocol.speaker_folds` (each fold's speakers are the test part once; the folds depend on
the seed), ``n_folds == 0`` one 3:1:1 speaker-disjoint split per seed (or the corpus's official folds).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from crossemo_core.baselines import METHODS
from crossemo_core.benchmark.cache import is_number
from crossemo_core.data.calibration import calibrate_speakers
from crossemo_core.data.container import PairDataset
from crossemo_core.data.sanitize import NONFINITE
from crossemo_core.errors import DataError
from crossemo_core.evaluation import per_type_metrics
from crossemo_core.experiment import config_for, load_corpus, run

CACHE_VERSION = 1
"""Bump when a change of code changes results, so old cached runs are not reused."""
ENSEMBLE_REVISION = 1
"""Bumped when how :class:`~crossemo_core.baselines.base.EnsembleScorer` reads several networks changes (part of
the cache key of runs with ``--set runs=N``, N > 1)."""
ROC_GRID = np.linspace(0.0, 1.0, 101)

FINE_GRAINED_CASES = ("pos-neg", "neu-neg", "neg(s)-pos(s)", "pos-neu", "neg(w)-pos(w)", "same valence")
"""Table V's five fine-grained anomaly cases on 7 classes, plus the abnormal pairs in none of them (two intensities
of the same valence, e.g. weak and strong positive)."""


@dataclass(frozen=True)
class DataSpec:
    """A corpus and its transforms: ``classes`` 3 or 7 (Table I), ``calibration`` "none", "neutral" or "all"."""

    dataset: str
    root: str | None = None
    classes: int = 3
    calibration: str = "none"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        extra = [f"{self.classes} classes"] if self.classes != 3 else []
        extra += [f"calibrated on {self.calibration} clips"] if self.calibration != "none" else []
        return self.dataset + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class RunSpec:
    """One training and test run. ``row`` and ``column`` place it in a suite's tables; they are not part of
    the cache key, so a run shared by two tables or suites is computed once."""

    method: str
    data: DataSpec
    seed: int
    fold: int
    n_folds: int
    preset: str
    rate: float = 0.5
    method_settings: tuple[tuple[str, Any], ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()
    row: str = field(default="", compare=False)
    column: str = field(default="", compare=False)

    def identity(self) -> dict[str, Any]:
        """Everything that determines the result: the spec without its table place and data path, the method's
        settings with its defaults filled in and its code revision, and a hash of the corpus's content (so changed
        data or a changed loader default is never served from the cache, and the same data under another path is)."""
        d = asdict(self)
        for k in ("row", "column"):
            d.pop(k)
        d["data"].pop("root")
        klass = METHODS[self.method]
        defaults = {f.name: f.default for f in fields(klass) if f.name != "config"}
        d["method_settings"] = sorted({**defaults, **dict(self.method_settings)}.items())
        identity = {"version": CACHE_VERSION, "corpus": corpus_fingerprint(self.run_data()),
                    "method_revision": klass.revision, **d}
        if dict(self.overrides).get("runs", 1) > 1:
            identity["ensemble_revision"] = ENSEMBLE_REVISION
        return identity

    def run_data(self) -> DataSpec:
        """The data of this run: :attr:`data`, with a per-fold voice reader (``voice_features="reader-folds:DIR"``)
        resolved to this run's own, ``DIR/s{seed}-f{fold}.pt``."""
        return fold_data(self.data, self.seed, self.fold if self.n_folds else None)

    def key(self) -> str:
        """Cache key: a hash of :meth:`identity`."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return f"{self.method}-{self.data.dataset}-s{self.seed}-f{self.fold}-" + hashlib.sha256(
            text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------- data
_CORPORA: dict[DataSpec, PairDataset] = {}
_FINGERPRINTS: dict[DataSpec, str] = {}
_REPAIRS: dict[DataSpec, list[str]] = {}
"""The loader's notes of NaN/inf values it repaired, per corpus :func:`corpus_for` loaded."""


def synthetic_corpus(name: str) -> PairDataset:
    """The generated corpora of the benchmark: ``synthetic-mosei`` (MOSEI size) and ``synthetic-tiny`` (CI)."""
    from crossemo_core.data.loaders.synthetic import MOSEI_SIZE, make_synthetic

    if name == "synthetic-mosei":
        return make_synthetic(**MOSEI_SIZE, seed=0, name="MOSEI-size (synthetic)")
    return make_synthetic(n_speakers=10, clips_per_speaker=12, face_dim=4, voice_dim=5, face_length=(2, 5),
                          voice_length=(3, 6), difficulty="easy", seed=0, name="tiny (synthetic)")


FOLD_READERS = "reader-folds:"
"""``voice_features="reader-folds:DIR"``: every (seed, fold) run reads its voice with its own reader,
``DIR/s{seed}-f{fold}.pt`` (``scripts/train_voice_reader_folds.py``: trained without the fold's test actors)."""


def fold_data(data: DataSpec, seed: int, fold: int | None) -> DataSpec:
    """``data`` with ``reader-folds:DIR`` replaced by the reader of (``seed``, ``fold``); other data unchanged."""
    options = dict(data.options)
    spec = str(options.get("voice_features", ""))
    if not spec.startswith(FOLD_READERS):
        return data
    if fold is None:
        raise DataError("voice_features='reader-folds:...' needs speaker folds (one reader per seed and fold).")
    path = Path(spec[len(FOLD_READERS):]).expanduser() / f"s{seed}-f{fold}.pt"
    if not path.is_file():
        raise DataError(f"no per-fold voice reader {path}; train it with scripts/train_voice_reader_folds.py "
                        f"--seeds {seed}.")
    return DataSpec(data.dataset, data.root, data.classes, data.calibration,
                    tuple(sorted({**options, "voice_features": f"reader:{path}"}.items())))


def corpus_for(data: DataSpec) -> PairDataset:
    """The corpus of ``data`` (loaded once per process), relabelled to 7 classes and calibrated when asked. With
    per-fold readers and no fold given (the report header's counts), the reader of seed 0, fold 0."""
    data = fold_data(data, 0, 0)
    if data not in _CORPORA:
        if data.dataset.startswith("synthetic-"):
            corpus = synthetic_corpus(data.dataset)
            if data.classes == 7:
                corpus = _seven_classes(corpus)
        else:
            notes: list[str] = []
            corpus = load_corpus(data.dataset, data.root, n_classes=data.classes, report=notes, **dict(data.options))
            _REPAIRS[data] = [n for n in notes if NONFINITE in n]
        if data.calibration != "none":
            corpus, _ = calibrate_speakers(corpus, data.calibration)
        _CORPORA[data] = corpus
    return _CORPORA[data]


def corpus_fingerprint(data: DataSpec) -> str:
    """A hash of the content of ``data``'s corpus: features, labels, speakers, clip ids, names, extractor ids."""
    if data not in _FINGERPRINTS:
        corpus = corpus_for(data)
        digest = hashlib.sha256(json.dumps([corpus.name, corpus.class_names, corpus.extractor, corpus.face_feature_names,
                                            corpus.voice_feature_names], sort_keys=True).encode())
        for array in (corpus.face_label, corpus.voice_label, corpus.speaker, corpus.clip_id):
            digest.update(np.ascontiguousarray(array).tobytes())
        for sequences in (corpus.face, corpus.voice):
            for x in sequences:
                digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
        _FINGERPRINTS[data] = digest.hexdigest()[:16]
    return _FINGERPRINTS[data]


def _seven_classes(corpus: PairDataset) -> PairDataset:
    from crossemo_core.data.container import LABEL_SETS
    from crossemo_core.data.labels import sentiment_to_7class

    labels = sentiment_to_7class(corpus.sentiment)
    return corpus.with_labels(labels, labels, LABEL_SETS[7])


def fine_grained_case(face_label: np.ndarray, voice_label: np.ndarray) -> np.ndarray:
    """Per pair of 7-class labels (0 = strong negative .. 3 = neutral .. 6 = strong positive): "normal" or one of
    :data:`FINE_GRAINED_CASES`."""
    out = []
    for f, v in zip(np.asarray(face_label), np.asarray(voice_label)):
        lo, hi = sorted((int(f), int(v)))
        if lo == hi:
            out.append("normal")
        elif (lo, hi) == (0, 6):
            out.append("neg(s)-pos(s)")
        elif (lo, hi) == (2, 4):
            out.append("neg(w)-pos(w)")
        elif lo < 3 < hi:
            out.append("pos-neg")
        elif lo == 3:
            out.append("pos-neu")
        elif hi == 3:
            out.append("neu-neg")
        else:
            out.append("same valence")
    return np.array(out)


# ---------------------------------------------------------------------------------------------------- runs
def execute(spec: RunSpec) -> dict[str, Any]:
    """Train and test one run; returns a JSON-able record (metrics, ROC on a fixed FPR grid, timings, protocol)."""
    corpus = corpus_for(spec.run_data())
    config = config_for(corpus, spec.preset, seed=spec.seed, abnormal_rate=spec.rate, **dict(spec.overrides))
    outcome = run(corpus, config, method=spec.method, method_settings=dict(spec.method_settings),
                  fold=spec.fold if spec.n_folds else None, n_folds=spec.n_folds or None)
    parts, test, scores, metrics = outcome.parts, outcome.parts["test"], outcome.test_scores, outcome.test_metrics
    if corpus.n_classes == 7:
        metrics["per_case"] = per_type_metrics(fine_grained_case(test.face_label, test.voice_label),
                                               scores.p_abnormal, scores.predicted)
    return {
        "key": spec.key(),
        "spec": spec.identity(),
        "metrics": metrics,
        "roc_tpr": roc_on_grid(test.is_abnormal, scores.p_abnormal).round(5).tolist(),
        "fit_seconds": round(outcome.fit_seconds, 3),
        "score_seconds": round(outcome.score_seconds, 3),
        "sizes": {name: len(part) for name, part in parts.items()},
        "test_abnormal": int(test.is_abnormal.sum()),
        "fallback_partners": {name: int(part.protocol.get("n_fallback", 0)) for name, part in parts.items()},
    }


def is_run_record(record: dict[str, Any]) -> bool:
    """Whether ``record`` has the shape :func:`execute` gives (a damaged cache file may hold any JSON)."""
    def numbers(d: Any) -> bool:  # metrics: numbers, None, or tables of them (per anomaly type)
        return isinstance(d, dict) and all(is_number(v) or numbers(v) for v in d.values())

    try:
        return (isinstance(record.get("key"), str) and isinstance(record.get("spec"), dict)
                and isinstance(record["spec"].get("seed"), int)
                and numbers(record.get("metrics")) and "auc" in record["metrics"]
                and isinstance(record.get("roc_tpr"), list) and len(record["roc_tpr"]) == len(ROC_GRID)
                and all(is_number(v) for v in record["roc_tpr"])
                and is_number(record.get("fit_seconds"), False) and is_number(record.get("score_seconds"), False)
                and isinstance(record.get("sizes"), dict)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in record["sizes"].values())
                and isinstance(record.get("test_abnormal"), int))
    except RecursionError:
        return False


def roc_on_grid(abnormal: np.ndarray, score: np.ndarray) -> np.ndarray:
    """TPR at the FPRs of :data:`ROC_GRID`, linearly interpolated between the ROC's operating points (as the curve is
    usually drawn), for averaging ROC curves over runs ("vertical averaging"); NaN when a class is missing."""
    y = np.asarray(abnormal, dtype=bool)
    if y.all() or not y.any():
        return np.full(len(ROC_GRID), np.nan)
    fpr, tpr, _ = roc_curve(y, np.asarray(score, dtype=np.float64))
    return np.interp(ROC_GRID, fpr, tpr)


def describe_data(data: DataSpec) -> dict[str, Any]:
    """Counts for the report header, and the loader's notes of NaN/inf feature values it repaired."""
    corpus = corpus_for(data)
    s = corpus.summary()
    return {"name": s["name"], "pairs": s["n_pairs"], "speakers": s["n_speakers"], "synthetic": s["synthetic"],
            "classes": list(corpus.class_names), "root": None if data.root is None else str(Path(data.root)),
            "repaired": _REPAIRS.get(fold_data(data, 0, 0), [])}
