"""Similarity: histograms of pair similarity with the fitted Beta mixture (Figs. 3 and 9), the posterior, the
decision threshold and the ROC curve."""
from __future__ import annotations

import math

import streamlit as st

from crossemo_app import charts, state, ui
from crossemo_core import reports

ui.inside_app()

STAGES = {"after": "after training", "before": "before training (initial weights)"}
RULES = {"posterior": "posterior 0.5 (the paper's rule)", "youden": "Youden index on the validation pairs [ours]",
         "model": "the value stored with this model"}

st.title("Similarity")
ui.explain("For every pair the model measures how similar the face and the voice are. The bars show how often "
           "each similarity occurs, "
           "blue for pairs whose face and voice **agree**, pink for pairs that **disagree**. A good model puts the "
           "blue bars to the right and the pink bars to the left. The curves are the two Beta distributions fitted "
           "to the training pairs (dashed) and their sum (solid); from them the model reads, for any similarity, the "
           "**probability that the pair is inconsistent**. A pair is flagged when that probability reaches the "
           "threshold; move the slider to trade missed inconsistencies against false alarms.")
st.caption(charts.SIMILARITY_SCALE)
ui.dataset_banner()
if not ui.need_dataset() or not ui.need_detector("similarity"):
    st.stop()

det = state.detector()
ep = state.parts()


def _views(scores, y, model):  # noqa: ANN001, ANN202
    rng = reports.similarity_range(scores.similarity)
    return (rng, reports.similarity_histogram(scores.similarity, y, bins=30, value_range=rng),
            reports.mixture_curves(model.mixture, rng))


def _roc(y, p):  # noqa: ANN001, ANN202
    try:
        return reports.roc_points(y, p)
    except Exception as exc:  # noqa: BLE001 - e.g. one class only: said on the page
        return str(exc)


def _rule_value(rule: str) -> float:
    if rule == "posterior":
        return 0.5
    if rule == "model":
        return float(det.threshold)
    return state.cached(("youden", st.session_state.get("p_sim_stage", "after")),
                        lambda: reports.youden_on(state.stage_detector(st.session_state.get("p_sim_stage", "after")),
                                                  ep.parts["valid"]))


def _apply_rule() -> None:
    try:
        state.set_value(state.THRESHOLD, round(_rule_value(st.session_state["p_sim_rule"]), 4))
    except Exception as exc:  # noqa: BLE001 - shown on the page
        state.app().threshold_rule_error = str(exc)


st.session_state.setdefault("p_sim_stage", "after")
c1, c2, c3 = st.columns(3)
stage = state.widget(c1.radio, "Model", "p_sim_stage", list(STAGES), format_func=STAGES.get, horizontal=True,
                 help="Before training shows the same network with its initial weights (the paper's Fig. 9).")
part = ui.part_select("p_sim_part", c2)
st.session_state.setdefault("p_sim_rule", "posterior")
state.widget(c3.selectbox, "Start the threshold from", "p_sim_rule", list(RULES), format_func=RULES.get,
             on_change=_apply_rule)
if state.app().threshold_rule_error is not None:
    state.app().threshold_rule_error = None
    st.error("The Youden threshold needs consistent and inconsistent validation pairs; the threshold was kept.")
threshold = state.widget(st.slider,
                         "Decision threshold on the probability of inconsistency (flag a pair when it is at least "
                      "this)", state.THRESHOLD, 0.0, 1.0, step=0.01)
st.session_state.setdefault("p_sim_yaxis", "clipped")
y_axis = state.widget(st.radio, "Histogram height", "p_sim_yaxis", list(charts.HISTOGRAM_AXES), horizontal=True,
                      format_func=charts.HISTOGRAM_AXES.get,
                      help="One tall bar can squash the fitted Beta curves flat: 'clipped' cuts such a bar off (a "
                           "triangle marks it; hover for its height), 'logarithmic' shows every bar and curve.")

with ui.guard("scoring the pairs"):
    with st.spinner("Scoring the pairs…"):
        model, scores = state.scored(part, stage)
    data = ep.parts[part]
    y = data.is_abnormal
    m = reports.threshold_metrics(y, scores.p_abnormal, threshold)
    cols = st.columns(5)
    for col, (label, value, helptext) in zip(cols, (
            ("TPR", m["tpr"], "share of inconsistent pairs that are flagged (sensitivity)"),
            ("FPR", m["fpr"], "share of consistent pairs wrongly flagged (1 - specificity)"),
            ("Accuracy", m["accuracy"], "share of all verdicts that are right"),
            ("AUC", m["auc"], "threshold-free ranking quality: 0.5 chance, 1 perfect"))):
        col.metric(label, "n/a" if math.isnan(value) else f"{value:.3f}", help=helptext)
    cols[4].metric("Flagged", f"{m['n_flagged']}/{len(data)}", help="pairs flagged inconsistent / all pairs shown")

    # Everything that does not depend on the threshold is computed once per pairs and model (a threshold change
    # only recomputes the decision: the metrics above, the flagged interval and the markers).
    rng, hist, curves = state.cached(("sim_views", part, stage), lambda: _views(scores, y, model))
    intervals = state.cached(("sim_flagged", part, stage, round(float(threshold), 6)),
                             lambda: reports.flagged_intervals(model.mixture, threshold, rng))
    st.plotly_chart(charts.similarity_histogram(
        hist, curves, intervals, f"Similarity of {ui.PART_LABELS[part].split()[0]} pairs, {STAGES[stage]}, "
                                 f"with the Beta mixture fitted on the training pairs", y_axis=y_axis),
        key="chart_hist")
    left, right = st.columns(2)
    left.plotly_chart(charts.posterior_curve(curves, threshold, rng), key="chart_posterior")
    roc = state.cached(("sim_roc", part, stage), lambda: _roc(y, scores.p_abnormal))
    if isinstance(roc, str):
        right.warning(f"No ROC curve: {roc}")
    else:
        right.plotly_chart(charts.roc(roc[0], roc[1], (m["fpr"], m["tpr"])), key="chart_roc")
    mix = model.mixture
    st.caption(f"{len(data)} pairs, {int(y.sum())} inconsistent. Beta components: consistent mean similarity "
               f"{2 * mix.means_[mix.normal_component_] - 1:+.3f}, inconsistent mean "
               f"{2 * mix.means_[mix.abnormal_component_] - 1:+.3f}. {ep.note}")
st.page_link(ui.PAGES["verdicts"], label="Next: per-clip verdicts at this threshold", icon=":material/gavel:")
