"""BetaMixture (the SIR-HCL verdict, eq. 19), similarity_to_score and youden_threshold."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.thresholds import youden_threshold

TRUE_WEIGHTS = np.array([0.6, 0.4])
TRUE_ALPHAS = np.array([8.0, 2.0])
TRUE_BETAS = np.array([2.0, 6.0])


def _sample(n: int, seed: int = 0):
    """n scores from 0.6 Beta(8, 2) (normal) + 0.4 Beta(2, 6) (abnormal); labels 1 = abnormal."""
    rng = np.random.default_rng(seed)
    abnormal = rng.random(n) < TRUE_WEIGHTS[1]
    x = np.where(abnormal, rng.beta(TRUE_ALPHAS[1], TRUE_BETAS[1], n), rng.beta(TRUE_ALPHAS[0], TRUE_BETAS[0], n))
    return x, abnormal.astype(int)


@pytest.fixture(scope="module")
def data():
    return _sample(20_000)


@pytest.fixture(scope="module")
def fitted(data):
    x, y = data
    return BetaMixture().fit(x, init_labels=y)


def _by_mean(m: BetaMixture):
    order = np.argsort(-(m.alphas_ / (m.alphas_ + m.betas_)))  # normal (higher mean) first
    return m.weights_[order], m.alphas_[order], m.betas_[order]


def _all_finite(m: BetaMixture, x) -> bool:
    arrays = [m.weights_, m.alphas_, m.betas_, [m.lower_bound_], m.predict_proba(x), m.score_samples(x),
              m.component_pdf(x), m.component_pdf(x, weighted=True), m.mixture_pdf(x), m.posterior_abnormal(x)]
    return all(np.all(np.isfinite(np.asarray(a, dtype=float))) for a in arrays)


# ---------------------------------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_labels", [True, False])
@pytest.mark.parametrize("init_split", ["otsu", "median"])
def test_recovers_known_parameters(data, use_labels, init_split):
    x, y = data
    m = BetaMixture(init_split=init_split).fit(x, init_labels=y if use_labels else None)
    weights, alphas, betas = _by_mean(m)
    np.testing.assert_allclose(alphas, TRUE_ALPHAS, rtol=0.10)
    np.testing.assert_allclose(betas, TRUE_BETAS, rtol=0.10)
    np.testing.assert_allclose(weights, TRUE_WEIGHTS, atol=0.03)
    assert m.converged_ and 1 <= m.n_iter_ <= m.max_iter
    assert np.isfinite(m.lower_bound_)
    assert m.lower_bound_ == pytest.approx(m.score(x), abs=1e-9)
    assert m.init_method_ == ("labels" if use_labels else f"{init_split} split")


def test_detects_abnormal_pairs(data, fitted):
    x, y = data
    pred = fitted.predict(x)
    assert pred.dtype.kind == "i" and set(np.unique(pred)) <= {0, 1}
    assert (pred == y).mean() > 0.9  # the components barely overlap


def test_em_improves_on_a_poor_start():
    x, _ = _sample(5_000, seed=3)
    short = BetaMixture(max_iter=1, init_split="median")
    with pytest.warns(Warning, match="did not converge"):
        short.fit(x)
    full = BetaMixture(init_split="median").fit(x)
    assert full.lower_bound_ > short.lower_bound_


# ---------------------------------------------------------------------------------------------------------------
# which component is "normal"
# ---------------------------------------------------------------------------------------------------------------
def test_normal_component_is_higher_mean_whatever_the_labels(data):
    x, y = data
    straight = BetaMixture().fit(x, init_labels=y)
    flipped = BetaMixture().fit(x, init_labels=1 - y)  # component 0 now starts on the low-mean scores
    for m in (straight, flipped):
        means = m.alphas_ / (m.alphas_ + m.betas_)
        assert m.normal_component_ == int(np.argmax(means))
        assert m.abnormal_component_ == 1 - m.normal_component_
        assert means[m.normal_component_] > 0.7 and means[m.abnormal_component_] < 0.35
    assert straight.normal_component_ != flipped.normal_component_
    np.testing.assert_allclose(straight.posterior_abnormal(x), flipped.posterior_abnormal(x), atol=1e-9)
    np.testing.assert_array_equal(straight.predict(x), flipped.predict(x))


def test_normal_component_after_set_parameters_with_swapped_order(fitted):
    d = fitted.get_parameters()
    swapped = {**d, "weights": d["weights"][::-1], "alphas": d["alphas"][::-1], "betas": d["betas"][::-1],
               "normal_component": 1 - d["normal_component"]}
    m = BetaMixture.from_parameters(swapped)
    assert m.normal_component_ == 1 - fitted.normal_component_
    x = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(m.posterior_abnormal(x), fitted.posterior_abnormal(x), atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------------------------
def test_predict_proba_rows_sum_to_one(data, fitted):
    x, _ = data
    p = fitted.predict_proba(x)
    assert p.shape == (x.size, 2)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(fitted.posterior_abnormal(x), 1.0 - p[:, fitted.normal_component_], atol=1e-12)
    np.testing.assert_allclose(fitted.posterior_normal(x), p[:, fitted.normal_component_])


@pytest.mark.parametrize("threshold", [0.1, 0.5, 0.9])
def test_predict_consistent_with_threshold(data, fitted, threshold):
    x, _ = data
    post_normal = fitted.predict_proba(x)[:, fitted.normal_component_]
    np.testing.assert_array_equal(fitted.predict(x, threshold=threshold), (post_normal < threshold).astype(int))


def test_predict_is_monotone_in_threshold(data, fitted):
    x, _ = data
    assert fitted.predict(x, threshold=0.2).sum() <= fitted.predict(x, threshold=0.5).sum() \
        <= fitted.predict(x, threshold=0.8).sum()
    assert fitted.predict(x, threshold=0.0).sum() == 0
    with pytest.raises(ValueError, match="threshold"):
        fitted.predict(x, threshold=1.5)


def test_densities_agree_with_scipy(fitted):
    from scipy import stats
    x = np.linspace(0.001, 0.999, 257)
    ref = np.column_stack([stats.beta.pdf(x, a, b) for a, b in zip(fitted.alphas_, fitted.betas_)])
    np.testing.assert_allclose(fitted.component_pdf(x), ref, rtol=1e-10)
    np.testing.assert_allclose(fitted.component_pdf(x, weighted=True), ref * fitted.weights_, rtol=1e-10)
    np.testing.assert_allclose(fitted.mixture_pdf(x), ref @ fitted.weights_, rtol=1e-10)
    np.testing.assert_allclose(fitted.score_samples(x), np.log(ref @ fitted.weights_), rtol=1e-10, atol=1e-12)
    post = ref * fitted.weights_ / (ref @ fitted.weights_)[:, None]
    np.testing.assert_allclose(fitted.predict_proba(x), post, rtol=1e-9, atol=1e-15)


def test_score_samples_finite_at_the_ends(fitted):
    x = np.array([0.0, 1e-12, 0.5, 1 - 1e-12, 1.0])
    s = fitted.score_samples(x)
    assert s.shape == (5,) and np.all(np.isfinite(s))
    assert s[0] == s[1] and s[3] == s[4]  # both clipped to eps / 1 - eps


# ---------------------------------------------------------------------------------------------------------------
# degenerate input: never NaN
# ---------------------------------------------------------------------------------------------------------------
_rng = np.random.default_rng(7)
_DEGENERATE = {
    "all equal": (np.full(200, 0.7), None),
    "all equal, labelled": (np.full(200, 0.7), np.r_[np.zeros(100), np.ones(100)]),
    "init_labels all 0": (_rng.beta(5, 2, 400), np.zeros(400, dtype=int)),
    "init_labels all 1": (_rng.beta(5, 2, 400), np.ones(400, dtype=int)),
    "one abnormal label": (_rng.beta(5, 2, 400), np.r_[1, np.zeros(399, dtype=int)]),
    "exactly 0 and 1": (np.r_[np.zeros(10), np.ones(10)], None),
    "exactly 0 and 1, labelled": (np.r_[np.zeros(10), np.ones(10)], np.r_[np.ones(10), np.zeros(10)]),
    "all zeros": (np.zeros(30), None),
    "all ones": (np.ones(30), None),
    "n = 2": (np.array([0.2, 0.9]), None),
    "n = 2, labelled": (np.array([0.2, 0.9]), np.array([1, 0])),
    "n = 1": (np.array([0.4]), None),
    "two spikes": (np.r_[np.full(500, 0.2), np.full(500, 0.8)], None),
    "one outlier": (np.r_[np.full(999, 0.5), 0.51], None),
}


@pytest.mark.parametrize("case", list(_DEGENERATE))
def test_degenerate_input_gives_no_nan(case):
    x, labels = _DEGENERATE[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow / invalid-value warnings either
        m = BetaMixture().fit(x, init_labels=labels)
        assert _all_finite(m, x)
        assert _all_finite(m, np.array([0.0, 0.3, 1.0]))
    assert np.all(m.alphas_ >= m.alpha_floor) and np.all(m.betas_ >= m.alpha_floor)
    np.testing.assert_allclose(m.weights_.sum(), 1.0)
    np.testing.assert_allclose(m.predict_proba(x).sum(axis=1), 1.0, atol=1e-12)
    assert m.normal_component_ in (0, 1)


def test_empty_class_falls_back_to_split():
    x, labels = _DEGENERATE["init_labels all 0"]
    m = BetaMixture().fit(x, init_labels=labels)
    assert m.init_method_.startswith("otsu split (fallback")


def test_refit_starts_afresh(data):
    x, y = data
    m = BetaMixture()
    m.fit(np.full(50, 0.5))
    m.fit(x, init_labels=y)
    np.testing.assert_allclose(_by_mean(m)[1], TRUE_ALPHAS, rtol=0.10)


# ---------------------------------------------------------------------------------------------------------------
# checkpoint round trip
# ---------------------------------------------------------------------------------------------------------------
def test_parameters_round_trip_through_json(data, fitted):
    x, _ = data
    d = fitted.get_parameters()
    text = json.dumps(d)
    restored = BetaMixture.from_parameters(json.loads(text))
    for attr in ("weights_", "alphas_", "betas_"):
        np.testing.assert_array_equal(getattr(restored, attr), getattr(fitted, attr))
    assert restored.normal_component_ == fitted.normal_component_
    assert restored.get_params() == fitted.get_params()
    np.testing.assert_array_equal(restored.predict_proba(x), fitted.predict_proba(x))
    np.testing.assert_array_equal(restored.predict(x), fitted.predict(x))
    np.testing.assert_array_equal(restored.score_samples(x), fitted.score_samples(x))
    assert restored.get_parameters() == d
    # set_parameters on an existing instance does the same
    other = BetaMixture().set_parameters(json.loads(text))
    np.testing.assert_array_equal(other.posterior_abnormal(x), fitted.posterior_abnormal(x))


def test_parameters_are_plain_python(fitted):
    d = fitted.get_parameters()

    def check(v):
        if isinstance(v, dict):
            for w in v.values():
                check(w)
        elif isinstance(v, list):
            for w in v:
                check(w)
        else:
            assert v is None or type(v) in (int, float, bool, str), type(v)

    check(d)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("alphas"), "lack alphas"),
    (lambda d: d.update(alphas=[1.0, float("nan")]), "finite positive"),
    (lambda d: d.update(betas=[1.0]), "finite positive"),
    (lambda d: d.update(weights=[0.5, 0.6]), "sum to 1"),
    (lambda d: d.update(format="something else"), "not BetaMixture"),
    (lambda d: d.update(normal_component=1 - d["normal_component"]), "normal component"),
    (lambda d: d["hyperparameters"].update(bogus=1), "unknown"),
])
def test_bad_parameters_are_refused(fitted, mutate, message):
    d = json.loads(json.dumps(fitted.get_parameters()))
    mutate(d)
    with pytest.raises(ValueError, match=message):
        BetaMixture.from_parameters(d)


# ---------------------------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, message", [
    (np.ones((3, 2)) * 0.5, "1-D"),
    (np.array(0.5), "1-D"),
    (np.array([]), "empty"),
    (np.array([0.2, np.nan]), "NaN or inf"),
    (np.array([0.2, np.inf]), "NaN or inf"),
    (np.array([0.2, 1.5]), r"in \[0, 1\]"),
    (np.array([-0.1, 0.5]), r"in \[0, 1\]"),
    (["a", "b"], "numeric"),
])
def test_bad_scores_raise(fitted, bad, message):
    with pytest.raises(ValueError, match=message):
        BetaMixture().fit(bad)
    for method in (fitted.predict_proba, fitted.predict, fitted.score_samples, fitted.component_pdf,
                   fitted.mixture_pdf, fitted.posterior_abnormal):
        with pytest.raises(ValueError, match=message):
            method(bad)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, 2]), "0 \\(normal\\) / 1 \\(abnormal\\)"),
    (np.array([0, 1]), "has 2 entries but scores has 3"),
    (np.array([[0, 1, 0]]), "1-D"),
    (np.array([0.0, np.nan, 1.0]), "0 \\(normal\\) / 1 \\(abnormal\\)"),
])
def test_bad_init_labels_raise(labels, message):
    with pytest.raises(ValueError, match=message):
        BetaMixture().fit(np.array([0.2, 0.5, 0.9]), init_labels=labels)


def test_bool_labels_accepted(data):
    x, y = data
    m = BetaMixture().fit(x, init_labels=y.astype(bool))
    assert m.init_method_ == "labels"


@pytest.mark.parametrize("kwargs, message", [
    ({"max_iter": 0}, "max_iter"),
    ({"max_iter": 2.5}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"alpha_floor": 0.0}, "alpha_floor"),
    ({"eps": 0.5}, "eps"),
    ({"max_var_ratio": 1.0}, "max_var_ratio"),
    ({"init_split": "kmeans"}, "init_split"),
])
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BetaMixture(**kwargs).fit(np.array([0.2, 0.5, 0.9]))


def test_predict_before_fit_raises():
    m = BetaMixture()
    for method in (m.predict, m.predict_proba, m.score_samples, m.component_pdf, m.mixture_pdf,
                   m.posterior_abnormal):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(np.array([0.5]))
    with pytest.raises(NotFittedError, match="not fitted"):
        m.get_parameters()


def test_exact_zero_and_one_are_clipped(fitted):
    p_edge = fitted.predict_proba(np.array([0.0, 1.0]))
    p_eps = fitted.predict_proba(np.array([fitted.eps, 1 - fitted.eps]))
    np.testing.assert_array_equal(p_edge, p_eps)


# ---------------------------------------------------------------------------------------------------------------
# similarity_to_score
# ---------------------------------------------------------------------------------------------------------------
def test_similarity_to_score():
    cos = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.0 + 1e-9])
    u = similarity_to_score(cos)
    np.testing.assert_allclose(u, [1e-4, 0.25, 0.5, 0.75, 1 - 1e-4, 1 - 1e-4])
    assert np.all(np.diff(u) >= 0)
    assert similarity_to_score(np.zeros((2, 3))).shape == (2, 3)


@pytest.mark.parametrize("bad", [np.array([0.1, np.nan]), np.array([np.inf]), np.array([-np.inf, 0.0])])
def test_similarity_to_score_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="NaN or inf"):
        similarity_to_score(bad)


def test_similarity_scores_feed_the_mixture():
    rng = np.random.default_rng(5)
    cos = np.r_[rng.uniform(0.4, 1.0, 300), rng.uniform(-1.0, 0.0, 200)]
    y = np.r_[np.zeros(300, dtype=int), np.ones(200, dtype=int)]
    m = BetaMixture().fit(similarity_to_score(cos), init_labels=y)
    assert (m.predict(similarity_to_score(cos)) == y).mean() > 0.95


# ---------------------------------------------------------------------------------------------------------------
# Youden threshold
# ---------------------------------------------------------------------------------------------------------------
def test_youden_threshold_hand_made():
    # thresholds t (abnormal <=> score >= t):  t=0.9: TPR 1/3, FPR 0 -> J .333;  t=0.7: 2/3, 0 -> .667;
    # t=0.5: 2/3, 1/4 -> .417;  t=0.4: 1, 1/4 -> .75 (best);  t=0.3: 1, 1/2 -> .5;  ...
    y = [0, 0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.5, 0.4, 0.7, 0.9]
    assert youden_threshold(y, s) == pytest.approx(0.4)


def test_youden_threshold_separable_and_ties():
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.8)
    # J ties (t=0.8 and t=0.4 both give .667): the higher threshold wins
    assert youden_threshold([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.4, 0.8, 0.9]) == pytest.approx(0.8)


def test_youden_threshold_is_finite_even_when_uninformative():
    t = youden_threshold([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])  # anti-correlated: best J is 0
    assert np.isfinite(t)


@pytest.mark.parametrize("y, s, message", [
    ([1, 1, 1], [0.1, 0.2, 0.3], "only one class"),
    ([0, 0], [0.1, 0.2], "only one class"),
    ([0, 1], [0.1], "must match"),
    ([0, 2], [0.1, 0.2], "0 \\(normal\\) / 1 \\(abnormal\\)"),
    ([0, 1], [0.1, np.nan], "NaN or inf"),
    ([], [], "empty"),
])
def test_youden_threshold_bad_input(y, s, message):
    with pytest.raises(ValueError, match=message):
        youden_threshold(y, s)


def test_youden_threshold_on_mixture_posteriors(data, fitted):
    x, y = data
    t = youden_threshold(y, fitted.posterior_abnormal(x))
    assert 0.0 < t < 1.0
    pred = (fitted.posterior_abnormal(x) >= t).astype(int)
    tpr = pred[y == 1].mean()
    fpr = pred[y == 0].mean()
    assert tpr - fpr > 0.8


def test_large_n_stays_finite_and_accurate():
    x, y = _sample(1_000_000, seed=11)
    x[:1000] = 0.0  # a few scores at the edges too
    x[1000:2000] = 1.0
    m = BetaMixture().fit(x, init_labels=y)
    assert m.converged_ and np.isfinite(m.lower_bound_)
    assert m.lower_bound_ == pytest.approx(m.score(x), abs=1e-9)
    weights, alphas, betas = _by_mean(m)
    np.testing.assert_allclose(weights, TRUE_WEIGHTS, atol=0.03)
    assert np.all(np.isfinite(alphas)) and np.all(np.isfinite(betas))
