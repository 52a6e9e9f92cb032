"""crossemo: does the face's emotion match the voice's? The Streamlit app (run: ``streamlit run app.py``).

This file only sets up the pages and the sidebar; each page lays out widgets and calls crossemo_core.
"""
from __future__ import annotations

import streamlit as st

from crossemo_app import state, ui

st.set_page_config(page_title="crossemo: face/voice emotion consistency", page_icon=":material/theater_comedy:",
                   layout="wide")
state.init()
state.adopt_finished_load()
state.load_demo_once()
adopted = state.adopt_finished_training()

pages = [
    st.Page(ui.PAGES["home"], title="Home / data", icon=":material/home:", default=True),
    st.Page(ui.PAGES["train"], title="Train", icon=":material/model_training:"),
    st.Page(ui.PAGES["embeddings"], title="Embeddings", icon=":material/scatter_plot:"),
    st.Page(ui.PAGES["similarity"], title="Similarity", icon=":material/bar_chart:"),
    st.Page(ui.PAGES["verdicts"], title="Verdicts", icon=":material/gavel:"),
    st.Page(ui.PAGES["clip"], title="Clip verdict", icon=":material/videocam:"),
    st.Page(ui.PAGES["session"], title="Session", icon=":material/timeline:"),
]
page = st.navigation(pages)


def _training_status() -> None:
    with ui.guard():
        _draw_training_status()


def _draw_training_status() -> None:
    job = st.session_state.get(state.TRAIN_JOB)
    if job is None:
        return
    snap = job.snapshot()
    if snap.finished:
        if state.adopt_finished_training():
            st.rerun()
        return
    st.progress(snap.fraction, text=f"Training: {snap.message or 'starting'}")


with st.sidebar:
    st.markdown("### crossemo")
    st.caption("Face/voice emotion consistency (SIR-HCL)")
    data = state.dataset()
    st.markdown(f"**Data:** {data.display_name if data is not None else 'none loaded'}")
    det = state.detector()
    st.markdown(f"**Model:** {st.session_state[state.DETECTOR_SOURCE] if det is not None else 'none yet'}")
    job = st.session_state.get(state.TRAIN_JOB)
    running = job is not None and not job.finished
    st.fragment(_training_status, run_every=2.0 if running else None)()
    st.divider()
    ui.disclaimer()

if adopted:
    st.toast("Training finished: the new model is in use on every page.", icon=":material/check_circle:")

with ui.guard():
    page.run()
