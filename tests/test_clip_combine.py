"""The evidence combiner and the verdict's words: disagreement, fit and calibration, file format, strength, and the
sentences a verdict carries (no shipped model needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossemo_core.clip.combine import FEATURES, EvidenceCombiner, evidence_features, sources_disagree, strength
from crossemo_core.clip.verdict import Window, _conflict, _explain, _pool
from crossemo_core.errors import CheckpointError
from crossemo_core.evaluation import calibration_metrics, detection_metrics, intervals_over_groups
from crossemo_core.readers.reading import Reading
from crossemo_core.readers.voice_corpora import VOICE_EMOTIONS


def reading(modality: str, valence: tuple[float, float, float], emotion: str = "neutral") -> Reading:
    e = np.full(7, 0.01)
    e[VOICE_EMOTIONS.index(emotion)] = 1 - 0.06
    return Reading.from_arrays(modality, VOICE_EMOTIONS, e, np.array(valence))


def test_evidence_is_the_similarity_and_the_product_of_each_pair_of_valences() -> None:
    face = np.array([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    voice = np.array([[1.0, 0, 0], [0.6, 0.2, 0.2]])
    x = evidence_features(np.array([0.3, 0.9]), face, voice)
    assert x.shape == (2, 10) == (2, len(FEATURES)) and x[0, 0] == pytest.approx(0.3)
    assert x[0, 1] == pytest.approx(1.0) and np.allclose(x[0, 2:], 0)  # all on face negative x voice negative
    assert x[1, FEATURES.index("face positive x voice negative")] == pytest.approx(0.5 * 0.6)
    assert x[1, 1:].sum() == pytest.approx(1.0)
    cells = x[1, 1:].reshape(3, 3)  # each side's reading is the sum over the other side
    assert np.allclose(cells.sum(1), face[1]) and np.allclose(cells.sum(0), voice[1])


def _synthetic_clips(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of clips: similarity lower for inconsistent clips (equal-variance Gaussians, so a logistic model
    fits); noisy readings of each side's true valence: either reader names a random valence in 20 % of clips, and the
    voice reader reads half of the negative voices as positive (as ours does)."""
    y = rng.integers(0, 2, n)
    face_true = rng.integers(0, 3, n)
    voice_true = np.where(y == 1, (face_true + rng.integers(1, 3, n)) % 3, face_true)
    voice_read = np.where((voice_true == 0) & (rng.random(n) < 0.5), 2, voice_true)
    sim = 0.5 - 0.15 * y + 0.15 * rng.standard_normal(n)

    def reading(top: np.ndarray) -> np.ndarray:
        top = np.where(rng.random(n) < 0.2, rng.integers(0, 3, n), top)
        p = rng.dirichlet(np.ones(3), n) * 0.5
        p[np.arange(n), top] += 0.5
        return p

    return evidence_features(sim, reading(face_true), reading(voice_read)), y


def test_the_combiner_is_calibrated_and_learns_which_pairs_of_readings_mislead(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = _synthetic_clips(10000, rng)
    combiner = EvidenceCombiner.fit(x[:5000], y[:5000], {"models": {"clip": "abc"}})
    p = combiner.probability(x[5000:])
    assert calibration_metrics(y[5000:], p)["ece"] < 0.05 and calibration_metrics(y[5000:], p)["saturated"] < 0.25
    coef = dict(zip(FEATURES, combiner.coef))
    assert coef["similarity"] < 0  # less similar: more likely inconsistent
    # a neutral face with a neutral voice is strong evidence of consistency, a neutral face with a negative voice of
    # inconsistency; a negative face with a "positive" voice is weaker evidence, for "positive" voices are often
    # negative ones misread
    assert coef["face neutral x voice neutral"] < coef["face negative x voice positive"] < \
        coef["face neutral x voice negative"]
    # ... and the record the verdict quotes says so
    n, k = combiner.pair_record("negative", "positive")
    assert n > 300 and 0.2 < k / n < 0.8 and combiner.pair_record("neutral", "neutral")[1] < 0.2 * \
        combiner.pair_record("neutral", "neutral")[0]
    # a small move of the similarity moves the probability a little
    moved = combiner.probability(x[5000:] + np.r_[0.03, np.zeros(9)])
    assert np.max(np.abs(moved - p)) < 0.05
    path = combiner.save(tmp_path / "c.json")
    again = EvidenceCombiner.load(path, {"clip": "abc"})
    assert np.allclose(again.probability(x[:5]), combiner.probability(x[:5]))
    assert np.allclose(again.readings_only(x[:5]), combiner.readings_only(x[:5]))
    assert again.pair_record("negative", "positive") == (n, k)
    with pytest.raises(CheckpointError, match="fitted on another clip"):
        EvidenceCombiner.load(path, {"clip": "def"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable evidence combiner"):
        EvidenceCombiner.load(tmp_path / "bad.json")


def test_fit_refuses_bad_training_data() -> None:
    with pytest.raises(ValueError, match="both 0 and 1"):
        EvidenceCombiner.fit(np.zeros((4, 10)), np.zeros(4))
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        EvidenceCombiner.fit(np.zeros((4, 4)), np.array([0, 1, 0, 1]))


def test_strength_words_and_when_sources_disagree() -> None:
    assert [strength(p) for p in (0.55, 0.7, 0.9, 0.45, 0.3, 0.05)] == \
        ["weak", "moderate", "strong", "weak", "moderate", "strong"]
    assert sources_disagree(0.95, 0.1) and sources_disagree(0.05, 0.9)
    assert not sources_disagree(0.95, 0.6) and not sources_disagree(0.6, 0.05)


def test_a_verdict_against_its_printed_readings_always_says_why() -> None:
    face = reading("face", (0.1, 0.1, 0.8), "happy")
    voice = reading("voice", (0.8, 0.1, 0.1), "sad")
    # consistent although the readings differ: sentence required
    text = _conflict("consistent", face, voice, p_embedding=0.3, p_readings=0.6)
    assert text is not None and "goes against the printed readings (positive face, negative voice)" in text
    # the two sources pull hard in opposite directions: the named disagreement sentence
    text = _conflict("inconsistent", face, voice, p_embedding=0.05, p_readings=0.95)
    assert text is not None and text.startswith("The embedding and the readings disagree")
    # the readings alone say consistent too, because validation clips with this pair mostly were: the record is quoted
    text = _conflict("consistent", face, voice, p_embedding=0.4, p_readings=0.45, pair=(40, 14))
    assert "the readers often misread this pair: of 40 validation clips whose face read positive and voice read " \
           "negative, 26 (65%) were in fact consistent" in text
    # a record that does not back the verdict (or only half, or too few clips) is not quoted, but the readings'
    # own lean is named
    for pair in ((40, 30), (40, 20), (10, 1)):
        text = _conflict("consistent", face, voice, p_embedding=0.4, p_readings=0.45, pair=pair)
        assert "validation clips whose" not in text and "the weights fitted on validation clips" in text
    # when the readings alone go the other way, the embedding outweighed them: the record is not the reason
    text = _conflict("consistent", face, voice, p_embedding=0.3, p_readings=0.6, pair=(40, 14))
    assert "misread" not in text and "the embedding outweighs them" in text
    # agreeing verdict and readings: nothing to say
    assert _conflict("inconsistent", face, voice, p_embedding=0.7, p_readings=0.8) is None


def test_the_reason_names_both_readings_and_counts_windows() -> None:
    face = reading("face", (0.1, 0.1, 0.8), "happy")
    voice = reading("voice", (0.7, 0.2, 0.1), "sad")
    windows = [Window(0, 2, "scored", face_valence="positive", voice_valence="negative"),
               Window(0.5, 2.5, "scored", face_valence="positive", voice_valence="positive")]
    text = _explain("inconsistent", face, voice, windows, similarity=0.12, p_embedding=0.8)
    assert text.startswith("the face reads happy (positive 0.80) while the voice reads sad (negative 0.70)")
    assert "their valences differ in 1 of 2 windows" in text and "similarity 0.12" in text
    pooled = _pool([face, reading("face", (0.3, 0.3, 0.4), "happy")])
    assert pooled.valence["positive"] == pytest.approx(0.6) and pooled.modality == "face"


def test_ece_and_the_ece_a_calibrated_model_would_show_on_as_many_clips() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 0.9, 360)
    y = (rng.random(360) < p).astype(float)
    m = calibration_metrics(y, p)
    by_bins = sum(b["n"] * abs(b["mean_p"] - b["share_inconsistent"]) for b in m["bins"]) / len(p)
    assert m["ece"] == pytest.approx(by_bins) and sum(b["n"] for b in m["bins"]) == 360
    floor = m["ece_if_calibrated"]
    assert 0.02 < floor["p5"] < floor["median"] < floor["p95"] < 0.12  # 360 clips: ECE ~0.05 even when calibrated
    assert floor["p5"] <= m["ece"] <= floor["p95"]  # these labels were drawn calibrated
    big = calibration_metrics((rng.random(36000) < (q := rng.uniform(0.1, 0.9, 36000))).astype(float), q, n_draws=50)
    assert big["ece_if_calibrated"]["p95"] < 0.01  # the floor shrinks with the number of clips
    assert calibration_metrics(y, np.clip(p + 0.2, 0, 1))["ece"] > floor["p95"]  # a biased model stands out


def test_intervals_resample_whole_groups_so_repeated_items_add_no_confidence() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, 300)
    y = (rng.random(300) < p).astype(float)
    takes = np.arange(300) // 3  # 100 takes of 3 clips each
    out = intervals_over_groups(y, p, takes, n_draws=300)
    assert out["n_groups"] == 100 and out["n_draws"] == 300
    point_auc = detection_metrics(y.astype(bool), p, p >= 0.5)["auc"]
    assert out["auc"][0] < point_auc < out["auc"][1]
    assert out["ece"][0] < calibration_metrics(y, p)["ece"] < out["ece"][1]
    # every clip of a take repeated four times: the same takes, the same draws, the same intervals
    repeated = intervals_over_groups(np.repeat(y, 4), np.repeat(p, 4), np.repeat(takes, 4), n_draws=300)
    assert repeated["auc"] == pytest.approx(out["auc"]) and repeated["ece"] == pytest.approx(out["ece"])
    # treating each repeated clip as its own group would claim a narrower AUC interval than the data holds
    as_items = intervals_over_groups(np.repeat(y, 4), np.repeat(p, 4), np.arange(1200), n_draws=300)
    assert as_items["auc"][1] - as_items["auc"][0] < 0.7 * (out["auc"][1] - out["auc"][0])
    with pytest.raises(ValueError, match="as many"):
        intervals_over_groups(y, p, takes[:-1])
    with pytest.raises(ValueError, match="no NaN"):
        intervals_over_groups(y, np.where(np.arange(300) == 7, np.nan, p), takes)
