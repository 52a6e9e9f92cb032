"""The benchmark suites: which runs each one needs and where each run goes in its tables.

- ``paper``: Tables II/III (AUC, FPR, TPR, accuracy per method), Table IV (per anomaly type) and, when the corpus
  has continuous sentiment scores, Table V (7 classes, fine-grained cases); every method of
  :data:`~crossemo_core.baselines.DEFAULT_METHODS` unless methods are named (``sir-hcl+readings`` runs only when
  named, and on 3 valences only).
- ``ablation``: Table VI (SIR-HCL without each of L_share, L_intra, L_cross, L_hard), the printed ("literal")
  L_hard, per-person baseline calibration on (neutral clips, all clips) / off, and TN-BCL's hard vs printed mining.
- ``ratio``: TN-BCL's Table V, the normal:abnormal ratio from 19:1 to 1:4 (all splits), SIR-HCL and TN-BCL.

:class:`Profile` holds the protocol (seeds, folds, preset, overrides) resolved from the dataset's profile
(:mod:`crossemo_core.profiles`) and the command line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossemo_core.baselines import DEFAULT_METHODS, METHODS
from crossemo_core.benchmark.protocols import DataSpec, RunSpec
from crossemo_core.profiles import profile_for, resolve_settings

SUITES = ("paper", "ablation", "ratio", "speed", "readers")
RATIOS: tuple[tuple[int, int], ...] = ((19, 1), (9, 1), (4, 1), (3, 1), (2, 1), (1, 1), (1, 2), (1, 3), (1, 4))
RATIO_METHODS = ("sir-hcl", "tn-bcl")
ABLATIONS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("L_all", {}, "none"),
    ("w/o L_share", {"use_share": False}, "none"),
    ("w/o L_intra", {"use_intra": False}, "none"),
    ("w/o L_cross", {"use_cross": False}, "none"),
    ("w/o L_hard", {"use_hard": False}, "none"),
    ("L_hard as printed (literal eq. 13)", {"hard_loss": "literal"}, "none"),
    ("calibration: each speaker's neutral clips", {}, "neutral"),
    ("calibration: all of each speaker's clips", {}, "all"),
)

BASELINE_VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("TN-BCL: hard mining (default)", "tn-bcl", {}),
    ("TN-BCL: mining as printed (literal eqs. 9-10)", "tn-bcl", {"mining": "literal"}),
)
"""Rows (label, method, settings) of the ablation suite's second table."""


@dataclass(frozen=True)
class Profile:
    """A resolved benchmark protocol."""

    dataset: str
    root: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    n_folds: int = 5
    preset: str = "fast"
    overrides: tuple[tuple[str, Any], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    methods: tuple[str, ...] = DEFAULT_METHODS
    fine_grained: bool = False
    note: str = ""
    calibration: str = "none"
    """Per-person normalisation of every run's data ("none", "neutral" or "all": :mod:`crossemo_core.data.calibration`);
    the ablation suite's calibration rows set their own."""

    @classmethod
    def resolve(cls, dataset: str, root: str | None = None, *, seeds: tuple[int, ...] | None = None,
                n_folds: int | None = None, preset: str | None = None, overrides: dict[str, Any] | None = None,
                methods: tuple[str, ...] | None = None, fine_grained: bool = False,
                options: dict[str, Any] | None = None, calibration: str = "none") -> Profile:
        """The dataset's profile (:mod:`crossemo_core.profiles`), then the given values (None keeps the profile's;
        a named ``preset`` replaces the profile's settings; ``overrides`` go on top). ``options`` are loader options
        (e.g. ``voice_features``), ``calibration`` the per-person normalisation of every run."""
        d = profile_for(dataset)
        preset, merged = resolve_settings(dataset, preset, {k: v for k, v in (overrides or {}).items()
                                                             if v is not None})
        unknown = [m for m in (methods or ()) if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
        if len(seeds or d.seeds) < 1:
            raise ValueError("give at least one seed")
        return cls(dataset=dataset, root=root, seeds=tuple(seeds or d.seeds),
                   n_folds=d.n_folds if n_folds is None else n_folds, preset=preset,
                   overrides=tuple(sorted(merged.items())), methods=tuple(methods or DEFAULT_METHODS),
                   fine_grained=fine_grained, note=d.note,
                   options=tuple(sorted({**dict(d.options), **(options or {})}.items())), calibration=calibration)

    def data(self, classes: int = 3, calibration: str | None = None) -> DataSpec:
        return DataSpec(self.dataset, self.root, classes, self.calibration if calibration is None else calibration,
                        self.options)

    def runs(self, method: str, data: DataSpec, row: str, column: str = "", rate: float = 0.5,
             overrides: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> list[RunSpec]:
        """Every seed x fold of one table cell (``overrides``: config fields; ``settings``: the method's own)."""
        folds = range(self.n_folds) if self.n_folds else [-1]
        merged = tuple(sorted({**dict(self.overrides), **(overrides or {})}.items()))
        own = tuple(sorted((settings or {}).items()))
        return [RunSpec(method=method, data=data, seed=seed, fold=fold, n_folds=self.n_folds, preset=self.preset,
                        rate=rate, method_settings=own, overrides=merged, row=row, column=column)
                for seed in self.seeds for fold in folds]


def paper_runs(profile: Profile) -> list[RunSpec]:
    specs = []
    for method in profile.methods:
        specs += profile.runs(method, profile.data(), METHODS[method].title, "3 classes")
    if profile.fine_grained:
        for method in profile.methods:
            specs += profile.runs(method, profile.data(classes=7), METHODS[method].title, "7 classes")
    return specs


def ablation_runs(profile: Profile) -> list[RunSpec]:
    specs = []
    for row, overrides, calibration in ABLATIONS:
        specs += profile.runs("sir-hcl", profile.data(calibration=calibration), row, overrides=overrides)
    for row, method, settings in BASELINE_VARIANTS:
        if method in profile.methods:
            specs += profile.runs(method, profile.data(), row, column="baseline variants", settings=settings)
    return specs


def ratio_runs(profile: Profile) -> list[RunSpec]:
    specs = []
    for method in (m for m in RATIO_METHODS if m in profile.methods):
        for normal, abnormal in RATIOS:
            specs += profile.runs(method, profile.data(), METHODS[method].title, f"{normal}:{abnormal}",
                                  rate=abnormal / (normal + abnormal))
    return specs


SUITE_RUNS = {"paper": paper_runs, "ablation": ablation_runs, "ratio": ratio_runs}


def suite_runs(suite: str, profile: Profile) -> list[RunSpec]:
    """The runs of a suite, ordered seed-first so that an interrupted benchmark has whole seeds done."""
    numbered = sorted(enumerate(SUITE_RUNS[suite](profile)), key=lambda t: (t[1].seed, t[1].fold, t[0]))
    return [spec for _, spec in numbered]


__all__ = ["ABLATIONS", "RATIOS", "SUITES", "Profile", "suite_runs"]
