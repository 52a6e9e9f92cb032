"""Verdicts: every pair's verdict, probability of inconsistency and reason first, then its classes, similarity and
ids; per-type summary. Threshold changes only recompute the decision (the scores and the table are cached)."""
from __future__ import annotations

import math

import streamlit as st

from crossemo_app import charts, state, ui
from crossemo_core import reports

ui.inside_app()

#: The columns a person reads first, pinned at the left of the table (never behind a horizontal scroll).
FIRST_COLUMNS = ("verdict", "p_inconsistent", "reason", "correct", "truth")


#: What the table calls a pair without an anomaly (the data's own value is "normal").
NO_ANOMALY = "none (consistent pair)"
SORT_LABELS = {"pair": "pair", "p_inconsistent": "P(inconsistent)", "similarity": "similarity", "verdict": "verdict",
               "speaker": "speaker", "clip_id": "face clip"}


def _reasons(table, threshold: float) -> list[str]:  # noqa: ANN001
    """One short line per row: the similarity, the probability it gives and how it compares with the threshold."""
    return [f"P {p:.2f} {'≥' if p >= threshold else '<'} threshold {threshold:.2f} (similarity {s:+.2f})"
            for s, p in zip(table["similarity"].to_numpy(), table["p_inconsistent"].to_numpy())]


st.title("Verdicts")
ui.explain("One row per pair of the chosen speakers. The **verdict** (consistent / inconsistent) compares "
           "**P(inconsistent)**, the probability the model derives from the face-voice similarity, with the "
           "threshold; the **reason** says so in numbers. **Correct** says whether the verdict agrees with the labels: "
           "**face class** and **voice class** are the labels of the two sides, and when they differ the pair is "
           "truly inconsistent. **Similarity** is on the scale of the Similarity page (cosine, -1 … +1). Select a row "
           "(the box at its left) to read it in words.")
ui.dataset_banner()
if not ui.need_dataset() or not ui.need_detector("verdicts"):
    st.stop()

ep = state.parts()
c1, c2 = st.columns([1, 2])
part = ui.part_select("p_ver_part", c1)
threshold = state.widget(c2.slider, "Decision threshold on the probability of inconsistency (the same as on the "
                         "Similarity page)", state.THRESHOLD, 0.0, 1.0, step=0.01)
c2.markdown(f"**Threshold:** {threshold:.2f} on the probability of inconsistency: a pair is inconsistent when "
            f"P(inconsistent) is at least this.")

with ui.guard("scoring the pairs"):
    with st.spinner("Scoring the pairs…"):
        _, scores = state.scored(part, "after")
    data = ep.parts[part]
    base = state.cached(("verdict_table", part), lambda: reports.verdict_table(data, scores, 0.5))
    table = reports.apply_threshold(base, threshold)
    table.insert(0, "reason", _reasons(table, threshold))
    table = table[[*FIRST_COLUMNS, *(c for c in table.columns if c not in FIRST_COLUMNS)]]

    m = reports.threshold_metrics(data.is_abnormal, scores.p_abnormal, threshold)
    cols = st.columns(5)
    cols[0].metric("Pairs", len(table))
    cols[1].metric("Flagged inconsistent", m["n_flagged"])
    cols[2].metric("Correct verdicts", f"{int(table['correct'].sum())} ({m['accuracy']:.0%})")
    for col, label, key, what in ((cols[3], "Caught (TPR)", "tpr", "truly inconsistent pairs that are flagged"),
                                  (cols[4], "False alarms (FPR)", "fpr", "consistent pairs that are flagged")):
        col.metric(label, "n/a" if math.isnan(m[key]) else f"{m[key]:.0%}",
                   help=f"share of {what} (n/a: these pairs hold none of that kind)")

    st.subheader("Filter and sort")
    options = {"p_ver_verdicts": [reports.VERDICT_ABNORMAL, reports.VERDICT_NORMAL], "p_ver_correct": [True, False],
               "p_ver_types": sorted(table["anomaly_type"].unique()),
               "p_ver_speakers": sorted(table["speaker"].unique())}
    for key, allowed in options.items():  # keep only choices that exist for the pairs in view
        state.set_value(key, [v for v in st.session_state.get(key, []) if v in allowed])
    st.session_state.setdefault("p_ver_sort", "pair")
    f1, f2, f3, f4 = st.columns(4)
    verdicts = state.widget(f1.multiselect, "Verdict", "p_ver_verdicts", options["p_ver_verdicts"])
    correct = state.widget(f2.multiselect, "Correct?", "p_ver_correct", options["p_ver_correct"],
                           format_func=lambda v: "correct" if v else "wrong")
    types = state.widget(f3.multiselect, "Anomaly type", "p_ver_types", options["p_ver_types"],
                         format_func=lambda t: NO_ANOMALY if t == "normal" else t)
    speakers = state.widget(f4.multiselect, "Speaker", "p_ver_speakers", options["p_ver_speakers"])
    s1, s2, s3 = st.columns([2, 2, 1])
    text = state.widget(s1.text_input, "Search clip id or speaker", "p_ver_text")
    sort_by = state.widget(s2.selectbox, "Sort by", "p_ver_sort", list(SORT_LABELS), format_func=SORT_LABELS.get)
    descending = state.widget(s3.checkbox, "Descending", "p_ver_desc")
    shown = reports.filter_verdicts(table, verdicts=verdicts, correct=correct, anomaly_types=types,
                                    speakers=speakers, text=text, sort_by=sort_by, ascending=not descending)
    shown = shown.assign(anomaly_type=shown["anomaly_type"].replace({"normal": NO_ANOMALY}))

    event = st.dataframe(
        shown, hide_index=True, key="verdict_table", on_select="rerun", selection_mode="single-row",
        column_config={
            "verdict": st.column_config.TextColumn("verdict", pinned=True),
            "p_inconsistent": st.column_config.ProgressColumn("P(inconsistent)", format="%.2f", min_value=0.0,
                                                              max_value=1.0, pinned=True),
            "reason": st.column_config.TextColumn("reason", pinned=True, width="large"),
            "pair": st.column_config.NumberColumn("pair", help="index of the pair in this split"),
            "clip_id": st.column_config.TextColumn("face clip"),
            "voice_clip_id": st.column_config.TextColumn("voice clip"),
            "face_class": st.column_config.TextColumn("face class"),
            "voice_class": st.column_config.TextColumn("voice class"),
            "truth": st.column_config.TextColumn("labels say"),
            "anomaly_type": st.column_config.TextColumn("anomaly type"),
            "similarity": st.column_config.NumberColumn("similarity", format="%+.3f",
                                                        help="cosine, -1 … +1 (the Similarity page's scale)"),
            "correct": st.column_config.CheckboxColumn("correct"),
        })
    st.caption(f"{len(shown)} of {len(table)} pairs shown. Click a column header to sort by it.")
    st.download_button("Export these rows as CSV", shown.to_csv(index=False).encode(), key="download_csv",
                       file_name=f"crossemo-verdicts-{part}.csv", mime="text/csv")

    st.subheader("One pair in detail")
    rows = [int(i) for i in shown["pair"]]
    selected = getattr(getattr(event, "selection", None), "rows", None) or []
    if selected and selected[0] < len(rows):
        state.set_value("p_ver_pair", int(rows[selected[0]]))
    if rows:
        if st.session_state.get("p_ver_pair") not in rows:
            state.set_value("p_ver_pair", int(rows[0]))
        labels = dict(zip(table["pair"], table["clip_id"]))
        pair = state.widget(st.selectbox, "Pair", "p_ver_pair", rows,
                            format_func=lambda i: f"pair {i} (face clip {labels[i]})")
        row = table.loc[table["pair"] == pair].iloc[0]
        d1, d2 = st.columns([2, 1])
        d1.markdown(reports.explain_pair(row, threshold))
        d2.plotly_chart(charts.posterior_gauge(float(row["p_inconsistent"]), threshold), key="chart_gauge")
    else:
        st.caption("No pair matches the filters.")

    st.subheader("Per anomaly type (Table IV layout)")
    ui.explain("Each anomaly type is scored on its own inconsistent pairs plus all consistent pairs, as in the "
               "paper's Table IV. 'Undivided' uses every pair. Accuracy depends on the threshold; AUC does not.")
    per_type = reports.per_type_table(table)
    iv = reports.table_iv(table, data.display_name)
    st.dataframe(iv, hide_index=True, key="table_iv", column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in iv.columns if c.endswith(("Acc", "AUC"))})
    st.dataframe(per_type, hide_index=True, key="per_type", column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in ("AUC", "TPR", "FPR", "accuracy")})
    st.plotly_chart(charts.per_type_bars(per_type), key="chart_per_type")
