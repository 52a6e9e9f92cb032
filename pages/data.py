"""Data: choose a dataset, see what is in it, and set the inconsistent-pair protocol."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from crossemo_app import charts, state, ui
from crossemo_core import reports, workspace
from crossemo_core.workspace import DATA_KINDS, UPLOAD_ROLES

ui.inside_app()

#: The split table's columns in the app's one vocabulary (consistent / inconsistent).
SPLIT_COLUMNS = {"abnormal pairs": "inconsistent pairs", "abnormal share": "inconsistent share",
                 "left normal (no partner)": "left consistent (no partner)"}

st.title("Data")
st.markdown(
    "Train and evaluate, step 1. crossemo compares the emotion a **face** shows with the emotion a **voice** carries "
    "in the same clip and says whether they are *consistent*. It implements SIR-HCL: two networks turn the face and the voice into points in "
    "a shared space, trained so that matching emotions land close together; a two-component Beta mixture then turns "
    "the closeness into a probability of inconsistency.\n\n"
    "**How to use it:** 1. choose data here → 2. **Train** a model (live curves) → 3. look at the **Embeddings** → "
    "4. check the **Similarity** histograms and move the decision threshold → 5. read per-clip **Verdicts**.")
ui.disclaimer()

# ------------------------------------------------------------------------------------------------ 1. choose
st.header("1. Choose a dataset")
kinds = list(DATA_KINDS)
st.session_state.setdefault("p_data_kind", "demo")
kind = state.widget(st.radio, "Dataset", "p_data_kind", kinds, format_func=DATA_KINDS.get)

app_state = state.app()
message = app_state.load_message
if message is not None:
    {"success": st.success, "warning": st.warning}.get(message[0], st.error)(message[1])
    app_state.load_message = None

load_job = app_state.load_job
busy = load_job is not None and not load_job.finished


def _load_demo() -> None:
    with st.spinner("Generating the demo data…"):
        data = workspace.load_dataset("demo")
    note = state.set_dataset(data, "demo", "bundled with crossemo (synthetic)", [])
    if note:
        st.info(note)


with ui.guard("loading the data"):
    if kind == "demo":
        st.markdown("A **synthetic** corpus generated from a fixed recipe (identical on every machine): made-up "
                    "speakers whose face and voice feature sequences carry one of three emotion classes. It needs no "
                    "data of yours and is there to try the tool; results on it say nothing about real people.")
        if state.dataset() is None and not busy:
            _load_demo()
        elif state.data_kind() != "demo":
            if st.button("Load the demo data", type="primary", disabled=busy):
                _load_demo()
    elif kind == "ravdess":
        st.markdown("A folder in the RAVDESS layout: `face_au.csv` (clip-level facial action units) and "
                    "`audio/Actor_XX/03-01-EE-II-SS-RR-AA.flac` (or `.wav`). Voice features are computed from the "
                    "audio the first time (about 0.1 s per clip) and cached on this machine afterwards.")
        path = state.widget(st.text_input, "RAVDESS folder", "p_ravdess_path",
                            placeholder="e.g. ../shared/data/ravdess",
                             help="Absolute, or relative to the folder the app was started in.")
        actors = state.widget(st.text_input, "Actors (optional)", "p_ravdess_actors",
                              placeholder="e.g. 1-4 (empty = all)",
                               help="A subset loads faster; at least 3 actors are needed for a speaker-disjoint "
                                    "train/validation/test split.")
        if st.button("Load RAVDESS", type="primary", disabled=busy):
            chosen = workspace.parse_actors(actors)
            root = workspace.resolve_path(path)
            state.start_load("ravdess", f"{root}" + (f", actors {actors.strip()}" if chosen else ""),
                             lambda report, progress: workspace.load_dataset(
                                 "ravdess", root, actors=chosen, report=report, progress=progress))
            st.rerun()
    else:
        st.markdown({
            "misa": "A MISA/MMIM segment pickle (e.g. CMU-MOSI `dev.pkl`) with word-aligned FACET face and COVAREP "
                    "voice features and a sentiment score per segment (negative / neutral / positive by sign).",
            "mmsa": "An MMSA pickle (`aligned_50.pkl` or `unaligned_50.pkl` of CMU-MOSI / CMU-MOSEI); train, valid "
                    "and test are joined and split again by speaker.",
            "csd": "CMU Multimodal SDK computational sequences: face features, voice features and sentiment labels.",
        }[kind])
        how = state.widget(st.radio, "From", f"p_{kind}_how", ["path", "upload"], horizontal=True,
                       format_func={"path": "a path on this machine", "upload": "upload files"}.get)
        if how == "path":
            if kind == "csd":
                folder = state.widget(st.text_input,
                                      "Folder with face.csd, voice.csd and labels.csd, or leave empty and give "
                                       "the three files", "p_csd_folder")
                files = {role: state.widget(st.text_input, desc, f"p_csd_{role}") for role,
                         desc in UPLOAD_ROLES["csd"].items()}
            else:
                pkl = state.widget(st.text_input, "Pickle file", f"p_{kind}_path",
                                   placeholder="e.g. ../shared/data/mosi/dev.pkl")
            if st.button("Load", type="primary", disabled=busy):
                if kind == "csd":
                    if folder.strip():
                        root = workspace.resolve_path(folder)
                        state.start_load("csd", str(root), lambda report, progress: workspace.load_dataset(
                            "csd", root, report=report))
                    else:
                        paths = {role: str(workspace.resolve_path(p)) if p.strip() else "" for role, p in
                                 files.items()}  # an empty one is named by load_csd_files
                        state.start_load("csd", ", ".join(p for p in paths.values() if p),
                                         lambda report, progress: workspace.load_csd_files(paths, report=report))
                else:
                    root = workspace.resolve_path(pkl)
                    state.start_load(kind, str(root), lambda report, progress: workspace.load_dataset(
                        kind, root, report=report))
                st.rerun()
        else:
            cap = workspace.DEFAULT_MAX_UPLOAD_BYTES
            st.caption(f"Uploaded files are written to a temporary folder on this machine, read, and deleted at once. "
                       f"Limit: {cap // 2**20} MiB in all; for larger files give their path.")
            uploads = {role: st.file_uploader(desc, key=f"up_{kind}_{role}")
                       for role, desc in UPLOAD_ROLES[kind].items()}
            ready = all(u is not None for u in uploads.values())
            if st.button("Load uploaded files", type="primary", disabled=busy or not ready):
                too_big = sum(u.size for u in uploads.values())
                if too_big > cap:
                    st.error(f"The files are {too_big / 2**20:.0f} MiB, above the {cap // 2**20} MiB limit; give "
                             f"their path on this machine instead.")
                else:
                    blobs = {role: (u.name, u.getvalue()) for role, u in uploads.items()}
                    names = ", ".join(u.name for u in uploads.values())
                    state.start_load(kind, f"upload: {names}", lambda report, progress: workspace.load_uploaded(
                        kind, blobs, report=report, max_bytes=cap))
                    st.rerun()


def _load_progress() -> None:
    with ui.guard("loading"):
        _draw_load_progress()


def _draw_load_progress() -> None:
    job = state.app().load_job
    if job is None:
        return
    snap = job.snapshot()
    if snap.finished:
        st.rerun()
    if snap.total:
        left = charts.time_left(snap.elapsed, snap.done / snap.total if snap.done else 0.0)
        text = (f"Extracting voice features: {snap.done} of {snap.total} clips ({snap.elapsed:.0f} s, {left}; "
                f"cached for next time)")
    else:
        text = f"Loading… ({snap.elapsed:.0f} s)"
    st.progress(snap.fraction, text=text)


if busy:
    st.fragment(_load_progress, run_every=1.0)()

# ------------------------------------------------------------------------------------------------ 2. overview
data = state.dataset()
if data is None:
    st.stop()

st.header("2. What is in it")
ui.dataset_banner()
if data.synthetic:
    st.warning("**Synthetic data.** These pairs were generated by a program, not recorded from people.",
               icon=":material/science:")
summary = data.summary()
c = st.columns(5)
c[0].metric("Pairs (clips)", f"{summary['n_pairs']:,}")
c[1].metric("Speakers", f"{summary['n_speakers']:,}")
c[2].metric("Emotion classes", data.n_classes)
c[3].metric("Face features", summary["face_dim"])
c[4].metric("Voice features", summary["voice_dim"])
report = app_state.data.report
if report:
    with st.expander(f"Loader notes ({len(report)})"):
        for line in report:
            st.markdown(f"- {line}")

overview = state.cached(("overview",), lambda: reports.dataset_overview(data))
ep = None
with ui.guard("splitting the data"):
    ep = state.train_parts()
ui.explain("Each clip has a face side and a voice side, both labelled with the emotion class they carry "
           "(as recorded, the two always agree). Balanced classes make the verdicts easier to trust; a class with "
           "few clips will be learnt less well.")
left, right = st.columns(2)
with left:
    classes = overview["classes"].assign(stage="as loaded")
    if ep is not None:
        after = reports.class_balance(ep.parts).assign(stage="after the inconsistent-pair protocol")
        classes = pd.concat([classes, after], ignore_index=True)
    st.plotly_chart(charts.class_balance(classes, "Class balance per modality"), key="chart_classes")
with right:
    st.plotly_chart(charts.lengths(overview["lengths"], "Sequence lengths"), key="chart_lengths")
st.plotly_chart(charts.speakers(reports.speakers_by_part(ep.parts) if ep is not None else overview["speakers"],
                                "Pairs per speaker"), key="chart_speakers")

# ------------------------------------------------------------------------------------------------ 3. protocol
st.header("3. Inconsistent pairs and the speaker split")
ui.explain("Real recordings have matching face and voice, so inconsistent examples are made on purpose: for a "
           "share *r* of each speaker's clips, the voice is swapped with the voice of another clip **of the same "
           "speaker** that carries a **different** emotion (the paper's protocol). Speakers are then split 3:1:1 "
           "into training, validation and test, so the test speakers are never seen in training.")
c1, c2 = st.columns(2)
state.widget(c1.slider, "Inconsistent rate r (share of each speaker's clips given a mismatched voice)", state.SPLIT_RATE,
             0.05, 1.0, step=0.05)
state.widget(c2.number_input, "Seed (split and protocol)", state.SPLIT_SEED, min_value=0, max_value=2**31 - 1, step=1)
if ep is not None:
    table = reports.split_overview(ep.parts).rename(columns=SPLIT_COLUMNS)
    n_abn, n_fb = int(table["inconsistent pairs"].sum()), int(table["partner from another speaker"].sum())
    st.markdown(f"The protocol (rate **{ep.rate}**, seed **{ep.seed}**) made **{n_abn} of {int(table['pairs'].sum())}"
                f"** pairs inconsistent; **{n_fb}** of them had to take a partner from another speaker.")
    st.dataframe(table, hide_index=True, column_config={
        "inconsistent share": st.column_config.NumberColumn(format="%.2f")}, key="split_table")
    det = state.detector()
    if det is not None and det.metadata.get("split_speakers"):
        st.caption("The current model recorded its own split; the Embeddings, Similarity and Verdicts pages use "
                   "that split so its test speakers stay unseen.")
# ------------------------------------------------------------------------------------------------ 4. normalisation
st.header("4. Per-person normalisation")
ui.explain("People differ at rest: a naturally low voice, a habitual frown. Per-person normalisation measures each "
           "person's own face and voice features on a reference (their neutral clips, like a calm baseline "
           "recording, or all of their clips) and expresses every clip relative to it. It is used in training and at "
           "test alike, and a model trained on normalised features only fits normalised data. On RAVDESS it raised "
           "the speaker-disjoint AUC from 0.756 to 0.817 (docs/results.md).")
raw = state.loaded_dataset() or data
references = ["none", "all"] + (["neutral"] if "neutral" in raw.class_names else [])


def _normalise() -> None:
    with ui.guard("normalising per person"):
        note = state.apply_normalisation()
        if note:
            state.app().load_message = (state.note_level(note), note)


state.widget(st.radio, "Normalise each person's features by", state.NORMALISE, references,
             format_func=state.NORMALISE_LABELS.get, on_change=_normalise, disabled=busy,
             help="The neutral reference reads the labels of each person's neutral clips, also for test speakers: "
                  "it stands for a calm baseline recording each person makes first.")
st.page_link(ui.PAGES["train"], label="Next: train a model", icon=":material/model_training:")
