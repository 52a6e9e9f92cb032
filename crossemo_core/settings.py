"""Settings checked at the boundary, before any data is loaded.

- ``--set NAME=VALUE``: any field of the training configuration (:mod:`crossemo_core.config`), parsed by the field's
  type (int, float, bool, one of a fixed set of words), range-checked by the configuration's own ``validate``;
  unknown names are refused with the list of valid ones.
- ``CROSSEMO_*`` environment variables: every one the package reads is listed in :data:`ENVIRONMENT` and read here,
  with an error that names the variable when its value is unusable.

Rule for options given twice: a named option (``--epochs 5``) and ``--set epochs=5`` for the same field is an
error ("give one of them"), so a command line never means two things.
"""
from __future__ import annotations

import argparse
import os
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from crossemo_core.config import PRESETS, LossConfig, ModelConfig, TrainConfig, preset_config
from crossemo_core.errors import DataError

ENVIRONMENT: dict[str, str] = {
    "CROSSEMO_CACHE": "folder of the feature and reader caches (default ~/.cache/crossemo)",
    "CROSSEMO_CLIP_CHECKPOINT": "clip model used when --checkpoint is not given (default checkpoints/clip.pt)",
    "CROSSEMO_CLIP_MAX_MB": "largest clip file accepted, in megabytes (default 10000)",
    "CROSSEMO_CLIP_MAX_SECONDS": "longest recording accepted, in seconds (default 7200: a 2-hour session)",
    "CROSSEMO_RAW_STDERR": "1: show mediapipe's own log lines instead of filtering them (default off)",
    "CROSSEMO_WORKSPACE": "folder where the app keeps its training runs and their models (default workspace/ in the "
                          "project folder)",
}
"""Every environment variable crossemo reads, with what it means."""

NOT_SETTABLE = {"face_dim": "it follows from the data's face features",
                "voice_dim": "it follows from the data's voice features",
                "n_classes": "it follows from --classes and training_labels", "preset": "use --preset",
                "consistency": "it needs voice twins, which only scripts/train_clip_model.py --consistency builds"}
"""Configuration fields ``--set`` refuses, with the reason."""


class SettingError(DataError):
    """An option, ``--set`` value or environment variable that cannot be used."""


# ---------------------------------------------------------------------------------------------------- --set
def settable_fields() -> dict[str, type | tuple[str, ...]]:
    """Every settable configuration field -> its type (``int``, ``float``, ``bool``, ``str``) or its allowed words."""
    out: dict[str, type | tuple[str, ...]] = {}
    for klass in (ModelConfig, LossConfig, TrainConfig):
        hints = typing.get_type_hints(klass)
        for f in fields(klass):
            if f.name in NOT_SETTABLE:
                continue
            hint = hints[f.name]
            out[f.name] = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else hint
    return out


def parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["tau=0.3", "use_hard=false"]`` -> ``{"tau": 0.3, "use_hard": False}``, each value parsed by its field's
    type; :class:`SettingError` names the bad pair (unknown field, wrong type, a field set twice)."""
    kinds = settable_fields()
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise SettingError(f"--set expects NAME=VALUE, got {pair!r}.")
        if name in NOT_SETTABLE:
            raise SettingError(f"--set {name}: not settable ({NOT_SETTABLE[name]}).")
        if name not in kinds:
            raise SettingError(f"--set {name}: unknown setting; valid names: {', '.join(sorted(kinds))}.")
        if name in out:
            raise SettingError(f"--set {name} is given twice.")
        out[name] = _parse_value(name, text, kinds[name])
    return out


def merge_options(named: dict[str, Any], settings: dict[str, Any], flags: dict[str, str]) -> dict[str, Any]:
    """Named options (None when not given) and ``--set`` values as one dict of overrides; a field given both ways is
    a :class:`SettingError`. ``flags`` maps a field to the option that sets it (for the message)."""
    both = sorted(k for k, v in named.items() if v is not None and k in settings)
    if both:
        k = both[0]
        raise SettingError(f"{flags.get(k, k)} and --set {k} both set {k}; give one of them.")
    return {**{k: v for k, v in named.items() if v is not None}, **settings}


SEED_IN_SET = "--set seed: {command} runs every seed given with --seeds; give those instead."
"""The error of ``--set seed`` on a command that takes ``--seeds`` (``cross-validate``, ``benchmark``)."""


def check_settings(preset: str, overrides: dict[str, Any], seeds: Sequence[int] = ()) -> None:
    """Raise :class:`SettingError` when ``overrides`` on ``preset`` do not make a valid configuration (ranges and
    combinations, e.g. ``tau=-1`` or ``refit`` with a Youden threshold), with the largest of ``seeds`` (the runs'
    seeds, e.g. ``--seeds``) when given. Runs before any data is loaded."""
    if preset not in PRESETS:
        raise SettingError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}.")
    try:
        preset_config(preset, face_dim=1, voice_dim=1, **{**overrides, **({"seed": max(seeds)} if seeds else {})})
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _parse_value(name: str, text: str, kind: type | tuple[str, ...]) -> Any:
    if isinstance(kind, tuple):
        if text not in kind:
            raise SettingError(f"--set {name}={text}: choose one of {', '.join(kind)}.")
        return text
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise SettingError(f"--set {name}={text}: expected true or false.")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise SettingError(f"--set {name}={text}: expected a whole number.") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise SettingError(f"--set {name}={text}: expected a number.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingError(f"--set {name}={text}: expected a finite number.")
        return value
    return text


# ---------------------------------------------------------------------------------------------------- environment
def cache_root() -> Path:
    """``$CROSSEMO_CACHE`` or ``~/.cache/crossemo``: the root of every cache the package keeps."""
    return _folder("CROSSEMO_CACHE") or Path.home() / ".cache" / "crossemo"


def _folder(name: str) -> Path | None:
    """The folder the environment variable ``name`` names (made if missing), or None when unset; a path that is not
    a folder and cannot be made one is a :class:`SettingError` naming the variable (a cache there would silently
    keep nothing)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it exists and is not a folder" if path.exists() else (exc.strerror or type(exc).__name__)
        raise SettingError(f"{name}={text!r} cannot be used as a folder ({reason}); fix or unset it.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingError(f"{name}={text!r} cannot be used as a folder (it cannot be written); fix or unset it.")
    return path


def workspace_root() -> Path:
    """``$CROSSEMO_WORKSPACE`` or ``workspace/`` beside the app: where the app's runs persist."""
    from crossemo_core.paths import REPO

    return _folder("CROSSEMO_WORKSPACE") or REPO / "workspace"


def clip_checkpoint() -> Path | None:
    """``$CROSSEMO_CLIP_CHECKPOINT`` as a path, or None when unset; an existing non-file is refused."""
    text = os.environ.get("CROSSEMO_CLIP_CHECKPOINT", "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise SettingError(f"CROSSEMO_CLIP_CHECKPOINT={text}: no such file; unset it or point it at a clip model.")
    return path


def positive_number(name: str, default: float) -> float:
    """The environment variable ``name`` as a number > 0 (``default`` when unset or empty)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise SettingError(f"{name}={text!r} is not a number > 0 ({ENVIRONMENT[name]}); fix or unset it.")
    return value


def raw_stderr() -> bool:
    """``$CROSSEMO_RAW_STDERR`` is set to something other than 0/false/empty."""
    return os.environ.get("CROSSEMO_RAW_STDERR", "").strip().lower() not in ("", "0", "false", "no", "off")


def output_path(option: str, folder_ok: bool = False) -> Any:
    """An argparse ``type=`` for an output: a :class:`~pathlib.Path`, refusing an empty name (which would mean the
    current folder) and, unless ``folder_ok``, a name that ends in ``/``, ``/.`` or ``/..`` (a folder: ``Path``
    drops the slash or the dot, and the file would be written under the folder's name)."""
    def parse(text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError("is empty; give a file name" + (" or a folder" if folder_ok else ""))
        if not folder_ok and (text.endswith(("/", os.sep)) or text.replace(os.sep, "/").split("/")[-1] in (".", "..")):
            raise argparse.ArgumentTypeError(f"{text!r} names a folder; give a file name")
        return Path(text)

    parse.__name__ = option
    return parse


class DistinctValues(argparse.Action):
    """An argparse ``action=`` for a list option (``nargs="+"``) whose values must differ (``--seeds 0 0`` ran every
    run twice and averaged the copies as if they were two seeds)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise argparse.ArgumentError(self, f"{', '.join(map(str, repeated))} given more than once")
        setattr(namespace, self.dest, values)


def option_number(option: str, minimum: float | None = None, above: float | None = None,
                  maximum: float | None = None, whole: bool = False) -> Any:
    """An argparse ``type=`` that parses a number and checks its range, the error naming ``option``."""
    def shown(bound: float) -> str:
        return str(int(bound)) if whole else f"{bound:g}"

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if whole else 'a number'}, "
                                             f"got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {shown(minimum)}, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be > {shown(above)}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {shown(maximum)}, got {text}")
        return value

    parse.__name__ = option
    return parse
