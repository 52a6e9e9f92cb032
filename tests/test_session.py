"""Background jobs: results, progress, errors as messages, stop keeps the best epoch, thread-safe snapshots."""
import threading
import time

import numpy as np
import pytest
import torch

from crossemo_core.config import preset_config
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.detector import Detector
from crossemo_core.errors import DataError
from crossemo_core.experiment import split_pairs
from crossemo_core.session import BackgroundJob, TrainingJob, user_message


@pytest.fixture(scope="module")
def corpus():
    return make_synthetic(n_speakers=6, clips_per_speaker=14, face_dim=5, voice_dim=7, face_length=(2, 6),
                          voice_length=(3, 8), seed=1)


@pytest.fixture(scope="module")
def parts(corpus):
    """The parts a job on ``corpus`` trains and tests on (split by the config's seed 0 and rate 0.5)."""
    return split_pairs(corpus, seed=0, rate=0.5)


def small_config(corpus, **overrides):
    settings = {"hidden_size": 12, "embedding_size": 12, "epochs": 2, "batch_size": 16, **overrides}
    return preset_config("fast", corpus.face_dim, corpus.voice_dim, **settings)


# ---------------------------------------------------------------------------------------------- BackgroundJob
def test_background_job_keeps_result_and_progress():
    gate = threading.Event()

    def work(job):
        job.report_progress(1, 4, "first")
        gate.wait(5)
        job.report_progress(4, 4, "last")
        return 42

    job = BackgroundJob(work, name="t")
    assert job.state == "pending" and job.snapshot().fraction == 0.0
    job.start()
    deadline = time.time() + 5
    while job.snapshot().done != 1 and time.time() < deadline:
        time.sleep(0.01)
    snap = job.snapshot()
    assert snap.state == "running" and not snap.finished and snap.message == "first"
    assert snap.fraction == pytest.approx(0.25)
    gate.set()
    assert job.wait(5)
    snap = job.snapshot()
    assert snap.state == "done" and snap.result == 42 and snap.error is None and snap.fraction == 1.0
    assert snap.elapsed > 0
    with pytest.raises(RuntimeError):
        job.start()


def test_background_job_errors_become_messages():
    def crossemo_failure(job):
        raise DataError("the folder has no face_au.csv")

    def other_failure(job):
        raise KeyError("boom")

    finished = []
    job = BackgroundJob(crossemo_failure, on_finish=finished.append).start()
    job.wait(5)
    assert job.state == "failed" and job.error == "the folder has no face_au.csv" and job.result is None
    assert "Traceback" in job.error_detail and finished == [job]
    job = BackgroundJob(other_failure).start()
    job.wait(5)
    assert job.state == "failed" and job.error == "KeyError: 'boom'"
    assert user_message(ValueError("")) == "ValueError"


def test_background_job_stop_is_cooperative():
    def work(job):
        while not job.stop_requested:
            time.sleep(0.01)
        return "partial"

    job = BackgroundJob(work).start()
    job.stop()
    assert job.wait(5)
    assert job.state == "stopped" and job.result == "partial"


# ---------------------------------------------------------------------------------------------- TrainingJob
def test_a_training_job_keeps_one_network(corpus):
    with pytest.raises(ValueError, match="runs > 1 averages several networks"):
        TrainingJob(small_config(corpus, runs=2), corpus)


def test_training_job_runs_in_background_and_keeps_everything(corpus, parts, tmp_path):
    path = tmp_path / "run.pt"
    job = TrainingJob(small_config(corpus), corpus, metadata={"note": "test"}, checkpoint_path=path)
    assert job.state == "pending"
    job.start()
    assert job.wait(120), "training did not finish"
    snap = job.snapshot()
    assert snap.state == "done" and snap.finished and snap.error is None and snap.fraction == 1.0
    assert [e.epoch for e in snap.epochs] == [1, 2]
    n_steps = snap.steps[0].n_steps
    assert len(snap.steps) == 2 * n_steps
    assert set(snap.steps[0].losses) == {"total", "share", "intra", "cross", "hard"}
    assert snap.best_epoch in (1, 2)
    outcome = snap.outcome
    assert outcome.test_metrics["n_pairs"] == len(parts["test"])
    assert outcome.training.detector.metadata["note"] == "test"
    assert outcome.checkpoint == path and path.is_file()
    reloaded = Detector.load(path)
    np.testing.assert_allclose(reloaded.similarity(parts["test"]), outcome.training.detector.similarity(parts["test"]),
                               atol=1e-6)
    assert snap.device.startswith(("CPU", "GPU"))


def test_snapshots_are_copies(corpus):
    job = TrainingJob(small_config(corpus, epochs=1), corpus).start()
    job.wait(120)
    a = job.snapshot()
    a.steps.clear()
    assert len(job.snapshot().steps) > 0


def test_stop_keeps_the_best_epoch_so_far(corpus):
    job = TrainingJob(small_config(corpus, epochs=50), corpus)
    original = job.on_epoch

    def stop_after_first_epoch(event):
        original(event)
        job.stop()

    job.on_epoch = stop_after_first_epoch
    job.start()
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == "stopped" and job.stop_requested
    assert len(snap.epochs) == 1 and snap.best_epoch == 1
    result = snap.outcome.training
    assert result.interrupted and result.detector.mixture is not None
    assert snap.outcome.test_metrics is not None


def test_a_stopped_refit_keeps_and_says_the_selected_network(corpus):
    job = TrainingJob(small_config(corpus, epochs=2, refit=True), corpus)
    original = job.on_step

    def stop_in_refit(event):
        original(event)
        if event.phase == "refit":
            job.stop()

    job.on_step = stop_in_refit
    job.start()
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.outcome.training.detector.metadata["refit"]["completed"] is False
    assert snap.kept_network.endswith("(its weights are kept; the refit on train + valid was stopped)")
    assert snap.n_epochs > 2  # the refit's epochs are part of the plan shown by the progress bar


def test_training_failure_is_a_message(corpus):
    two_speakers = corpus.subset(np.flatnonzero(np.isin(corpus.speaker, np.unique(corpus.speaker)[:2])))
    job = TrainingJob(small_config(corpus), two_speakers).start()
    assert job.wait(60)
    snap = job.snapshot()
    assert snap.state == "failed" and "needs at least 3 speakers" in snap.error and snap.outcome is None
    assert "Traceback" not in snap.error


def test_bad_settings_fail_before_a_thread_starts(corpus):
    config = small_config(corpus)
    config.train.lr = -1.0
    with pytest.raises(ValueError, match="learning rate"):
        TrainingJob(config, corpus)
    with pytest.raises(ValueError, match="num_threads"):
        TrainingJob(small_config(corpus), corpus, num_threads=0)
    with pytest.raises(ValueError, match="unknown method 'svm'"):
        TrainingJob(small_config(corpus), corpus, method="svm")


def test_num_threads_is_applied(corpus):
    before = torch.get_num_threads()
    try:
        job = TrainingJob(small_config(corpus, epochs=1), corpus, num_threads=1).start()
        assert torch.get_num_threads() == 1
        job.wait(120)
        assert job.state == "done"
    finally:
        torch.set_num_threads(before)


def test_a_baseline_trains_with_live_curves_and_a_split_record(corpus):
    job = TrainingJob(small_config(corpus, epochs=2), corpus, method="agreement").start()
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == "done" and [e.epoch for e in snap.epochs] == [1, 2]
    assert set(snap.steps[0].losses) == {"total", "face", "voice"}
    assert snap.outcome.training is None and 0.0 <= snap.outcome.test_metrics["auc"] <= 1.0
    assert snap.outcome.run.split.kind == "seeded" and snap.outcome.run.split.seed == 0
