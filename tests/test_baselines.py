"""Baselines: every method fits and scores, loss pieces agree with loop references, verdicts, kNN gate, calibration."""
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from baseline_reference import (
    ref_bank_loss,
    ref_hsic,
    ref_hycon,
    ref_quintuple,
    ref_soft_margin,
    ref_structured_triplet,
)

from crossemo_core.baselines import METHODS, EnsembleScorer, KnnAtypicalGate, evaluate_scores, make_method
from crossemo_core.baselines.verdicts import BetaMixtureVerdict, FixedThreshold, GaussianMixtureVerdict, YoudenThreshold
from crossemo_core.batching import FeatureNormalizer
from crossemo_core.config import preset_config
from crossemo_core.data.container import concatenate
from crossemo_core.data.calibration import calibrate_speakers
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.data.protocol import make_abnormal_pairs
from crossemo_core.errors import DataError
from crossemo_core.experiment import fit_method, split_pairs
from crossemo_core.losses import (
    BiQuintupleLoss,
    HyConLoss,
    LossOutput,
    SoftMarginTripletLoss,
    StructuredTripletLoss,
    bank_pair_loss,
    central_moment_discrepancy,
    hsic,
)
from crossemo_core.mixture import fit_similarity_mixture, similarity_to_score
from crossemo_core.thresholds import youden_threshold
from crossemo_core.training import Trainer, TrainingControl


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def parts():
    corpus = make_synthetic(n_speakers=8, clips_per_speaker=12, face_dim=4, voice_dim=5, face_length=(2, 5),
                            voice_length=(3, 6), difficulty="easy", seed=0)
    return split_pairs(corpus, seed=0, rate=0.5)


@pytest.fixture(scope="module")
def config(parts):
    return preset_config("fast", parts["train"].face_dim, parts["train"].voice_dim, hidden_size=8, embedding_size=8,
                         epochs=2, batch_size=16)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_fits_and_scores(name, parts, config):
    method = make_method(name, config)
    assert method.name == name and isinstance(method.settings(), dict)
    scorer = method.fit(parts["train"], parts["valid"])
    test = parts["test"]
    scores = scorer.score(test)
    for array in (scores.anomaly, scores.p_abnormal, scores.predicted):
        assert array.shape == (len(test),)
    assert scores.predicted.dtype == bool
    assert np.isfinite(scores.anomaly).all()
    assert ((scores.p_abnormal >= 0) & (scores.p_abnormal <= 1)).all()
    metrics = evaluate_scores(test, scores)
    assert {"auc", "tpr", "fpr", "accuracy", "auc_score", "per_type"} <= set(metrics)
    assert set(metrics["per_type"]) <= {"neg-neu", "neg-pos", "neu-pos"}
    again = make_method(name, config).fit(parts["train"], parts["valid"]).score(test)
    np.testing.assert_allclose(again.anomaly, scores.anomaly, rtol=1e-5, atol=1e-6)  # seeded: reproducible


@pytest.mark.parametrize("name", ["agreement", "misa"])  # the methods with their own training loop
def test_own_loop_refit_trains_on_train_and_valid(name, parts, config):
    refit_config = replace(config, train=replace(config.train, refit=True))
    refit = make_method(name, refit_config).fit(parts["train"], parts["valid"])
    plain = make_method(name, config).fit(parts["train"], parts["valid"])
    both = FeatureNormalizer.fit(concatenate([parts["train"], parts["valid"]]))
    np.testing.assert_allclose(refit.trained.normalizer.face_mean, both.face_mean)
    assert refit.trained.best_epoch == plain.trained.best_epoch  # the epoch count chosen on valid, then reused
    assert not np.allclose(refit.score(parts["test"]).anomaly, plain.score(parts["test"]).anomaly)


@pytest.mark.parametrize("refit", [False, True])
def test_runs_of_a_detector_method_are_read_as_one_detector(parts, config, refit):
    config = replace(config, train=replace(config.train, runs=3, refit=refit, seed=4))
    assert config.train.run_seeds() == [4, 1004, 2004]
    ensemble = fit_method("sir-hcl", config, {}, parts["train"], parts["valid"])
    assert isinstance(ensemble, EnsembleScorer) and len(ensemble.members) == 3
    test = parts["test"]
    fitted_on = concatenate([parts["train"], parts["valid"]]) if refit else parts["train"]
    singles, on_fitted = [], []
    for seed, member in zip(config.train.run_seeds(), ensemble.members):
        assert member.detector.config.train.seed == seed  # each network its own seed, the split and pairs shared
        one = make_method("sir-hcl", replace(config, train=replace(config.train, seed=seed, runs=1)))
        detector = one.fit(parts["train"], parts["valid"]).detector
        singles.append(detector.similarity(test))
        on_fitted.append(detector.similarity(fitted_on))
    scores = ensemble.score(test)
    mean = np.mean(singles, axis=0)
    np.testing.assert_allclose(scores.anomaly, (1 - mean) / 2, rtol=1e-5, atol=1e-6)
    # the verdict is one network's rule, the Beta mixture, fitted on the mean similarity of the pairs trained on
    mixture = fit_similarity_mixture(np.mean(on_fitted, axis=0), fitted_on.is_abnormal,
                                     config.train.mixture_var_floor)
    np.testing.assert_allclose(scores.p_abnormal, mixture.posterior_abnormal(similarity_to_score(mean)), atol=1e-5)
    np.testing.assert_array_equal(scores.predicted, scores.p_abnormal >= 0.5)
    assert ensemble.training is ensemble.members[0].training


def test_runs_of_other_methods_average_their_scores(parts, config):
    config = replace(config, train=replace(config.train, runs=2))
    ensemble = fit_method("agreement", config, {}, parts["train"], parts["valid"])
    assert ensemble.verdict is None
    members = [m.score(parts["test"]) for m in ensemble.members]
    scores = ensemble.score(parts["test"])
    np.testing.assert_allclose(scores.p_abnormal, (members[0].p_abnormal + members[1].p_abnormal) / 2)
    assert not np.allclose(members[0].anomaly, members[1].anomaly)  # two seeds, two networks
    # each member's own verdict counts (a baseline's p need not be a probability); a tie goes to the first network
    np.testing.assert_array_equal(scores.predicted, members[0].predicted)
    three = fit_method("cmad", replace(config, train=replace(config.train, runs=3)), {}, parts["train"], parts["valid"])
    votes = np.mean([m.score(parts["test"]).predicted for m in three.members], axis=0)
    assert ((votes > 0) & (votes < 1)).any()  # the networks disagree on some pairs, so the majority matters
    np.testing.assert_array_equal(three.score(parts["test"]).predicted, votes > 0.5)


def test_runs_keep_a_youden_threshold_and_stop_when_asked(parts, config):
    youden = replace(config, train=replace(config.train, runs=2, threshold="youden"))
    ensemble = fit_method("sir-hcl", youden, {}, parts["train"], parts["valid"])
    assert all(m.detector.config.train.runs == 1 for m in ensemble.members)  # each network is one network
    mixture, threshold = ensemble.verdict
    valid_p = mixture.posterior_abnormal(similarity_to_score(ensemble._similarity(parts["valid"])))
    assert threshold == pytest.approx(float(youden_threshold(parts["valid"].is_abnormal.astype(int), valid_p)))
    scores = ensemble.score(parts["test"])
    np.testing.assert_array_equal(scores.predicted, scores.p_abnormal >= threshold)
    stop = threading.Event()
    stop.set()
    stopped = fit_method("sir-hcl", replace(config, train=replace(config.train, runs=3)), {}, parts["train"],
                         parts["valid"], TrainingControl(stop_event=stop))
    assert not isinstance(stopped, EnsembleScorer) and stopped.training.interrupted  # no network after the stop


def test_runs_must_be_a_count(config):
    for runs in (0, 2.5, True):
        with pytest.raises(ValueError, match="runs"):
            replace(config, train=replace(config.train, runs=runs)).validate()


def test_unknown_method_is_refused(config):
    with pytest.raises(ValueError, match="unknown method"):
        make_method("nope", config)


def test_trainer_uses_a_given_criterion(parts, config):
    calls = []

    class Recording(torch.nn.Module):
        def forward(self, face, voice, face_logits, voice_logits, y_face, y_voice):
            calls.append(face.shape)
            zero = face.new_zeros(())
            total = (1 - torch.nn.functional.cosine_similarity(face, voice)).mean()
            return LossOutput(total=total, share=zero, intra=zero, cross=total, hard=zero)

    Trainer(config, criterion=Recording()).fit(parts["train"], parts["valid"])
    assert calls and all(shape[1] == 8 for shape in calls)


# ---------------------------------------------------------------------------------------------------- losses
def _batch(seed: int, b: int = 10, d: int = 6):
    gen = torch.Generator().manual_seed(seed)
    face = torch.randn(b, d, generator=gen, dtype=torch.float64, requires_grad=True)
    voice = torch.randn(b, d, generator=gen, dtype=torch.float64, requires_grad=True)
    y_face = torch.randint(0, 3, (b,), generator=gen)
    y_voice = torch.where(torch.rand(b, generator=gen) < 0.5, torch.randint(0, 3, (b,), generator=gen), y_face)
    return face, voice, y_face, y_voice


def _agree(fast: torch.Tensor, slow: torch.Tensor, inputs) -> None:
    assert float(fast.detach()) == pytest.approx(float(slow.detach()), abs=1e-9)
    g_fast = torch.autograd.grad(fast, inputs, retain_graph=True)
    g_slow = torch.autograd.grad(slow, inputs, retain_graph=True)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mining", ["hard", "literal"])
def test_quintuple_matches_loop_reference(seed, mining):
    face, voice, yf, yv = _batch(seed)
    out = BiQuintupleLoss(gamma0=1.0, gamma=0.2, mining=mining)(face, voice, None, None, yf, yv)
    _agree(out.total, ref_quintuple(face, voice, yf, yv, 1.0, 0.2, mining), (face, voice))
    assert float(out.total.detach()) == pytest.approx(float((out.intra + out.cross).detach()))


def test_quintuple_mining_picks_hardest_or_easiest():
    # one anchor class 0; voices: two positives (cos 1 and cos 0), two negatives (cos 0.8 and cos -1)
    face = torch.tensor([[1.0, 0.0]] * 5)
    voice = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-1.0, 0.0], [0.0, -1.0]])
    y_face = torch.zeros(5, dtype=torch.long)
    y_voice = torch.tensor([0, 0, 1, 1, 1])
    hard = BiQuintupleLoss(mining="hard", gamma=0.2)(face, voice, None, None, y_face, y_voice)
    literal = BiQuintupleLoss(mining="literal", gamma=0.2)(face, voice, None, None, y_face, y_voice)
    # face anchors: hard -> (1 - 0) + (0.8 - 0.2) = 1.6; literal -> (1 - 1) + max(0, -1 - 0.2) = 0
    assert float(hard.cross) > float(literal.cross)


@pytest.mark.parametrize("seed", [0, 1])
def test_structured_triplet_matches_loop_reference(seed):
    face, voice, yf, yv = _batch(seed, b=8)
    out = StructuredTripletLoss(margin=0.3, intra_weight=0.5)(face, voice, None, None, yf, yv)
    _agree(out.total, ref_structured_triplet(face, voice, yf, yv, 0.3, 0.5), (face, voice))


@pytest.mark.parametrize("seed", [0, 1])
def test_soft_margin_triplet_matches_loop_reference(seed):
    face, voice, yf, yv = _batch(seed)
    out = SoftMarginTripletLoss(margin=0.2, temperature=0.1)(face, voice, None, None, yf, yv)
    _agree(out.total, ref_soft_margin(face, voice, yf, yv, 0.2, 0.1), (face, voice))


def test_bank_pair_loss_matches_loop_reference():
    face, voice, _, _ = _batch(3, b=6)
    bank_face, bank_voice, _, _ = _batch(4, b=7)
    exclude = [2, -1, 0, -1, 6, 1]
    fast = bank_pair_loss(face, voice, bank_face, bank_voice, 0.2, 0.05, torch.tensor(exclude))
    slow = ref_bank_loss(face, voice, bank_face, bank_voice, 0.2, 0.05, exclude)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_hycon_matches_loop_reference(seed):
    face, voice, yf, yv = _batch(seed)
    gen = torch.Generator().manual_seed(seed + 10)
    fl = torch.randn(10, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    vl = torch.randn(10, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    out = HyConLoss(alpha=0.8, lambda_intra=1.0, lambda_inter=0.5, lambda_scl=2.0)(face, voice, fl, vl, yf, yv)
    ref = ref_hycon(face, voice, fl, vl, yf, yv, 0.8)
    total = ref["share"] + ref["intra"] + 0.5 * ref["inter"] + 2.0 * ref["scl"]
    _agree(out.total, total, (face, voice, fl, vl))
    assert float(out.intra.detach()) == pytest.approx(float(ref["intra"].detach()))


def test_hsic_and_cmd():
    face, voice, _, _ = _batch(5, b=7)
    assert float(hsic(face, voice)) == pytest.approx(ref_hsic(face.detach(), voice.detach()), rel=1e-9)
    assert float(central_moment_discrepancy(face, face)) == pytest.approx(0.0)
    assert float(central_moment_discrepancy(face, voice + 3.0)) > float(central_moment_discrepancy(face, voice))


# ---------------------------------------------------------------------------------------------------- verdicts
def test_verdict_rules():
    rng = np.random.default_rng(0)
    normal, abnormal = rng.uniform(0.0, 0.3, 200), rng.uniform(0.4, 0.8, 200)
    a = np.r_[normal, abnormal]
    y = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    fixed = FixedThreshold(0.35).fit(a, y, a, y).apply(a)
    assert (fixed.predicted == y).all()
    youden = YoudenThreshold().fit(a, y, a, y)
    assert 0.3 <= youden.threshold <= 0.41 and (youden.apply(a).predicted == y).all()
    beta = BetaMixtureVerdict().fit(a, y, a, y)
    p = beta.p_abnormal(np.array([0.05, 0.7]))
    assert p[0] < 0.5 < p[1]
    gmm = GaussianMixtureVerdict().fit(a, y, a, y)
    p = gmm.p_abnormal(np.array([0.1, 0.6]))
    assert p[0] < 0.5 < p[1]


# ---------------------------------------------------------------------------------------------------- kNN gate
def test_knn_gate_flags_far_inputs_only():
    rng = np.random.default_rng(0)
    face, voice = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    gate = KnnAtypicalGate(k=3, contamination=0.0).fit(face, voice)
    assert not gate.atypical(face, voice).any()  # reference points lie within the leave-one-out maximum
    far = np.full((1, 4), 50.0)
    assert gate.atypical(far, voice[:1]).all() and gate.atypical(face[:1], far).all()
    assert gate.distance(far, "face")[0] > gate.thresholds["face"]
    strict = KnnAtypicalGate(k=3, contamination=0.2).fit(face, voice)
    assert strict.thresholds["face"] < gate.thresholds["face"]


# ---------------------------------------------------------------------------------------------------- calibration
def test_calibration_standardises_each_speaker_by_its_neutral_clips():
    corpus = make_synthetic(n_speakers=4, clips_per_speaker=15, face_dim=3, voice_dim=4, seed=1)
    calibrated, report = calibrate_speakers(corpus, "neutral")
    assert report.n_speakers == 4 and calibrated.extractor["face"].endswith("speaker-neutral")
    for speaker in np.unique(corpus.speaker):
        ref = np.flatnonzero((corpus.speaker == speaker) & (corpus.face_label == 1))
        if len(ref):
            frames = np.concatenate([calibrated.face[i] for i in ref])
            np.testing.assert_allclose(frames.mean(0), 0.0, atol=1e-4)
    whole, _ = calibrate_speakers(corpus, "all")
    members = np.flatnonzero(corpus.speaker == corpus.speaker[0])
    np.testing.assert_allclose(np.concatenate([whole.voice[i] for i in members]).mean(0), 0.0, atol=1e-4)


def test_calibration_falls_back_and_refuses_pairs():
    corpus = make_synthetic(n_speakers=3, clips_per_speaker=6, face_dim=2, voice_dim=2, seed=2)
    no_neutral = np.where(corpus.face_label == 1, 0, corpus.face_label)
    corpus = corpus.with_labels(no_neutral, no_neutral, corpus.class_names)
    _, report = calibrate_speakers(corpus, "neutral")
    assert report.n_fallback == 3 and "without a neutral clip" in str(report)
    pairs, _ = make_abnormal_pairs(corpus, 0.5, seed=0)
    with pytest.raises(DataError, match="before the abnormal-pair protocol"):
        calibrate_speakers(pairs)
