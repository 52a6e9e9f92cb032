"""The synthetic corpus: determinism, schema, argument checks, and that it is learnable but not trivial."""
from __future__ import annotations


import numpy as np
import pytest

from crossemo_core.data.container import LABEL_SETS, PairDataset
from crossemo_core.data.labels import sentiment_to_3class, sentiment_to_7class
from crossemo_core.data.loaders import MOSEI_SIZE, make_synthetic
from crossemo_core.errors import DataError


@pytest.fixture(scope="module")
def demo() -> PairDataset:
    return make_synthetic()


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_arrays():
    a = make_synthetic(n_speakers=4, clips_per_speaker=5, seed=7)
    b = make_synthetic(n_speakers=4, clips_per_speaker=5, seed=7)
    for side in ("face", "voice"):
        sa, sb = getattr(a, side), getattr(b, side)
        assert len(sa) == len(sb)
        assert all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(sa, sb))
    np.testing.assert_array_equal(a.face_label, b.face_label)
    np.testing.assert_array_equal(a.sentiment, b.sentiment)
    np.testing.assert_array_equal(a.speaker, b.speaker)
    np.testing.assert_array_equal(a.clip_id, b.clip_id)


def test_different_seed_gives_different_data():
    a = make_synthetic(n_speakers=4, clips_per_speaker=5, seed=0)
    b = make_synthetic(n_speakers=4, clips_per_speaker=5, seed=1)
    assert not np.array_equal(a.sentiment, b.sentiment)
    same_shape = [(x, y) for x, y in zip(a.face, b.face) if x.shape == y.shape]
    assert not any(np.array_equal(x, y) for x, y in same_shape)
    assert not set(a.speaker) & set(b.speaker), "speakers of different seeds must not be conflated"


# ------------------------------------------------------------------------------------------------ schema
def test_schema_of_the_default_corpus(demo):
    assert isinstance(demo, PairDataset)
    assert demo.synthetic is True
    assert len(demo) == 20 * 30
    assert len(np.unique(demo.speaker)) == 20
    assert np.bincount(np.unique(demo.speaker, return_inverse=True)[1]).tolist() == [30] * 20
    assert len(set(demo.clip_id)) == len(demo)
    assert demo.face_dim == 35 and demo.voice_dim == 74
    assert demo.face_feature_names[0] == "face_au_00" and demo.face_feature_names[-1] == "face_au_34"
    assert demo.voice_feature_names[0] == "voice_f_00" and demo.voice_feature_names[-1] == "voice_f_73"
    assert demo.class_names == LABEL_SETS[3] == ("negative", "neutral", "positive")
    np.testing.assert_array_equal(demo.face_label, demo.voice_label)
    assert not demo.is_abnormal.any()
    np.testing.assert_array_equal(demo.voice_source, np.arange(len(demo)))
    assert set(demo.face_label.tolist()) == {0, 1, 2}
    counts = np.bincount(demo.face_label, minlength=3) / len(demo)
    np.testing.assert_allclose(counts, [0.4, 0.2, 0.4], atol=0.07)
    for side, (low, high) in (("face", (8, 24)), ("voice", (20, 60))):
        seqs = getattr(demo, side)
        lengths = getattr(demo, f"{side}_lengths")
        assert lengths.min() >= low and lengths.max() <= high
        assert len(np.unique(lengths)) > 5, f"{side} lengths must vary per clip"
        assert all(s.dtype == np.float32 and s.ndim == 2 and np.isfinite(s).all() for s in seqs)
    # Face and voice lengths are drawn independently.
    assert not np.array_equal(demo.face_lengths, demo.voice_lengths)


def test_every_speaker_has_several_classes(demo):
    # The abnormal-pair protocol swaps voices within a speaker; it needs different classes there.
    for spk in np.unique(demo.speaker):
        assert len(np.unique(demo.face_label[demo.speaker == spk])) >= 2


def test_sentiment_is_consistent_with_the_class(demo):
    s, y = demo.sentiment, demo.face_label
    assert ((s[y == 0] >= -3) & (s[y == 0] <= -0.5)).all()
    assert (s[y == 1] == 0).all()
    assert ((s[y == 2] >= 0.5) & (s[y == 2] <= 3)).all()
    np.testing.assert_array_equal(sentiment_to_3class(s), y)
    seven = sentiment_to_7class(s)
    assert set(seven.tolist()) == set(range(7))
    relabelled = demo.with_labels(seven, seven, LABEL_SETS[7])
    assert relabelled.n_classes == 7


def test_custom_shapes_and_fixed_lengths():
    d = make_synthetic(n_speakers=3, clips_per_speaker=2, face_dim=1, voice_dim=2, face_length=(1, 1),
                       voice_length=(5, 5), class_weights=(1, 1, 1), noise=0.0, speaker_shift=0.0,
                       difficulty="easy", seed=3)
    assert len(d) == 6 and d.face_dim == 1 and d.voice_dim == 2
    assert (d.face_lengths == 1).all() and (d.voice_lengths == 5).all()
    assert d.voice_feature_names == ("voice_f_00", "voice_f_01")


@pytest.mark.parametrize("name, shown", [("demo (synthetic)", "demo (synthetic)"),
                                          ("my corpus", "my corpus (synthetic)"),
                                          ("Synthetic MOSI", "Synthetic MOSI")])
def test_name_always_says_synthetic(name, shown):
    d = make_synthetic(n_speakers=3, clips_per_speaker=2, name=name)
    assert d.name == shown
    assert "synthetic" in d.name.lower() and "synthetic" in d.display_name.lower()
    assert "synthetic" in d.summary()["name"].lower()


def test_mosei_size_preset_has_the_paper_size():
    assert MOSEI_SIZE["n_speakers"] * MOSEI_SIZE["clips_per_speaker"] == 16326
    d = make_synthetic(**MOSEI_SIZE, seed=1, name="MOSEI-size")  # the preset leaves seed and name free
    assert len(d) == 16326
    assert d.face_dim == 35 and d.voice_dim == 74
    assert (d.face_lengths == 50).all() and (d.voice_lengths == 50).all()
    assert d.name == "MOSEI-size (synthetic)"


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_speakers=2), ValueError, r"n_speakers must be at least 3, got 2"),
    (dict(n_speakers=3.5), ValueError, r"n_speakers must be an integer"),
    (dict(clips_per_speaker=0), ValueError, r"clips_per_speaker must be at least 1, got 0"),
    (dict(face_dim=0), ValueError, r"face_dim must be at least 1, got 0"),
    (dict(voice_dim=-3), ValueError, r"voice_dim must be at least 1, got -3"),
    (dict(face_length=(0, 5)), ValueError, r"face_length low must be at least 1, got 0"),
    (dict(voice_length=(30, 20)), ValueError, r"voice_length range \(30, 20\) is empty: low must not exceed high"),
    (dict(face_length=12), ValueError, r"face_length must be a \(low, high\) pair"),
    (dict(class_weights=(0.5, 0.0, 0.5)), DataError, r"class_weights must all be positive"),
    (dict(class_weights=(0.5, -1, 0.5)), DataError, r"class_weights must all be positive"),
    (dict(class_weights=(0.5, 0.5)), DataError, r"class_weights must be 3 positive numbers"),
    (dict(noise=-0.1), ValueError, r"noise must be >= 0, got -0.1"),
    (dict(noise=float("nan")), ValueError, r"noise must be a finite number"),
    (dict(speaker_shift=-1), ValueError, r"speaker_shift must be >= 0, got -1"),
    (dict(difficulty="impossible"), ValueError, r"difficulty must be one of \['easy', 'hard', 'medium'\]"),
    (dict(difficulty=0), ValueError, r"difficulty must be one of .* or a positive number, got 0"),
    (dict(seed=-1), ValueError, r"seed must be a non-negative integer"),
    (dict(name=""), ValueError, r"name must be a non-empty string"),
    (dict(n_speakers=10**6, clips_per_speaker=10**6), ValueError, r"up to .* GB of features; at most 4 GB"),
])
def test_bad_arguments_are_refused_with_a_clear_message(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_synthetic(**kwargs)


@pytest.mark.parametrize("generator, said", [
    ({"bogus": 1}, "has a bad generator argument: make_synthetic() got an unexpected keyword argument 'bogus'"),
    ([1, 2], "'generator' must be a table of make_synthetic's arguments, not a list"),
    ({"n_speakers": 10**6, "clips_per_speaker": 10**6}, "has a bad generator argument: these sizes make up to"),
])
def test_a_demo_spec_with_bad_generator_arguments_is_one_line(tmp_path, generator, said):
    import json

    from crossemo_core.data.loaders.demo import DEMO_SPEC, load_demo

    spec = tmp_path / "demo.json"
    spec.write_text(json.dumps({**json.loads(DEMO_SPEC.read_text()), "generator": generator}))
    with pytest.raises(DataError) as err:
        load_demo(spec)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_data_errors_are_value_errors():
    with pytest.raises(ValueError):
        make_synthetic(class_weights=(1, 1, 0))


# ------------------------------------------------------------------------------------------------ learnability
def _held_out_accuracy(data: PairDataset, side: str, features: str, per_speaker: bool = False) -> tuple[float, float]:
    """Logistic regression trained on 3/4 of the speakers, scored on the other 1/4; also the majority rate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seqs = getattr(data, side)
    if features == "mean":
        x = np.stack([s.mean(axis=0) for s in seqs])
    else:  # one frame: the middle one
        x = np.stack([s[len(s) // 2] for s in seqs])
    if per_speaker:
        for spk in np.unique(data.speaker):
            x[data.speaker == spk] -= x[data.speaker == spk].mean(axis=0)
    speakers = np.unique(data.speaker)
    test = np.isin(data.speaker, speakers[::4])
    y = data.face_label
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(x[~test], y[~test])
    majority = np.bincount(y[test], minlength=3).max() / test.sum()
    return float(clf.score(x[test], y[test])), float(majority)


@pytest.fixture(scope="module")
def larger() -> PairDataset:
    return make_synthetic(n_speakers=40, seed=0)  # 1,200 clips; 10 held-out speakers = 300 test clips


@pytest.mark.parametrize("side", ["face", "voice"])
def test_temporal_mean_is_learnable_on_held_out_speakers_but_not_trivially(larger, side):
    acc, majority = _held_out_accuracy(larger, side, "mean")
    # Measured at seed 0: face 0.573, voice 0.633, majority 0.410 (seeds 0-7: face 0.57-0.71, voice 0.62-0.84).
    # 300 test clips: one standard error is about 0.03, so +0.10 is more than 3 SE above chance.
    assert acc >= majority + 0.10, f"{side}: temporal-mean accuracy {acc:.3f} is too close to chance {majority:.3f}"
    assert acc <= 0.92, f"{side}: temporal-mean accuracy {acc:.3f}; the task is too easy"


@pytest.mark.parametrize("side", ["face", "voice"])
def test_one_frame_is_weak_and_speaker_normalisation_helps(larger, side):
    mean_acc, _ = _held_out_accuracy(larger, side, "mean")
    normalised_acc, _ = _held_out_accuracy(larger, side, "mean", per_speaker=True)
    frame_acc, _ = _held_out_accuracy(larger, side, "frame", per_speaker=True)
    # Measured at seed 0 (per-speaker normalised): one frame face 0.563 / voice 0.607, temporal mean 0.777 / 0.827.
    # The class signal is weak in one frame and clear only when integrated over time ...
    assert frame_acc <= normalised_acc - 0.10, f"{side}: one frame {frame_acc:.3f} vs mean {normalised_acc:.3f}"
    # ... and the per-speaker offset hides part of it until each speaker is normalised (raw 0.573 / 0.633).
    assert normalised_acc >= mean_acc + 0.05, f"{side}: per-speaker {normalised_acc:.3f} vs raw {mean_acc:.3f}"
    assert normalised_acc <= 0.95, f"{side}: per-speaker temporal mean {normalised_acc:.3f}; the task is too easy"
