"""Issue 16 point 4, "readable": one vocabulary (consistent / inconsistent, never "abnormal"), one similarity scale,
a histogram whose y-axis keeps the fitted Beta curves visible, verdict tables that start with the verdict, its
probability and its reason, projections with a time estimate that are computed once, and threshold changes that
only recompute the decision. Driven by ``streamlit.testing.v1.AppTest`` on the bundled demo."""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from test_app import assert_clean, goto, new_app, run_until, wk

from crossemo_app import charts as app_charts
from crossemo_core import projection, reports
from crossemo_core.mixture import BetaMixture

# The Train, Clip verdict and Session pages have their own tests; these are the research pages this file covers.
PAGES = ("data", "embeddings", "similarity", "verdicts")
OLD_WORDS = re.compile(r"\babnormal|\bnormal\b", re.IGNORECASE)


def visible_text(at) -> str:
    """Every string a person can see on the page: texts, labels, options, metric labels, table headers and
    cells, and the Plotly figures (titles, legends, axis titles, hover texts)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "success", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    for kind in ("slider", "radio", "selectbox", "multiselect", "number_input", "checkbox", "text_input", "button"):
        for w in getattr(at, kind):
            parts.append(str(w.label))
            parts += [str(o) for o in getattr(w, "options", []) or []]
    for df in at.dataframe:
        value = df.value
        parts += [str(c) for c in value.columns]
        parts += [str(v) for c in value.columns if value[c].dtype == object for v in value[c].unique()]
        parts += [str(c.get("label", "")) for c in json.loads(df.proto.columns or "{}").values()]
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        parts += [json.dumps(trace.get(k)) for trace in spec["data"]
                  for k in ("name", "hovertemplate", "customdata", "text", "legendgroup")]
        parts.append(json.dumps(spec.get("layout", {})))
    return "\n".join(parts)


def figure(at, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec)


@pytest.fixture(scope="module")
def demo_app():
    at = new_app()
    goto(at, "embeddings")
    run_until(at, lambda a: not a.get("progress"), timeout=180, what="t-SNE")
    assert_clean(at)
    return at


# ---------------------------------------------------------------------------------------------- vocabulary
def test_no_page_says_abnormal_or_normal(demo_app):
    at = demo_app
    for page in PAGES:
        goto(at, page)
        if page == "embeddings":
            run_until(at, lambda a: not a.get("progress"), timeout=180, what="t-SNE")
            for colour in ("status", "modality", "emotion"):  # every colouring's legend
                at.selectbox(key=wk(at, "p_emb_colour")).set_value(colour).run()
                assert_clean(at)
                found = OLD_WORDS.findall(visible_text(at))
                assert not found, f"{page} ({colour}): {found}"
            continue
        assert_clean(at)
        found = OLD_WORDS.findall(visible_text(at))
        assert not found, f"{page}: {sorted(set(found))}"
    goto(at, "data")
    text = visible_text(at)
    assert "Inconsistent pairs and the speaker split" in text and "inconsistent share" in text


def test_one_similarity_scale_named_once(demo_app):
    at = goto(demo_app, "similarity")
    assert_clean(at)
    captions = [c.value for c in at.caption]
    assert sum("cosine similarity of the face and voice embeddings" in c for c in captions) == 1
    text = visible_text(at)
    assert "(1 + cosine)" not in text and "1 + cosine" not in text and "score (1" not in text
    hist = figure(at, "chart_hist")
    assert hist["layout"]["xaxis"]["title"]["text"].endswith(app_charts.SIMILARITY)
    assert figure(at, "chart_posterior")["layout"]["xaxis"]["title"]["text"].endswith(app_charts.SIMILARITY)
    assert figure(at, "chart_posterior")["layout"]["yaxis"]["title"]["text"] == "probability of inconsistency"
    # The Beta means in the caption are on the similarity scale (2 u - 1), inside -1 … +1.
    means = [float(x) for c in captions if "Beta components" in c
             for x in re.findall(r"mean(?: similarity)? ([+-]\d\.\d+)", c)]
    assert len(means) == 2 and all(-1.0 <= v <= 1.0 for v in means)


# ---------------------------------------------------------------------------------------------- histogram
def _spiky_inputs():
    rng = np.random.default_rng(0)
    sim = np.concatenate([np.full(300, 0.95), rng.uniform(-0.6, 0.9, 120)])  # one spike bar
    y = np.concatenate([np.zeros(300, bool), rng.uniform(size=120) < 0.5])
    mixture = BetaMixture().fit((1 + np.clip(rng.uniform(-0.6, 0.9, 400), -0.99, 0.99)) / 2)
    rng_ = reports.similarity_range(sim)
    return (reports.similarity_histogram(sim, y, bins=30, value_range=rng_), reports.mixture_curves(mixture, rng_),
            rng_)


def test_clipped_axis_keeps_the_beta_curves_visible_and_marks_the_cut_bar():
    hist, curves, _ = _spiky_inputs()
    spike = hist.groupby("center")["density"].sum().max()
    x = curves["similarity"].to_numpy()
    inside = np.abs(x - x.mean()) <= 0.47 * (x.max() - x.min())  # away from the edges, where a Beta can diverge
    peak = curves.loc[inside, ["consistent component", "inconsistent component", "mixture"]].to_numpy().max()
    fig = app_charts.similarity_histogram(hist, curves, [], "t")  # the default: clipped
    top = fig.layout.yaxis.range[1]
    assert peak <= top < spike / 3  # the curves fit under the axis, the spike does not squash them
    cut = [t for t in fig.data if (t.name or "").startswith("bar cut off")]
    assert len(cut) == 1 and len(cut[0].x) == 1
    log = app_charts.similarity_histogram(hist, curves, [], "t", y_axis="log")
    assert log.layout.yaxis.type == "log"
    lo, hi = log.layout.yaxis.range
    assert 10 ** hi >= spike and 10 ** lo <= hist.loc[hist["density"] > 0, "density"].min()
    full = app_charts.similarity_histogram(hist, curves, [], "t", y_axis="full")
    assert full.layout.yaxis.range is None and full.layout.yaxis.type is None
    with pytest.raises(ValueError):
        app_charts.similarity_histogram(hist, curves, [], "t", y_axis="sideways")


def test_clipped_axis_cuts_a_density_that_diverges_at_the_edge_but_no_ordinary_bar():
    hist, _, _ = _spiky_inputs()
    hist = hist.assign(density=np.where(hist["density"] > 5 * hist["density"].median(), hist["density"].median(),
                                        hist["density"]))  # no spike bar left
    x = np.linspace(-0.6, 1.0, 400)
    edge = 1.0 / np.maximum(1.0 - x, 1e-3) ** 0.8  # a Beta with b < 1 runs off to infinity at similarity 1
    curves = pd.DataFrame({"similarity": x, "consistent component": edge * 0.5, "inconsistent component": 0.2 + 0 * x,
                           "mixture": edge * 0.5 + 0.2})
    top = app_charts.histogram_top(hist, curves)
    highest_bar = hist.groupby("center")["density"].sum().max()
    assert top >= highest_bar and top < curves["mixture"].max() / 5
    fig = app_charts.similarity_histogram(hist, curves, [], "t")
    assert not [t for t in fig.data if (t.name or "").startswith("bar cut off")]


def test_similarity_page_histogram_axis_toggle(demo_app):
    at = goto(demo_app, "similarity")
    radio = at.radio(key=wk(at, "p_sim_yaxis"))
    assert radio.value == "clipped"  # the default keeps the components visible
    layout = figure(at, "chart_hist")["layout"]
    assert layout["yaxis"]["range"][0] == 0 and "clipped" in layout["yaxis"]["title"]["text"]
    radio.set_value("log").run()
    assert_clean(at)
    assert figure(at, "chart_hist")["layout"]["yaxis"]["type"] == "log"
    goto(at, "verdicts")
    goto(at, "similarity")  # the choice survives a page switch
    assert at.radio(key=wk(at, "p_sim_yaxis")).value == "log"
    at.radio(key=wk(at, "p_sim_yaxis")).set_value("clipped").run()


# ---------------------------------------------------------------------------------------------- verdict table
def test_verdict_table_starts_with_verdict_probability_and_reason(demo_app):
    at = goto(demo_app, "verdicts")
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["verdict", "p_inconsistent", "reason"]
    config = json.loads(at.dataframe[0].proto.columns)
    assert all(config[c].get("pinned") for c in ("verdict", "p_inconsistent", "reason"))
    assert not any(config[c].get("pinned") for c in config if c not in ("verdict", "p_inconsistent", "reason"))
    threshold = at.slider(key=wk(at, "p_threshold")).value
    for _, row in table.head(10).iterrows():
        sign = "≥" if row["p_inconsistent"] >= threshold else "<"
        assert row["reason"] == (f"P {row['p_inconsistent']:.2f} {sign} threshold {threshold:.2f} (similarity "
                                 f"{row['similarity']:+.2f})")
        assert row["verdict"] == ("inconsistent" if sign == "≥" else "consistent")
    assert set(table["anomaly_type"]) <= {"none (consistent pair)", "neg-pos", "neu-pos", "neg-neu"}
    at.selectbox(key=wk(at, "p_ver_sort")).set_value("p_inconsistent").run()  # sorting keeps the column order
    assert list(at.dataframe[0].value.columns[:3]) == ["verdict", "p_inconsistent", "reason"]
    at.selectbox(key=wk(at, "p_ver_sort")).set_value("pair").run()


# ---------------------------------------------------------------------------------------------- threshold
def test_threshold_moves_on_either_page_recompute_only_the_decision(demo_app):
    at = goto(demo_app, "verdicts")
    calls = []
    det = at.session_state["app"].model.detector
    original = type(det).score
    det.score = lambda data, *a, **k: calls.append(1) or original(det, data, *a, **k)  # counts re-scoring
    try:
        seconds = []
        for t in (0.2, 0.8, 0.5):
            started = time.perf_counter()
            at.slider(key=wk(at, "p_threshold")).set_value(t).run()
            seconds.append(time.perf_counter() - started)
            assert_clean(at)
            table = at.dataframe[0].value
            assert ((table["p_inconsistent"] >= t) == (table["verdict"] == "inconsistent")).all()
            assert f"{t:.2f}" in " ".join(m.value for m in at.markdown)
        goto(at, "similarity")
        assert at.slider(key=wk(at, "p_threshold")).value == pytest.approx(0.5)  # one threshold for both pages
        for t in (0.3, 0.7):
            started = time.perf_counter()
            at.slider(key=wk(at, "p_threshold")).set_value(t).run()
            seconds.append(time.perf_counter() - started)
            assert_clean(at)
        assert not calls  # the scores were cached: a threshold change never scores the pairs again
        assert sorted(seconds)[len(seconds) // 2] < 1.0
    finally:
        del det.score
        at.slider(key=wk(at, "p_threshold")).set_value(0.5).run()


# ---------------------------------------------------------------------------------------------- projections
def test_projection_is_computed_once_and_kept_across_pages(demo_app):
    at = goto(demo_app, "embeddings")
    run_until(at, lambda a: not a.get("progress"), timeout=180, what="t-SNE")
    jobs = dict(at.session_state["app"].jobs)
    assert len([k for k in jobs if k[0] == "projection"]) == 2  # before and after training
    embedded = [k for k in at.session_state["app"].cache if k[0] == "embeddings"]
    assert len(embedded) == 2
    goto(at, "similarity")
    goto(at, "verdicts")
    goto(at, "embeddings")
    assert_clean(at)
    assert not at.get("progress") and len(at.get("plotly_chart")) == 2  # drawn at once, nothing recomputed
    assert all(at.session_state["app"].jobs[k] is job for k, job in jobs.items())
    at.selectbox(key=wk(at, "p_emb_colour")).set_value("emotion").run()  # another colouring: the same maps
    assert not at.get("progress") and set(at.session_state["app"].jobs) == set(jobs)
    at.selectbox(key=wk(at, "p_emb_colour")).set_value("status").run()

    # A new seed makes new maps but reuses the embeddings (the network does not run again).
    det = at.session_state["app"].model.detector
    calls = []
    original = type(det).embed
    det.embed = lambda data, *a, **k: calls.append(1) or original(det, data, *a, **k)
    try:
        texts: list[str] = []
        at.number_input(key=wk(at, "p_emb_seed")).set_value(1).run()
        texts += [p.proto.text for p in at.get("progress")]
        run_until(at, lambda a: (texts.extend(p.proto.text for p in a.get("progress")) or not a.get("progress")),
                  timeout=180, what="t-SNE with seed 1")
        assert_clean(at)
        assert not calls
        assert len([k for k in at.session_state["app"].jobs if k[0] == "projection"]) == 4
        for text in texts:  # every progress line says how far it is, in time
            assert re.search(r"\d+ s, (about .+ left|taking longer than the expected)|\(\d+ s\)", text), text
    finally:
        del det.embed
        at.number_input(key=wk(at, "p_emb_seed")).set_value(0).run()


def test_a_failed_projection_stays_failed_until_try_again(demo_app, monkeypatch):
    from crossemo_core.errors import DataError

    at = goto(demo_app, "embeddings")
    run_until(at, lambda a: not a.get("progress"), timeout=180, what="t-SNE")
    real = projection.embedding_map

    def broken(*args, **kwargs):
        raise DataError("the embeddings contain NaN or inf values; the model may have diverged.")

    monkeypatch.setattr(projection, "embedding_map", broken)
    at.number_input(key=wk(at, "p_emb_seed")).set_value(7).run()
    run_until(at, lambda a: len(a.error) == 2, timeout=60, what="the failing projections")
    failed = {k: j for k, j in at.session_state["app"].jobs.items() if k[4] == 7}
    assert len(failed) == 2 and all(j.state == "failed" for j in failed.values())
    for _ in range(3):  # no restart loop: the failed jobs stay as they are
        time.sleep(0.5)
        at.run()
        assert {k: j for k, j in at.session_state["app"].jobs.items() if k[4] == 7} == failed
    assert any("diverged" in e.value for e in at.error)
    monkeypatch.setattr(projection, "embedding_map", real)
    for stage in ("before", "after"):
        at.button(key=f"retry_map_{stage}").click().run()
    run_until(at, lambda a: not a.get("progress") and not a.error, timeout=180, what="the retried projections")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2
    at.number_input(key=wk(at, "p_emb_seed")).set_value(0).run()


def test_expected_seconds_before_and_after_a_measured_projection(monkeypatch):
    monkeypatch.setattr(projection, "_measured", {})
    monkeypatch.setattr(projection, "_umap_warm", False)
    prior = projection.expected_seconds("tsne", 800)
    assert 0.5 < prior < 10 and projection.expected_seconds("tsne", 1600) > prior
    assert projection.expected_seconds("umap", 800) >= projection.UMAP_FIRST_RUN_S  # it compiles first
    projection.project(np.random.default_rng(0).normal(size=(60, 8)), "tsne")
    n, seconds = projection._measured["tsne"]
    assert n == 60 and projection.expected_seconds("tsne", 120) == pytest.approx(2 * seconds)
    with pytest.raises(Exception):
        projection.expected_seconds("pca", 10)


def test_time_left_and_durations():
    assert app_charts.time_left(0.0, 0.0) == "estimating the time left"
    assert app_charts.time_left(10.0, 0.25) == "about 30 s left"
    assert app_charts.time_left(60.0, 0.5) == "about 1 min 00 s left"
    assert app_charts.duration(3725) == "1 h 02 min"


def test_embedding_pair_kinds_are_the_app_vocabulary():
    from crossemo_core.experiment import load_corpus
    from crossemo_core.data.protocol import make_abnormal_pairs

    pairs = make_abnormal_pairs(load_corpus("demo"), 0.5, seed=0)[0].subset(np.arange(40))
    rng = np.random.default_rng(0)
    table = projection.embedding_map(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), pairs)
    assert set(table["pair_kind"]) <= set(projection.PAIR_KINDS)
    assert isinstance(table, pd.DataFrame)
