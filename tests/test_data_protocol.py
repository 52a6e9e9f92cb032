"""The pair container, label mappings, the abnormal-pair protocol and speaker-disjoint splits."""
import numpy as np
import pytest

from crossemo_core.data import PairDataset, make_abnormal_pairs, speaker_disjoint_split, speaker_folds
from crossemo_core.data.labels import (anomaly_type, ravdess_emotion_to_3class, sentiment_to_3class,
                                       sentiment_to_7class, seven_to_3class)
from crossemo_core.data.protocol import choose_abnormal_partners
from crossemo_core.data.sanitize import sanitize_sequences
from crossemo_core.errors import DataError


def corpus(n=120, n_speakers=8, seed=0, labels=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n) if labels is None else np.asarray(labels)
    return PairDataset(
        face=[rng.normal(size=(rng.integers(1, 6), 3)).astype(np.float32) for _ in range(n)],
        voice=[rng.normal(size=(rng.integers(1, 9), 4)).astype(np.float32) for _ in range(n)],
        face_label=y, voice_label=y, speaker=[f"s{i % n_speakers}" for i in range(n)],
        clip_id=[f"c{i}" for i in range(n)], face_feature_names=["f0", "f1", "f2"],
        voice_feature_names=["v0", "v1", "v2", "v3"], name="toy")


# ---------------------------------------------------------------------------------------------- container
def test_container_rejects_inconsistent_input_with_clear_messages():
    good = corpus(10)
    with pytest.raises(DataError, match="every field needs one entry per pair"):
        PairDataset(face=good.face, voice=good.voice[:-1], face_label=good.face_label, voice_label=good.voice_label,
                    speaker=good.speaker, clip_id=good.clip_id, face_feature_names=good.face_feature_names,
                    voice_feature_names=good.voice_feature_names, name="toy")
    faces = list(good.face)
    faces[3] = np.zeros((0, 3), np.float32)
    with pytest.raises(DataError, match=r"1 empty face sequence\(s\), first at pair 3 \(c3\)"):
        PairDataset(face=faces, voice=good.voice, face_label=good.face_label, voice_label=good.voice_label,
                    speaker=good.speaker, clip_id=good.clip_id, face_feature_names=good.face_feature_names,
                    voice_feature_names=good.voice_feature_names, name="toy")
    faces[3] = np.zeros((2, 5), np.float32)
    with pytest.raises(DataError, match="different feature dimensions"):
        PairDataset(face=faces, voice=good.voice, face_label=good.face_label, voice_label=good.voice_label,
                    speaker=good.speaker, clip_id=good.clip_id, face_feature_names=good.face_feature_names,
                    voice_feature_names=good.voice_feature_names, name="toy")
    with pytest.raises(DataError, match="labels must lie in"):
        PairDataset(face=good.face, voice=good.voice, face_label=good.face_label + 5, voice_label=good.voice_label,
                    speaker=good.speaker, clip_id=good.clip_id, face_feature_names=good.face_feature_names,
                    voice_feature_names=good.voice_feature_names, name="toy")
    with pytest.raises(DataError, match="4 columns but 3 feature names"):
        PairDataset(face=good.face, voice=good.voice, face_label=good.face_label, voice_label=good.voice_label,
                    speaker=good.speaker, clip_id=good.clip_id, face_feature_names=good.face_feature_names,
                    voice_feature_names=["a", "b", "c"], name="toy")


def test_synthetic_flag_is_always_shown():
    data = corpus(5)
    data.synthetic = True
    assert "synthetic" in data.display_name


def test_sanitize_counts_repairs_or_refuses():
    seqs = [np.array([[1.0, np.nan], [np.inf, 2.0]]), np.ones((2, 2))]
    fixed, report = sanitize_sequences(seqs, "face", "repair")
    assert report.n_values == 2 and report.n_sequences == 1
    assert np.isfinite(fixed[0]).all() and fixed[0][0, 1] == 0.0
    with pytest.raises(DataError, match=r"face: 2 NaN/inf value\(s\) in 1 sequence\(s\) in x.pkl"):
        sanitize_sequences(seqs, "face", "refuse", source="x.pkl")


# ---------------------------------------------------------------------------------------------- labels
def test_three_class_sign_rule_and_configurable_band():
    s = np.array([-2.0, -0.1, 0.0, 0.1, 2.0])
    assert sentiment_to_3class(s).tolist() == [0, 0, 1, 2, 2]
    assert sentiment_to_3class(s, -0.5, 0.5).tolist() == [0, 1, 1, 1, 2]
    with pytest.raises(DataError, match="neutral band"):
        sentiment_to_3class(s, 1.0, -1.0)
    with pytest.raises(DataError, match="NaN or inf"):
        sentiment_to_3class(np.array([np.nan]))


def test_seven_class_table_one_bins():
    s = np.array([-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.7])
    assert (sentiment_to_7class(s) - 3).tolist() == [-3, -3, -2, -2, -1, -1, 0, 1, 1, 2, 2, 3, 3, 3]
    assert seven_to_3class(sentiment_to_7class(s)).tolist() == sentiment_to_3class(s).tolist()


def test_ravdess_valence_mapping():
    assert ravdess_emotion_to_3class([1, 2, 3, 4, 5, 6, 7, 8]).tolist() == [1, 1, 2, 0, 0, 0, 0, 2]
    with pytest.raises(DataError, match="unknown RAVDESS emotion"):
        ravdess_emotion_to_3class([9])


def test_anomaly_types_are_unordered_class_pairs():
    names = ("negative", "neutral", "positive")
    assert anomaly_type([0, 2, 1, 1], [2, 0, 1, 0], names).tolist() == ["neg-pos", "neg-pos", "normal", "neg-neu"]


# ---------------------------------------------------------------------------------------------- protocol
def test_protocol_makes_class_mismatched_partners_from_the_same_speaker():
    data = corpus(200, n_speakers=10)
    pairs, report = make_abnormal_pairs(data, rate=0.5, seed=3)
    src = pairs.voice_source
    moved = src != np.arange(len(data))
    assert report.n_picked == 100
    assert report.n_abnormal == moved.sum() == pairs.is_abnormal.sum()
    assert (data.speaker[src[moved]] == data.speaker[moved]).all()
    assert (data.face_label[moved] != data.voice_label[src[moved]]).all()
    for i in np.flatnonzero(moved)[:10]:
        assert pairs.voice[i] is data.voice[src[i]]
    assert pairs.protocol["voice_source"] == src.tolist()
    assert "100 of 200" not in str(report) or report.n_abnormal == 100


def test_protocol_is_deterministic_by_seed():
    data = corpus(100)
    a, _ = choose_abnormal_partners(data.face_label, data.voice_label, data.speaker, 0.5, seed=1)
    b, _ = choose_abnormal_partners(data.face_label, data.voice_label, data.speaker, 0.5, seed=1)
    c, _ = choose_abnormal_partners(data.face_label, data.voice_label, data.speaker, 0.5, seed=2)
    assert (a == b).all() and (a != c).any()


def test_protocol_falls_back_to_another_speaker_and_counts_it():
    # speaker s0 has one class only, so its picked pairs need a partner from elsewhere
    labels = [0] * 10 + [0, 1, 2] * 4
    speakers = ["s0"] * 10 + ["s1"] * 12
    y = np.array(labels)
    source, report = choose_abnormal_partners(y, y, np.array(speakers), rate=0.5, seed=0)
    assert report.n_fallback == 5
    fell_back = np.flatnonzero((np.array(speakers) == "s0") & (source != np.arange(22)))
    assert len(fell_back) == 5 and all(speakers[source[i]] == "s1" for i in fell_back)
    assert "5 with a partner from another speaker" in str(report)


def test_protocol_counts_pairs_left_normal_when_no_partner_exists():
    y = np.zeros(6, dtype=int)
    _, report = choose_abnormal_partners(y, y, np.array(["a"] * 6), rate=0.5, seed=0)
    assert report.n_unpaired == 3 and report.n_abnormal == 0


def test_protocol_rejects_bad_rate():
    data = corpus(10)
    with pytest.raises(DataError, match=r"rate must lie in \[0, 1\]"):
        make_abnormal_pairs(data, rate=1.5)


# ---------------------------------------------------------------------------------------------- splits
def test_split_is_speaker_disjoint_and_near_three_one_one():
    data = corpus(600, n_speakers=30)
    parts = speaker_disjoint_split(data.speaker, seed=0)
    speakers = {k: set(data.speaker[v]) for k, v in parts.items()}
    assert not (speakers["train"] & speakers["valid"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["valid"] & speakers["test"])
    assert sum(len(v) for v in parts.values()) == 600
    assert abs(len(parts["train"]) / 600 - 0.6) < 0.06 and abs(len(parts["test"]) / 600 - 0.2) < 0.06


def test_split_needs_three_speakers():
    with pytest.raises(DataError, match="at least 3 speakers; found 2"):
        speaker_disjoint_split(np.array(["a", "b", "a"]))


def test_folds_put_every_speaker_in_test_exactly_once():
    data = corpus(200, n_speakers=20)
    folds = speaker_folds(data.speaker, n_folds=5, seed=1)
    seen = []
    for fold in folds:
        sets = {k: set(data.speaker[v]) for k, v in fold.items()}
        assert not (sets["train"] & sets["test"]) and not (sets["valid"] & sets["test"])
        assert not (sets["train"] & sets["valid"])
        seen += sorted(sets["test"])
    assert sorted(seen) == sorted(set(data.speaker))


def test_subset_keeps_voice_sources_inside():
    data = corpus(60, n_speakers=3)
    pairs, _ = make_abnormal_pairs(data, 0.5, 0)
    sub = pairs.subset(np.flatnonzero(pairs.speaker == "s1"))
    assert ((sub.voice_source >= 0) & (sub.voice_source < len(sub))).all()
    assert (sub.is_abnormal == pairs.is_abnormal[pairs.speaker == "s1"]).all()


# ---------------------------------------------------------------------------------------------- finer emotions
def with_emotions(data, n_emotions=6, seed=1):
    """``data`` with per-clip emotions refining its classes (emotion // 2 == class)."""
    rng = np.random.default_rng(seed)
    emotion = data.face_label * 2 + rng.integers(0, 2, len(data))
    names = tuple(f"e{i}" for i in range(n_emotions))
    return PairDataset(face=data.face, voice=data.voice, face_label=data.face_label, voice_label=data.voice_label,
                       speaker=data.speaker, clip_id=data.clip_id, face_feature_names=data.face_feature_names,
                       voice_feature_names=data.voice_feature_names, name=data.name, face_emotion=emotion,
                       voice_emotion=emotion.copy(), emotion_names=names)


def test_emotion_labels_are_checked_with_clear_messages():
    data = with_emotions(corpus())
    with pytest.raises(DataError, match="face_emotion, voice_emotion and emotion_names go together"):
        PairDataset(face=data.face, voice=data.voice, face_label=data.face_label, voice_label=data.voice_label,
                    speaker=data.speaker, clip_id=data.clip_id, face_feature_names=data.face_feature_names,
                    voice_feature_names=data.voice_feature_names, name="toy", face_emotion=data.face_emotion)
    with pytest.raises(DataError, match=r"voice emotions must lie in \[0, 5\]"):
        PairDataset(face=data.face, voice=data.voice, face_label=data.face_label, voice_label=data.voice_label,
                    speaker=data.speaker, clip_id=data.clip_id, face_feature_names=data.face_feature_names,
                    voice_feature_names=data.voice_feature_names, name="toy", face_emotion=data.face_emotion,
                    voice_emotion=data.voice_emotion + 6, emotion_names=data.emotion_names)
    with pytest.raises(DataError, match="toy has no finer emotion labels to train on"):
        corpus().training_labels("emotions")
    with pytest.raises(DataError, match="must be 'classes' or 'emotions', not 'valence'"):
        data.training_labels("valence")


def test_emotions_travel_with_their_voice_through_protocol_and_subset():
    data = with_emotions(corpus())
    pairs, _ = make_abnormal_pairs(data, 0.5, seed=3)
    assert pairs.is_abnormal.any()
    np.testing.assert_array_equal(pairs.face_emotion, data.face_emotion)
    np.testing.assert_array_equal(pairs.voice_emotion, data.voice_emotion[pairs.voice_source])
    assert (pairs.voice_emotion // 2 == pairs.voice_label).all() and pairs.emotion_names == data.emotion_names
    part = pairs.subset(np.arange(10, 40))
    np.testing.assert_array_equal(part.voice_emotion, pairs.voice_emotion[10:40])
    face, voice, names = part.training_labels("emotions")
    assert names == data.emotion_names and (face == part.face_emotion).all() and (voice == part.voice_emotion).all()
    assert part.training_labels("classes")[2] == part.class_names
