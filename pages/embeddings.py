"""Embeddings: t-SNE / UMAP maps of face and voice embeddings before and after training (the paper's Fig. 8)."""
from __future__ import annotations

import time

import streamlit as st

from crossemo_app import charts, state, ui
from crossemo_core import projection
from crossemo_core.session import BackgroundJob

ui.inside_app()

STAGES = {"before": "Before training (initial weights)", "after": "After training"}

st.title("Embeddings")
ui.explain("The model turns each face and each voice into a point in a 256-dimensional space; these maps squeeze "
           "that space onto a page (nearby on the map ≈ nearby in the space; the axes have no unit). **Before "
           "training**, faces and voices usually form separate clouds even when they carry the same emotion. "
           "**After training**, a face and a voice with the same emotion should sit together and different emotions "
           "apart. In the default colouring (the paper's Fig. 8) green marks faces, blue the voices whose emotion "
           "matches their face, pink the voices that do not match.")
ui.dataset_banner()
if not ui.need_dataset() or not ui.need_detector("embeddings"):
    st.stop()

for key, value in (("p_emb_method", "tsne"), ("p_emb_colour", "status"), ("p_emb_part", "test"), ("p_emb_seed", 0),
                   ("p_emb_max_pairs", 400)):
    st.session_state.setdefault(key, value)
c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
method = state.widget(c1.radio, "Method", "p_emb_method", list(projection.METHODS), horizontal=True,
                  format_func=lambda m: "UMAP (its first run also compiles code)" if m == "umap" else "t-SNE")
colour_by = state.widget(c2.selectbox, "Colour by", "p_emb_colour", list(charts.COLOUR_BY),
                         format_func=charts.COLOUR_BY.get)
part = ui.part_select("p_emb_part", c3)
seed = state.widget(c4.number_input, "Seed", "p_emb_seed", min_value=0, max_value=10_000, step=1)
max_pairs = state.widget(st.slider, "Pairs to draw (a seeded sample when there are more)", "p_emb_max_pairs", 50,
                         1500, step=50)
if method == "umap" and not projection.umap_available():
    st.error("UMAP needs the umap-learn package (pip install umap-learn); t-SNE works without it.")
    st.stop()

ep = state.parts()
data = ep.parts[part]
app_state = state.app()
jobs = app_state.jobs
store = app_state.cache  # the background threads put the embeddings here (plain dict)
ids = (app_state.data_id, app_state.run_id)
n_points = 2 * min(len(data), int(max_pairs))


def _job_for(stage: str) -> BackgroundJob:
    """The projection of ``stage``'s embeddings with these settings: started once, then kept for this data and
    model (a page switch or another colouring reuses it; a failed one stays until "Try again")."""
    key = ("projection", part, stage, method, int(seed), int(max_pairs), *ids)
    if key in jobs:
        return jobs[key]
    det = state.detector() if stage == "after" else state.initial_model()
    label = projection.METHOD_LABELS[method]
    embed_key = ("embeddings", part, stage, *ids)

    def work(job: BackgroundJob):
        if embed_key not in store:
            job.report_progress(0, 2, "computing the embeddings")
            store[embed_key] = det.embed(data)
        face, voice = store[embed_key]
        job.expected_s = projection.expected_seconds(method, n_points)  # type: ignore[attr-defined]
        job.projection_started = time.perf_counter()  # type: ignore[attr-defined]
        job.report_progress(1, 2, f"running {label} on {n_points} points"
                                  + (" (the first UMAP run also compiles its code)" if method == "umap" else ""))
        return projection.embedding_map(face, voice, data, method=method, seed=int(seed), max_pairs=int(max_pairs))

    job = BackgroundJob(work, name=f"{method}-{stage}")
    jobs[key] = job.start()
    return job


def _progress_text(stage: str, job: BackgroundJob, message: str, elapsed: float) -> tuple[float, str]:
    """The bar's fraction and text: the elapsed time against the expected time of the projection."""
    expected = getattr(job, "expected_s", None)
    started = getattr(job, "projection_started", None)
    if expected is None or started is None:
        return 0.02, f"{STAGES[stage]}: {message} ({elapsed:.0f} s)"
    spent = time.perf_counter() - started
    if spent <= expected:
        left = f"about {charts.duration(expected - spent)} left"
    else:
        left = f"taking longer than the expected {charts.duration(expected)}"
    return min(0.05 + 0.9 * spent / max(expected, 1e-6), 0.95), (f"{STAGES[stage]}: {message}: "
                                                                 f"{charts.duration(spent)}, {left}")


with ui.guard("preparing the maps"):
    stage_jobs = {stage: _job_for(stage) for stage in STAGES}
    pending = any(not j.finished for j in stage_jobs.values())

    def _maps() -> None:
        with ui.guard("drawing the maps"):
            _draw_maps()

    def _draw_maps() -> None:
        snaps = {stage: j.snapshot() for stage, j in stage_jobs.items()}
        if pending and all(s.finished for s in snaps.values()):
            st.rerun()
        cols = st.columns(2)
        for col, (stage, snap) in zip(cols, snaps.items()):
            with col:
                if snap.state == "failed":
                    st.error(f"{STAGES[stage]}: {snap.error}", icon=":material/error:")
                    if st.button("Try again", key=f"retry_map_{stage}"):
                        for k in [k for k, j in jobs.items() if j is stage_jobs[stage]]:
                            del jobs[k]
                        st.rerun(scope="app")
                elif not snap.finished:
                    fraction, text = _progress_text(stage, stage_jobs[stage], snap.message, snap.elapsed)
                    st.progress(fraction, text=text + ". Other pages stay usable meanwhile; the map is kept.")
                else:
                    title = (f"{STAGES[stage]}: {projection.METHOD_LABELS[method]}, "
                             f"{ui.PART_LABELS[part].split()[0]} pairs")
                    st.plotly_chart(charts.embedding_map(snap.result, colour_by, title), key=f"chart_map_{stage}")

    st.fragment(_maps, run_every=1.0 if pending else None)()
st.caption(f"{len(data)} {part} pairs ({int(data.is_abnormal.sum())} inconsistent); {ep.note} Hover over a point "
           f"to see its clip. A map is computed once per data, model and settings and kept while you use other "
           f"pages.")
