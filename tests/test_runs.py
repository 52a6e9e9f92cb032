"""crossemo_core.runs: the comparison of a new model with the model in use, and the workspace store of runs."""
from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest

from crossemo_core.detector import Detector
from crossemo_core.errors import CheckpointError
from crossemo_core.experiment import config_for, load_corpus, split_for
from crossemo_core.mixture import BetaMixture
from crossemo_core.paths import CHECKPOINTS
from crossemo_core.runs import RunComparison, RunStore, compare_models, mixture_health
from crossemo_core.session import TrainingJob
from crossemo_core.training import EpochEvent, StepEvent

DEMO_CHECKPOINT = CHECKPOINTS / "demo.pt"
pytestmark = pytest.mark.skipif(not DEMO_CHECKPOINT.is_file(), reason="the bundled demo checkpoint is missing")


@pytest.fixture(scope="module")
def demo():
    return load_corpus("demo")


@pytest.fixture(scope="module")
def test_pairs(demo):
    parts, _ = split_for(demo, 0, 0.5)
    return parts["test"]


@pytest.fixture()
def bundled() -> Detector:
    return Detector.load(DEMO_CHECKPOINT)


def with_mixture(det: Detector, weights, alphas, betas, normal: int = 0) -> Detector:
    other = copy.deepcopy(det)
    params = det.mixture.get_parameters()
    params.update(weights=list(weights), alphas=list(alphas), betas=list(betas), normal_component=normal)
    other.mixture = BetaMixture.from_parameters(params)
    return other


def test_the_bundled_model_is_healthy_and_compares_equal_with_itself(bundled, test_pairs):
    c = compare_models(bundled, bundled, test_pairs)
    assert c.candidate.mixture.separated and not c.candidate.mixture.problems
    assert c.current is not None and c.current.auc == pytest.approx(c.candidate.auc)
    assert c.candidate.auc >= 0.6 and c.recommended and "looks sound" in c.summary
    assert c.candidate.n_pairs == len(test_pairs)


def test_components_on_top_of_each_other_are_a_degenerate_mixture(bundled, test_pairs):
    flat = with_mixture(bundled, [0.5, 0.5], [5.0, 5.0], [3.0, 3.0])
    health = mixture_health(flat, flat.score(test_pairs).p_abnormal)
    assert not health.separated
    assert any("lie on top of each other" in p for p in health.problems)
    assert any("flat" in p for p in health.problems)  # equal components: posterior 0.5 everywhere
    c = compare_models(flat, bundled, test_pairs)
    assert not c.recommended and any(f.startswith("degenerate mixture") for f in c.flags)


def test_an_empty_component_is_a_degenerate_mixture(bundled, test_pairs):
    lopsided = with_mixture(bundled, [0.995, 0.005], [8.0, 2.0], [2.0, 6.0])
    health = mixture_health(lopsided, lopsided.score(test_pairs).p_abnormal)
    assert any("almost no pairs" in p for p in health.problems)


def test_a_near_chance_model_is_flagged_and_a_worse_one_is_behind(bundled, test_pairs, demo):
    from crossemo_core.workspace import initial_detector

    parts, _ = split_for(demo, 0, 0.5)
    untrained = initial_detector(bundled, parts["train"], parts["valid"])  # initial weights, fitted mixture
    c = compare_models(untrained, bundled, test_pairs)
    assert c.current is not None and c.candidate.auc < c.current.auc
    assert any(f.startswith("behind the model in use") for f in c.flags)
    if c.candidate.auc < 0.6:
        assert any(f.startswith("near chance") for f in c.flags)
    assert not c.recommended


def test_test_pairs_of_one_kind_are_said_to_give_no_auc_not_a_near_chance_one(bundled, test_pairs):
    consistent = test_pairs.subset(np.flatnonzero(~test_pairs.is_abnormal))
    c = compare_models(bundled, None, consistent)
    assert "no AUC: the test pairs are all consistent or all inconsistent" in c.flags and not c.recommended
    assert not any("near chance" in f for f in c.flags)  # it said "near chance (AUC n/a < 0.6)"


def test_a_model_in_use_that_saw_the_test_speakers_is_noted(bundled, test_pairs):
    seen = copy.deepcopy(bundled)
    speakers = sorted({str(s) for s in test_pairs.speaker})
    seen.metadata["split"] = {"speakers": {"train": speakers[:2], "valid": [], "test": []}}
    c = compare_models(bundled, seen, test_pairs)
    assert any("trained on 2 of these test speakers" in n for n in c.notes)


def test_a_model_in_use_of_another_shape_is_left_out(bundled, test_pairs):
    other = copy.deepcopy(bundled)
    other.schema = {**other.schema, "face_dim": other.schema.get("face_dim", 1) + 3}
    c = compare_models(bundled, other, test_pairs)
    assert c.current is None and any("does not fit" in n for n in c.notes)


def test_comparison_round_trips_through_json(bundled, test_pairs):
    c = compare_models(bundled, bundled, test_pairs)
    back = RunComparison.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c


def _events(n: int = 2):
    epochs = [EpochEvent(e, n, {"all": 1.0 / e}, 0.6 + e / 100, 0.6 + e / 100, True, 1e-3, 0.5) for e in range(1, n + 1)]
    steps = [StepEvent(e, s, 5, {"all": 1.0}) for e in range(1, n + 1) for s in range(1, 6)]
    return epochs, steps


def test_store_keeps_runs_newest_first_and_gives_the_model_back(tmp_path, bundled, test_pairs):
    store = RunStore(tmp_path)
    epochs, steps = _events()
    first = store.save(method="agreement", state="done", data_name="demo", data_kind="demo", elapsed=1.0,
                       settings={}, test_metrics={"auc": 0.7, "tpr": np.float64(0.5)}, epochs=epochs, steps=steps,
                       comparison=None, detector=None)
    second = store.save(method="sir-hcl", state="stopped", data_name="demo", data_kind="demo", elapsed=2.0,
                        settings={"x": (1, 2)}, test_metrics={"auc": float("nan")}, epochs=epochs, steps=steps,
                        comparison=compare_models(bundled, None, test_pairs), detector=bundled)
    runs, notes = store.runs()
    assert [r.run_id for r in runs] == sorted([first.run_id, second.run_id], reverse=True) and not notes
    got = store.get(second.run_id)
    assert got.state == "stopped" and got.has_model and got.fits(test_pairs)
    assert got.epochs == epochs and got.steps == steps and np.isnan(got.test_metrics["auc"])
    assert got.comparison == second.comparison
    scored = got.detector().score(test_pairs)
    assert np.allclose(scored.p_abnormal, bundled.score(test_pairs).p_abnormal)
    with pytest.raises(CheckpointError, match="has no model"):
        store.get(first.run_id).detector()


def test_store_skips_damaged_runs_and_refuses_odd_ids(tmp_path):
    store = RunStore(tmp_path)
    epochs, steps = _events()
    good = store.save(method="sir-hcl", state="done", data_name="demo", data_kind="demo", elapsed=1.0, settings={},
                      test_metrics={}, epochs=epochs, steps=steps, comparison=None, detector=None)
    bad = store.runs_folder / "20990101-000000-bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    (store.runs_folder / "20990101-000001-empty").mkdir()
    runs, notes = store.runs()
    assert [r.run_id for r in runs] == [good.run_id] and len(notes) == 2
    for run_id in ("../etc", "", "a/b"):
        with pytest.raises(CheckpointError, match="not a run id"):
            store.get(run_id)
    with pytest.raises(CheckpointError, match="damaged"):
        store.get("20990101-000000-bad")
    with pytest.raises(CheckpointError, match="no run"):
        store.get("20990101-000002-missing")


def test_a_training_job_compares_and_keeps_its_run_without_replacing_anything(tmp_path, demo, bundled, one_thread):
    store = RunStore(tmp_path)
    job = TrainingJob(config_for(demo, "fast", seed=0, abnormal_rate=0.5, epochs=1), demo, compare_with=bundled,
                      store=store, data_kind="demo", num_threads=1).start()
    assert job.wait(300) and job.state == "done"
    outcome = job.outcome
    assert outcome.comparison is not None and outcome.comparison.current is not None
    assert outcome.stored is not None and outcome.store_error is None
    assert [r.run_id for r in store.runs()[0]] == [outcome.stored.run_id]
    assert outcome.stored.comparison == outcome.comparison and outcome.stored.data_kind == "demo"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_workspace_that_cannot_be_written_loses_no_run(tmp_path, demo):
    tmp_path.chmod(0o500)
    try:
        job = TrainingJob(config_for(demo, "fast", seed=0, abnormal_rate=0.5, epochs=1), demo, method="agreement",
                          store=RunStore(tmp_path / "ws"), num_threads=1).start()
        assert job.wait(300) and job.state == "done"
        assert job.outcome.stored is None and "could not be kept" in job.outcome.store_error
        assert job.outcome.test_metrics["auc"] == job.outcome.test_metrics["auc"]
    finally:
        tmp_path.chmod(0o700)
