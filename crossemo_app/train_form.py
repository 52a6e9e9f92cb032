"""The Train page's settings as one typed object: :class:`TrainForm`, read from and written to its widgets' values.

Each field ``name`` is shown by a widget whose value lives under ``p_<name>`` (:func:`crossemo_app.state.widget`).
:meth:`TrainForm.read` gathers them, each converted once to its field's type (defensively: a number box with a float
step, or a value set from code, may give ``2.0`` where an ``int`` is meant); :meth:`TrainForm.for_preset` gives a
preset's (or the data's profile's) values; :meth:`TrainForm.experiment_config` turns the form into the run's
:class:`~crossemo_core.config.ExperimentConfig`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, get_type_hints

import numpy as np

from crossemo_core.config import ExperimentConfig, preset_config
from crossemo_core.data.container import PairDataset
from crossemo_core.experiment import config_for
from crossemo_core.profiles import resolve_settings

DEMO_EPOCHS = 3
"""[ours] Epochs on the demo data: a run takes well under a minute on 2 CPU cores (the paper trains for 30)."""
PRESET_LABELS = {"profile": "best known for this data (its profile)",
                 "paper": "paper (SIR-HCL: SGD, lr 1e-4, batch 16)",
                 "fast": "fast [ours, not the paper's]: Adam, lr 1e-3, batch 32"}
PAGE_FIELDS = ("preset", "method", "threshold_rule", "device", "num_threads")
"""Fields that are the page's own choices, not settings of the run's configuration."""


@dataclass
class TrainForm:
    """What the Train page will start: method, preset and every setting it shows (see the page for their meaning)."""

    preset: str
    """"profile" (the loaded data kind's best-known settings) or a key of ``crossemo_core.config.PRESETS``"""
    method: str
    """a key of ``crossemo_core.baselines.METHODS``"""
    threshold_rule: str
    """the verdict threshold: "posterior" (0.5, the paper's) or "youden" (on the validation pairs)"""
    device: str
    num_threads: int
    training_labels: str
    refit: bool
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    lr_step_epochs: int
    lr_gamma: float
    batch_size: int
    epochs: int
    patience: int
    grad_clip: float
    lambda_intra: float
    lambda_cross: float
    lambda_hard: float
    k: int
    tau: float
    use_share: bool
    use_intra: bool
    use_cross: bool
    use_hard: bool
    hard_loss: str
    hidden_size: int
    embedding_size: int
    dropout: float
    eta_init: float

    @classmethod
    def for_preset(cls, kind: str | None, preset: str = "profile", *, method: str = "sir-hcl",
                   threshold_rule: str = "posterior", device: str = "auto", num_threads: int = 1) -> TrainForm:
        """The settings of ``preset`` ("profile": data kind ``kind``'s profile; None counts as the demo), with the
        demo's short run on the demo data. The loss and network settings are the paper's in every preset unless a
        profile changes them."""
        chosen, overrides = resolve_settings(kind or "demo", None if preset == "profile" else preset, {})
        config = preset_config(chosen, face_dim=1, voice_dim=1, **overrides)
        values: dict[str, Any] = {"preset": preset, "method": method, "threshold_rule": threshold_rule,
                                  "device": device, "num_threads": num_threads}
        for f in fields(cls):
            if f.name not in values:
                values[f.name] = next(getattr(part, f.name) for part in (config.train, config.loss, config.model)
                                      if hasattr(part, f.name))
        if (kind or "demo") == "demo":
            values["epochs"] = DEMO_EPOCHS
        return cls(**values)

    @classmethod
    def read(cls, values: Mapping[str, Any]) -> TrainForm:
        """The form from widget values (``p_<field>`` keys), each converted to its field's type."""
        hints = get_type_hints(cls)
        return cls(**{f.name: _as(hints[f.name], values[f"p_{f.name}"]) for f in fields(cls)})

    def widget_values(self, run_settings_only: bool = False) -> dict[str, Any]:
        """``{p_<field>: value}``: what :meth:`read` reads back (``run_settings_only``: without the page's own
        choices, :data:`PAGE_FIELDS`, which a change of preset leaves as they are)."""
        return {f"p_{name}": value for name, value in asdict(self).items()
                if not (run_settings_only and name in PAGE_FIELDS)}

    def experiment_config(self, data: PairDataset, kind: str | None, seed: int, rate: float) -> ExperimentConfig:
        """The run's configuration: the preset's (or profile's) settings with every setting of the form on top, for
        ``data`` (its dimensions and classes), split ``seed`` and inconsistent-pair ``rate``. ``training_labels``
        falls back to the classes when the data names no finer emotions; ``refit`` is off with the Youden threshold
        (chosen on the validation pairs that a refit trains on)."""
        settings = {k: v for k, v in asdict(self).items() if k not in PAGE_FIELDS}
        if data.emotion_names is None:
            settings["training_labels"] = "classes"
        settings["refit"] = self.refit and self.threshold_rule != "youden"
        preset, profile = resolve_settings(kind or "demo", None if self.preset == "profile" else self.preset, {})
        return config_for(data, preset, seed=seed, abnormal_rate=rate, threshold=self.threshold_rule,
                          device=self.device, **{**profile, **settings})


def _as(kind: Any, value: Any) -> Any:
    """``value`` as ``kind``: a whole float to int (another float is refused), an int to float, a bool (numpy's too)
    or 0 / 1 to bool (anything else is refused); other values as they are."""
    if kind is bool:
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
            return bool(value)
        raise ValueError(f"expected true or false, got {value!r}")
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value}")
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
