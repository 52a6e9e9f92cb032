"""Issue 14: RAVDESS voice frames from a voice reader, the reader-disagreement rule, per-person normalisation as a
benchmark option. Small synthetic data (a made-up RAVDESS folder, an untrained tiny reader); fast."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from crossemo_core.baselines import METHODS, make_method
from crossemo_core.baselines.disagreement import dot_disagreement, emotion_index, js_divergence
from crossemo_core.config import preset_config
from crossemo_core.data.calibration import calibrate_speakers
from crossemo_core.data.container import PairDataset
from crossemo_core.data.loaders import load_ravdess
from crossemo_core.data.loaders.reader_voice import (
    DEFAULT_EXTERNAL_READER,
    POSTERIOR_CHANNELS,
    drop_posterior_channels,
    parse_voice_features,
)
from crossemo_core.errors import DataError
from crossemo_core.experiment import split_pairs
from crossemo_core.readers.voice import FrontendConfig, NetConfig, VoiceEmotionNet, VoiceReader
from tests.test_ravdess_loader import make_corpus


@pytest.fixture()
def tiny_reader(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net_config = NetConfig(channels=8, embedding=8)
    reader = VoiceReader(VoiceEmotionNet(64, net_config).eval(), FrontendConfig(), net_config,
                         {"split": {"train": "TESS, EmoDB"}})
    return reader.save(tmp_path / "reader.pt")


def test_parse_voice_features() -> None:
    assert parse_voice_features("librosa") is None
    assert parse_voice_features("reader") == DEFAULT_EXTERNAL_READER
    assert parse_voice_features("reader:/x/y.pt") == Path("/x/y.pt")
    for bad in ("opensmile", "reader:", "readers"):
        with pytest.raises(DataError):
            parse_voice_features(bad)


def test_loader_reader_frames(tmp_path: Path, tiny_reader: Path) -> None:
    root = make_corpus(tmp_path / "ravdess")
    report: list[str] = []
    data = load_ravdess(root, cache_dir=tmp_path / "cache", voice_features=f"reader:{tiny_reader}", report=report)
    assert data.voice_dim == 16 + len(POSTERIOR_CHANNELS)  # 2 x 8 body channels + the reading
    assert data.voice_feature_names[-len(POSTERIOR_CHANNELS):] == POSTERIOR_CHANNELS
    assert data.extractor["voice"].startswith("voice-reader-frames/1:") and "+pool10" in data.extractor["voice"]
    for v in data.voice:
        # 0.4 s of tone -> ~38 frames of 10 ms -> 3 pooled frames; the reading is constant and sums to one per part
        assert v.shape[0] == 3 and np.isfinite(v).all()
        reading = v[:, -12:]
        assert np.allclose(reading, reading[0]) and np.isclose(reading[0, :7].sum(), 1, atol=1e-5)
        assert np.isclose(reading[0, 7:10].sum(), 1, atol=1e-5) and np.isclose(reading[0, 10:].sum(), 1, atol=1e-5)
    assert not any("trained on RAVDESS" in line for line in report)
    # the second load reads the cache (no clip computed) and gives the same frames
    report2: list[str] = []
    again = load_ravdess(root, cache_dir=tmp_path / "cache", voice_features=f"reader:{tiny_reader}", report=report2)
    assert any("10 from cache, 0 computed" in line for line in report2)
    assert all(np.array_equal(a, b) for a, b in zip(data.voice, again.voice))
    frames, names = drop_posterior_channels(data.voice, data.voice_feature_names)
    assert frames[0].shape[1] == 16 and len(names) == 16
    with pytest.raises(DataError, match="not found"):
        load_ravdess(root, cache_dir=tmp_path / "cache", voice_features=f"reader:{tmp_path / 'none.pt'}")


def test_loader_warns_for_a_ravdess_reader(tmp_path: Path) -> None:
    net_config = NetConfig(channels=4, embedding=4)
    path = VoiceReader(VoiceEmotionNet(64, net_config).eval(), FrontendConfig(), net_config,
                       {"split": {"train": "RAVDESS actors 1-14, TESS"}}).save(tmp_path / "r.pt")
    report: list[str] = []
    load_ravdess(make_corpus(tmp_path / "ravdess", actors=(1,)), cache_dir=tmp_path / "c",
                 voice_features=f"reader:{path}", report=report)
    assert any("trained on RAVDESS" in line for line in report)


def _pairs(seed: int = 0, n_speakers: int = 6, per_speaker: int = 24, reading: bool = True) -> PairDataset:
    """Face and voice that both carry the emotion; optionally a made-up reading appended to the voice."""
    rng = np.random.default_rng(seed)
    emotion_names = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    valence = {0: 1, 1: 1, 2: 2, 3: 0, 4: 0, 5: 0, 6: 0, 7: 2}
    reader_index = {0: 6, 1: 6, 2: 3, 3: 4, 4: 0, 5: 2, 6: 1, 7: 5}
    face, voice, emo, spk = [], [], [], []
    for s in range(n_speakers):
        for k in range(per_speaker):
            e = k % 8
            face.append((np.eye(8)[e] * 2 + rng.normal(0, 0.3, 8))[None].astype(np.float32))
            frames = np.eye(8)[e] * 2 + rng.normal(0, 0.3, (4, 8))
            if reading:
                p_emo = np.full(7, 0.05)
                p_emo[reader_index[e]] = 0.7
                p_val = np.full(3, 0.1)
                p_val[valence[e]] = 0.8
                frames = np.concatenate([frames, np.tile(np.r_[p_emo / p_emo.sum(), p_val, 0.5, 0.5], (4, 1))], 1)
            voice.append(frames.astype(np.float32))
            emo.append(e)
            spk.append(f"s{s}")
    labels = np.array([valence[e] for e in emo])
    names = tuple(f"v{i}" for i in range(8)) + (POSTERIOR_CHANNELS if reading else ())
    return PairDataset(face=face, voice=voice, face_label=labels, voice_label=labels.copy(), speaker=np.array(spk),
                       clip_id=np.array([f"c{i}" for i in range(len(emo))]),
                       face_feature_names=tuple(f"f{i}" for i in range(8)), voice_feature_names=names,
                       name="toy", face_emotion=np.array(emo), voice_emotion=np.array(emo),
                       emotion_names=emotion_names)


def test_divergences() -> None:
    p = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    q = np.array([[0, 1.0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    assert np.allclose(js_divergence(p, q), [1, 0, 0], atol=1e-6)
    assert np.allclose(dot_disagreement(p, q), [1, 0.5, 2 / 3])
    assert np.allclose(js_divergence(p, q), js_divergence(q, p))


@pytest.mark.parametrize("voice", ["reader", "fit"])
def test_disagreement_method(voice: str) -> None:
    corpus = _pairs()
    assert "disagreement" in METHODS
    assert emotion_index(corpus, "face").tolist()[:8] == [6, 6, 3, 4, 0, 2, 1, 5]  # calm counts as neutral
    parts = split_pairs(corpus, seed=0)
    config = preset_config("fast", corpus.face_dim, corpus.voice_dim, 8)
    scorer = make_method("disagreement", config, voice=voice).fit(parts["train"], parts["valid"])
    assert (scorer.voice is None) == (voice == "reader")
    assert set(scorer.valid_auc) == {"js-valence", "js-emotion", "dot-valence", "dot-emotion"}
    scores = scorer.score(parts["test"])
    assert ((scores.p_abnormal >= 0) & (scores.p_abnormal <= 1)).all()
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(parts["test"].is_abnormal, scores.p_abnormal) > 0.9  # both sides carry the emotion


@pytest.mark.parametrize("refit", [True, False])
def test_evidence_method_combines_similarity_and_readings_with_weights_chosen_on_valid(refit: bool) -> None:
    from sklearn.metrics import roc_auc_score

    from crossemo_core.baselines.evidence import evidence_of

    corpus = _pairs()
    parts = split_pairs(corpus, seed=0)
    config = preset_config("fast", corpus.face_dim, corpus.voice_dim, 3, refit=refit, epochs=3, hidden_size=8,
                           embedding_size=8)
    scorer = make_method("sir-hcl+readings", config, voice="reader").fit(parts["train"], parts["valid"])
    assert scorer.combiner.fitted_on["n"] == len(parts["valid"])  # the weights: validation pairs only
    # with refit the network was then trained again on train + valid
    assert bool(scorer.detector.metadata["refit"]) == refit
    x = evidence_of(scorer.detector, scorer.readers, parts["test"])
    assert x.shape == (len(parts["test"]), 10) and np.allclose(x[:, 1:].sum(1), 1)
    scores = scorer.score(parts["test"])
    assert np.array_equal(scores.predicted, scores.p_abnormal >= 0.5)
    assert roc_auc_score(parts["test"].is_abnormal, scores.p_abnormal) > 0.9  # both readers carry the emotion
    with pytest.raises(DataError, match="3 valences"):
        seven = replace(corpus, class_names=tuple(f"e{i}" for i in range(7)))
        make_method("sir-hcl+readings", config).fit(seven, seven)


def test_disagreement_needs_a_reading_for_reader_voice() -> None:
    corpus = _pairs(reading=False)
    parts = split_pairs(corpus, seed=0)
    config = preset_config("fast", corpus.face_dim, corpus.voice_dim, 8)
    with pytest.raises(DataError, match="reading"):
        make_method("disagreement", config, voice="reader").fit(parts["train"], parts["valid"])
    scorer = make_method("disagreement", config).fit(parts["train"], parts["valid"])  # auto: fits the voice side
    assert scorer.voice is not None
    with pytest.raises(ValueError):
        make_method("disagreement", config, measure="cosine")


def test_disagreement_fixed_measure_and_refit() -> None:
    corpus = _pairs()
    parts = split_pairs(corpus, seed=1)
    config = preset_config("fast", corpus.face_dim, corpus.voice_dim, 8, refit=True)
    scorer = make_method("disagreement", config, measure="js-valence").fit(parts["train"], parts["valid"])
    assert scorer.measure == "js-valence"
    assert len(scorer.score(parts["test"]).p_abnormal) == len(parts["test"])


def test_calibration_keeps_the_reading() -> None:
    corpus = _pairs()
    calibrated, report = calibrate_speakers(corpus, "all")
    assert report.n_speakers == 6
    for before, after in zip(corpus.voice, calibrated.voice):
        assert np.array_equal(before[:, -12:], after[:, -12:])
        assert not np.allclose(before[:, :8], after[:, :8])


def test_benchmark_profile_options_and_calibration() -> None:
    from crossemo_core.benchmark.suites import Profile, suite_runs

    profile = Profile.resolve("ravdess", "/nowhere", seeds=(0,), methods=("disagreement",),
                              options={"voice_features": "reader"}, calibration="neutral")
    runs = suite_runs("paper", profile)
    assert len(runs) == 5 and all(r.method == "disagreement" for r in runs)
    assert all(r.data.calibration == "neutral" and dict(r.data.options) == {"voice_features": "reader"}
               for r in runs)
    ablation = suite_runs("ablation", Profile.resolve("ravdess", "/nowhere", seeds=(0,), methods=("sir-hcl",)))
    assert {r.data.calibration for r in ablation} == {"none", "neutral", "all"}  # its rows still set their own


def test_per_fold_readers_resolve_per_run(tmp_path: Path) -> None:
    from crossemo_core.benchmark.protocols import DataSpec, RunSpec, fold_data

    data = DataSpec("ravdess", "/nowhere", options=(("voice_features", f"reader-folds:{tmp_path}"),))
    (tmp_path / "s1-f3.pt").write_bytes(b"x")
    resolved = fold_data(data, 1, 3)
    assert dict(resolved.options)["voice_features"] == f"reader:{tmp_path / 's1-f3.pt'}"
    assert fold_data(DataSpec("ravdess"), 1, 3) == DataSpec("ravdess")  # other data unchanged
    with pytest.raises(DataError, match="train_voice_reader_folds"):
        fold_data(data, 0, 0)
    with pytest.raises(DataError, match="speaker folds"):
        fold_data(data, 1, None)
    spec = RunSpec("disagreement", data, seed=1, fold=3, n_folds=5, preset="fast")
    assert spec.run_data() == resolved
    with pytest.raises(DataError, match="resolved by the benchmark"):
        parse_voice_features(f"reader-folds:{tmp_path}")
