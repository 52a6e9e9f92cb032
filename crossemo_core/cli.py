"""Command line: ``python -m crossemo_core {train,evaluate,cross-validate,inspect,score,read,benchmark} ...``.

Errors in the user's input end with a one-line message and exit status 2, never a traceback. Every option is
checked before any data is loaded: numbers by range, ``--set`` by field (:mod:`crossemo_core.settings`), output
targets by writing a probe file beside them. Outputs are written atomically (a failure leaves an older file intact).
Ctrl-C: ``train`` stops after the current step and writes nothing to ``--out`` (``--save-on-interrupt`` keeps the
best weights in ``OUT.interrupted.pt``); any other moment ends the command at once; both exit 130 with one line.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from tqdm import tqdm

from crossemo_core.config import MAX_SEED, PRESETS, RUNS_NEED_EVALUATION
from crossemo_core.errors import CrossemoError, OutputError, single_line
from crossemo_core.executors import add_executor_args, executor_from
from crossemo_core.experiment import DATASETS
from crossemo_core.interrupts import STOPPED_AT_ONCE, end_start_up
from crossemo_core.paths import CHECKPOINTS, atomic_write, check_writable
from crossemo_core.profiles import describe as describe_profile
from crossemo_core.profiles import resolve_settings
from crossemo_core.settings import (SEED_IN_SET, DistinctValues, SettingError, check_settings, merge_options,
                                    option_number, output_path, parse_settings)

DEFAULT_CHECKPOINT = CHECKPOINTS / "demo.pt"
REFIT_HELP = ("after choosing the epoch count on valid, retrain a fresh network on train + valid for that many epochs "
              "and keep it (TrainConfig.refit)")
NAMED_FIELDS = {"epochs": "--epochs", "seed": "--seed", "batch_size": "--batch-size", "lr": "--lr",
                "abnormal_rate": "--rate", "threshold": "--threshold", "device": "--device",
                "hard_loss": "--hard-loss", "refit": "--refit", "use_share": "--no-share", "use_intra": "--no-intra",
                "use_cross": "--no-cross", "use_hard": "--no-hard"}
"""Configuration fields that have their own option, and that option (for messages)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...; see ... --help``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m crossemo_core",
                           description="Face/voice emotion consistency detection (SIR-HCL).")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument("--dataset", choices=DATASETS, required=required, default=None if required else "demo",
                       help="kind of data under --root (demo = the bundled synthetic set)")
        p.add_argument("--root", type=Path, help="dataset folder or file (not needed for demo)")
        p.add_argument("--nonfinite", choices=("repair", "refuse"), default="repair",
                       help="what to do with NaN/inf feature values (default: repair and report)")
        p.add_argument("--classes", type=int, choices=(3, 7), default=3,
                       help="3 classes (sign rule) or the 7 of the paper's Table I (needs sentiment scores)")
        p.add_argument("--voice-features", metavar="librosa|reader|reader:CHECKPOINT",
                       help="RAVDESS voice input: the librosa frames (default) or a voice reader's frame features "
                            "and reading ('reader' = checkpoints/voice_reader_external.pt, TESS + EmoDB only)")
        p.add_argument("--calibration", choices=("none", "neutral", "all"), default="none",
                       help="per-person normalisation: standardise each speaker's features by that speaker's "
                            "neutral clips (or all of its clips) before anything else")

    train = sub.add_parser("train", help="train on the train split, select on valid, fit the mixture, test")
    data_args(train, required=True)
    train.add_argument("--out", type=output_path("--out"), required=True, help="checkpoint file to write")
    train.add_argument("--save-on-interrupt", action="store_true",
                       help="on Ctrl-C, keep the best weights so far in OUT.interrupted.pt (--out is never touched)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run of the same command from its last finished epoch (its state "
                            "is kept in OUT.resume.pt while it trains)")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="run this preset as it is (paper: the paper's settings); default: the dataset's "
                            "best-known profile (crossemo_core/profiles.py)")
    train.add_argument("--epochs", type=option_number("--epochs", minimum=1, whole=True))
    train.add_argument("--seed", type=option_number("--seed", minimum=0, maximum=MAX_SEED, whole=True),
                       help="default 0")
    train.add_argument("--batch-size", type=option_number("--batch-size", minimum=2, whole=True))
    train.add_argument("--lr", type=option_number("--lr", above=0))
    train.add_argument("--rate", type=option_number("--rate", above=0, maximum=0.99),
                       help="abnormal-pair rate r, in (0, 1) (default 0.5)")
    train.add_argument("--threshold", choices=("posterior", "youden"), help="verdict rule (default posterior 0.5)")
    train.add_argument("--device", help="auto (default: CUDA when present), cpu or cuda")
    for term in ("share", "intra", "cross", "hard"):
        train.add_argument(f"--no-{term}", action="store_true", help=f"ablation: switch L_{term} off")
    train.add_argument("--hard-loss", choices=("bce", "literal"))
    train.add_argument("--refit", action="store_true", help=REFIT_HELP)
    train.add_argument("--json", type=output_path("--json"), help="also write the test metrics to this JSON file")
    train.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                       help="any config field, e.g. --set tau=0.3 --set weight_decay=1e-4 (repeatable)")

    evaluate = sub.add_parser("evaluate", help="score every sample under --root as test data")
    evaluate.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    data_args(evaluate, required=True)
    evaluate.add_argument("--seed", type=option_number("--seed", minimum=0, maximum=MAX_SEED, whole=True),
                          default=0, help="seed of the abnormal-pair protocol")
    evaluate.add_argument("--rate", type=option_number("--rate", above=0, maximum=0.99), default=0.5,
                          help="abnormal-pair rate r, in (0, 1)")
    evaluate.add_argument("--json", type=output_path("--json"), help="write the metrics to this JSON file")

    cv = sub.add_parser("cross-validate", help="speaker-disjoint cross-validation over folds and seeds")
    data_args(cv, required=True)
    cv.add_argument("--preset", choices=sorted(PRESETS),
                    help="run this preset as it is; default: the dataset's best-known profile")
    cv.add_argument("--folds", type=option_number("--folds", minimum=3, whole=True), default=5,
                    help="speaker folds per seed (>= 3: train, valid and test speakers; default 5)")
    cv.add_argument("--seeds", type=option_number("--seeds", minimum=0, maximum=MAX_SEED, whole=True),
                    nargs="+", action=DistinctValues, default=[0, 1, 2])
    cv.add_argument("--epochs", type=option_number("--epochs", minimum=1, whole=True))
    cv.add_argument("--refit", action="store_true", help=REFIT_HELP)
    cv.add_argument("--json", type=output_path("--json"))
    cv.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                    help="any config field, e.g. --set tau=0.3 (repeatable)")
    add_executor_args(cv, default_jobs=1)

    inspect = sub.add_parser("inspect", help="print a dataset's summary or a checkpoint's card")
    inspect.add_argument("--checkpoint", type=Path)
    data_args(inspect, required=False)

    from crossemo_core.clip.cli import add_score_parser  # the clip verdicts (crossemo_core/clip/cli.py)
    add_score_parser(sub)

    from crossemo_core.readers.cli import add_read_parser  # the readers alone (crossemo_core/readers/cli.py)
    add_read_parser(sub)

    from crossemo_core.benchmark.cli import add_benchmark_parser  # the benchmark suites (crossemo_core/benchmark/)
    add_benchmark_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 2 a user error or a failed file, 130 interrupted)."""
    from crossemo_core.paths import os_error_message

    for stream in (sys.stdout, sys.stderr):  # a file name the terminal cannot show must not cost the verdict
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = build_parser().parse_args(argv)
        end_start_up()  # acts on a Ctrl-C pressed while the commands' modules were imported
        return {"train": _train, "evaluate": _evaluate, "cross-validate": _cross_validate,
                "inspect": _inspect, "score": _score, "read": _read,
                "benchmark": _benchmark}[args.command](args)
    except (CrossemoError, ValueError) as exc:  # ValueError: a setting out of range (config validation)
        _close_progress_bars()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file vanished, a disk filled up, a permission changed while we worked
        _close_progress_bars()
        print(f"error: {single_line(os_error_message(exc))} (an existing output there is left as it was)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _close_progress_bars()
        print(STOPPED_AT_ONCE, file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """End any progress bar left open by the failed command, so that the message starts on its own line."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _one_line(exc: BaseException, limit: int = 600) -> str:
    """The message of ``exc`` on one line (a line break in a file name it names written ``\\n``), at most ``limit``
    characters."""
    text = single_line(str(exc).strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------- commands
def _load(args: argparse.Namespace) -> Any:
    from crossemo_core.experiment import load_corpus

    report: list[str] = []
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="extracting features", unit="clip")
        bar.n = done
        bar.refresh()

    options = {} if args.dataset == "demo" else {"nonfinite": args.nonfinite}
    if getattr(args, "voice_features", None):
        if args.dataset != "ravdess":
            raise SettingError("--voice-features applies to --dataset ravdess only.")
        options["voice_features"] = args.voice_features
    corpus = load_corpus(args.dataset, args.root, report=report,
                         progress=progress if args.dataset == "ravdess" else None, n_classes=args.classes, **options)
    if bar is not None:
        bar.close()
    if getattr(args, "calibration", "none") != "none":
        from crossemo_core.data.calibration import calibrate_speakers

        corpus, calibrated = calibrate_speakers(corpus, args.calibration)
        report.append(str(calibrated))
    for line in report:
        print(f"note: {line}", file=sys.stderr)
    return corpus


def _train(args: argparse.Namespace) -> int:
    from crossemo_core.experiment import config_for, run, split_for
    from crossemo_core.training import TrainingControl, describe_device, resolve_device

    preset, overrides = _training_overrides(args, {
        "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "abnormal_rate": args.rate, "threshold": args.threshold, "device": args.device, "hard_loss": args.hard_loss,
        **{f"use_{t}": False if getattr(args, f"no_{t}") else None for t in ("share", "intra", "cross", "hard")}})
    interrupted_out = args.out.with_suffix(".interrupted.pt")
    resume_file = args.out.with_suffix(".resume.pt")
    if resume_file.exists() and not args.resume:
        raise OutputError(f"{resume_file} holds an unfinished run; give --resume to continue it, or delete it to "
                          f"start afresh.")
    check_writable(args.out, "--out", inputs=[getattr(args, "root", None)])
    check_writable(resume_file, "--out (its resume state)")
    if args.save_on_interrupt:
        check_writable(interrupted_out, "--save-on-interrupt")
    if args.json:
        check_writable(args.json, "--json", inputs=[getattr(args, "root", None), getattr(args, "checkpoint", None)])
    if overrides.get("runs", 1) != 1:
        raise SettingError(f"--set runs={overrides['runs']}: {RUNS_NEED_EVALUATION}")
    corpus = _load(args)
    config = config_for(corpus, preset, **overrides)
    parts, split = split_for(corpus, config.train.seed, config.train.abnormal_rate)
    print(f"dataset: {corpus.display_name}: {len(corpus)} pairs, {len(set(corpus.speaker))} speakers; "
          f"{'the corpus official folds' if split.kind == 'official' else f'split by seed {split.seed}'}")
    for name, part in parts.items():
        p = part.protocol
        print(f"  {name}: {len(part)} pairs, {len(set(part.speaker))} speakers, {p['n_abnormal']} abnormal "
              f"({p['n_fallback']} partner(s) from another speaker)")
    print(f"settings: {describe_profile(args.dataset, args.preset, overrides)}")
    print(f"device: {describe_device(resolve_device(config.train.device))}; Ctrl-C stops after the current step")
    if args.resume and resume_file.exists():
        print(f"resuming from {resume_file}")
    outcome = run(corpus, config, control=TrainingControl([_ProgressPrinter()], stop_on_ctrl_c=True,
                                                          resume_file=resume_file))
    result = outcome.training
    if result.interrupted:
        _close_progress_bars()
        kept = (f"best weights so far (epoch {result.best_epoch}) written to "
                f"{result.detector.save(interrupted_out)}" if args.save_on_interrupt
                else "give --save-on-interrupt to keep the best weights")
        print(f"interrupted: training stopped after {len(result.history)} epoch(s); nothing was written to "
              f"{args.out}; {kept}; continue with --resume (state in {resume_file.name})", file=sys.stderr)
        return 130
    path = result.detector.save(args.out)
    metrics = outcome.test_metrics
    refit = result.detector.metadata["refit"]
    print(f"best epoch {result.best_epoch} (valid AUC {result.detector.metadata['best_valid_auc']:.4f})"
          + ("" if refit is None else f"; refit on train + valid for {refit['epochs']} epoch(s)"
             + ("" if refit["completed"] else " stopped, so the selected network is kept"))
          + f"; checkpoint written to {path}")
    _print_metrics("test", metrics)
    if args.json:
        _write_json(args.json, metrics)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from crossemo_core.data.protocol import make_abnormal_pairs
    from crossemo_core.detector import Detector
    from crossemo_core.experiment import protocol_seed

    if args.json:
        check_writable(args.json, "--json", inputs=[getattr(args, "root", None), getattr(args, "checkpoint", None)])
    detector = Detector.load(args.checkpoint)
    corpus = _load(args)
    detector.check_compatible(corpus)
    pairs, report = make_abnormal_pairs(corpus, args.rate, protocol_seed(args.seed, "all"))
    print(report)
    metrics = detector.evaluate(pairs)
    _print_metrics("evaluation", metrics)
    if args.json:
        _write_json(args.json, metrics)
    return 0


def _cross_validate(args: argparse.Namespace) -> int:
    from crossemo_core.evaluation import format_mean_sd
    from crossemo_core.experiment import cross_validate

    preset, overrides = _training_overrides(args, {"epochs": args.epochs}, seeds=args.seeds)
    if "seed" in overrides:
        raise SettingError(SEED_IN_SET.format(command="cross-validate"))
    if args.json:
        check_writable(args.json, "--json", inputs=[getattr(args, "root", None), getattr(args, "checkpoint", None)])
    corpus = _load(args)
    with executor_from(args) as executor:
        bar = tqdm(total=len(args.seeds) * args.folds, desc=f"folds x seeds ({args.executor})", unit="run")

        def on_run(seed: int, fold: int, metrics: dict[str, Any]) -> None:
            bar.update(1)
            bar.set_postfix(seed=seed, fold=fold, auc=f"{metrics['auc']:.3f}")

        result = cross_validate(corpus, preset=preset, seeds=args.seeds, n_folds=args.folds, on_run=on_run,
                                executor=executor, **overrides)
        bar.close()
    print(f"{corpus.display_name}, {args.folds}-fold speaker-disjoint CV, seeds {args.seeds}, "
          f"{describe_profile(args.dataset, args.preset, overrides)}:")
    print("  " + format_mean_sd(result["summary"]))
    if args.json:
        _write_json(args.json, result)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    if args.checkpoint:
        from crossemo_core.detector import Detector

        detector = Detector.load(args.checkpoint)
        print(json.dumps({"config": detector.config.to_dict(), "schema": detector.schema,
                          "threshold": detector.threshold, "metadata": detector.metadata,
                          "mixture": None if detector.mixture is None else detector.mixture.get_parameters()},
                         indent=2, default=str))
        return 0
    print(json.dumps(_load(args).summary(), indent=2, default=str))
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from crossemo_core.benchmark.cli import run_benchmark_command

    return run_benchmark_command(args)


def _read(args: argparse.Namespace) -> int:
    from crossemo_core.readers.cli import run

    return run(args)


def _score(args: argparse.Namespace) -> int:
    from crossemo_core.clip.cli import run

    return run(args)


# ---------------------------------------------------------------------------------------------------- output
class _ProgressPrinter:
    """One progress bar per epoch with the running loss, and a line per epoch with validation AUC."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_step(self, event: Any) -> None:
        if self.bar is None:
            where = "refit on train + valid, epoch" if event.phase == "refit" else "epoch"
            self.bar = tqdm(total=event.n_steps, desc=f"{where} {event.epoch}", unit="batch", leave=False)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{event.losses['total']:.3f}")

    def on_epoch(self, event: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        losses = " ".join(f"{k} {v:.3f}" for k, v in event.train_losses.items())
        mark = " *" if event.is_best else ""
        valid = "refit on train + valid" if event.phase == "refit" else f"valid AUC {event.valid_auc:.4f}{mark}"
        print(f"epoch {event.epoch:3d}/{event.n_epochs}: {losses} | {valid} ({event.seconds:.1f} s)")


def _training_overrides(args: argparse.Namespace, named: dict[str, Any],
                        seeds: Sequence[int] = ()) -> tuple[str, dict[str, Any]]:
    """(preset, overrides) of a ``train`` / ``cross-validate`` command line: the dataset's profile (or the named
    ``--preset`` as it is), then its named options (None when not given), ``--refit`` and every ``--set
    NAME=VALUE``; a field set both ways is an error. Checked here, with the largest of the runs' ``seeds`` (when
    the command takes several), before any data is loaded."""
    given = merge_options({**named, "refit": True if args.refit else None}, parse_settings(args.settings),
                          NAMED_FIELDS)
    preset, overrides = resolve_settings(args.dataset, args.preset, given)
    check_settings(preset, overrides, seeds)
    return preset, overrides


def _print_metrics(title: str, metrics: dict[str, Any]) -> None:
    print(f"{title}: AUC {metrics['auc']:.4f}  TPR {metrics['tpr']:.4f}  FPR {metrics['fpr']:.4f}  "
          f"accuracy {metrics['accuracy']:.4f}  ({metrics['n_pairs']} pairs, {metrics['n_abnormal']} abnormal)")
    for name, m in metrics.get("per_type", {}).items():
        print(f"  {name:>10}: AUC {m['auc']:.4f}  TPR {m['tpr']:.4f}  accuracy {m['accuracy']:.4f}")


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(_finite(data), indent=2, default=str).encode())


def _finite(obj: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
