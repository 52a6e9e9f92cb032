"""Configuration dataclasses. Every checkpoint stores the exact config it was trained with.

Two presets (method.md, "Optimisation"):
- ``paper``: SGD, lr 1e-4, x0.1 after 10 epochs, batch 16, lambdas (1, 1, 0.5), k 6, tau 1.
- ``fast``  [ours]: Adam, lr 1e-3, same losses; reported as "fast" wherever used.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

MAX_SEED = 2**63 - 1
"""The largest seed a run takes (:meth:`TrainConfig.validate`; the command line's ``--seed`` and ``--seeds``)."""
RUN_SEED_STEP = 1000
"""Seed distance between the networks of one run when ``TrainConfig.runs`` > 1 (:meth:`TrainConfig.run_seeds`)."""
RUNS_NEED_EVALUATION = ("runs > 1 averages several networks for evaluation (cross-validate, benchmark); training "
                        "for a checkpoint keeps one network, so leave runs at 1 here.")
"""Why ``train`` and the app's training jobs refuse ``TrainConfig.runs`` > 1."""


@dataclass
class ModelConfig:
    """SIR-HCL network sizes (method.md, "Network")."""

    face_dim: int
    voice_dim: int
    n_classes: int = 3
    hidden_size: int = 128
    embedding_size: int = 256
    dropout: float = 0.5
    eta_init: float = 0.1

    def validate(self) -> None:
        _require(self.face_dim >= 1 and self.voice_dim >= 1, "feature dimensions must be >= 1")
        _require(self.n_classes >= 2, "n_classes must be >= 2")
        _require(self.hidden_size >= 1 and self.embedding_size >= 1, "hidden_size and embedding_size must be >= 1")
        _require(0.0 <= self.dropout < 1.0, "dropout must lie in [0, 1)")
        _require(math.isfinite(self.eta_init), "eta_init must be a finite number")


@dataclass
class LossConfig:
    """Weights and switches of L_all = L_share + l1 L_intra + l2 L_cross + l3 L_hard (eq. 18)."""

    lambda_intra: float = 1.0
    lambda_cross: float = 1.0
    lambda_hard: float = 0.5
    k: int = 6
    tau: float = 1.0
    use_share: bool = True
    use_intra: bool = True
    use_cross: bool = True
    use_hard: bool = True
    hard_loss: Literal["bce", "literal"] = "bce"
    consistency: float = 0.0
    """Weight of the twin-consistency term added to L_all (not in the paper): the mean of 1 - cos between a voice's
    embedding and its twin's (the same speech coded differently, ``PairDataset.voice_twin``). 0: off."""

    def validate(self) -> None:
        _require(min(self.lambda_intra, self.lambda_cross, self.lambda_hard) >= 0, "loss weights lambda_intra, lambda_cross and lambda_hard must be >= 0")
        _require(self.consistency >= 0, "consistency (the twin-consistency weight) must be >= 0")
        _require(self.k >= 1, "k (hard samples per anchor) must be >= 1")
        _require(self.tau > 0, "tau must be > 0")
        _require(self.hard_loss in ("bce", "literal"), "hard_loss must be 'bce' or 'literal'")
        _require(any((self.use_share, self.use_intra, self.use_cross, self.use_hard)),
                 "at least one loss term must be switched on")


@dataclass
class TrainConfig:
    """Optimisation, data protocol and verdict settings."""

    preset: str = "paper"
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_step_epochs: int = 10
    lr_gamma: float = 0.1
    batch_size: int = 16
    epochs: int = 30
    patience: int = 8
    grad_clip: float = 5.0
    seed: int = 0
    abnormal_rate: float = 0.5
    normalization: Literal["train", "none"] = "train"
    threshold: Literal["posterior", "youden"] = "posterior"
    device: str = "auto"
    mixture_var_floor: float = 3e-3
    """[ours] Floor on each Beta component's variance in the verdict's EM (``BetaMixture(var_floor=...)``; the
    mixture's own default is 1e-8). Default 3e-3 since the RAVDESS study (docs/notes/ravdess.md). The shared block's ReLU makes embeddings non-negative, so cos >= 0 and many
    abnormal *training* pairs end exactly orthogonal (u = 0.5): with the default floor the abnormal component
    collapses to a spike (alpha, beta ~ 1e4-1e5) whose posterior saturates to exactly 0 or 1 in float64 for most
    test pairs, and the ties cost AUC (RAVDESS, docs/notes/ravdess.md). A floor of ~3e-3 (sd >= 0.055 in u) keeps
    the posterior's ordering equal to the cosine's."""
    training_labels: Literal["classes", "emotions"] = "classes"
    """[ours] What L_share and the contrastive losses treat as a class: the classes anomalies are defined on, or
    the corpus's finer emotion categories (``PairDataset.emotion_names``, e.g. RAVDESS's 8). The model's head then
    has one output per emotion (``ModelConfig.n_classes``; :func:`crossemo_core.experiment.config_for` sets it).
    Anomalies, metrics and the verdict stay on the classes."""
    refit: bool = False
    """[ours] After choosing the epoch count on the validation pairs, train a fresh network (same seed) on train +
    valid for that many epochs and keep it: normalisation and the Beta mixture then come from train + valid, never
    from test. More training speakers (RAVDESS: 16 instead of 12) at the cost of a second run. Needs
    ``threshold="posterior"`` (a Youden threshold on validation pairs the model was trained on would be biased)."""
    runs: int = 1
    """[ours] Networks trained per run on the same split and pairs, each with its own seed (``seed``, ``seed +``
    :data:`RUN_SEED_STEP`, ...), read as one (:class:`~crossemo_core.baselines.base.EnsembleScorer`: SIR-HCL's kind
    by the mean similarity and a Beta mixture refitted on it, other methods by their mean scores and the majority of
    their verdicts). For evaluation (``cross-validate``, ``benchmark``): a checkpoint holds one network, so
    ``train`` and the app's training jobs refuse more than one."""

    def validate(self) -> None:
        _require(self.optimizer in ("sgd", "adam"), "optimizer must be 'sgd' or 'adam'")
        _require(0 < self.lr < math.inf, "lr (learning rate) must be > 0")
        _require(0.0 <= self.momentum < 1.0, "momentum must lie in [0, 1)")
        _require(0.0 <= self.weight_decay < math.inf, "weight_decay must be >= 0")
        _require(self.lr_step_epochs >= 1, "lr_step_epochs must be >= 1")
        _require(0.0 < self.lr_gamma <= 1.0, "lr_gamma must lie in (0, 1]")
        _require(0.0 <= self.grad_clip < math.inf, "grad_clip must be >= 0 (0 switches clipping off)")
        _require(0 <= self.seed <= MAX_SEED, f"seed must be a whole number from 0 to {MAX_SEED}")
        _require(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device) is not None,
                 "device must be auto, cpu, cuda, cuda:N or mps")
        _require(self.batch_size >= 2, "batch_size must be >= 2 (contrastive losses compare pairs in a batch)")
        _require(self.epochs >= 1, "epochs must be >= 1")
        _require(self.patience >= 1, "patience must be >= 1")
        _require(0.0 < self.abnormal_rate < 1.0,
                 "abnormal_rate must lie strictly between 0 and 1 (training needs normal and abnormal pairs)")
        _require(self.normalization in ("train", "none"), "normalization must be 'train' or 'none'")
        _require(self.threshold in ("posterior", "youden"), "threshold must be 'posterior' or 'youden'")
        _require(0.0 < self.mixture_var_floor < 0.25, "mixture_var_floor must lie in (0, 0.25)")
        _require(self.training_labels in ("classes", "emotions"), "training_labels must be 'classes' or 'emotions'")
        _require(not (self.refit and self.threshold == "youden"),
                 "refit trains on the validation pairs, so the Youden threshold (chosen on them) cannot be used; "
                 "use threshold='posterior' or refit=False")
        _require(isinstance(self.runs, int) and not isinstance(self.runs, bool) and 1 <= self.runs <= 100,
                 "runs (networks averaged per run) must be a whole number in 1..100")
        _require(self.seed + RUN_SEED_STEP * (self.runs - 1) <= MAX_SEED,
                 f"seed + {RUN_SEED_STEP} x (runs - 1) must be at most {MAX_SEED} (each of the runs' networks takes "
                 f"its own seed)")

    def run_seeds(self) -> list[int]:
        """The seeds of the ``runs`` networks of one run: ``seed`` first, then steps of :data:`RUN_SEED_STEP`."""
        return [self.seed + RUN_SEED_STEP * j for j in range(self.runs)]


@dataclass
class ExperimentConfig:
    """Everything needed to reproduce a run."""

    model: ModelConfig
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "ExperimentConfig":
        self.model.validate()
        self.loss.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentConfig":
        return cls(model=_build(ModelConfig, d["model"]), loss=_build(LossConfig, d.get("loss", {})),
                   train=_build(TrainConfig, d.get("train", {}))).validate()


PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(optimizer="sgd", lr=1e-4, momentum=0.9, lr_step_epochs=10, lr_gamma=0.1, batch_size=16, epochs=30),
    "fast": dict(optimizer="adam", lr=1e-3, lr_step_epochs=10, lr_gamma=0.1, batch_size=32, epochs=15),
}


def preset_config(name: str, face_dim: int, voice_dim: int, n_classes: int = 3, **overrides: Any) -> ExperimentConfig:
    """An :class:`ExperimentConfig` for a named preset; ``overrides`` replace fields of any part by name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    parts = {"model": {"face_dim": face_dim, "voice_dim": voice_dim, "n_classes": n_classes},
             "loss": {}, "train": {"preset": name, **PRESETS[name]}}
    owners = {f.name: part for part, klass in (("model", ModelConfig), ("loss", LossConfig), ("train", TrainConfig))
              for f in fields(klass)}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in owners:
            raise ValueError(f"unknown setting {key!r}")
        parts[owners[key]][key] = value
    return ExperimentConfig.from_dict(parts)


def _build(klass: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(klass)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {klass.__name__} setting(s): {sorted(unknown)}")
    return klass(**values)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
