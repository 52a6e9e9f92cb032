"""Network, trainer, detector checkpoint and evaluation metrics."""
import os
import pickle
import threading

import numpy as np
import pytest
import torch

from crossemo_core.batching import FeatureNormalizer, PairTensors
from crossemo_core.config import ExperimentConfig, ModelConfig, preset_config
from crossemo_core.data.container import concatenate
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.detector import Detector
from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.evaluation import detection_metrics, mean_sd, per_type_metrics
from crossemo_core.experiment import split_pairs
from crossemo_core.model import SIRHCL
from crossemo_core.training import HistoryRecorder, Trainer, resolve_device


@pytest.fixture(scope="module")
def parts():
    corpus = make_synthetic(n_speakers=6, clips_per_speaker=16, face_dim=5, voice_dim=7, face_length=(2, 6),
                            voice_length=(3, 9), seed=0)
    return split_pairs(corpus, seed=0, rate=0.5)


def small_config(parts, **overrides):
    train = parts["train"]
    settings = {"hidden_size": 16, "embedding_size": 16, "epochs": 2, "batch_size": 16, **overrides}
    return preset_config("fast", train.face_dim, train.voice_dim, **settings)


@pytest.fixture(scope="module")
def trained(parts):
    recorder = HistoryRecorder()
    result = Trainer(small_config(parts), callbacks=[recorder]).fit(parts["train"], parts["valid"])
    return result, recorder


# ---------------------------------------------------------------------------------------------- model
def test_padding_is_never_read_as_data():
    torch.manual_seed(0)
    model = SIRHCL(ModelConfig(face_dim=3, voice_dim=4, hidden_size=8, embedding_size=8)).eval()
    face = torch.randn(1, 5, 3)
    padded = torch.cat([face, torch.full((1, 7, 3), 99.0)], dim=1)
    a = model.embed_face(face, torch.tensor([5]))
    b = model.embed_face(padded, torch.tensor([5]))
    assert torch.allclose(a, b, atol=1e-6)


def test_network_shapes_and_shared_parts():
    model = SIRHCL(ModelConfig(face_dim=3, voice_dim=4, n_classes=7))
    out = model(torch.randn(4, 6, 3), torch.tensor([6, 2, 1, 3]), torch.randn(4, 9, 4), torch.tensor([9, 9, 1, 4]))
    assert out.face.shape == out.voice.shape == (4, 256)
    assert out.face_logits.shape == (4, 7)
    assert (out.face >= 0).all()  # ReLU of the residual block
    assert model.residual.eta.item() == pytest.approx(0.1)
    assert out.similarity().shape == (4,)


def test_normalizer_uses_training_statistics_only(parts):
    norm = FeatureNormalizer.fit(parts["train"])
    frames = np.concatenate(parts["train"].face)
    assert np.allclose(norm.face_mean, frames.mean(0), atol=1e-5)
    tensors = PairTensors.build(parts["test"], norm)
    first = (parts["test"].face[0] - norm.face_mean) / norm.face_std
    assert np.allclose(tensors.face[0, : len(first)].numpy(), first, atol=1e-5)


# ---------------------------------------------------------------------------------------------- config
def test_presets_and_validation_messages():
    paper = preset_config("paper", 35, 74)
    assert (paper.train.optimizer, paper.train.lr, paper.train.batch_size) == ("sgd", 1e-4, 16)
    assert (paper.loss.lambda_intra, paper.loss.lambda_cross, paper.loss.lambda_hard, paper.loss.k) == (1, 1, .5, 6)
    assert preset_config("fast", 35, 74).train.optimizer == "adam"
    with pytest.raises(ValueError, match="unknown preset 'slow'"):
        preset_config("slow", 35, 74)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        preset_config("fast", 35, 74, batch_size=1)
    with pytest.raises(ValueError, match="unknown setting 'lamda'"):
        preset_config("fast", 35, 74, lamda=3)
    with pytest.raises(ValueError, match="at least one loss term"):
        preset_config("fast", 35, 74, use_share=False, use_intra=False, use_cross=False, use_hard=False)
    assert ExperimentConfig.from_dict(paper.to_dict()) == paper


def test_device_is_chosen_automatically():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------- trainer
def test_callbacks_carry_every_loss_and_validation_auc(trained):
    result, recorder = trained
    assert len(recorder.epochs) == 2 and len(recorder.steps) >= 2
    for step in recorder.steps:
        assert set(step.losses) == {"total", "share", "intra", "cross", "hard"}
        assert all(np.isfinite(v) for v in step.losses.values())
    assert all(0.0 <= e.valid_auc <= 1.0 for e in recorder.epochs)
    assert result.detector.mixture is not None
    assert result.detector.metadata["train_protocol"]["n_abnormal"] > 0


def test_training_is_reproducible_with_a_seed(parts):
    a = Trainer(small_config(parts, epochs=1)).fit(parts["train"], parts["valid"]).detector
    b = Trainer(small_config(parts, epochs=1)).fit(parts["train"], parts["valid"]).detector
    assert np.allclose(a.similarity(parts["test"]), b.similarity(parts["test"]), atol=1e-6)


def test_stop_flag_ends_training_and_keeps_a_usable_detector(parts):
    stop = threading.Event()

    class StopAfterFirstStep:
        def on_step(self, event):
            stop.set()

    result = Trainer(small_config(parts, epochs=50), callbacks=[StopAfterFirstStep()], stop_event=stop).fit(
        parts["train"], parts["valid"])
    assert result.interrupted and len(result.history) <= 1
    assert np.isfinite(result.detector.score(parts["test"]).p_abnormal).all()


def test_early_stopping_on_validation_auc(parts):
    result = Trainer(small_config(parts, epochs=40, patience=1, lr=1e-6)).fit(parts["train"], parts["valid"])
    assert result.stopped_early and len(result.history) < 40
    assert result.best_epoch == max(range(len(result.history)), key=lambda i: result.history[i].valid_auc) + 1


def test_trainer_refuses_a_split_without_abnormal_pairs(parts):
    normal_only = parts["train"].subset(np.flatnonzero(~parts["train"].is_abnormal))
    with pytest.raises(DataError, match="needs both normal and abnormal pairs"):
        Trainer(small_config(parts)).fit(normal_only, parts["valid"])


def test_youden_threshold_option(parts):
    result = Trainer(small_config(parts, threshold="youden", epochs=1)).fit(parts["train"], parts["valid"])
    assert 0.0 <= result.detector.threshold <= 1.0
    assert result.detector.metadata["threshold_rule"] == "youden"


def test_refit_retrains_on_train_and_valid_for_the_selected_epochs(parts):
    train, valid = parts["train"], parts["valid"]
    recorder = HistoryRecorder()
    result = Trainer(small_config(parts, epochs=4, patience=2, refit=True), callbacks=[recorder]).fit(train, valid)
    selection = [e for e in result.history if e.phase == "select"]
    refit = [e for e in result.history if e.phase == "refit"]
    assert len(refit) == result.best_epoch and recorder.epochs == result.history
    assert [e.epoch for e in result.history] == list(range(1, len(result.history) + 1))  # refit numbered after
    assert all(np.isnan(e.valid_auc) and np.isnan(e.best_auc) and not e.is_best for e in refit)
    assert {s.phase for s in recorder.steps} == {"select", "refit"}
    meta = result.detector.metadata
    assert meta["refit"] == {"epochs": result.best_epoch, "n_pairs": len(train) + len(valid), "completed": True}
    assert meta["epochs_run"] == len(selection)
    both = FeatureNormalizer.fit(concatenate([train, valid]))
    assert np.allclose(result.detector.normalizer.voice_mean, both.voice_mean)  # statistics of train + valid
    plain = Trainer(small_config(parts, epochs=result.best_epoch, patience=99)).fit(train, valid).detector
    assert not np.allclose(result.detector.similarity(parts["test"]), plain.similarity(parts["test"]))


def test_refit_that_is_stopped_keeps_the_selected_network(parts):
    stop = threading.Event()

    class StopInRefit:
        def on_step(self, event):
            if event.phase == "refit":
                stop.set()

    result = Trainer(small_config(parts, epochs=2, refit=True), callbacks=[StopInRefit()], stop_event=stop).fit(
        parts["train"], parts["valid"])
    selected = Trainer(small_config(parts, epochs=2)).fit(parts["train"], parts["valid"]).detector
    assert result.interrupted and result.detector.metadata["refit"]["completed"] is False
    assert np.allclose(result.detector.similarity(parts["test"]), selected.similarity(parts["test"]), atol=1e-6)


def test_refit_refuses_a_threshold_chosen_on_the_validation_pairs(parts):
    with pytest.raises(ValueError, match="refit trains on the validation pairs"):
        small_config(parts, refit=True, threshold="youden").validate()


# ---------------------------------------------------------------------------------------------- checkpoint
def test_checkpoint_round_trip(trained, parts, tmp_path):
    detector = trained[0].detector
    path = detector.save(tmp_path / "model.pt")
    loaded = Detector.load(path)
    assert loaded.config == detector.config
    assert loaded.schema == detector.schema
    assert loaded.mixture.get_parameters() == detector.mixture.get_parameters()
    assert np.allclose(loaded.score(parts["test"]).p_abnormal, detector.score(parts["test"]).p_abnormal)
    assert loaded.metadata["train_protocol"]["voice_source"] == parts["train"].protocol["voice_source"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_checkpoint_refuses_data_with_another_schema(trained):
    other = make_synthetic(n_speakers=3, clips_per_speaker=4, face_dim=6, voice_dim=7, seed=1)
    with pytest.raises(CheckpointError, match="face features: checkpoint expects 5 columns, data has 6"):
        trained[0].detector.evaluate(other)


def test_checkpoint_loading_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "crossemo-checkpoint/1", "weights": Evil()}, fh)
    with pytest.raises(CheckpointError, match="not a readable crossemo checkpoint.*Nothing was executed"):
        Detector.load(path)
    assert not marker.exists()


def test_checkpoint_errors_for_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Detector.load(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable crossemo checkpoint"):
        Detector.load(tmp_path / "junk.pt")
    torch.save({"hello": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="is not a crossemo checkpoint"):
        Detector.load(tmp_path / "foreign.pt")


# ---------------------------------------------------------------------------------------------- metrics
def test_detection_metrics_by_hand():
    y = np.array([1, 1, 0, 0, 0], bool)
    m = detection_metrics(y, np.array([0.9, 0.2, 0.1, 0.8, 0.3]), np.array([1, 0, 0, 1, 0], bool))
    assert (m["tpr"], m["fpr"], m["accuracy"]) == (0.5, pytest.approx(1 / 3), 0.6)
    assert m["auc"] == pytest.approx(4 / 6)
    assert np.isnan(detection_metrics(np.zeros(3, bool), np.zeros(3), np.zeros(3, bool))["auc"])


def test_per_type_metrics_use_all_normals_plus_one_type():
    types = np.array(["normal", "normal", "neg-pos", "neg-neu"])
    out = per_type_metrics(types, np.array([0.1, 0.2, 0.9, 0.15]), np.array([0, 0, 1, 0], bool))
    assert out["neg-pos"]["auc"] == 1.0 and out["neg-pos"]["n_pairs"] == 3
    assert out["neg-neu"]["auc"] == 0.5


def test_mean_sd_over_seeds():
    s = mean_sd([{"auc": 0.7, "per_type": {"a": {"auc": 0.5}}}, {"auc": 0.9, "per_type": {"a": {"auc": 0.7}}}])
    assert s["auc"]["mean"] == pytest.approx(0.8) and s["auc"]["sd"] == pytest.approx(0.1414, abs=1e-3)
    assert s["per_type"]["a"]["auc"]["mean"] == pytest.approx(0.6)


def test_training_on_finer_emotions_sizes_the_head_and_keeps_anomalies_on_classes(parts):
    from crossemo_core.data import PairDataset
    from crossemo_core.experiment import config_for

    def refine(data):  # two emotions per class, the second picked by the clip's parity
        emotion = lambda label, clip: label * 2 + np.array([int(c[-1]) % 2 for c in clip])  # noqa: E731
        return PairDataset(face=data.face, voice=data.voice, face_label=data.face_label,
                           voice_label=data.voice_label, speaker=data.speaker, clip_id=data.clip_id,
                           face_feature_names=data.face_feature_names, voice_feature_names=data.voice_feature_names,
                           name=data.name, voice_clip_id=data.voice_clip_id,
                           face_emotion=emotion(data.face_label, data.clip_id),
                           voice_emotion=emotion(data.voice_label, data.voice_clip_id),
                           emotion_names=tuple(f"e{i}" for i in range(6)))

    train, valid = refine(parts["train"]), refine(parts["valid"])
    config = config_for(train, "fast", hidden_size=16, embedding_size=16, epochs=1, batch_size=16,
                        training_labels="emotions")
    assert config.model.n_classes == 6 and config.train.training_labels == "emotions"
    detector = Trainer(config).fit(train, valid).detector
    assert detector.model.classifier.out_features == 6
    metrics = detector.evaluate(parts["test"])  # scoring and anomalies need only the classes
    assert 0.0 <= metrics["auc"] <= 1.0 and set(metrics["per_type"]) <= {"neg-neu", "neg-pos", "neu-pos"}
    with pytest.raises(DataError, match="the model's head has 3 outputs but training on emotions .* needs 6"):
        Trainer(small_config(parts, training_labels="emotions")).fit(train, valid)


def test_concurrent_runs_give_exactly_the_numbers_they_give_alone():
    """Two runs at once in one process (two app sessions, two threads) must not change each other's numbers: each
    run draws its initial weights under a lock from a forked, seeded generator and its dropout from its own."""
    import threading

    from crossemo_core.data.loaders import load_demo
    from crossemo_core.experiment import config_for, split_pairs
    from crossemo_core.training import Trainer

    corpus = load_demo()
    parts = split_pairs(corpus, seed=0, rate=0.5)
    configs = [config_for(corpus, "fast", epochs=2, seed=seed, dropout=0.5) for seed in (0, 1)]

    def similarity(config):
        return Trainer(config).fit(parts["train"], parts["valid"]).detector.similarity(parts["test"])

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = [similarity(c) for c in configs]
        together: list = [None, None]
        threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, similarity(configs[i])))
                   for i in range(2)]
        for t in threads:
            t.start()
        torch.manual_seed(123)  # the main thread uses the global generator meanwhile, as other code may
        torch.rand(10_000)
        for t in threads:
            t.join()
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(alone[0], alone[1])


@pytest.mark.parametrize("refit, stop_at", [(False, 2), (True, 2), (True, 5)])
def test_a_resumed_run_gives_the_numbers_of_an_uninterrupted_one(tmp_path, refit, stop_at):
    """Stop after epoch ``stop_at`` (with refit, epoch 5 is inside the refit phase), resume from the state file:
    the final network is the one an uninterrupted run trains, and the file is gone at the end."""
    from crossemo_core.data.loaders import load_demo
    from crossemo_core.experiment import config_for, split_pairs
    from crossemo_core.training import Trainer

    corpus = load_demo()
    parts = split_pairs(corpus, seed=0, rate=0.5)
    config = config_for(corpus, "fast", epochs=4, patience=10, seed=3, refit=refit)
    whole = Trainer(config).fit(parts["train"], parts["valid"])
    state = tmp_path / "run.resume.pt"

    class StopAt:
        def __init__(self, trainer):
            self.trainer = trainer

        def on_epoch(self, event):
            if event.epoch == stop_at:
                self.trainer.stop()

    first = Trainer(config, resume_file=state)
    first.callbacks.append(StopAt(first))
    assert first.fit(parts["train"], parts["valid"]).interrupted and state.is_file()
    resumed = Trainer(config, resume_file=state).fit(parts["train"], parts["valid"])
    assert not resumed.interrupted and not state.exists()
    assert [e.epoch for e in resumed.history] == [e.epoch for e in whole.history]
    np.testing.assert_array_equal(resumed.detector.similarity(parts["test"]), whole.detector.similarity(parts["test"]))


def test_a_resume_state_of_another_run_is_refused(tmp_path):
    from crossemo_core.data.loaders import load_demo
    from crossemo_core.errors import CheckpointError
    from crossemo_core.experiment import config_for, split_pairs
    from crossemo_core.training import Trainer

    corpus = load_demo()
    parts = split_pairs(corpus, seed=0, rate=0.5)
    state = tmp_path / "run.resume.pt"
    trainer = Trainer(config_for(corpus, "fast", epochs=3, seed=0), resume_file=state)
    trainer.callbacks.append(type("Stop", (), {"on_epoch": lambda self, e: trainer.stop()})())
    trainer.fit(parts["train"], parts["valid"])
    with pytest.raises(CheckpointError, match="holds a run with other settings or data"):
        Trainer(config_for(corpus, "fast", epochs=3, seed=1), resume_file=state).fit(parts["train"], parts["valid"])
    state.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable resume state"):
        Trainer(config_for(corpus, "fast", epochs=3, seed=0), resume_file=state).fit(parts["train"], parts["valid"])


def test_a_damaged_resume_state_is_one_line_and_the_whole_one_holds_what_it_should(tmp_path):
    import torch

    from crossemo_core.data.loaders import load_demo
    from crossemo_core.errors import CheckpointError
    from crossemo_core.experiment import config_for, split_pairs
    from crossemo_core.training import RESUME_FIELDS, RESUME_FORMAT, Trainer

    corpus = load_demo()
    parts = split_pairs(corpus, seed=0, rate=0.5)
    config = config_for(corpus, "fast", epochs=3, seed=0)
    state = tmp_path / "run.resume.pt"
    trainer = Trainer(config, resume_file=state)
    trainer.callbacks.append(type("Stop", (), {"on_epoch": lambda self, e: trainer.stop()})())
    trainer.fit(parts["train"], parts["valid"])
    whole = torch.load(state, weights_only=True)
    assert set(whole) == RESUME_FIELDS | {"format"}
    damaged = {"only its format": {"format": RESUME_FORMAT},
               "weights of another network": {**whole, "model": {"w": torch.zeros(2)}},
               "a history of numbers": {**whole, "history": [1, 2]},
               "an unknown phase": {**whole, "phase": "warm-up"}}
    for what, content in damaged.items():
        torch.save(content, state)
        with pytest.raises(CheckpointError, match="is a damaged resume state .*; delete it to start afresh"):
            Trainer(config, resume_file=state).fit(parts["train"], parts["valid"])


# ---------------------------------------------------------------------------------------- voice twins
def _with_twins(data, shift: float):
    """``data`` with each voice's twin = the voice moved by ``shift`` (in feature units)."""
    from dataclasses import replace

    return replace(data, voice_twin=[v + np.float32(shift) for v in data.voice])


def test_voice_twins_follow_their_pairs_and_are_checked(parts):
    train = _with_twins(parts["train"], 0.5)
    sub = train.subset([3, 1])
    assert np.array_equal(sub.voice_twin[0], train.voice_twin[3]) and np.array_equal(sub.voice_twin[1],
                                                                                       train.voice_twin[1])
    both = concatenate([train, parts["valid"]])  # the part without twins lends each voice as its own twin
    assert len(both.voice_twin) == len(both)
    assert all(np.array_equal(t, v) for t, v in zip(both.voice_twin[len(train):], parts["valid"].voice))
    from dataclasses import replace

    with pytest.raises(DataError, match="voice_twin"):
        replace(train, voice_twin=train.voice_twin[:-1])
    with pytest.raises(DataError, match="voice twin"):
        replace(train, voice_twin=[v[:, :-1] for v in train.voice])


def test_the_consistency_term_is_the_mean_cosine_distance_to_the_twins(parts):
    from crossemo_core.training import ContrastiveTask

    config = small_config(parts, consistency=2.0)
    task = ContrastiveTask(config)
    torch.manual_seed(0)
    network = task.build().eval()  # no dropout: the same input gives the same embedding
    tensors = PairTensors.build(_with_twins(parts["train"], 1.0), FeatureNormalizer.fit(parts["train"]))
    index = torch.arange(8)
    face, fl, voice, vl, yf, yv = tensors.batch(index, torch.device("cpu"))
    plain = task.losses(network, face, fl, voice, vl, yf, yv)
    assert "consistency" not in plain
    itself = task.losses(network, face, fl, voice, vl, yf, yv, (voice, vl))
    assert itself["consistency"].item() == pytest.approx(0.0, abs=1e-5)
    moved = task.losses(network, face, fl, voice, vl, yf, yv, tensors.twin_batch(index, torch.device("cpu")))
    assert moved["consistency"].item() > 1e-3
    assert moved["total"].item() == pytest.approx(plain["total"].item() + 2.0 * moved["consistency"].item(),
                                                   rel=1e-5)


def test_training_with_consistency_needs_twins_and_pulls_them_together(parts):
    with pytest.raises(DataError, match="voice twins"):
        Trainer(small_config(parts, consistency=1.0)).fit(parts["train"], parts["valid"])
    from dataclasses import replace

    train = _with_twins(parts["train"], 1.5)
    twins_as_voices = replace(train, voice=train.voice_twin, voice_twin=None)

    def twin_distance(consistency: float) -> float:
        """Mean cosine distance between each training voice's embedding and its twin's, after training."""
        det = Trainer(small_config(parts, consistency=consistency, epochs=6)).fit(train, parts["valid"]).detector
        (_, v), (_, t) = det.embed(train), det.embed(twins_as_voices)
        return float(np.mean(1 - np.sum(v * t, 1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(t, axis=1) + 1e-9)))

    assert twin_distance(5.0) < twin_distance(0.0)


def test_final_state_matches_a_packed_sequence_and_its_gradients():
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    model = SIRHCL(ModelConfig(face_dim=3, voice_dim=4, hidden_size=8, embedding_size=8)).eval()
    encoder = model.voice_encoder
    x = torch.randn(6, 9, 4)
    lengths = torch.tensor([9, 1, 4, 7, 2, 9])
    ours = encoder(x, lengths)
    _, (h_n, _) = encoder.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    packed = encoder.project(h_n[-1])
    assert torch.allclose(ours, packed, atol=1e-6)
    grads = [torch.autograd.grad(out.square().sum(), encoder.lstm.weight_hh_l0)[0] for out in (ours, packed)]
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    for bad in (torch.tensor([3, 0, 2, 2, 2, 2]), torch.tensor([3, 10, 2, 2, 2, 2])):
        with pytest.raises(ValueError, match="sequence lengths"):
            encoder(x, bad)
