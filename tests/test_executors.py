"""Executors: cross-validation folds and benchmark runs give identical numbers in this process, in local worker
processes and on Ray; failed tasks are retried, reported, and never silently dropped.

Ray tasks run on one local Ray instance started once for the module (a few seconds).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossemo_core.data.loaders import load_demo
from crossemo_core.errors import DataError
from crossemo_core.executors import LocalExecutor, RayExecutor, TaskFailed, make_executor
from crossemo_core.experiment import cross_validate

REPO = Path(__file__).resolve().parent.parent
ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance():
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import the tests folder
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    yield
    ray.shutdown()


def double(shared: int, item: int) -> int:
    return shared * item


def flaky(marker_dir: str, item: int) -> int:
    """Fails the first time it sees ``item`` (a marker file remembers), then works; item 3 always fails."""
    marker = Path(marker_dir) / f"{item}.seen"
    if item == 3:
        raise ValueError("item three is broken")
    if not marker.exists():
        marker.write_text("x")
        raise RuntimeError(f"first try of {item}")
    return item * 10


@pytest.mark.parametrize("kind", ["local-1", "local-2", "ray"])
def test_map_keeps_order_retries_and_reports_what_failed(kind: str, tmp_path: Path, request) -> None:
    if kind == "ray":
        request.getfixturevalue("ray_instance")
        executor = RayExecutor(retries=1)
    else:
        executor = LocalExecutor(jobs=int(kind[-1]), retries=1)
    assert executor.map(double, [1, 2, 3], shared=7) == [7, 14, 21]
    retries: list[tuple[int, int, str]] = []
    executor.on_retry = lambda item, attempt, error: retries.append((item, attempt, error))
    done: list[int] = []
    with pytest.raises(TaskFailed, match=r"1 of 4 task\(s\) failed \(3: ValueError: item three is broken, after 2 "
                                         r"tries\); the others finished"):
        executor.map(flaky, [0, 1, 2, 3], shared=str(tmp_path), on_done=lambda i, r: done.append(r))
    assert sorted(done) == [0, 10, 20]
    assert sorted(r[0] for r in retries) == [0, 1, 2, 3] and {r[1] for r in retries} == {2}
    assert any("RuntimeError: first try of 1" in r[2] for r in retries)
    executor.close()


def bad_data(marker_dir: str, item: int) -> int:
    """Counts its tries in a marker file, then fails as bad data does: the same way every time."""
    tries = Path(marker_dir) / f"{item}.tries"
    tries.write_text(str(int(tries.read_text()) + 1 if tries.exists() else 1))
    raise DataError(f"corpus {item} has one class")


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_data_is_not_tried_again(jobs: int, tmp_path: Path) -> None:
    """A one-class corpus was tried three times, each try reported, before its one-line error."""
    retried: list[int] = []
    executor = LocalExecutor(jobs=jobs, retries=2, on_retry=lambda item, attempt, error: retried.append(item))
    with pytest.raises(TaskFailed, match=r"^2 of 2 task\(s\) failed \(0: DataError: corpus 0 has one class; 1: "):
        executor.map(bad_data, [0, 1], shared=str(tmp_path))
    executor.close()
    assert not retried and {f.read_text() for f in tmp_path.glob("*.tries")} == {"1"}


def test_cross_validation_gives_identical_numbers_on_every_executor(ray_instance) -> None:
    corpus = load_demo()
    results = {}
    for name, executor in (("in-process", LocalExecutor()), ("2 processes", LocalExecutor(jobs=2)),
                           ("ray", RayExecutor())):
        with executor:
            results[name] = cross_validate(corpus, preset="fast", seeds=(0, 1), n_folds=3, epochs=1,
                                           executor=executor)
    assert results["in-process"]["per_seed"] == results["2 processes"]["per_seed"] == results["ray"]["per_seed"]


def test_the_command_line_prints_identical_aucs_locally_and_on_ray(tmp_path: Path) -> None:
    """A fresh local Ray instance is started and stopped by the command itself."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    outputs = {}
    for executor in ("local", "ray"):
        out = tmp_path / f"{executor}.json"
        proc = subprocess.run([sys.executable, "-m", "crossemo_core", "cross-validate", "--dataset", "demo",
                               "--folds", "3", "--seeds", "0", "--epochs", "1", "--executor", executor,
                               "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        outputs[executor] = json.loads(out.read_text())
        summary = next(line for line in proc.stdout.splitlines() if "AUC" in line)
        outputs[executor + " line"] = summary
    assert outputs["local"]["per_seed"] == outputs["ray"]["per_seed"]
    assert outputs["local line"] == outputs["ray line"]


def test_benchmark_runs_are_identical_on_ray(tmp_path: Path, ray_instance) -> None:
    from crossemo_core.benchmark.runner import run_benchmark
    from crossemo_core.benchmark.suites import Profile

    profile = Profile.resolve("synthetic-tiny", seeds=(0,), methods=("sir-hcl", "agreement"))
    local = run_benchmark("paper", profile, tmp_path / "local", jobs=1)
    with RayExecutor() as executor:
        on_ray = run_benchmark("paper", profile, tmp_path / "ray", executor=executor)
    assert local.computed == on_ray.computed == 2
    records = {}
    for name in ("local", "ray"):
        records[name] = sorted((json.loads(p.read_text())["key"], json.loads(p.read_text())["metrics"]["auc"])
                               for p in (tmp_path / name / "cache").glob("*.json"))
    assert records["local"] == records["ray"]


def test_unknown_executor_and_address_without_ray_are_refused() -> None:
    from crossemo_core.errors import CrossemoError

    with pytest.raises(CrossemoError, match="unknown executor"):
        make_executor("dask")
    with pytest.raises(CrossemoError, match="--ray-address goes with --executor ray"):
        make_executor("local", address="10.0.0.1:6379")


def test_a_folder_of_clips_gets_identical_verdicts_on_every_executor(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("smile_low.mp4", "smile_upbeat.mp4"):
        shutil.copy(REPO / "assets" / "clips" / name, folder / name)
    (folder / "broken.mp4").write_bytes(b"not a video")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    lines = {}
    for extra in ([], ["--jobs", "2"], ["--executor", "ray"]):
        proc = subprocess.run([sys.executable, "-m", "crossemo_core", "score", str(folder), "--json", *extra],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2, proc.stderr  # the broken file is reported, not dropped
        lines[" ".join(extra) or "in-process"] = proc.stdout.splitlines()
    assert lines["in-process"] == lines["--jobs 2"] == lines["--executor ray"]
    rows = [json.loads(line) for line in lines["in-process"]]
    assert [r["file"] for r in rows] == ["broken.mp4", "smile_low.mp4", "smile_upbeat.mp4"]
    assert "error" in rows[0] and rows[1]["verdict"] and rows[2]["verdict"]


def test_a_ray_address_where_nothing_answers_is_one_line_at_once(tmp_path: Path) -> None:
    """``ray.init`` retried such an address for minutes, printing C++ warnings; the address is now tried first."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    proc = subprocess.run([sys.executable, "-m", "crossemo_core", "cross-validate", "--dataset", "demo", "--seeds", "0",
                           "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: could not join the Ray cluster at 127.0.0.1:{port}: nothing answers there (Connection refused); "
        "start it with 'ray start --head' or check --ray-address."], proc.stderr
