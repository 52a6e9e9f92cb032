"""Benchmark runner: a tiny version of every suite on synthetic data, the resumable cache, the command line."""
import json
import math
import re

import numpy as np
import pytest

from crossemo_core.benchmark import Profile, run_benchmark, runner, suite_runs
from crossemo_core.benchmark.cache import RunCache
from crossemo_core.benchmark.protocols import FINE_GRAINED_CASES, fine_grained_case
from crossemo_core.benchmark.speed import median_seconds, run_speed, speed_markdown
from crossemo_core.benchmark.suites import ABLATIONS, RATIOS
from crossemo_core.cli import main

TINY = "synthetic-tiny"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(seeds=(0, 1, 2), **kwargs) -> Profile:
    return Profile.resolve(TINY, seeds=seeds, **kwargs)


CELL = re.compile(r"\| ([+-]?)(\d+\.\d+) ± (\d+\.\d+)(?= \|)")
RATES = {"auc", "auc_score", "fpr", "tpr", "accuracy"}


def metric_cells(md: str) -> list[tuple[str, float, float]]:
    """Every "mean ± sd" table cell of a report: (sign, mean, sd)."""
    return [(sign, float(mean), float(sd)) for sign, mean, sd in CELL.findall(md)]


def assert_rates_in_unit_interval(md: str, table_json: dict) -> int:
    """Unsigned table cells and every metric mean in the JSON summary lie in [0, 1]; returns how many JSON means."""
    cells = [(m, s) for sign, m, s in metric_cells(md) if not sign]
    assert cells, "no mean ± sd cells in the report"
    assert all(0.0 <= m <= 1.0 and 0.0 <= s <= 1.0 for m, s in cells)
    n = 0

    def walk(node):
        nonlocal n
        if isinstance(node, dict):
            for key, value in node.items():
                if key in RATES and isinstance(value, dict) and "mean" in value:
                    if value["mean"] is not None and math.isfinite(value["mean"]):
                        assert 0.0 <= value["mean"] <= 1.0, (key, value)
                        n += 1
                else:
                    walk(value)

    walk(table_json)
    assert n > 0
    return n


def test_paper_suite_writes_every_table(tmp_path):
    profile = Profile.resolve(TINY, seeds=(0, 1, 2), methods=("sir-hcl", "agreement"), fine_grained=True)
    result = run_benchmark("paper", profile, tmp_path, jobs=1)
    assert result.computed == 12 and result.missing == 0
    md = (tmp_path / "paper-synthetic-tiny.md").read_text()
    for heading in ("Tables II/III layout", "Paired with SIR-HCL", "Table IV layout", "Table V layout"):
        assert heading in md
    assert "| SIR-HCL |" in md and "| Agreement (2 classifiers) |" in md and "3 (3 seeds)" in md
    data = json.loads((tmp_path / "paper-synthetic-tiny.json").read_text())
    assert len(data["runs"]) == 12 and data["profile"]["seeds"] == [0, 1, 2]
    cell = data["tables"]["SIR-HCL"]["3 classes"]
    assert cell["n_seeds"] == 3 and set(cell["summary"]) >= {"auc", "fpr", "tpr", "accuracy", "per_type"}
    seven = data["tables"]["SIR-HCL"]["7 classes"]["summary"]
    assert set(seven["per_case"]) <= set(FINE_GRAINED_CASES)
    html = (tmp_path / "paper-synthetic-tiny.html").read_text()
    assert "plotly" in html and "ROC" in html and "per anomaly type" in html
    assert_rates_in_unit_interval(md, data["tables"])
    headline = next(r for r in md.splitlines() if r.startswith("| SIR-HCL |"))
    assert re.search(r"\| \d\.\d{3} ± \d\.\d{3} \|", headline)  # the AUC cell is a number, not "–"
    paired = [c for c in metric_cells(md) if c[0]]  # SIR-HCL minus the baseline: signed, within [-1, 1]
    assert paired and all(m <= 1.0 and s <= 1.0 for _, m, s in paired)


def test_ablation_and_ratio_suites(tmp_path):
    profile = tiny(seeds=(0, 1))
    run_benchmark("ablation", profile, tmp_path, jobs=1)
    md = (tmp_path / "ablation-synthetic-tiny.md").read_text()
    for row, _, _ in ABLATIONS:
        assert f"| {row} |" in md
    assert "The paper's Table VI" in md and "## Baseline variants" in md and "literal eqs. 9-10" in md
    run_benchmark("ratio", Profile.resolve(TINY, seeds=(0,), methods=("tn-bcl",)), tmp_path, jobs=1)
    ratio = json.loads((tmp_path / "ratio-synthetic-tiny.json").read_text())
    runs = ratio["runs"]
    assert len(runs) == len(RATIOS)
    rates = sorted(r["spec"]["rate"] for r in runs)
    assert rates[0] == pytest.approx(0.05) and rates[-1] == pytest.approx(0.8)
    for r in runs:  # the test part holds about the asked share of abnormal pairs
        assert r["test_abnormal"] / r["sizes"]["test"] == pytest.approx(r["spec"]["rate"], abs=0.1)


def test_speed_suite_tiny():
    rows = run_speed(tiny=True)
    names = [r.measure for r in rows]
    assert names[:4] == ["seconds per training epoch", "scoring throughput", "loss speed-up over the loop reference",
                         "BetaMixture fit"]
    assert "t-SNE 2-D map" in names and "clip verdict latency" in names
    assert all("cores" in r.machine and ("GPU" in r.machine) for r in rows)
    assert rows[0].value.endswith(" s") and "| measure |" in speed_markdown(rows)


def test_interrupted_benchmark_resumes_without_recomputing(tmp_path, monkeypatch):
    profile = tiny(methods=("agreement", "cmad"))
    total = len(suite_runs("paper", profile))
    first = run_benchmark("paper", profile, tmp_path, jobs=1, max_runs=2)
    assert (first.computed, first.missing) == (2, total - 2)
    md = (tmp_path / "paper-synthetic-tiny.md").read_text()
    assert "**incomplete**" in md and "of 3" in md
    done = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.json")}
    assert len(done) == 2
    rendered = run_benchmark("paper", profile, tmp_path, jobs=1, max_runs=0)  # re-render from the cache only
    assert (rendered.computed, rendered.cached, rendered.missing) == (0, 2, total - 2)
    assert "**incomplete**" in (tmp_path / "paper-synthetic-tiny.md").read_text()

    seen = []
    real = runner.execute

    def counting(spec):
        seen.append(spec.key())
        return real(spec)

    monkeypatch.setattr(runner, "execute", counting)
    second = run_benchmark("paper", profile, tmp_path, jobs=1)
    assert second.computed == total - 2 and second.cached == 2 and second.missing == 0
    assert not {f"{k}.json" for k in seen} & set(done)  # finished runs were not recomputed
    assert all((tmp_path / "cache" / name).stat().st_mtime_ns == t for name, t in done.items())
    third = run_benchmark("paper", profile, tmp_path, jobs=1)
    assert third.computed == 0 and len(seen) == total - 2


@pytest.mark.parametrize("damage", ["{ half a record", "[1, 2, 3]", "{}", "[" * 100_000, "metrics a string",
                                    "auc a string", "timings strings", "a count beyond floats"])
def test_a_corrupt_or_malformed_cache_entry_is_recomputed(tmp_path, damage):
    """Valid JSON of the wrong shape crashed every later rerun with a traceback (the entry was never recomputed)."""
    from crossemo_core.benchmark.protocols import is_run_record

    profile = tiny(seeds=(0,), methods=("agreement",))
    run_benchmark("paper", profile, tmp_path, jobs=1)
    (path,) = (tmp_path / "cache").glob("*.json")
    record = json.loads(path.read_text())
    assert is_run_record(record)
    changed = {"metrics a string": {"metrics": "x"}, "auc a string": {"metrics": {**record["metrics"], "auc": "abc"}},
               "timings strings": {"fit_seconds": "x", "sizes": "abc"},
               "a count beyond floats": {"fit_seconds": 10 ** 400}}.get(damage)
    path.write_text(damage if changed is None else json.dumps({**record, **changed}))
    assert RunCache(tmp_path / "cache", valid=is_run_record).get(path.stem) is None
    assert run_benchmark("paper", profile, tmp_path, jobs=1).computed == 1


@pytest.mark.slow  # two spawned workers import torch: ~10-25 s on a busy 2-core machine
def test_worker_processes_give_the_same_results(tmp_path):
    profile = tiny(seeds=(0, 1), methods=("agreement",))
    run_benchmark("paper", profile, tmp_path / "serial", jobs=1)
    run_benchmark("paper", profile, tmp_path / "pool", jobs=2)
    serial = {r["key"]: r["metrics"]["auc"] for r in
              json.loads((tmp_path / "serial" / "paper-synthetic-tiny.json").read_text())["runs"]}
    pool = {r["key"]: r["metrics"]["auc"] for r in
            json.loads((tmp_path / "pool" / "paper-synthetic-tiny.json").read_text())["runs"]}
    assert serial.keys() == pool.keys()
    for key, auc in serial.items():
        assert pool[key] == pytest.approx(auc, abs=1e-6)


def test_cache_key_depends_on_settings_not_on_table_place():
    profile = tiny()
    a = profile.runs("sir-hcl", profile.data(), "row A")[0]
    b = profile.runs("sir-hcl", profile.data(), "row B", column="elsewhere")[0]
    assert a.key() == b.key()
    assert a.key() != profile.runs("sir-hcl", profile.data(), "row A", overrides={"use_hard": False})[0].key()
    assert a.key() != profile.runs("sir-hcl", profile.data(calibration="all"), "row A")[0].key()
    assert a.key() != profile.runs("sir-hcl", profile.data(), "row A", rate=0.2)[0].key()
    explicit = profile.runs("tn-bcl", profile.data(), "r", settings={"mining": "hard", "gamma": 0.2})[0]
    assert explicit.key() == profile.runs("tn-bcl", profile.data(), "r")[0].key()  # defaults filled in
    assert explicit.key() != profile.runs("tn-bcl", profile.data(), "r", settings={"mining": "literal"})[0].key()
    moved = Profile.resolve(TINY, root="/elsewhere/same/data")  # the key hashes the content, not the path
    assert moved.runs("sir-hcl", moved.data(), "row A")[0].key() == a.key()
    assert a.key() != profile.runs("sir-hcl", profile.data(classes=7), "row A")[0].key()


def test_fine_grained_cases():
    face = np.array([0, 2, 1, 3, 5, 3, 4, 0])
    voice = np.array([6, 4, 5, 5, 3, 0, 6, 0])
    assert fine_grained_case(face, voice).tolist() == [
        "neg(s)-pos(s)", "neg(w)-pos(w)", "pos-neg", "pos-neu", "pos-neu", "neu-neg", "same valence", "normal"]


def test_command_line_benchmark(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["benchmark", "--suite", "paper", "--dataset", TINY, "--out", str(out), "--methods", "agreement",
            "--jobs", "1", "--fine-grained", "off"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 run(s) computed" in printed and (out / "paper-synthetic-tiny.md").is_file()
    assert main(args) == 0
    assert "0 run(s) computed, 3 cached" in capsys.readouterr().out
    assert main(args + ["--set", "refit=true"]) == 0  # a changed setting is a new run, never a cached one
    assert "3 run(s) computed, 0 cached" in capsys.readouterr().out
    profile = json.loads((out / "paper-synthetic-tiny.json").read_text())["profile"]
    assert profile["overrides"]["refit"] is True
    assert main(["benchmark", "--suite", "paper", "--dataset", "ravdess", "--out", str(out)]) == 2
    assert "needs --root" in capsys.readouterr().err


SUITE_COMMANDS = {  # the tiny CI version of each suite of `python -m crossemo_core benchmark`
    "paper": (["--methods", "sir-hcl", "agreement", "--seeds", "0", "1", "--fine-grained", "off"], 4,
              ("Tables II/III layout", "Paired with SIR-HCL", "Table IV layout", "| SIR-HCL |")),
    "ablation": (["--methods", "sir-hcl", "tn-bcl", "--seeds", "0", "1"], 2 * (len(ABLATIONS) + 2),
                 tuple(f"| {row} |" for row, _, _ in ABLATIONS) + ("## Baseline variants",)),
    "ratio": (["--methods", "sir-hcl", "tn-bcl", "--seeds", "0"], 2 * len(RATIOS),
              ("accuracy by normal:abnormal ratio", "AUC by normal:abnormal ratio", "| SIR-HCL |", "| TN-BCL |",
               "| Method | 19:1 |")),
}


@pytest.mark.parametrize("suite", sorted(SUITE_COMMANDS))
def test_every_suite_from_the_command_line_writes_numbers_and_resumes(suite, tmp_path, capsys):
    extra, n_runs, expected = SUITE_COMMANDS[suite]
    out = tmp_path / "bench"
    args = ["benchmark", "--suite", suite, "--dataset", TINY, "--out", str(out), "--jobs", "1", *extra]
    assert main(args) == 0
    assert f"{n_runs} run(s) computed, 0 cached, 0 missing" in capsys.readouterr().out
    md = (out / f"{suite}-{TINY}.md").read_text()
    for text in expected:
        assert text in md, text
    assert "**incomplete**" not in md and f"{n_runs} of {n_runs} done" in md
    data = json.loads((out / f"{suite}-{TINY}.json").read_text())
    assert len(data["runs"]) == n_runs and data["suite"] == suite and "cores" in data["machine"]
    assert all(0.0 <= r["metrics"]["accuracy"] <= 1.0 for r in data["runs"])
    assert_rates_in_unit_interval(md, data["tables"])
    assert "plotly" in (out / f"{suite}-{TINY}.html").read_text()
    cached = sorted(p.name for p in (out / "cache").glob("*.json"))
    assert len(cached) == n_runs
    # the same command again: everything comes from the cache, nothing is computed, the tables are the same
    assert main(args) == 0
    assert f"0 run(s) computed, {n_runs} cached, 0 missing" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "cache").glob("*.json")) == cached
    assert metric_cells((out / f"{suite}-{TINY}.md").read_text()) == metric_cells(md)


def test_speed_suite_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["benchmark", "--suite", "speed", "--tiny", "--out", str(out)]) == 0
    md = (out / "speed.md").read_text()
    assert md.startswith("# Benchmark `speed`") and md.strip() in capsys.readouterr().out
    rows = [r.split(" | ") for r in md.splitlines() if r.startswith("| ") and not r.startswith("| measure")]
    measures = {r[0].lstrip("| "): r[1] for r in rows}
    assert float(measures["seconds per training epoch"].removesuffix(" s")) > 0
    assert float(measures["scoring throughput"].removesuffix(" pairs/s").replace(",", "")) > 0
    assert float(measures["BetaMixture fit"].removesuffix(" s")) >= 0
    assert float(measures["t-SNE 2-D map"].removesuffix(" s")) >= 0
    assert all("cores" in r[-1] and "GPU" in r[-1] for r in rows)  # every line names the machine


def test_median_seconds_warms_up_then_times_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import crossemo_core.benchmark.speed as speed

    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # three timed calls: 1 s, 3 s, 2 s
    monkeypatch.setattr(speed.time, "perf_counter", lambda: next(clock))
    calls = []
    assert median_seconds(lambda: calls.append(1), repeats=3, warmups=2) == 2.0
    assert len(calls) == 5  # two untimed warm-ups, three timed calls
