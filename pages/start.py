"""Start: what crossemo does, and the two ways in (judge a clip; train and evaluate on a corpus)."""
from __future__ import annotations

import streamlit as st

from crossemo_app import state, ui

ui.inside_app()

st.title("Does the face's emotion match the voice's?")
st.markdown(
    "crossemo compares the emotion a **face** shows with the emotion a **voice** carries in the same recording and "
    "says whether they are **consistent**, **inconsistent** or **undetermined** (too little evidence to say), with "
    "the probability and the reason.")
ui.disclaimer()

clinician, researcher = st.columns(2, border=True)
with clinician:
    st.subheader(":material/videocam: Judge a clip")
    st.markdown("For one person's recording: upload a video with sound (or a photo and a voice recording), record "
                "one in the browser, or try a bundled sample. You get the verdict, what the face and the voice each "
                "read, when they part ways, and a report to download. Long recordings (whole sessions) get a "
                "timeline of consistent and inconsistent stretches.")
    st.page_link(ui.PAGES["clip"], label="Judge a clip", icon=":material/arrow_forward:")
    st.page_link(ui.PAGES["session"], label="Analyse a whole session", icon=":material/timeline:")
with researcher:
    st.subheader(":material/model_training: Train and evaluate")
    st.markdown("For a corpus: load data (the bundled demo, RAVDESS, MOSI/MOSEI features), train SIR-HCL or a "
                "baseline with live curves, compare the new model with the one in use before choosing it, and look "
                "at embeddings, similarity histograms with the fitted Beta mixture, and per-pair verdicts.")
    st.page_link(ui.PAGES["data"], label="Choose data", icon=":material/arrow_forward:")
    st.page_link(ui.PAGES["train"], label="Train a model", icon=":material/model_training:")

data, det = state.dataset(), state.detector()
runs, _ = state.run_store().runs()
st.caption(f"Data loaded: {data.display_name if data is not None else 'none'} · model in use: "
           f"{state.detector_source()} · "
           f"{len(runs)} run(s) kept in the workspace {state.run_store().root}")
