"""Session: a whole therapy session (up to 2 hours), where the face and the voice part ways, for how long, and a jump
to each stretch in the video."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from crossemo_app import clip_view as cv
from crossemo_app import session_view as sv
from crossemo_app import state, ui
from crossemo_core.clip.decode import NamedBytes
from crossemo_core.clip.report import report_html, segments_table
from crossemo_core.clip.segments import RULE as SEGMENT_RULE
from crossemo_core.clip.segments import fmt_clock, fmt_time
from crossemo_core.clip.verdict import MIN_CALM_S
from crossemo_core.errors import DataError
from crossemo_core.session import BackgroundJob
from crossemo_core.workspace import existing_file

ui.inside_app()

PLAYER_MAX_BYTES = 500 * 1024 * 1024
"""A file given by path is played in the page up to this size (Streamlit's player serves it from memory)."""

st.title("Session: where face and voice part ways")
ui.explain("Give a whole session (a video with sound, up to 2 hours). crossemo reads the face and the voice every "
           "half second, joins the moments with the same outcome into **stretches**, and lists the stretches where "
           "the face and the voice **part ways**: when, for how long, with what evidence, and which side changed. "
           "Click a stretch to play the video from there. The recording is analysed piece by piece and its frames are "
           "dropped as soon as they are read: only the per-window results and a few thumbnails are kept.")
st.caption("Research tool, not a diagnostic device. The models were trained on posed photographs and acted speech of "
           "different people (checkpoints/clip.md); a stretch is a statistical estimate, not a clinical finding.")

choice = st.radio("Recording", ["Try the sample session", "Upload a recording", "A file on this computer"],
                  horizontal=True, key="session_source")
source = media = None
if choice == "Try the sample session":
    st.caption("The two bundled sample clips one after the other (70 s): smiling face with a lively voice, then with "
               "a flat, low voice.")
    data = sv.sample_session()
    source = NamedBytes(sv.SAMPLE_NAME, data)
    media = data
elif choice == "Upload a recording":
    up = st.file_uploader("A video with sound (any format ffmpeg reads; up to the server's upload limit)",
                          key="session_upload")
    if up is not None:
        source = NamedBytes(up.name, up.getvalue())
        media = source.data
else:
    text = st.text_input("Path of a video on this computer (read from disk piece by piece; nothing is copied)",
                         key="session_path")
    if text.strip():
        try:
            source = existing_file(text)
            media = str(source)
        except DataError as exc:
            st.warning(str(exc), icon=":material/info:")

with st.expander("Optional: a per-person baseline from a calm stretch of this recording"):
    st.caption("Mark a stretch in which the person is calm and neutral (e.g. the first minutes of small talk): the "
               "face and the voice are then judged relative to this person's own rest in that stretch.")
    use_calm = st.checkbox("Use a calm stretch as the baseline", key="session_use_calm")
    c1, c2 = st.columns(2)
    calm_start = c1.number_input("Calm stretch from (s)", min_value=0.0, value=0.0, step=5.0, key="session_calm_start")
    calm_end = c2.number_input("to (s)", min_value=1.0, value=20.0, step=5.0, key="session_calm_end")

identity = cv.input_identity(source)
page = state.app().session
if identity is not None and page.input is not None and page.input != identity:
    # another recording now: what is shown (or still being analysed) is about the old one; none chosen (a path
    # mistyped, an upload not made yet) keeps it
    if page.job is not None and not page.job.finished:
        page.job.stop()
    page.job = page.result = page.figure = page.media = page.input = None

job = page.job
running = job is not None and not job.finished
if st.button("Analyse the session", type="primary", disabled=source is None or running, key="session_go"):
    span = (float(calm_start), float(calm_end)) if use_calm else None
    if span is not None and span[1] - span[0] < MIN_CALM_S:
        st.error(f"The calm stretch must last at least {MIN_CALM_S:g} s (its end after its start).",
                 icon=":material/error:")
    else:
        scorer = cv.scorer()
        chosen = source

        def analyse(job: BackgroundJob):  # noqa: ANN202 - runs in the job's thread
            calibration = None
            if span is not None:
                job.report_progress(0, 0, f"reading the calm stretch {fmt_clock(span[0])}-{fmt_clock(span[1])}")
                calibration = scorer.calibration(chosen, span=span)

            def progress(done: float, total: float | None, eta: float | None) -> None:
                left = "" if eta is None else f", about {fmt_time(eta)} left"
                of = f" of {fmt_clock(total)}" if total else ""
                job.report_progress(int(done), int(total or 0), f"{fmt_clock(done)}{of} analysed{left}")

            return scorer.score(chosen, baseline=calibration, progress=progress,
                                should_stop=lambda: job.stop_requested)

        page.result = page.figure = None
        page.job = BackgroundJob(analyse, name="session").start()
        page.media, page.baseline_span, page.input = media, span, identity
        st.rerun()


def _progress() -> None:
    with ui.guard("the session analysis"):
        page = state.app().session
        job = page.job
        if job is None:
            return
        snap = job.snapshot()
        if not snap.finished:
            st.progress(snap.fraction, text=snap.message or "starting (the models load once, ~5 s)")
            if st.button("Stop (keep what was analysed)", key="session_stop"):
                job.stop()
            return
        if page.result is None and snap.result is not None:
            page.result = snap.result
            st.rerun()
        if snap.state == "failed":
            st.error(f"The analysis failed: {snap.error}", icon=":material/error:")


st.fragment(_progress, run_every=1.0 if running else None)()


@st.fragment
def _results() -> None:
    page = state.app().session
    v = page.result
    if v is None:
        return
    st.divider()
    st.markdown(f"**{v.file}**")
    if getattr(v, "sha256", None):
        st.caption(f"This result belongs to {v.file} (sha256 {v.sha256[:16]}…).")
    st.markdown(sv.badge(v), unsafe_allow_html=True)
    st.markdown(f"### {v.session.sentence()}")
    if v.partial:
        st.warning(f"Stopped early: {v.partial}", icon=":material/pause_circle:")
    span = page.baseline_span
    if v.calibrated and span:
        st.caption(f"Judged relative to the calm stretch {fmt_clock(span[0])}-{fmt_clock(span[1])} of this recording.")
    for column, (label, value, help_text) in zip(st.columns(5), sv.summary_numbers(v)):
        column.metric(label, value, help=help_text)
    st.caption(f"Whole recording: {v.label} (probability of inconsistency "
               f"{'–' if v.p_inconsistent is None else f'{v.p_inconsistent:.2f}'}). {v.reason}")
    for note in v.notes:
        st.warning(note, icon=":material/info:")
    figure = page.figure
    if figure is None or figure[0] is not v:
        figure = page.figure = (v, sv.timeline_figure(v))
    st.plotly_chart(figure[1], key="session_timeline")

    st.subheader("Stretches of inconsistency", help=SEGMENT_RULE)
    table = sv.segments_frame(v, "inconsistent")
    start = 0.0
    if table.empty:
        st.info("No stretch of inconsistency was found.", icon=":material/check_circle:")
    else:
        event = st.dataframe(table.drop(columns="start_s"), hide_index=True, on_select="rerun",
                             selection_mode="single-row", key="session_segments")
        picked = list(getattr(getattr(event, "selection", None), "rows", []) or [])
        labels = ["the start"] + [f"#{r['#']}: {r['start']}-{r['end']} ({r['outcome']})" for _, r in table.iterrows()]
        jump = st.selectbox("Play from", labels, key="session_jump",
                            help="or click a row of the table")
        if picked:
            start = float(table["start_s"].iloc[picked[0]])
        elif jump != labels[0]:
            start = float(table["start_s"].iloc[labels.index(jump) - 1])
    media = page.media
    if isinstance(media, str) and not Path(media).is_file():
        st.info(f"{media} is no longer there: nothing to play.", icon=":material/info:")
    elif isinstance(media, str) and Path(media).stat().st_size > PLAYER_MAX_BYTES:
        st.info(f"The file is too large to play in the page (the player keeps it in memory): open it in a video "
                f"player at {fmt_clock(start)}.", icon=":material/info:")
    elif media is not None:
        st.caption(f"Playing from {fmt_clock(start)}.")
        st.video(media, start_time=int(start))
    with st.expander("Every segment (consistent, inconsistent, not judged)"):
        st.dataframe(sv.segments_frame(v, None).drop(columns="start_s"), hide_index=True, key="session_all_segments")
    if v.thumbnails:
        thumbs = v.thumbnails
        if len(thumbs) > 24:
            step = len(thumbs) / 24
            thumbs = [thumbs[int(i * step)] for i in range(24)]
        st.caption("The face over the session (as the expression network saw it):")
        st.image([th for _, th in thumbs], caption=[fmt_clock(t) for t, _ in thumbs], width=64)
    st.subheader("Keep this result")
    st.caption("Downloads are the only copies: nothing is saved on the server.")
    d1, d2, d3 = st.columns(3)
    model = cv.scorer().model  # made now (the download callables run in another thread)
    d1.download_button("Segments (CSV)", lambda: segments_table([v.to_dict()]).to_csv(index=False).encode(),
                       file_name=f"{v.file}.segments.csv", mime="text/csv", key="session_dl_csv", on_click="ignore")
    d2.download_button("Report (HTML, printable)", lambda: report_html(v, model).encode(),
                       file_name=f"{v.file}.report.html", mime="text/html", key="session_dl_html", on_click="ignore")
    d3.download_button("Everything (JSON)", lambda: json.dumps(v.to_dict()).encode(),
                       file_name=f"{v.file}.session.json", mime="application/json", key="session_dl_json",
                       on_click="ignore")


with ui.guard("the session view"):
    _results()
