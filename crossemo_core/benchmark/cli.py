"""``python -m crossemo_core benchmark``: arguments and the command (registered by :mod:`crossemo_core.cli`)."""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from crossemo_core.baselines import METHODS
from crossemo_core.benchmark.readers import VOICE_RUNS
from crossemo_core.config import MAX_SEED, PRESETS
from crossemo_core.errors import DataError
from crossemo_core.executors import add_executor_args, executor_from
from crossemo_core.experiment import DATASETS
from crossemo_core.paths import atomic_write, check_writable
from crossemo_core.readers.augment import add_augmentations_argument
from crossemo_core.readers.voice_training import add_training_option_arguments
from crossemo_core.settings import (SEED_IN_SET, DistinctValues, SettingError, check_settings, merge_options,
                                    option_number, output_path, parse_settings)

SYNTHETIC = ("synthetic-mosei", "synthetic-tiny")


def add_benchmark_parser(sub: Any) -> None:
    """Add the ``benchmark`` subcommand to the main parser's subparsers."""
    from crossemo_core.benchmark.suites import SUITES

    p = sub.add_parser("benchmark", help="the paper's tables with baselines, ablations, ratio sweep, speed",
                       description="Writes <suite>-<dataset>.md/.json/.html to --out; finished runs are cached in "
                                   "--out/cache, so an interrupted benchmark continues where it stopped.")
    p.add_argument("--suite", choices=SUITES, required=True)
    p.add_argument("--dataset", choices=DATASETS + SYNTHETIC,
                   help="data kind (synthetic-mosei: generated, MOSEI size; synthetic-tiny: smoke tests)")
    p.add_argument("--root", type=Path, help="dataset folder or file")
    p.add_argument("--out", type=output_path("--out", folder_ok=True), required=True,
                   help="output folder (tables, JSON, plots, run cache)")
    p.add_argument("--seeds", type=option_number("--seeds", minimum=0, maximum=MAX_SEED, whole=True),
                   nargs="+", action=DistinctValues, help="seeds (default 0 1 2)")
    p.add_argument("--folds", type=option_number("--folds", minimum=0, whole=True),
                   help="speaker folds per seed, >= 3; 0 = one 3:1:1 split (dataset default)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="training preset (dataset default)")
    p.add_argument("--epochs", type=option_number("--epochs", minimum=1, whole=True),
                   help="epochs of every method (dataset default)")
    p.add_argument("--methods", nargs="+", choices=tuple(METHODS), help="methods (default: all but sir-hcl+readings)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                   help="a config field for every run, over the dataset default, e.g. --set refit=false (repeatable)")
    p.add_argument("--voice-features", metavar="librosa|reader|reader:CHECKPOINT|reader-folds:DIR",
                   help="RAVDESS voice input: the librosa frames (default) or a voice reader's frame features and "
                        "reading ('reader' = checkpoints/voice_reader_external.pt, trained on TESS + EmoDB only; "
                        "'reader-folds:DIR' = each seed and fold's own reader DIR/s{seed}-f{fold}.pt, from "
                        "scripts/train_voice_reader_folds.py)")
    p.add_argument("--calibration", choices=("none", "neutral", "all"), default="none",
                   help="per-person normalisation of every run: each speaker's features standardised by that "
                        "speaker's neutral clips, or all of its clips (crossemo_core/data/calibration.py)")
    p.add_argument("--fine-grained", choices=("auto", "on", "off"), default="auto",
                   help="paper suite: also the 7-class Table V (auto: when the data has sentiment scores)")
    add_executor_args(p, default_jobs=min(2, os.cpu_count() or 1))
    p.add_argument("--max-runs", type=option_number("--max-runs", minimum=1, whole=True),
                   help="compute at most this many new runs, then write the tables")
    p.add_argument("--tiny", action="store_true", help="speed suite: tiny inputs (smoke test); readers suite: no ablation")
    p.add_argument("--clip", type=Path, help="speed suite: a clip file for the clip verdict latency")
    p.add_argument("--voice-runs", nargs="+", choices=VOICE_RUNS, default=list(VOICE_RUNS),
                   help="readers suite: which main voice runs (default both: leave-one-corpus-out, RAVDESS unseen "
                        "actors); the augmentation ablation (leave-one-corpus-out, seed 0) runs too unless --tiny")
    add_augmentations_argument(p)
    add_training_option_arguments(p)


def run_benchmark_command(args: argparse.Namespace) -> int:
    from crossemo_core.benchmark.cache import RunCache
    from crossemo_core.benchmark.protocols import corpus_for, is_run_record
    from crossemo_core.benchmark.runner import command_line, pending_runs, run_benchmark
    from crossemo_core.benchmark.speed import run_speed, speed_markdown
    from crossemo_core.benchmark.suites import Profile, suite_runs

    check_writable(args.out, "--out", folder=True)
    if args.suite != "speed":  # every finished run is kept there: a cache that cannot be written would lose them
        check_writable(args.out / "cache", "--out (its run cache)", folder=True)
    if args.suite == "speed":
        bar = tqdm(desc="speed", total=7, unit="measure")
        rows = run_speed(tiny=args.tiny, threads=args.threads, clip=args.clip,
                         progress=lambda name: (bar.update(1), bar.set_postfix_str(name)))
        bar.close()
        path = args.out / "speed.md"
        atomic_write(path, speed_markdown(rows, command_line()).encode())
        print(path.read_text())
        return 0
    if args.suite == "readers":
        return _run_readers(args)
    if args.dataset is None:
        raise DataError(f"--dataset is needed for the {args.suite} suite.")
    if args.dataset not in SYNTHETIC + ("demo",) and args.root is None:
        raise DataError(f"dataset {args.dataset!r} needs --root PATH.")
    if args.folds in (1, 2):
        raise SettingError(f"--folds {args.folds}: folds give train, valid and test speakers, so 3 or more are "
                           f"needed (or 0 for one 3:1:1 split).")
    overrides = merge_options({"epochs": args.epochs}, parse_settings(args.settings), {"epochs": "--epochs"})
    if "seed" in overrides:
        raise SettingError(SEED_IN_SET.format(command="benchmark"))
    profile = Profile.resolve(args.dataset, None if args.root is None else str(args.root), seeds=args.seeds,
                              n_folds=args.folds, preset=args.preset, overrides=overrides, methods=args.methods,
                              options=_data_options(args), calibration=args.calibration)
    check_settings(profile.preset, dict(profile.overrides), profile.seeds)
    if args.suite == "paper" and args.fine_grained != "off":
        has_scores = corpus_for(profile.data()).sentiment is not None
        if args.fine_grained == "on" and not has_scores:
            raise DataError(f"{args.dataset} has no sentiment scores, so no 7-class labels for Table V.")
        profile = dataclasses.replace(profile, fine_grained=has_scores)
    cache = RunCache(args.out / "cache", valid=is_run_record)
    pending = pending_runs(suite_runs(args.suite, profile), cache, args.max_runs)
    bar = tqdm(total=len(pending), desc=f"{args.suite} on {args.dataset}", unit="run")

    def on_done(spec: Any, record: dict[str, Any]) -> None:
        bar.update(1)
        auc = record["metrics"]["auc"]
        bar.set_postfix_str(f"{spec.method} seed {spec.seed} fold {spec.fold}: AUC "
                            f"{'nan' if auc is None else f'{auc:.3f}'}")

    with executor_from(args) as executor:
        result = run_benchmark(args.suite, profile, args.out, jobs=args.jobs, threads=args.threads,
                               max_runs=args.max_runs, on_done=on_done, command=command_line(), executor=executor)
    bar.close()
    print(f"{result.computed} run(s) computed, {result.cached} cached, {result.missing} missing")
    for path in result.files:
        print(f"wrote {path}")
    if result.files:
        print(result.files[0].read_text())
    return 0


def _data_options(args: argparse.Namespace) -> dict[str, Any]:
    """Loader options from the command line (``--voice-features``, RAVDESS only)."""
    if not getattr(args, "voice_features", None):
        return {}
    if args.dataset != "ravdess":
        raise DataError("--voice-features applies to --dataset ravdess only.")
    from crossemo_core.data.loaders.reader_voice import parse_voice_features

    if not args.voice_features.startswith("reader-folds:"):
        parse_voice_features(args.voice_features)  # a bad value fails before any run
    return {"voice_features": args.voice_features}


def _run_readers(args: argparse.Namespace) -> int:
    """The readers suite: ``--root`` is the data folder holding ravdess/, tess/, emodb/, fer2013/, ckplus/."""
    import torch

    from crossemo_core.benchmark.readers import readers_markdown, run_readers
    from crossemo_core.benchmark.runner import command_line
    from crossemo_core.readers.voice_training import VoiceTrainConfig, training_options

    if args.root is None:
        raise DataError("the readers suite needs --root DATA_FOLDER (the folder holding ravdess/, tess/, emodb/).")
    torch.set_num_threads(args.threads)
    result = run_readers(args.root, args.out, seeds=tuple(args.seeds or (0,)), ablation=not args.tiny,
                         config=VoiceTrainConfig(augmentations=tuple(args.augmentations), **training_options(args)),
                         jobs=args.jobs, threads=args.threads, progress=lambda msg: print(msg, flush=True),
                         command=command_line(), voice_runs=tuple(args.voice_runs))
    print(readers_markdown(result))
    return 0
