"""The command line, run as users run it: ``python -m crossemo_core ...`` in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA", ROOT.parent / "shared" / "data"))


def run(*args, check=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "crossemo_core", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_help_lists_the_commands():
    out = run("--help").stdout
    for command in ("train", "evaluate", "cross-validate", "inspect"):
        assert command in out
    train_help = run("train", "--help").stdout
    for option in ("--dataset", "--root", "--out", "--preset", "--epochs", "--seed"):
        assert option in train_help


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "demo.pt"
    proc = run("train", "--dataset", "demo", "--out", out, "--preset", "fast", "--epochs", "1", "--seed", "3")
    return out, proc


def test_train_on_the_demo_prints_split_protocol_and_test_metrics(demo_checkpoint):
    out, proc = demo_checkpoint
    assert out.is_file()
    assert "demo (synthetic)" in proc.stdout
    assert "abnormal" in proc.stdout and "device: CPU" in proc.stdout or "device: GPU" in proc.stdout
    assert "test: AUC" in proc.stdout


def test_train_with_refit_reports_the_second_run(tmp_path):
    out = tmp_path / "refit.pt"
    proc = run("train", "--dataset", "demo", "--out", out, "--preset", "fast", "--epochs", "2", "--seed", "3", "--refit")
    assert "| refit on train + valid" in proc.stdout  # the refit epochs are printed as such
    assert "; refit on train + valid for " in proc.stdout and "test: AUC" in proc.stdout
    card = json.loads(run("inspect", "--checkpoint", out).stdout)
    assert card["config"]["train"]["refit"] is True and card["metadata"]["refit"]["completed"] is True


def test_cross_validate_with_refit_records_its_settings(tmp_path):
    report = tmp_path / "cv.json"
    proc = run("cross-validate", "--dataset", "demo", "--folds", "3", "--seeds", "0", "--epochs", "1", "--refit",
               "--set", "tau=0.5", "--json", report)
    assert "3-fold speaker-disjoint CV" in proc.stdout
    result = json.loads(report.read_text())
    assert result["overrides"] == {"epochs": 1, "refit": True, "tau": 0.5} and len(result["per_seed"]) == 1
    assert 0.0 <= result["summary"]["auc"]["mean"] <= 1.0


def test_cross_validate_averages_runs_and_train_refuses_them(tmp_path):
    report = tmp_path / "cv.json"
    run("cross-validate", "--dataset", "demo", "--folds", "3", "--seeds", "0", "--epochs", "1", "--set", "runs=2",
        "--json", report)
    assert json.loads(report.read_text())["overrides"]["runs"] == 2
    proc = run("train", "--dataset", "demo", "--out", tmp_path / "x.pt", "--epochs", "1", "--set", "runs=2",
               check=False)
    assert proc.returncode != 0 and "--set runs=2: runs > 1 averages several networks" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.pt").exists()


def test_evaluate_writes_the_documented_json(demo_checkpoint, tmp_path):
    out, _ = demo_checkpoint
    report = tmp_path / "metrics.json"
    run("evaluate", "--checkpoint", out, "--dataset", "demo", "--seed", "1", "--json", report)
    metrics = json.loads(report.read_text())
    assert {"auc", "tpr", "fpr", "accuracy", "n_pairs", "n_abnormal", "per_type"} <= set(metrics)
    assert metrics["n_pairs"] == 360  # every demo clip is test data
    assert set(metrics["per_type"]) == {"neg-neu", "neg-pos", "neu-pos"}
    again = tmp_path / "again.json"
    run("evaluate", "--checkpoint", out, "--dataset", "demo", "--seed", "1", "--json", again)
    assert json.loads(again.read_text()) == metrics  # same seed, same pairs, same numbers


def test_bundled_checkpoint_evaluates_on_the_bundled_demo():
    proc = run("evaluate", "--dataset", "demo")
    assert "evaluation: AUC" in proc.stdout


def test_inspect_shows_the_checkpoint_card(demo_checkpoint):
    out, _ = demo_checkpoint
    card = json.loads(run("inspect", "--checkpoint", out).stdout)
    assert card["config"]["train"]["preset"] == "fast"
    assert card["schema"]["face_dim"] == 35 and card["mixture"]["format"] == "crossemo.BetaMixture"


def test_user_errors_are_one_line_messages_not_tracebacks(tmp_path):
    proc = run("train", "--dataset", "misa", "--root", tmp_path / "missing.pkl", "--out", tmp_path / "x.pt",
               check=False)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    proc = run("evaluate", "--checkpoint", junk, "--dataset", "demo", check=False)
    assert proc.returncode == 2 and "not a readable crossemo checkpoint" in proc.stderr
    proc = run("train", "--dataset", "ravdess", "--out", tmp_path / "x.pt", check=False)
    assert proc.returncode == 2 and "needs --root PATH" in proc.stderr


@pytest.mark.real_data
@pytest.mark.skipif(not (SHARED / "mosi" / "dev.pkl").is_file(), reason="../shared/data/mosi/dev.pkl not present")
def test_mosi_dev_split_trains_end_to_end(tmp_path):
    out = tmp_path / "mosi.pt"
    proc = run("train", "--dataset", "misa", "--root", SHARED / "mosi" / "dev.pkl", "--out", out, "--preset", "fast",
               "--epochs", "2")
    assert "test: AUC" in proc.stdout
    # the demo checkpoint must refuse MOSI features (47/74-d FACET/COVAREP vs 35/74-d synthetic)
    proc = run("evaluate", "--dataset", "misa", "--root", SHARED / "mosi" / "dev.pkl", check=False)
    assert proc.returncode == 2 and "does not fit" in proc.stderr


def test_any_setting_can_be_given_and_bad_ones_are_refused(tmp_path):
    from crossemo_core.settings import parse_settings

    assert parse_settings(["tau=0.3", "k=4", "use_hard=false", "optimizer=adam"]) == {
        "tau": 0.3, "k": 4, "use_hard": False, "optimizer": "adam"}
    proc = run("train", "--dataset", "demo", "--out", tmp_path / "x.pt", "--set", "tau=-1", check=False)
    assert proc.returncode == 2 and "tau must be > 0" in proc.stderr
    proc = run("train", "--dataset", "demo", "--out", tmp_path / "x.pt", "--set", "colour=blue", check=False)
    assert proc.returncode == 2 and "--set colour: unknown setting; valid names: abnormal_rate" in proc.stderr
