"""Faults at the command line: options, ``--set``, environment variables, output targets and Ctrl-C.

Every case ends in one line on stderr and exit status 2 (a user error) or 130 (interrupted), never a traceback, and
leaves any existing output intact. Input faults (corrupt media, malicious pickles, damaged CSVs) are in
``test_faults_inputs.py``; random and mutated bytes in ``test_properties.py``.

Most cases call :func:`crossemo_core.cli.main` in-process (the checks run before any data is loaded, so they are
fast); Ctrl-C and concurrent writers run ``python -m crossemo_core`` as a subprocess. Read-only and full targets
are tmpfs mounts, so those cases need root (skipped otherwise).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crossemo_core.cli import build_parser, main
from crossemo_core.paths import atomic_write
from crossemo_core.settings import SettingError, check_settings, parse_settings, settable_fields

REPO = Path(__file__).resolve().parent.parent
CLIPS = REPO / "assets" / "clips"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    """Run the command line in-process: (exit status, stderr), asserting stderr is one line without a traceback."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return code, err


def one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------------- --set
GOOD = {"hidden_size": "16", "embedding_size": "32", "dropout": "0.2", "eta_init": "0.05", "lambda_intra": "0.5",
        "lambda_cross": "2", "lambda_hard": "0", "k": "3", "tau": "0.3", "use_share": "false", "use_intra": "no",
        "use_cross": "1", "use_hard": "off", "hard_loss": "literal", "optimizer": "adam", "lr": "3e-4",
        "momentum": "0.5", "weight_decay": "1e-4", "lr_step_epochs": "5", "lr_gamma": "0.5", "batch_size": "8",
        "epochs": "2", "patience": "3", "grad_clip": "0", "seed": "7", "abnormal_rate": "0.3",
        "normalization": "none", "threshold": "youden", "device": "cpu", "mixture_var_floor": "1e-2",
        "training_labels": "emotions", "refit": "true", "runs": "3"}
"""A valid value for every settable field."""
BAD_TYPE = {"bool": "maybe", "int": "2.5", "float": "abc"}
OUT_OF_RANGE = {"hidden_size": "0", "embedding_size": "-4", "dropout": "1", "eta_init": None, "lambda_intra": "-1",
                "lambda_cross": "-0.1", "lambda_hard": "-2", "k": "0", "tau": "0", "lr": "-1e-3", "momentum": "1.5",
                "weight_decay": "-1", "lr_step_epochs": "0", "lr_gamma": "0", "batch_size": "1", "epochs": "0",
                "patience": "0", "grad_clip": "-1", "seed": "-1", "abnormal_rate": "1.5", "mixture_var_floor": "0.3",
                "device": "gpu7", "runs": "0"}
"""A value of the right type but outside the field's range (None: the field has no range)."""


def test_every_field_has_a_test_value() -> None:
    assert set(GOOD) == set(settable_fields())


@pytest.mark.parametrize("name", sorted(GOOD))
def test_set_accepts_every_field_by_its_type(name: str) -> None:
    parsed = parse_settings([f"{name}={GOOD[name]}"])
    kind = settable_fields()[name]
    assert isinstance(parsed[name], kind if isinstance(kind, type) else str)
    extra = {"refit": False} if name == "threshold" else {}  # refit is off by default; youden and refit conflict
    check_settings("fast", {**parsed, **extra})


@pytest.mark.parametrize("name", sorted(n for n, kind in settable_fields().items() if kind is not str))
def test_set_refuses_a_wrong_type_naming_the_field(name: str) -> None:
    kind = settable_fields()[name]
    text = "bogus" if isinstance(kind, tuple) else BAD_TYPE[kind.__name__]
    with pytest.raises(SettingError, match=rf"--set {name}={text}: "):
        parse_settings([f"{name}={text}"])


@pytest.mark.parametrize("name", sorted(n for n, v in OUT_OF_RANGE.items() if v is not None))
def test_set_refuses_an_out_of_range_value(name: str) -> None:
    parsed = parse_settings([f"{name}={OUT_OF_RANGE[name]}"])
    with pytest.raises(SettingError, match=name):
        check_settings("fast", parsed)


def test_set_refuses_unknown_derived_and_repeated_names() -> None:
    with pytest.raises(SettingError, match="unknown setting; valid names: abnormal_rate"):
        parse_settings(["colour=blue"])
    with pytest.raises(SettingError, match="face_dim: not settable"):
        parse_settings(["face_dim=3"])
    with pytest.raises(SettingError, match="given twice"):
        parse_settings(["tau=1", "tau=2"])
    with pytest.raises(SettingError, match="NAME=VALUE"):
        parse_settings(["tau"])
    with pytest.raises(SettingError, match="finite"):
        parse_settings(["tau=inf"])


def test_set_works_for_fields_that_also_have_an_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The old bug: --set epochs/lr/seed crashed with "got multiple values for keyword argument"."""
    from crossemo_core.detector import Detector

    out = tmp_path / "x.pt"
    code, err = cli(capsys, "train", "--dataset", "demo", "--out", out, "--preset", "fast", "--set", "epochs=1",
                    "--set", "lr=0.002", "--set", "seed=4", "--set", "batch_size=16")
    assert code == 0, err
    train = Detector.load(out).config.train
    assert (train.epochs, train.lr, train.seed, train.batch_size) == (1, 0.002, 4, 16)


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "2", "--set", "epochs=3"], "--epochs and --set epochs both set epochs"),
    (["--seed", "1", "--set", "seed=2"], "--seed and --set seed"),
    (["--refit", "--set", "refit=false"], "--refit and --set refit"),
    (["--no-hard", "--set", "use_hard=true"], "--no-hard and --set use_hard"),
    (["--set", "tau=abc"], "--set tau=abc: expected a number"),
    (["--set", "refit=true", "--threshold", "youden"], "refit trains on the validation pairs"),
    (["--epochs", "0"], "argument --epochs: must be >= 1"),
    (["--epochs", "-1"], "argument --epochs: must be >= 1"),
    (["--epochs", "2.5"], "argument --epochs: expected a whole number"),
    (["--rate", "1.5"], "argument --rate: must be <= 0.99"),
    (["--rate", "-0.5"], "argument --rate: must be > 0"),
    (["--batch-size", "0"], "argument --batch-size: must be >= 2"),
    (["--lr", "nan"], "argument --lr: expected a finite number"),
    (["--device", "gpu"], "device must be auto, cpu, cuda"),
])
def test_train_options_are_checked_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], fragment: str) -> None:
    code, err = cli(capsys, "train", "--dataset", "demo", "--out", tmp_path / "x.pt", *args)
    one_line_error(code, err, fragment)
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("args, fragment", [
    (["cross-validate", "--dataset", "demo", "--folds", "1"], "argument --folds: must be >= 3"),
    (["cross-validate", "--dataset", "demo", "--folds", "2"], "argument --folds: must be >= 3"),
    (["cross-validate", "--dataset", "demo", "--set", "seed=3"], "--set seed"),
    (["cross-validate", "--dataset", "demo", "--seeds", "-2"], "argument --seeds: must be >= 0"),
    (["evaluate", "--dataset", "demo", "--rate", "0"], "argument --rate: must be > 0"),
    (["benchmark", "--suite", "paper", "--dataset", "demo", "--folds", "1", "--out", "OUT"],
     "--folds 1: folds give train, valid and test speakers"),
    (["benchmark", "--suite", "paper", "--dataset", "demo", "--jobs", "0", "--out", "OUT"],
     "argument --jobs: must be >= 1"),
    (["benchmark", "--suite", "paper", "--dataset", "demo", "--set", "k=0", "--out", "OUT"],
     "k (hard samples per anchor) must be >= 1"),
    (["score", str(CLIPS / "smile_low.mp4"), "--max-seconds", "0"], "argument --max-seconds: must be > 0"),
    (["score", str(CLIPS / "smile_low.mp4"), "--max-seconds", "-5"], "argument --max-seconds: must be > 0"),
    (["score", str(CLIPS / "smile_low.mp4"), "--max-mb", "0"], "argument --max-mb: must be > 0"),
    (["train", "--dataset", "ravdess", "--out", "OUT/x.pt"], "needs --root PATH"),
    (["train", "--dataset", "ravdess", "--root", "MISSING", "--out", "OUT/x.pt"], "does not exist"),
    (["train", "--dataset", "ravdess", "--root", "EMPTY", "--out", "OUT/x.pt"], "EMPTY"),
    (["train", "--dataset", "misa", "--root", "EMPTY", "--out", "OUT/x.pt"], "EMPTY"),
])
def test_other_commands_check_their_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            args: list[str], fragment: str) -> None:
    (tmp_path / "EMPTY").mkdir()
    where = {"OUT": tmp_path / "out", "OUT/x.pt": tmp_path / "out" / "x.pt", "MISSING": tmp_path / "missing",
             "EMPTY": tmp_path / "EMPTY"}
    code, err = cli(capsys, *[where.get(a, a) for a in args])
    one_line_error(code, err, fragment)


# ---------------------------------------------------------------------------------------------------- environment
@pytest.mark.parametrize("name, value, fragment", [
    ("CROSSEMO_CLIP_MAX_SECONDS", "abc", "CROSSEMO_CLIP_MAX_SECONDS='abc' is not a number > 0"),
    ("CROSSEMO_CLIP_MAX_SECONDS", "-3", "CROSSEMO_CLIP_MAX_SECONDS='-3' is not a number > 0"),
    ("CROSSEMO_CLIP_MAX_MB", "0", "CROSSEMO_CLIP_MAX_MB='0' is not a number > 0"),
    ("CROSSEMO_CLIP_CHECKPOINT", "/no/such/clip.pt", "CROSSEMO_CLIP_CHECKPOINT=/no/such/clip.pt: no such file"),
])
def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    code, err = cli(capsys, "score", CLIPS / "smile_low.mp4")
    one_line_error(code, err, fragment)


@pytest.mark.parametrize("name", ["CROSSEMO_CACHE", "CROSSEMO_WORKSPACE"])
def test_a_folder_variable_that_names_no_usable_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                name: str) -> None:
    """A cache at a file kept nothing, silently: every feature was computed again on every run."""
    from crossemo_core.settings import SettingError, cache_root, workspace_root

    root = {"CROSSEMO_CACHE": cache_root, "CROSSEMO_WORKSPACE": workspace_root}[name]
    (a_file := tmp_path / "a file").write_text("x")
    for value, reason in ((a_file, "it exists and is not a folder"), (a_file / "under", "Not a directory")):
        monkeypatch.setenv(name, str(value))
        with pytest.raises(SettingError, match=f"^{name}='{value}' cannot be used as a folder \\({reason}\\)"):
            root()
    monkeypatch.setenv(name, str(tmp_path / "new" / "folder"))
    assert root() == tmp_path / "new" / "folder" and root().is_dir()


# ---------------------------------------------------------------------------------------------------- outputs
def _mount_tmpfs(where: Path, options: str) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


@pytest.fixture
def readonly_dir(tmp_path: Path):
    """An empty read-only folder (a read-only tmpfs)."""
    where = tmp_path / "readonly"
    _mount_tmpfs(where, "ro,size=64k")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def full_dir(tmp_path: Path):
    """A folder on a full disk (a 256 KiB tmpfs filled up), holding ``old.csv`` and ``old.pt`` written before."""
    where = tmp_path / "full"
    _mount_tmpfs(where, "size=256k")
    try:
        (where / "old.csv").write_text("file,verdict\nold.mp4,consistent\n")
        (where / "old.pt").write_bytes(b"old checkpoint")
        with open(where / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _output_commands(target: Path, name: str) -> list[tuple[str, list[Any]]]:
    """(option, command line) for every output option, writing ``name``-ish files under ``target``."""
    clip = CLIPS / "smile_low.mp4"
    return [
        ("--out", ["train", "--dataset", "demo", "--out", target / f"{name}.pt", "--epochs", "1"]),
        ("--json", ["train", "--dataset", "demo", "--out", target.parent / "ok.pt", "--json", target / "m.json"]),
        ("--json", ["evaluate", "--dataset", "demo", "--json", target / "m.json"]),
        ("--json", ["cross-validate", "--dataset", "demo", "--json", target / "m.json"]),
        ("--csv", ["score", clip, "--csv", target / f"{name}.csv"]),
        ("--report", ["score", clip, "--report", target / "r.html"]),
        ("--report", ["score", clip, CLIPS / "smile_upbeat.mp4", "--report", target / "reports"]),
        ("--csv", ["read", clip, "--csv", target / f"{name}.csv"]),
        ("--out", ["benchmark", "--suite", "paper", "--dataset", "demo", "--out", target / "bench"]),
    ]


def test_read_only_targets_are_refused_before_any_work(readonly_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for option, args in _output_commands(readonly_dir, "new"):
        started = time.perf_counter()
        code, err = cli(capsys, *args)
        one_line_error(code, err, option, "cannot")
        assert time.perf_counter() - started < 5, f"{args}: the check came after the work"


def test_full_targets_are_refused_before_any_work_and_old_files_stay(full_dir: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for option, args in _output_commands(full_dir, "old"):
        code, err = cli(capsys, *args)
        one_line_error(code, err, option, "No space left on device")
    assert (full_dir / "old.csv").read_text() == "file,verdict\nold.mp4,consistent\n"
    assert (full_dir / "old.pt").read_bytes() == b"old checkpoint"
    assert not [p for p in full_dir.iterdir() if p.name.startswith(".")]


def test_a_write_that_fails_midway_leaves_the_old_file(full_dir: Path) -> None:
    with pytest.raises(OSError):
        atomic_write(full_dir / "old.csv", b"new,table\n" * 100_000)
    assert (full_dir / "old.csv").read_text() == "file,verdict\nold.mp4,consistent\n"
    assert not [p for p in full_dir.iterdir() if p.name.startswith(".")]


def test_report_csv_and_voice_targets_of_the_wrong_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "existing.html"
    existing.write_text("keep me")
    code, err = cli(capsys, "score", CLIPS / "smile_low.mp4", CLIPS / "smile_upbeat.mp4", "--report", existing)
    one_line_error(code, err, "--report", "give a folder")
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me too")
    code, err = cli(capsys, "score", CLIPS / "smile_low.mp4", CLIPS / "smile_upbeat.mp4", "--report", plain)
    one_line_error(code, err, "--report", "exists and is not a folder")
    code, err = cli(capsys, "score", CLIPS / "smile_low.mp4", "--csv", tmp_path)
    one_line_error(code, err, "--csv", "is a folder")
    code, err = cli(capsys, "train", "--dataset", "demo", "--out", tmp_path)
    one_line_error(code, err, "--out", "is a folder")
    assert existing.read_text() == "keep me" and plain.read_text() == "keep me too"
    pipe = tmp_path / "pipe.csv"  # a device such as /dev/full was replaced by a regular file
    os.mkfifo(pipe)
    for args in (("score", CLIPS / "smile_low.mp4", "--csv", pipe), ("train", "--dataset", "demo", "--out", pipe)):
        code, err = cli(capsys, *args)
        one_line_error(code, err, "exists and is not a regular file")
    assert pipe.is_fifo()


def test_an_empty_output_name_or_one_ending_in_a_slash_is_refused(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``--out new/`` wrote the checkpoint as a file named ``new`` (Path drops the slash), and ``--csv ""`` was read
    as the current folder."""
    for args in (("train", "--dataset", "demo", "--epochs", "1", "--out"), ("evaluate", "--dataset", "demo", "--json"),
                 ("score", CLIPS / "smile_low.mp4", "--csv"), ("score", CLIPS / "smile_low.mp4", "--segments"),
                 ("read", CLIPS / "smile_low.mp4", "--csv")):
        for folder in (f"{tmp_path}/new/", f"{tmp_path}/new/.", "."):  # Path drops the slash or the dot
            code, err = cli(capsys, *args, folder)
            one_line_error(code, err, f"argument {args[-1]}: {folder!r} names a folder; give a file name")
        code, err = cli(capsys, *args, "")
        one_line_error(code, err, f"argument {args[-1]}: is empty; give a file name")
    assert not (tmp_path / "new").exists()
    code, err = cli(capsys, "score", CLIPS / "smile_low.mp4", "--report", "")
    one_line_error(code, err, "argument --report: is empty; give a file name or a folder")
    assert build_parser().parse_args(["benchmark", "--suite", "speed", "--out", "runs/"]).out == Path("runs")


def test_a_csd_root_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--dataset csd --root labels.csd`` was a TypeError traceback."""
    labels = tmp_path / "labels.csd"
    labels.write_bytes(b"not read")
    code, err = cli(capsys, "train", "--dataset", "csd", "--root", labels, "--out", tmp_path / "m.pt")
    one_line_error(code, err, f"{labels} is a file, not a folder: a CMU-SDK corpus is the folder holding face.csd")


def test_a_seed_given_twice_or_beyond_64_bits_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--seeds 0 0`` ran every run twice and reported the copies as two seeds; a seed above 2**63 - 1 failed each
    run in turn with "seed must be a whole number >= 0"."""
    for args in (("cross-validate", "--dataset", "demo"),
                 ("benchmark", "--suite", "paper", "--dataset", "synthetic-tiny", "--out", tmp_path / "b")):
        code, err = cli(capsys, *args, "--seeds", "2", "0", "2", "1", "0")
        one_line_error(code, err, "argument --seeds: 0, 2 given more than once")
        code, err = cli(capsys, *args, "--seeds", "1", str(2**63))
        one_line_error(code, err, f"argument --seeds: must be <= {2**63 - 1}, got {2**63}")
        code, err = cli(capsys, *args, "--seeds", str(2**63 - 1), "--set", "runs=3")  # each run failed, 3 times
        one_line_error(code, err, f"seed + 1000 x (runs - 1) must be at most {2**63 - 1}")
    for args, command in ((("cross-validate", "--dataset", "demo"), "cross-validate"),
                          (("benchmark", "--suite", "paper", "--dataset", "synthetic-tiny", "--out", tmp_path / "b"),
                           "benchmark")):  # a TypeError traceback, or every run failing with one
        code, err = cli(capsys, *args, "--seeds", "1", "--set", "seed=3")
        one_line_error(code, err, f"--set seed: {command} runs every seed given with --seeds")
    code, err = cli(capsys, "train", "--dataset", "demo", "--seed", str(2**63), "--out", tmp_path / "m.pt")
    one_line_error(code, err, f"argument --seed: must be <= {2**63 - 1}")
    assert not list(tmp_path.rglob("*.json")) and not (tmp_path / "m.pt").exists()


def test_a_diverging_run_and_an_out_that_is_the_input_are_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "train", "--dataset", "demo", "--epochs", "2", "--lr", "1e30", "--out", tmp_path / "m.pt")
    one_line_error(code, err, "the loss became nan at epoch 1", "lower the learning rate")
    spec = tmp_path / "demo.json"
    spec.write_bytes((REPO / "assets" / "demo" / "demo.json").read_bytes())
    clip = tmp_path / "clip.mp4"
    clip.write_bytes((CLIPS / "smile_low.mp4").read_bytes())
    for option, target, args in (("--out", spec, ["train", "--dataset", "demo", "--root", spec, "--epochs", "1"]),
                                 ("--json", spec, ["evaluate", "--dataset", "demo", "--root", spec]),
                                 ("--csv", clip, ["score", clip]), ("--csv", clip, ["read", clip])):
        code, err = cli(capsys, *args, option, target)
        one_line_error(code, err, f"{option} {target} is one of the command's inputs; writing it would replace it")
    assert spec.read_bytes() == (REPO / "assets" / "demo" / "demo.json").read_bytes()
    assert clip.read_bytes() == (CLIPS / "smile_low.mp4").read_bytes()


def test_a_benchmark_whose_run_cache_cannot_be_written_is_refused_before_any_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every run was computed (three tries each) and then lost, with an error line thousands of characters long."""
    (tmp_path / "cache").write_text("a file where the run cache goes")
    code, err = cli(capsys, "benchmark", "--suite", "paper", "--dataset", "demo", "--out", tmp_path, "--seeds", "0",
                    "--folds", "3", "--epochs", "1")
    one_line_error(code, err, "--out (its run cache)", "exists and is not a folder")


def test_a_run_where_every_file_fails_leaves_an_earlier_table(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    table = tmp_path / "verdicts.csv"
    table.write_text("file,verdict\nold.mp4,consistent\n")
    assert main(["score", str(bad), "--csv", str(table)]) == 2
    assert f"nothing was judged, so {table} was left as it was" in capsys.readouterr().err
    assert table.read_text() == "file,verdict\nold.mp4,consistent\n"
    fresh = tmp_path / "fresh.csv"
    assert main(["score", str(bad), "--csv", str(fresh)]) == 2
    assert "bad.mp4" in fresh.read_text()  # a new table gets the error row


def _score(*args: Any, check_one_line: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "crossemo_core", "score", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr
    return proc


def test_a_folder_as_voice_and_a_bad_baseline_are_one_line(tmp_path: Path) -> None:
    proc = _score(CLIPS / "face_photo.jpg", "--voice", CLIPS)
    assert proc.returncode == 2 and "--batch" not in proc.stdout + proc.stderr
    assert "is a folder" in proc.stdout + proc.stderr
    junk = tmp_path / "calm.mp4"
    junk.write_text("not a recording")
    proc = _score(CLIPS / "smile_low.mp4", "--baseline", junk)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "calm.mp4" in proc.stderr


def test_two_processes_writing_one_csv_leave_one_whole_table(tmp_path: Path) -> None:
    table = tmp_path / "verdicts.csv"
    procs = [subprocess.Popen([sys.executable, "-m", "crossemo_core", "score", str(CLIPS / name), "--csv", str(table)],
                              cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("smile_low.mp4", "smile_upbeat.mp4")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err, err
    rows = pd.read_csv(table)
    assert len(rows) == 1 and rows["file"].iloc[0] in ("smile_low.mp4", "smile_upbeat.mp4")
    assert rows["verdict"].notna().all()
    assert [p.name for p in tmp_path.iterdir()] == ["verdicts.csv"]


def test_a_line_break_in_a_file_name_keeps_the_message_on_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Only the first line of a message was printed: a checkpoint called "bad<newline>name.pt" gave "error: bad"."""
    odd = tmp_path / "bad\nname.pt"
    odd.write_text("not a model")
    code, err = cli(capsys, "evaluate", "--dataset", "demo", "--checkpoint", odd)
    one_line_error(code, err, "bad\\nname.pt is not a readable crossemo checkpoint")
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a\nvideo.mp4").write_bytes((REPO / "assets" / "clips" / "smile_low.mp4").read_bytes())
    (folder / "two\nlines.mp4").write_text("not a video")
    assert main(["score", str(folder)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"a\\nvideo\.mp4: (CONSISTENT|INCONSISTENT|UNDETERMINED)", lines[0]), lines
    assert lines[-1] == ("two\\nlines.mp4: ERROR: two\\nlines.mp4: skipped, not a video, audio or image file "
                         "crossemo (ffmpeg) can read."), lines


# ---------------------------------------------------------------------------------------------------- Ctrl-C
def _start_training(out: Path, *extra: str) -> subprocess.Popen[str]:
    # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it; a terminal user's
    # Ctrl-C is what these tests simulate, so the child gets the default disposition back.
    return subprocess.Popen([sys.executable, "-m", "crossemo_core", "train", "--dataset", "demo", "--out", str(out),
                             "--preset", "fast", "--epochs", "200", *extra], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _after_first_epoch(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if line.startswith("epoch") or time.monotonic() > deadline:
            return


def _finish(proc: subprocess.Popen[str]) -> str:
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr  # worker pools' semaphores freed, not reported leaked
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.0, 1.5])
def test_ctrl_c_at_start_up(tmp_path: Path, delay: float) -> None:
    out = tmp_path / "model.pt"
    proc = _start_training(out)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    line = _finish(proc)
    assert "no output file was written" in line or "nothing was written" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_ctrl_c_during_training_writes_nothing_to_out(tmp_path: Path, existing: bool) -> None:
    out = tmp_path / "model.pt"
    if existing:
        out.write_bytes(b"the user's good model")
    proc = _start_training(out)
    _after_first_epoch(proc)
    proc.send_signal(signal.SIGINT)
    line = _finish(proc)
    assert f"nothing was written to {out}" in line and "--save-on-interrupt" in line
    assert "continue with --resume (state in model.resume.pt)" in line
    assert (out.read_bytes() == b"the user's good model") if existing else not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["model.pt"] if existing else []) + ["model.resume.pt"]


def test_ctrl_c_with_save_on_interrupt_keeps_the_best_weights_beside_out(tmp_path: Path) -> None:
    from crossemo_core.detector import Detector

    out = tmp_path / "model.pt"
    out.write_bytes(b"the user's good model")
    proc = _start_training(out, "--save-on-interrupt")
    _after_first_epoch(proc)
    proc.send_signal(signal.SIGINT)
    line = _finish(proc)
    kept = tmp_path / "model.interrupted.pt"
    assert str(kept) in line
    assert out.read_bytes() == b"the user's good model"
    assert Detector.load(kept).metadata["interrupted"] is True


def test_a_second_ctrl_c_quits_at_once(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    out.write_bytes(b"the user's good model")
    proc = _start_training(out, "--save-on-interrupt")
    _after_first_epoch(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _finish(proc)
    assert out.read_bytes() == b"the user's good model"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_during_a_benchmark_keeps_finished_runs_and_stops_the_workers(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.Popen([sys.executable, "-m", "crossemo_core", "benchmark", "--suite", "paper", "--dataset",
                             "synthetic-tiny", "--out", str(out), "--jobs", "2", "--seeds", "0", "1", "2", "3"],
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list((out / "cache").glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the benchmark ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _finish(proc)
    assert list((out / "cache").glob("*.json"))
    assert not list((out / "cache").glob(".*.tmp"))


def test_an_interrupted_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path: Path) -> None:
    args = ["--epochs", "3", "--set", "patience=10"]
    whole = subprocess.run([sys.executable, "-m", "crossemo_core", "train", "--dataset", "demo", "--out",
                            str(tmp_path / "whole.pt"), "--preset", "fast", *args], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "model.pt"
    proc = subprocess.Popen([sys.executable, "-m", "crossemo_core", "train", "--dataset", "demo", "--out", str(out),
                             "--preset", "fast", *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _after_first_epoch(proc)
    proc.send_signal(signal.SIGINT)
    _finish(proc)
    assert (tmp_path / "model.resume.pt").is_file() and not out.exists()
    again = subprocess.run([sys.executable, "-m", "crossemo_core", "train", "--dataset", "demo", "--out", str(out),
                            "--preset", "fast", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "holds an unfinished run; give --resume" in again.stderr
    resumed = subprocess.run([sys.executable, "-m", "crossemo_core", "train", "--dataset", "demo", "--out", str(out),
                              "--preset", "fast", *args, "--resume"], cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and not (tmp_path / "model.resume.pt").exists()

    def test_line(stdout: str) -> str:
        return next(line for line in stdout.splitlines() if line.startswith("test: AUC"))

    assert test_line(resumed.stdout) == test_line(whole.stdout)
