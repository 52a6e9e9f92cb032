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
finished = state.training_just_finished()

page = st.navigation({section: [st.Page(ui.PAGES[key], title=title, icon=icon, default=key == "start")
                                for key, title, icon in entries]
                      for section, entries in ui.NAVIGATION.items()})


def _training_status() -> None:
    with ui.guard():
        _draw_training_status()


def _draw_training_status() -> None:
    job = state.training_job()
    if job is None:
        return
    snap = job.snapshot()
    if snap.finished:
        if state.training_just_finished():
            st.rerun()
        return
    st.progress(snap.fraction, text=f"Training: {snap.message or 'starting'}")


with st.sidebar:
    st.markdown("### crossemo")
    st.caption("Face/voice emotion consistency (SIR-HCL)")
    data = state.dataset()
    st.markdown(f"**Data:** {data.display_name if data is not None else 'none loaded'}")
    st.markdown(f"**Model:** {state.detector_source()}")
    st.fragment(_training_status, run_every=2.0 if state.training_running() else None)()
    st.divider()
    ui.disclaimer()

if finished:
    st.toast("Training finished. The model in use is unchanged: compare the new one with it on the Train page.",
             icon=":material/check_circle:")
if state.restored():
    st.toast("Welcome back: your data, model and training run are as you left them.", icon=":material/restore:")

with ui.guard():
    page.run()
state.remember()
