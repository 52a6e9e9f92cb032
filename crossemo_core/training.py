"""The one training loop: every network of the project (SIR-HCL and every baseline) trains here, with callbacks
for live curves, early stopping on validation AUC, refit and clean stops.

A :class:`TrainingTask` says what is trained: how to build the network, its loss terms on a batch and its anomaly
score (:class:`ContrastiveTask` is SIR-HCL; :class:`crossemo_core.baselines.network.NetworkTask` wraps the
baselines' own networks). :meth:`Trainer.train` trains it on the training pairs, scores the validation pairs after
every epoch, keeps the weights of the best validation AUC, and at the end (or when stopped) restores them. With
``TrainConfig.refit`` a second, identically seeded network is then trained on train + valid for exactly the
selected number of epochs (last weights kept, normalisation from train + valid), so the final model sees more
speakers than the one that chose the epoch count. :meth:`Trainer.fit` does this for SIR-HCL and fits the verdict
(Beta mixture, threshold) into a :class:`Detector`. A stop flag (and, with ``stop_on_ctrl_c``, the first Ctrl-C)
ends training after the current step; what was learnt so far is kept (a refit that did not finish is dropped in
favour of the selected network) and the result says it was interrupted. Without ``stop_on_ctrl_c`` a Ctrl-C is an
ordinary ``KeyboardInterrupt``: the run is abandoned.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from crossemo_core.batching import FeatureNormalizer, PairTensors
from crossemo_core.config import ExperimentConfig
from crossemo_core.data.container import PairDataset, concatenate
from crossemo_core.detector import Detector, cosine_rows, feature_schema
from crossemo_core.errors import CheckpointError, DataError, TrainingDiverged
from crossemo_core.evaluation import detection_metrics
from crossemo_core.interrupts import first_ctrl_c_sets
from crossemo_core.losses import HybridContrastiveLoss
from crossemo_core.mixture import BetaMixture, fit_similarity_mixture, similarity_to_score
from crossemo_core.model import SIRHCL, seeded_build, use_generator
from crossemo_core.model_files import one_line
from crossemo_core.optim import optimiser_step
from crossemo_core.paths import atomic_writer
from crossemo_core.thresholds import youden_threshold

LOSS_NAMES = ("total", "share", "intra", "cross", "hard")
RESUME_FORMAT = "crossemo-resume/1"
RESUME_FIELDS = frozenset({"key", "phase", "epoch", "finished", "model", "optimizer", "scheduler", "shuffle_rng",
                           "dropout_rng", "history", "best_auc", "best_epoch", "since_best", "best_state",
                           "stopped_early", "selection"})
"""What :meth:`Trainer._save_resume` writes beside ``format``."""


@dataclass
class StepEvent:
    """After every optimiser step: the unweighted loss terms and the weighted total of that batch."""

    epoch: int
    step: int
    n_steps: int
    losses: dict[str, float]
    phase: str = "select"  # "select" (epochs chosen on validation) or "refit" (on train + valid, TrainConfig.refit)


@dataclass
class EpochEvent:
    """After every epoch: mean training losses, validation AUC, and whether this epoch is the best so far."""

    epoch: int
    n_epochs: int
    train_losses: dict[str, float]
    valid_auc: float
    best_auc: float
    is_best: bool
    lr: float
    seconds: float
    phase: str = "select"  # "refit": on train + valid, numbered after the selection epochs; valid_auc is NaN


class TrainingCallback(Protocol):
    def on_step(self, event: StepEvent) -> None: ...

    def on_epoch(self, event: EpochEvent) -> None: ...


@dataclass
class TrainingControl:
    """How a caller watches and steers a run it does not build itself (a baseline's, a benchmark's): callbacks for
    live curves and a stop flag, handed to the :class:`Trainer`."""

    callbacks: list[TrainingCallback] = field(default_factory=list)
    stop_event: threading.Event | None = None
    stop_on_ctrl_c: bool = False
    """The first Ctrl-C (main thread only) stops after the current step, as :meth:`Trainer.stop` does."""
    resume_file: Path | None = None
    """Where the run keeps its state after every epoch, and continues from (see :class:`Trainer`)."""


@dataclass
class TrainingResult:
    """The trained detector and how the run went."""

    detector: Detector
    history: list[EpochEvent]
    best_epoch: int
    stopped_early: bool
    interrupted: bool
    device: str
    seconds: float


class TrainingTask(Protocol):
    """What a kind of network brings to the one training loop (:class:`Trainer`): how to build it, its loss terms
    on a batch and its anomaly score. SIR-HCL is :class:`ContrastiveTask`; the baselines with their own networks
    are :class:`crossemo_core.baselines.network.NetworkTask`. Batches are padded ``(B, L, d)`` face and voice
    sequences with ``(B,)`` lengths and ``(B,)`` training labels."""

    def build(self) -> nn.Module:
        """A fresh network; the loop has seeded the global generators just before (``TrainConfig.seed``)."""

    def losses(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor,
               y_face: Tensor, y_voice: Tensor, twin: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        """The batch's loss terms; ``"total"`` is the one optimised (and comes first in the dict). ``twin``: the
        voices' twins and their lengths, given when ``LossConfig.consistency`` > 0."""

    def anomaly(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor,
                voice_lengths: Tensor) -> np.ndarray:
        """``(B,)`` anomaly scores, higher = more likely inconsistent (validation AUC is computed on them)."""


@dataclass
class ContrastiveTask:
    """SIR-HCL: the two-branch network with the shared residual block and the hybrid contrastive objective of
    ``config.loss`` (or ``criterion``, for baselines that share the network); anomaly = minus the cosine of the two
    embeddings."""

    config: ExperimentConfig
    criterion: nn.Module | None = None

    def __post_init__(self) -> None:
        loss = self.config.loss
        self.objective = self.criterion or HybridContrastiveLoss(
            lambda_intra=loss.lambda_intra, lambda_cross=loss.lambda_cross, lambda_hard=loss.lambda_hard, k=loss.k,
            tau=loss.tau, use_share=loss.use_share, use_intra=loss.use_intra, use_cross=loss.use_cross,
            use_hard=loss.use_hard, hard_loss=loss.hard_loss)

    def build(self) -> SIRHCL:
        return SIRHCL(self.config.model)

    def losses(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor, voice_lengths: Tensor,
               y_face: Tensor, y_voice: Tensor, twin: tuple[Tensor, Tensor] | None = None) -> dict[str, Tensor]:
        out = network(face, face_lengths, voice, voice_lengths)
        terms = self.objective(out.face, out.voice, out.face_logits, out.voice_logits, y_face, y_voice)
        losses = {name: getattr(terms, name) for name in LOSS_NAMES}
        if twin is not None:  # the same speech coded differently should land on the same embedding
            weight = self.config.loss.consistency
            consistency = (1 - nn.functional.cosine_similarity(out.voice, network.embed_voice(*twin), dim=1)).mean()
            losses["total"] = losses["total"] + weight * consistency
            losses["consistency"] = consistency
        return losses

    def anomaly(self, network: nn.Module, face: Tensor, face_lengths: Tensor, voice: Tensor,
                voice_lengths: Tensor) -> np.ndarray:
        return -cosine_rows(network.embed_face(face, face_lengths).cpu().numpy(),
                            network.embed_voice(voice, voice_lengths).cpu().numpy())


@dataclass
class TrainedNetwork:
    """What the training loop leaves: the kept network (eval mode, CPU), the normalisation it was trained with,
    the epoch events of every phase and how the run went.

    Attributes:
        fitted_on: the pairs the kept network was trained on (train, or train + valid after a completed refit);
            mixtures and thresholds are fitted on these.
        refit: None without ``TrainConfig.refit``; else ``{"epochs", "n_pairs", "completed"}``.
    """

    task: TrainingTask
    network: nn.Module
    normalizer: FeatureNormalizer
    history: list[EpochEvent]
    best_epoch: int
    best_valid_auc: float
    epochs_run: int
    stopped_early: bool
    interrupted: bool
    refit: dict[str, Any] | None
    fitted_on: PairDataset

    @torch.no_grad()
    def anomaly(self, data: PairDataset) -> np.ndarray:
        """``(N,)`` anomaly scores of every pair of ``data`` (float64)."""
        return _anomaly(self.task, self.network, PairTensors.build(data, self.normalizer), torch.device("cpu"))


@dataclass
class _Phase:
    """What one pass of the training loop leaves: the kept network, its normalisation and its epoch events."""

    network: nn.Module
    normalizer: FeatureNormalizer
    history: list[EpochEvent]
    best_epoch: int
    best_auc: float
    stopped_early: bool
    interrupted: bool


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but no GPU is available; use device 'auto' or 'cpu'.")
    return device


def describe_device(device: torch.device) -> str:
    """A short label such as ``GPU: NVIDIA H100 80GB HBM3`` or ``CPU (2 threads)``."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


class Trainer:
    """Trains a :class:`Detector` from train/valid pair sets (see the module docstring)."""

    def __init__(self, config: ExperimentConfig, callbacks: list[TrainingCallback] | None = None,
                 stop_event: threading.Event | None = None, criterion: torch.nn.Module | None = None,
                 stop_on_ctrl_c: bool = False, resume_file: str | Path | None = None) -> None:
        """``criterion`` replaces the SIR-HCL objective built from ``config.loss`` (baselines that share the network,
        :mod:`crossemo_core.baselines`): called as ``criterion(face, voice, face_logits, voice_logits, y_face,
        y_voice)``, it returns a :class:`~crossemo_core.losses.LossOutput`. ``stop_on_ctrl_c``: while :meth:`fit`
        runs in the main thread, the first Ctrl-C acts like :meth:`stop` and a second one raises
        ``KeyboardInterrupt``. ``resume_file``: after every completed epoch the whole state of the run (network,
        optimiser, schedule, random generators, best epoch so far, history) is written there atomically; a later
        :meth:`train` of the same task, settings and data continues from it, with the numbers an uninterrupted run
        gives; the file is removed when the run completes."""
        self.config = config.validate()
        self.callbacks = list(callbacks or [])
        self.stop_event = stop_event or threading.Event()
        self.stop_on_ctrl_c = stop_on_ctrl_c
        self.device = resolve_device(config.train.device)
        self.criterion = criterion
        self.resume_file = None if resume_file is None else Path(resume_file)

    def stop(self) -> None:
        """Ask the loop to finish after the current step (thread-safe)."""
        self.stop_event.set()

    def fit(self, train: PairDataset, valid: PairDataset, metadata: dict[str, Any] | None = None) -> TrainingResult:
        """Train SIR-HCL (:class:`ContrastiveTask`) with :meth:`train`, then fit its verdict: a :class:`Detector`."""
        cfg = self.config
        started = time.perf_counter()
        trained = self.train(ContrastiveTask(cfg, self.criterion), train, valid)
        detector = Detector(config=cfg, model=trained.network, normalizer=trained.normalizer,
                            schema=feature_schema(train),
                            metadata={**(metadata or {}), "train_protocol": _protocol_of(train),
                                      "valid_protocol": _protocol_of(valid), "best_epoch": trained.best_epoch,
                                      "best_valid_auc": trained.best_valid_auc, "epochs_run": trained.epochs_run,
                                      "refit": trained.refit, "interrupted": trained.interrupted,
                                      "preset": cfg.train.preset, "dataset": train.display_name,
                                      "synthetic": train.synthetic})
        fit_verdict(detector, trained.fitted_on, valid, cfg.train.threshold)
        return TrainingResult(detector=detector, history=trained.history, best_epoch=trained.best_epoch,
                              stopped_early=trained.stopped_early, interrupted=trained.interrupted,
                              device=describe_device(self.device), seconds=time.perf_counter() - started)

    def train(self, task: TrainingTask, train: PairDataset, valid: PairDataset) -> TrainedNetwork:
        """The training loop, for any :class:`TrainingTask`: select the epoch of best validation AUC (early
        stopping), and with ``TrainConfig.refit`` retrain a fresh network on train + valid for that many epochs."""
        cfg = self.config
        _check_split(train, "training", need_both=True)
        _check_split(valid, "validation", need_both=False)
        if (valid.face_dim, valid.voice_dim) != (train.face_dim, train.voice_dim):
            raise DataError("training and validation pairs have different feature dimensions.")
        if cfg.loss.consistency > 0 and train.voice_twin is None:
            raise DataError("consistency > 0 needs training pairs with voice twins (PairDataset.voice_twin); these "
                            "have none.")
        key = _run_key(cfg, task, train, valid)
        resume = self._read_resume(key)
        with first_ctrl_c_sets(self.stop_event) if self.stop_on_ctrl_c else contextlib.nullcontext():
            if resume is not None and resume["phase"] == "refit":
                selection = self._restore_selection(task, train, valid, resume["selection"])
            else:
                selection = self._run_phase(task, train, valid, cfg.train.epochs, key=key, resume=resume)
            final, fitted_on, history = selection, train, list(selection.history)
            refit_info: dict[str, Any] | None = None
            if cfg.train.refit and not selection.interrupted:
                both = concatenate([train, valid], name=train.name)
                refit = self._run_phase(task, both, None, selection.best_epoch, epoch_offset=len(selection.history),
                                        key=key, resume=resume if resume and resume["phase"] == "refit" else None,
                                        selection=selection)
                history += refit.history
                refit_info = {"epochs": selection.best_epoch, "n_pairs": len(both),
                              "completed": not refit.interrupted}
                if not refit.interrupted:
                    final, fitted_on = refit, both
        interrupted = selection.interrupted or (refit_info is not None and not refit_info["completed"])
        if not interrupted and self.resume_file is not None:
            self.resume_file.unlink(missing_ok=True)
        return TrainedNetwork(task=task, network=final.network.cpu().eval(), normalizer=final.normalizer,
                              history=history, best_epoch=selection.best_epoch, best_valid_auc=selection.best_auc,
                              epochs_run=len(selection.history), stopped_early=selection.stopped_early,
                              interrupted=interrupted, refit=refit_info, fitted_on=fitted_on)

    def _run_phase(self, task: TrainingTask, train: PairDataset, valid: PairDataset | None, epochs: int,
                   epoch_offset: int = 0, key: str = "", resume: dict[str, Any] | None = None,
                   selection: _Phase | None = None) -> _Phase:
        """Train a fresh network (seeded by the config) for up to ``epochs`` epochs, or continue the one in
        ``resume`` (a state :meth:`_save_resume` wrote for this phase).

        With ``valid``: select the epoch of best validation AUC, stop early, restore its weights ("select" phase).
        Without: keep the weights of the last epoch ("refit" phase, events numbered after ``epoch_offset``;
        ``selection`` is the finished select phase, kept in the resume state).
        """
        cfg = self.config
        phase = "select" if valid is not None else "refit"
        normalizer, train_t, valid_t = training_tensors(cfg, train, valid)
        model, dropout_generator = seeded_build(task.build, cfg.train.seed, self.device)
        use_generator(model, dropout_generator)
        optimizer = _make_optimizer(model, cfg)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.train.lr_step_epochs,
                                                    gamma=cfg.train.lr_gamma)
        generator = torch.Generator().manual_seed(cfg.train.seed)

        history: list[EpochEvent] = []
        best_auc = -math.inf if valid_t is not None else math.nan  # NaN: a refit has no validation
        best_epoch, best_state = 0, copy.deepcopy(model.state_dict())
        epochs_since_best = 0
        stopped_early = False
        first_epoch = 1
        if resume is not None and resume["phase"] == phase:
            with self._damaged_resume_state():
                model.load_state_dict(resume["model"])
                optimizer.load_state_dict(resume["optimizer"])
                scheduler.load_state_dict(resume["scheduler"])
                generator.set_state(resume["shuffle_rng"])
                if dropout_generator.device.type == "cpu":
                    dropout_generator.set_state(resume["dropout_rng"])
                history = [EpochEvent(**e) for e in resume["history"]]
                best_auc, best_epoch = float(resume["best_auc"]), int(resume["best_epoch"])
                epochs_since_best = int(resume["since_best"])
                best_state, stopped_early = resume["best_state"], bool(resume["stopped_early"])
                first_epoch = epochs + 1 if resume["finished"] else int(resume["epoch"]) + 1
        for epoch in range(first_epoch, epochs + 1):
            epoch_start = time.perf_counter()
            sums: dict[str, float] = {}
            n_batches = 0
            model.train()
            batches = list(train_t.batches(cfg.train.batch_size, shuffle=True, generator=generator))
            for step, index in enumerate(batches, start=1):
                if self.stop_event.is_set():
                    break
                face, fl, voice, vl, yf, yv = train_t.batch(index, self.device)
                twin = train_t.twin_batch(index, self.device) if cfg.loss.consistency > 0 else None
                losses = task.losses(model, face, fl, voice, vl, yf, yv, twin)
                total = losses["total"]
                if not torch.isfinite(total):
                    raise TrainingDiverged(
                        f"the loss became {total.item()} at epoch {epoch}, step {step}; lower the "
                        f"learning rate or check the input features for extreme values.")
                optimiser_step(optimizer, total, model.parameters(), cfg.train.grad_clip)
                values = {name: float(value.detach()) for name, value in losses.items()}
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value
                n_batches += 1
                self._emit("on_step", StepEvent(epoch_offset + epoch, step, len(batches), values, phase))
            if n_batches == 0:
                break
            scheduler.step()
            if valid_t is None:
                valid_auc, best_epoch, best_state = math.nan, epoch, None
            else:
                valid_auc = _validation_auc(task, model, valid_t, valid.is_abnormal, self.device)
                if best_epoch == 0 or valid_auc > best_auc:
                    best_auc, best_epoch = valid_auc, epoch
                    best_state = copy.deepcopy(model.state_dict())
                    epochs_since_best = 0
                else:
                    epochs_since_best += 1
            event = EpochEvent(epoch_offset + epoch, epoch_offset + epochs,
                               {k: v / n_batches for k, v in sums.items()}, valid_auc, best_auc,
                               valid_t is not None and best_epoch == epoch, optimizer.param_groups[0]["lr"],
                               time.perf_counter() - epoch_start, phase)
            history.append(event)
            self._emit("on_epoch", event)
            completed = n_batches == len(batches)
            stopped_early = completed and epochs_since_best >= cfg.train.patience
            if completed and self.resume_file is not None:
                self._save_resume(key, phase, epoch, stopped_early or epoch == epochs, model, optimizer, scheduler,
                                  generator, dropout_generator, history, best_auc, best_epoch, epochs_since_best,
                                  best_state, stopped_early, selection)
            if self.stop_event.is_set() or stopped_early:
                break
        interrupted = self.stop_event.is_set()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        use_generator(model, None)
        return _Phase(model, normalizer, history, best_epoch, best_auc, stopped_early, interrupted)

    # ------------------------------------------------------------------------------------------------ resume
    def _save_resume(self, key: str, phase: str, epoch: int, finished: bool, model: nn.Module,
                     optimizer: torch.optim.Optimizer, scheduler: Any, generator: torch.Generator,
                     dropout_generator: torch.Generator, history: list[EpochEvent], best_auc: float, best_epoch: int,
                     since_best: int, best_state: dict[str, Tensor] | None, stopped_early: bool,
                     selection: _Phase | None) -> None:
        state = {"format": RESUME_FORMAT, "key": key, "phase": phase, "epoch": epoch, "finished": finished,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "shuffle_rng": generator.get_state(), "dropout_rng": dropout_generator.get_state(),
                 "history": [asdict(e) for e in history], "best_auc": best_auc, "best_epoch": best_epoch,
                 "since_best": since_best, "best_state": best_state, "stopped_early": stopped_early,
                 "selection": None if selection is None else {
                     "model": selection.network.state_dict(), "history": [asdict(e) for e in selection.history],
                     "best_epoch": selection.best_epoch, "best_auc": selection.best_auc,
                     "stopped_early": selection.stopped_early}}
        with atomic_writer(self.resume_file) as f:
            torch.save(state, f)

    def _read_resume(self, key: str) -> dict[str, Any] | None:
        """The saved state of this very run (same settings, task and data), or None when there is none."""
        if self.resume_file is None or not self.resume_file.is_file():
            return None
        try:
            state = torch.load(self.resume_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged files
            raise CheckpointError(f"{self.resume_file} is not a readable resume state ({type(exc).__name__}); "
                                  f"delete it to start afresh.") from None
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise CheckpointError(f"{self.resume_file} is not a crossemo resume state; delete it to start afresh.")
        missing = sorted(RESUME_FIELDS - state.keys())
        if missing or state["phase"] not in ("select", "refit") or (
                state["phase"] == "refit" and not isinstance(state["selection"], dict)):
            raise CheckpointError(f"{self.resume_file} is a damaged resume state ("
                                  + (f"no {', '.join(missing)}" if missing else "its phase is malformed")
                                  + "); delete it to start afresh.")
        if state["key"] != key:
            raise CheckpointError(f"{self.resume_file} holds a run with other settings or data; give the same "
                                  f"command as that run, or delete the file to start afresh.")
        return state

    def _restore_selection(self, task: TrainingTask, train: PairDataset, valid: PairDataset,
                           saved: dict[str, Any]) -> _Phase:
        """The finished select phase of a resumed run, as it was."""
        normalizer, _, _ = training_tensors(self.config, train, valid)
        network, _ = seeded_build(task.build, self.config.train.seed, self.device)
        with self._damaged_resume_state():
            network.load_state_dict(saved["model"])
            network.eval()
            return _Phase(network, normalizer, [EpochEvent(**e) for e in saved["history"]], int(saved["best_epoch"]),
                          float(saved["best_auc"]), bool(saved["stopped_early"]), False)

    @contextlib.contextmanager
    def _damaged_resume_state(self) -> Iterator[None]:
        """What a resume state holds, read: a part of the wrong kind or shape is one line, not a traceback."""
        try:
            yield
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(f"{self.resume_file} is a damaged resume state ({one_line(exc)}); delete it to "
                                  f"start afresh.") from None

    def _emit(self, hook: str, event: Any) -> None:
        for cb in self.callbacks:
            fn: Callable[[Any], None] | None = getattr(cb, hook, None)
            if fn is not None:
                fn(event)


def _run_key(config: ExperimentConfig, task: TrainingTask, train: PairDataset, valid: PairDataset) -> str:
    """A fingerprint of what a run trains: settings, task (with its objective) and both parts' pairs."""
    settings = config.to_dict()
    settings["train"].pop("runs", None)  # how many networks a run averages; each trains as its own run
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    objective = getattr(task, "objective", None) or getattr(task, "make", None)
    settings = {k: v for k, v in sorted(vars(objective).items()) if isinstance(v, (bool, int, float, str))}
    h.update(f"{type(task).__name__}/{type(objective).__name__}/{getattr(objective, '__qualname__', '')}/"
             f"{settings}".encode())
    for part in (train, valid):
        for values in (part.speaker, part.face_label, part.voice_label, part.is_abnormal):
            h.update(np.ascontiguousarray(np.asarray(values).astype(str)).tobytes())
        if part.voice_twin is not None and config.loss.consistency > 0:
            h.update(np.array([[len(t), float(np.sum(t, dtype=np.float64))] for t in part.voice_twin]).tobytes())
    return h.hexdigest()


def fit_verdict(detector: Detector, train: PairDataset, valid: PairDataset, threshold: str = "posterior") -> None:
    """Fit the detector's Beta mixture and threshold (:func:`fit_mixture_verdict` on its similarities)."""
    detector.mixture, detector.threshold = fit_mixture_verdict(detector.similarity, train, valid, threshold,
                                                               detector.config.train.mixture_var_floor)
    detector.metadata["threshold_rule"] = threshold


def fit_mixture_verdict(similarity: Callable[[PairDataset], np.ndarray], train: PairDataset, valid: PairDataset,
                        threshold: str, var_floor: float) -> tuple[BetaMixture, float]:
    """SIR-HCL's verdict for any ``similarity(pairs) -> (N,)`` cosine: the Beta mixture fitted on the training
    pairs' similarities (initialised from normal/abnormal), and the posterior threshold: 0.5, or with
    ``threshold="youden"`` the Youden cut on the validation pairs."""
    mixture = fit_similarity_mixture(similarity(train), train.is_abnormal, var_floor)
    if threshold != "youden":
        return mixture, 0.5
    if valid.is_abnormal.all() or not valid.is_abnormal.any():
        raise DataError("the Youden threshold needs normal and abnormal validation pairs.")
    valid_p = mixture.posterior_abnormal(similarity_to_score(similarity(valid)))
    return mixture, float(youden_threshold(valid.is_abnormal.astype(int), valid_p))


@torch.no_grad()
def _anomaly(task: TrainingTask, network: nn.Module, tensors: PairTensors, device: torch.device) -> np.ndarray:
    """``(N,)`` float64 anomaly scores of every pair in ``tensors``, in batches of 1024."""
    network.eval()
    out = []
    for index in tensors.batches(1024, shuffle=False, drop_singletons=False):
        f, fl, v, vl, _, _ = tensors.batch(index, device)
        out.append(np.asarray(task.anomaly(network, f, fl, v, vl), dtype=np.float64))
    return np.concatenate(out)


def _validation_auc(task: TrainingTask, network: nn.Module, tensors: PairTensors, abnormal: np.ndarray,
                    device: torch.device) -> float:
    anomaly = _anomaly(task, network, tensors, device)
    if not np.isfinite(anomaly).all():
        return float("nan")
    return detection_metrics(abnormal, anomaly, anomaly > 0)["auc"]


def _make_optimizer(model: torch.nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    if cfg.train.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum,
                               weight_decay=cfg.train.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)


def training_tensors(config: ExperimentConfig, train: PairDataset,
                     valid: PairDataset | None) -> tuple[FeatureNormalizer, PairTensors, PairTensors | None]:
    """The normalisation (from ``train`` only, or none) and both parts as tensors with the configured training
    labels (None for a missing ``valid``); refuses a model head that does not fit those labels."""
    check_head_size(config, train)
    normalizer = (FeatureNormalizer.fit(train) if config.train.normalization == "train"
                  else FeatureNormalizer.identity(train.face_dim, train.voice_dim))
    labels = config.train.training_labels
    valid_t = None if valid is None else PairTensors.build(valid, normalizer, labels)
    return normalizer, PairTensors.build(train, normalizer, labels), valid_t


def check_head_size(config: ExperimentConfig, train: PairDataset) -> None:
    """Raise :class:`DataError` when the model's head does not have one output per training label."""
    _, _, names = train.training_labels(config.train.training_labels)
    if config.model.n_classes != len(names):
        raise DataError(f"the model's head has {config.model.n_classes} outputs but training on "
                        f"{config.train.training_labels} of {train.name} needs {len(names)} ({', '.join(names)}); "
                        "build the configuration with crossemo_core.experiment.config_for.")


def _check_split(data: PairDataset, part: str, need_both: bool) -> None:
    if len(data) < 2:
        raise DataError(f"the {part} split has {len(data)} pair(s); at least 2 are needed.")
    if need_both and (data.is_abnormal.all() or not data.is_abnormal.any()):
        raise DataError(f"the {part} split needs both normal and abnormal pairs to fit the Beta mixture; "
                        f"it has {int(data.is_abnormal.sum())} abnormal of {len(data)}.")


def _protocol_of(data: PairDataset) -> dict[str, Any]:
    return dict(data.protocol)


@dataclass
class HistoryRecorder:
    """A callback that keeps every step and epoch event (handy in notebooks and the app)."""

    steps: list[StepEvent] = field(default_factory=list)
    epochs: list[EpochEvent] = field(default_factory=list)

    def on_step(self, event: StepEvent) -> None:
        self.steps.append(event)

    def on_epoch(self, event: EpochEvent) -> None:
        self.epochs.append(event)
