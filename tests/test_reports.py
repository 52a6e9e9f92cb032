"""Tables and curves for the app: counts add up, densities integrate, thresholds and ROC agree with the metrics."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crossemo_core import reports
from crossemo_core.config import preset_config
from crossemo_core.data.labels import anomaly_type
from crossemo_core.data.loaders.synthetic import make_synthetic
from crossemo_core.detector import ScoredPairs
from crossemo_core.errors import DataError
from crossemo_core.evaluation import detection_metrics, per_type_metrics
from crossemo_core.experiment import split_pairs
from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.thresholds import youden_threshold
from crossemo_core.training import EpochEvent, StepEvent, Trainer


@pytest.fixture(scope="module")
def parts():
    corpus = make_synthetic(n_speakers=6, clips_per_speaker=14, face_dim=5, voice_dim=7, face_length=(2, 6),
                            voice_length=(3, 8), seed=2)
    return split_pairs(corpus, seed=0, rate=0.5)


@pytest.fixture(scope="module")
def detector(parts):
    train = parts["train"]
    config = preset_config("fast", train.face_dim, train.voice_dim, hidden_size=12, embedding_size=12, epochs=2,
                           batch_size=16)
    return Trainer(config).fit(train, parts["valid"]).detector


@pytest.fixture(scope="module")
def table(parts, detector):
    return reports.verdict_table(parts["test"], detector.score(parts["test"]), 0.5)


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.beta(8, 2, 400), rng.beta(2, 5, 300)])
    return BetaMixture().fit(u)


# ---------------------------------------------------------------------------------------------- data
def test_dataset_overview_counts(parts):
    data = parts["train"]
    ov = reports.dataset_overview(data)
    classes = ov["classes"]
    assert set(classes["modality"]) == {"face", "voice"}
    assert classes.groupby("modality")["pairs"].sum().tolist() == [len(data), len(data)]
    face = classes[classes["modality"] == "face"].set_index("emotion")["pairs"]
    assert face["negative"] == int((data.face_label == 0).sum())
    speakers = ov["speakers"]
    assert speakers["pairs"].sum() == len(data) and speakers["abnormal"].sum() == int(data.is_abnormal.sum())
    assert list(speakers["pairs"]) == sorted(speakers["pairs"], reverse=True)
    assert len(ov["lengths"]) == 2 * len(data)


def test_split_overview_and_balance(parts):
    table = reports.split_overview(parts)
    assert list(table["part"]) == ["train", "valid", "test"]
    for _, row in table.iterrows():
        part = parts[row["part"]]
        assert row["pairs"] == len(part) and row["abnormal pairs"] == int(part.is_abnormal.sum())
        assert row["rate"] == 0.5
    balance = reports.class_balance(parts)
    assert balance["pairs"].sum() == 2 * sum(len(p) for p in parts.values())
    by_part = reports.speakers_by_part(parts)
    assert set(by_part["part"]) == {"train", "valid", "test"} and by_part["pairs"].sum() == table["pairs"].sum()


# ---------------------------------------------------------------------------------------------- training
def _steps(n_epochs, n_steps):
    return [StepEvent(e, s, n_steps, {"total": float(e * 100 + s), "share": 1.0, "intra": 2.0, "cross": 3.0,
                                      "hard": 4.0})
            for e in range(1, n_epochs + 1) for s in range(1, n_steps + 1)]


def test_loss_curves_long_format():
    curves = reports.loss_curves(_steps(2, 4))
    assert set(curves["term"]) == set(reports.LOSS_LABELS.values())
    total = curves[curves["term"] == reports.LOSS_LABELS["total"]]
    np.testing.assert_allclose(total["epoch"], [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
    np.testing.assert_allclose(total["value"], [101, 102, 103, 104, 201, 202, 203, 204])
    assert reports.loss_curves([]).empty


def test_loss_curves_are_thinned_for_long_runs():
    steps = _steps(10, 101)
    curves = reports.loss_curves(steps, max_points=100)
    total = curves[curves["term"] == reports.LOSS_LABELS["total"]]
    assert len(total) <= 101
    assert total["epoch"].iloc[-1] == pytest.approx(10.0)
    full = np.array([s.losses["total"] for s in steps])
    assert total["value"].min() >= full.min() and total["value"].max() <= full.max()


def test_epoch_table():
    events = [EpochEvent(1, 2, {"total": 3.0, "share": 1.0, "intra": 1.0, "cross": 0.5, "hard": 0.5}, 0.6, 0.6,
                         True, 1e-3, 1.5),
              EpochEvent(2, 2, {"total": 2.0, "share": 1.0, "intra": 0.5, "cross": 0.25, "hard": 0.25}, 0.55, 0.6,
                         False, 1e-3, 1.2),
              EpochEvent(3, 3, {"total": 2.5, "share": 1.0, "intra": 0.5, "cross": 0.5, "hard": 0.5}, float("nan"),
                         0.6, False, 1e-3, 1.4, phase="refit")]
    table = reports.epoch_table(events)
    assert list(table["epoch"]) == [1, 2, 3] and list(table["best so far"]) == [True, False, False]
    assert list(table["phase"]) == ["select", "select", "refit"] and np.isnan(table["validation AUC"].iloc[2])
    assert table[reports.LOSS_LABELS["total"]].tolist() == [3.0, 2.0, 2.5]
    assert reports.epoch_table([]).empty


# ---------------------------------------------------------------------------------------------- verdicts
def test_verdict_table_columns_and_truth(parts, table):
    test = parts["test"]
    assert len(table) == len(test)
    assert list(table.columns) == ["pair", "clip_id", "voice_clip_id", "speaker", "face_class", "voice_class", "truth",
                                   "anomaly_type", "similarity", "p_inconsistent", "verdict", "correct"]
    assert ((table["truth"] == reports.VERDICT_ABNORMAL) == test.is_abnormal).all()
    assert ((table["face_class"] != table["voice_class"]) == test.is_abnormal).all()
    np.testing.assert_array_equal(table["anomaly_type"],
                                  anomaly_type(test.face_label, test.voice_label, test.class_names))
    assert ((table["verdict"] == reports.VERDICT_ABNORMAL) == (table["p_inconsistent"] >= 0.5)).all()
    assert (table["correct"] == (table["verdict"] == table["truth"])).all()


def test_apply_threshold_moves_verdicts(table):
    none = reports.apply_threshold(table, 1.0 + 0.0)
    everything = reports.apply_threshold(table, 0.0)
    assert (everything["verdict"] == reports.VERDICT_ABNORMAL).all()
    assert (none["verdict"] == reports.VERDICT_ABNORMAL).sum() == (table["p_inconsistent"] >= 1.0).sum()
    with pytest.raises(DataError):
        reports.apply_threshold(table, 1.5)


def test_verdict_table_length_mismatch(parts):
    scored = ScoredPairs(np.zeros(3), np.zeros(3), np.zeros(3, dtype=bool))
    with pytest.raises(DataError):
        reports.verdict_table(parts["test"], scored, 0.5)


def test_filter_and_sort(table):
    wrong = reports.filter_verdicts(table, correct=[False])
    assert (~wrong["correct"]).all() and len(wrong) == int((~table["correct"]).sum())
    spk = table["speaker"].iloc[0]
    one = reports.filter_verdicts(table, speakers=[spk], verdicts=[reports.VERDICT_NORMAL])
    assert (one["speaker"] == spk).all() and (one["verdict"] == reports.VERDICT_NORMAL).all()
    clip = table["clip_id"].iloc[3]
    assert clip in set(reports.filter_verdicts(table, text=clip.upper())["clip_id"])
    ordered = reports.filter_verdicts(table, sort_by="p_inconsistent", ascending=False)
    assert list(ordered["p_inconsistent"]) == sorted(table["p_inconsistent"], reverse=True)
    assert len(reports.filter_verdicts(table)) == len(table)
    with pytest.raises(DataError, match="cannot sort"):
        reports.filter_verdicts(table, sort_by="nope")


def test_threshold_metrics_match_detection_metrics(table):
    y = (table["truth"] == reports.VERDICT_ABNORMAL).to_numpy()
    p = table["p_inconsistent"].to_numpy()
    for t in (0.0, 0.3, 0.5, 0.9):
        m = reports.threshold_metrics(y, p, t)
        ref = detection_metrics(y, p, p >= t)
        for key in ("auc", "tpr", "fpr", "accuracy"):
            assert m[key] == pytest.approx(ref[key], nan_ok=True)
        assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == len(y) and m["n_flagged"] == int((p >= t).sum())


def test_roc_points(table):
    y = (table["truth"] == reports.VERDICT_ABNORMAL).to_numpy()
    p = table["p_inconsistent"].to_numpy()
    roc, auc = reports.roc_points(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p))
    assert roc["fpr"].iloc[0] == 0 and roc["tpr"].iloc[-1] == 1 and roc["fpr"].is_monotonic_increasing
    assert auc == pytest.approx(np.trapezoid(roc["tpr"], roc["fpr"]) if hasattr(np, "trapezoid")
                                else np.trapz(roc["tpr"], roc["fpr"]))
    with pytest.raises(DataError):
        reports.roc_points(np.ones(4, dtype=bool), np.linspace(0, 1, 4))


def test_youden_on_validation(parts, detector):
    valid = parts["valid"]
    p = detector.posterior_abnormal(detector.similarity(valid))
    assert reports.youden_on(detector, valid) == youden_threshold(valid.is_abnormal.astype(int), p)


# ---------------------------------------------------------------------------------------------- histograms
def test_histogram_densities_integrate_to_one():
    rng = np.random.default_rng(0)
    sim = np.clip(rng.normal(0.2, 0.4, 500), -1, 1)
    y = rng.random(500) < 0.4
    hist = reports.similarity_histogram(sim, y, bins=25)
    assert set(hist["group"]) == {"consistent pairs", "inconsistent pairs"}
    assert hist["count"].sum() == 500
    area = (hist["density"] * (hist["right"] - hist["left"])).sum()
    assert area == pytest.approx(1.0)
    inconsistent = hist[hist["group"] == "inconsistent pairs"]["count"].sum()
    assert inconsistent == int(y.sum())
    lo, hi = reports.similarity_range(sim)
    assert -1 <= lo <= sim.min() and sim.max() <= hi <= 1


def test_histogram_input_errors():
    with pytest.raises(DataError):
        reports.similarity_histogram(np.array([0.1, np.nan]), np.array([True, False]))
    with pytest.raises(DataError):
        reports.similarity_histogram(np.array([0.1, 0.2]), np.array([True]))


def test_mixture_curves_on_the_cosine_axis(mixture):
    curves = reports.mixture_curves(mixture, (-1.0, 1.0), n=4001)
    x = curves["similarity"].to_numpy()
    area = np.sum((curves["mixture"].to_numpy()[1:] + curves["mixture"].to_numpy()[:-1]) / 2 * np.diff(x))
    assert area == pytest.approx(1.0, abs=1e-2)
    np.testing.assert_allclose(curves["consistent component"] + curves["inconsistent component"], curves["mixture"])
    np.testing.assert_allclose(curves["p_inconsistent"], mixture.posterior_abnormal(similarity_to_score(x)))
    # the consistent component sits at high similarity
    assert x[np.argmax(curves["consistent component"])] > x[np.argmax(curves["inconsistent component"])]
    with pytest.raises(DataError):
        reports.mixture_curves(mixture, (0.5, 0.2))


def test_flagged_intervals_follow_the_posterior(mixture):
    intervals = reports.flagged_intervals(mixture, 0.5)
    assert len(intervals) >= 1
    for lo, hi in intervals:
        mid = np.array([(lo + hi) / 2])
        assert mixture.posterior_abnormal(similarity_to_score(mid))[0] >= 0.5
    assert reports.flagged_intervals(mixture, 0.0) == [(-1.0, 1.0)]
    p_max = reports.mixture_curves(mixture, n=2001)["p_inconsistent"].max()
    if p_max < 1.0:
        assert reports.flagged_intervals(mixture, float(min(1.0, p_max + 1e-9))) == []


# ---------------------------------------------------------------------------------------------- per type
def test_per_type_table_matches_evaluation(table):
    per = reports.per_type_table(table).set_index("anomaly type")
    types = table["anomaly_type"].to_numpy()
    ref = per_type_metrics(types, table["p_inconsistent"].to_numpy(),
                           (table["verdict"] == reports.VERDICT_ABNORMAL).to_numpy())
    titles = {"neg-pos": "Positive-Negative", "neu-pos": "Positive-Neutral", "neg-neu": "Neutral-Negative"}
    for name, m in ref.items():
        row = per.loc[titles[name]]
        assert row["accuracy"] == pytest.approx(m["accuracy"]) and row["pairs"] == m["n_pairs"]
        assert row["AUC"] == pytest.approx(m["auc"], nan_ok=True)
    assert per.index[0] == "Undivided" and per.loc["Undivided", "pairs"] == len(table)
    order = [t for t in ("Positive-Negative", "Positive-Neutral", "Neutral-Negative") if t in per.index]
    assert list(per.index[1:]) == order
    iv = reports.table_iv(table, "demo")
    assert list(iv.columns[:4]) == ["dataset", "method", "Undivided Acc", "Undivided AUC"]
    assert iv["Undivided Acc"].iloc[0] == pytest.approx(per.loc["Undivided", "accuracy"])


def test_explain_pair_in_plain_words(table):
    row = table.iloc[0]
    text = reports.explain_pair(row, 0.5)
    assert str(row["face_class"]) in text and str(row["voice_class"]) in text
    assert ("do not match" in text) == (row["truth"] == reports.VERDICT_ABNORMAL)
    assert ("**correct**" in text) == bool(row["correct"])
    fake = pd.Series({**row.to_dict(), "p_inconsistent": 0.9, "correct": False})
    assert "≥ threshold 0.50" in reports.explain_pair(fake, 0.5) and "**wrong**" in reports.explain_pair(fake, 0.5)
