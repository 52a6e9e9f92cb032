"""The Train page's run views: the comparison card of a finished run, and the runs kept in the workspace."""
from __future__ import annotations


import pandas as pd
import streamlit as st

from crossemo_app import charts, state
from crossemo_core import reports
from crossemo_core.data.container import PairDataset
from crossemo_core.runs import ModelCheck, RunComparison, StoredRun, fmt_metric


def _mixture_words(check: ModelCheck) -> str:
    h = check.mixture
    if h.separated and h.component_means is not None:
        return f"separated (component means {h.component_means[0]:.2f} / {h.component_means[1]:.2f})"
    return "degenerate: " + "; ".join(h.problems)


def comparison_table(comparison: RunComparison) -> pd.DataFrame:
    """Rows: AUC, TPR, FPR, accuracy, threshold, mixture; columns: the new model and the model in use."""
    models = {"New model": comparison.candidate}
    if comparison.current is not None:
        models["Model in use"] = comparison.current
    rows = {
        "AUC (ranking, 0.5 = chance)": [fmt_metric(m.auc) for m in models.values()],
        "TPR: inconsistent pairs caught": [fmt_metric(m.tpr) for m in models.values()],
        "FPR: consistent pairs flagged": [fmt_metric(m.fpr) for m in models.values()],
        "Accuracy at its threshold": [fmt_metric(m.accuracy) for m in models.values()],
        "Threshold on p(inconsistent)": [f"{m.threshold:.2f}" for m in models.values()],
        "Beta mixture": [_mixture_words(m) for m in models.values()],
    }
    return pd.DataFrame(rows, index=list(models)).T


def comparison_card(comparison: RunComparison, key: str, decided: str | None, current_name: str) -> str | None:
    """Show how a new model compares with the model in use on the same test pairs; returns "use" or "keep" when the
    person clicks one of the two buttons (never by default), else None. ``decided``: "used" / "kept" / None."""
    c = comparison.candidate
    box = st.container(border=True)
    box.markdown(f"**{comparison.summary}**")
    box.caption(f"Both models scored on the same {c.n_pairs} test pairs (speakers the new run never saw). Model in "
                f"use: {current_name}.")
    box.dataframe(comparison_table(comparison), key=f"comparison_{key}")
    for flag in comparison.flags:
        box.warning(f"Flagged: {flag}.", icon=":material/flag:")
    for note in comparison.notes:
        box.caption(note)
    if decided == "used":
        box.success("You chose the new model: it is in use on every page.", icon=":material/check_circle:")
        return None
    if decided == "kept":
        box.info("You kept the model in use. The new run stays in the workspace list below.", icon=":material/info:")
        return "use" if box.button("Use the new model after all", key=f"use_after_all_{key}") else None
    confirm = True
    if comparison.flags:
        confirm = box.checkbox("I understand the new model is flagged and want to be able to use it anyway",
                               key=f"confirm_flagged_{key}")
    left, right = box.columns(2)
    use = left.button("Use the new model", key=f"use_new_{key}", disabled=not confirm,
                      type="primary" if comparison.recommended else "secondary")
    keep = right.button("Keep the model in use", key=f"keep_old_{key}",
                        type="secondary" if comparison.recommended else "primary")
    return "use" if use else "keep" if keep else None


def runs_table(runs: list[StoredRun], data: PairDataset | None) -> pd.DataFrame:
    """One row per kept run, newest first: when, method, data, epochs, state, test metrics, flags, fit."""
    rows = []
    for r in runs:
        m = r.test_metrics
        flags = [] if r.comparison is None else list(r.comparison.flags)
        rows.append({"run": r.run_id, "started": r.created[:19].replace("T", " "), "method": r.method,
                     "data": r.data_name, "epochs": len([e for e in r.epochs if e.phase == "select"]),
                     "state": r.state, "test AUC": m.get("auc"), "TPR": m.get("tpr"), "FPR": m.get("fpr"),
                     "flags": "; ".join(flags) if flags else ("none" if r.comparison is not None else "n/a"),
                     "fits the data loaded now": bool(data is not None and r.fits(data))})
    return pd.DataFrame(rows)


def workspace_runs(data: PairDataset | None, running: bool) -> None:
    """The runs kept in the workspace: a table, one run's history, and a button to use its model."""
    store = state.run_store()
    runs, notes = store.runs()
    st.caption(f"Every finished run is kept in {store.runs_folder} (settings, history, test metrics, comparison and "
               f"model), so it is listed here after a reload or a restart of the app.")
    for note in notes:
        st.caption(f"Skipped a damaged run folder: {note}")
    if not runs:
        st.caption("No runs kept yet.")
        return
    st.dataframe(runs_table(runs, data), hide_index=True, key="workspace_runs", column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in ("test AUC", "TPR", "FPR")})
    by_id = {r.run_id: r for r in runs}
    st.session_state.setdefault("p_workspace_run", runs[0].run_id)
    chosen = state.widget(st.selectbox, "Run", "p_workspace_run", list(by_id),
                          format_func=lambda rid: by_id[rid].label())
    run = by_id[chosen]
    with st.expander(f"History of run {run.run_id}", expanded=False):
        epochs = reports.epoch_table(run.epochs)
        n_epochs = max([e.n_epochs for e in run.epochs] + [1])
        left, right = st.columns([3, 2])
        left.plotly_chart(charts.losses(reports.loss_curves(run.steps), epochs, n_epochs),
                          key=f"run_losses_{run.run_id}")
        right.plotly_chart(charts.validation_auc(epochs, n_epochs), key=f"run_auc_{run.run_id}")
        if run.comparison is not None:
            st.dataframe(comparison_table(run.comparison), key=f"run_comparison_{run.run_id}")
    why_not = (None if run.has_model else "only SIR-HCL runs keep a model" if run.method != "sir-hcl"
               else "its model file is missing")
    if why_not is None and (data is None or not run.fits(data)):
        why_not = "it was trained on data of another shape than the data loaded now"
    flagged = run.comparison is not None and not run.comparison.recommended
    confirm = True
    if flagged and why_not is None:
        confirm = st.checkbox(f"This run was flagged ({'; '.join(run.comparison.flags)}); use it anyway",
                              key=f"confirm_run_{run.run_id}")
    if why_not:
        st.caption(f"This run's model cannot be used here: {why_not}.")
    if st.button("Use this run's model", key="use_workspace_run", disabled=bool(why_not) or running or not confirm):
        state.use_stored_run(run)
        st.rerun()
