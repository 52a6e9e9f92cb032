"""Clip verdict: upload (or record, or pick a sample) a face/voice clip and read whether face and voice agree."""
from __future__ import annotations

import json

import streamlit as st

from crossemo_app import clip_view as cv
from crossemo_app import recorder, state, ui
from crossemo_core.clip.cli import failure_message
from crossemo_core.clip.decode import SUPPORTED, NamedBytes, source_sha256
from crossemo_core.clip.report import PLAIN, report_html, verdicts_table

ui.inside_app()

RECORD_MODES = ("video with sound", "photo + voice")

st.title("Clip verdict")
ui.explain("Give a short clip of a person speaking. crossemo reads the **face** (expression network on each frame) "
           "and the **voice** (pitch, energy, timbre), and says whether the emotion they show **agrees**. "
           "The timeline shows *when* they diverge. Nothing you give is stored: files are read in memory and "
           "forgotten when you close the tab, unless you download a result.")
st.caption("The model was trained on posed photographs (FER2013) and acted speech (RAVDESS) of *different* people; "
           "see checkpoints/clip.md. It judges valence (negative / neutral / positive), not a diagnosis.")

page = state.app().clip
source = st.radio("Clip", ["Try a sample", "Upload", "Record"], horizontal=True, key="clip_source")
face_in = voice_in = baseline_in = None
if source == "Try a sample":
    label = st.selectbox("Sample", list(cv.SAMPLES), key="clip_sample",
                         help="Built from a public-domain photo and a synthetic voice (assets/clips/README.md).")
    face_path, voice_path = cv.sample_paths(label)
    face_in = NamedBytes(face_path.name, face_path.read_bytes())
    voice_in = NamedBytes(voice_path.name, voice_path.read_bytes()) if voice_path else None
    if face_path.suffix == ".mp4":
        st.video(face_in.data)
elif source == "Upload":
    c1, c2 = st.columns(2)
    up = c1.file_uploader("Video with sound, or a photo / silent video of the face", key="clip_upload",
                          help="Any format ffmpeg decodes (" + ", ".join(SUPPORTED) + ", ...): read by content.")
    vup = c2.file_uploader("Voice recording (only if the first file has no sound)", key="clip_voice_upload")
    face_in = NamedBytes(up.name, up.getvalue()) if up is not None else None
    voice_in = NamedBytes(vup.name, vup.getvalue()) if vup is not None else None
elif st.radio("Record", RECORD_MODES, horizontal=True, key="clip_record_mode",
              help="Video with sound: the face moves with the voice, as in an uploaded video. Photo + voice: one "
                   "still photo and a separate microphone take (when the camera cannot stream video).") \
        == RECORD_MODES[0]:
    st.caption("Press **Start recording** and allow the camera and the microphone; look into the camera and speak "
               "for a few seconds, then press **Stop**. The recording is kept in this tab's memory only and judged "
               "exactly like an uploaded video.")
    take, problem = recorder.record_clip("clip_webrtc")
    if problem:
        st.error(problem, icon=":material/error:")
    name = take.clip.name if take is not None else None
    if page.take != name:  # a take began or ended: the verdict shown is not this take's
        page.take, page.result = name, None
    if take is not None:
        face_in = take.clip
        st.video(take.clip.data)
        c1, c2 = st.columns([3, 2])
        c1.caption(f"{take.clip.name}: {take.seconds:.1f} s recorded"
                   + (f" (cut at {recorder.MAX_SECONDS / 60:g} minutes)" if take.truncated else "") + ".")
        c2.download_button("Keep the recording (MP4)", take.clip.data, file_name=take.clip.name, mime="video/mp4",
                           key="clip_take_dl", help="Only this download keeps it; nothing is saved on the server.")
else:
    c1, c2 = st.columns(2)
    photo = c1.camera_input("Photo of the face", key="clip_camera")
    audio = c2.audio_input("Say a sentence or two", key="clip_mic")
    face_in = NamedBytes("camera.jpg", photo.getvalue()) if photo is not None else None
    voice_in = NamedBytes("microphone.wav", audio.getvalue()) if audio is not None else None

with st.expander("Optional: a calm, neutral baseline clip of the same person"):
    st.caption("If given, the face and the voice are judged relative to this person's own resting face and voice "
               "(useful when someone's neutral face or voice looks sad or tense to the model).")
    bup = st.file_uploader("Baseline clip", key="clip_baseline")
    baseline_in = NamedBytes(bup.name, bup.getvalue()) if bup is not None else None

photo_and_voice = source == "Record" and st.session_state.get("clip_record_mode") == RECORD_MODES[1]
ready = face_in is not None and (not photo_and_voice or voice_in is not None)
inputs = tuple(cv.input_identity(src) for src in (face_in, voice_in, baseline_in))
if page.result is not None and page.result.inputs != inputs:  # the input changed: the verdict shown is not about it
    page.result = None
if st.button("Judge this clip", type="primary", disabled=not ready, key="clip_go"):
    page.result = None  # a failure below must not leave an earlier verdict on screen
    with ui.guard("judging the clip"):
        with st.spinner("Reading the face and the voice…"):
            page.result = cv.JudgedClip(inputs, cv.judge(face_in, voice_in, baseline_in))
if not ready:
    st.caption("Give a clip (a recording, or in photo + voice mode both a photo and a voice) to judge.")

judged = page.result
if judged is not None:
    v = judged.verdict
    st.divider()
    st.markdown(f"**{v.file}{' + ' + v.voice_file if v.voice_file else ''}**")
    st.caption(f"This result belongs to face {v.file} (sha256 {v.sha256[:16]}…)"
               + (f", voice {v.voice_file} (sha256 {v.voice_sha256[:16]}…)" if v.voice_sha256 else "")
               + (f", baseline {baseline_in.name}" if baseline_in is not None else "") + ".")
    st.markdown(cv.badge(v.verdict, v.label), unsafe_allow_html=True)
    st.markdown(f"### {PLAIN[v.verdict]}")
    st.markdown(f"**Why:** {v.reason}")
    if v.conflict:
        st.warning(v.conflict, icon=":material/compare_arrows:")
    st.caption(v.rule)
    m = st.columns(4)
    m[0].metric("P(inconsistent)", "–" if v.p_inconsistent is None else f"{v.p_inconsistent:.2f}",
                help="calibrated probability that face and voice disagree (both sources weighed)")
    m[1].metric("Embedding alone", "–" if v.p_embedding is None else f"{v.p_embedding:.2f}",
                help=f"the SIR-HCL posterior from the face-voice similarity"
                     + ("" if v.similarity is None else f" ({v.similarity:.2f})"))
    m[2].metric("Face found", f"{v.face_fraction:.0%}", help="share of the sampled video frames with a face")
    m[3].metric("Speech", f"{v.speech_s:.1f} s")
    for note in v.notes:
        st.warning(note, icon=":material/info:")
    for column, side, title in zip(st.columns(2), (v.face, v.voice), ("Face", "Voice")):
        column.markdown(cv.side_line(title, side))
        if side.probs:
            column.bar_chart(cv.probs_frame(side.valence_probs), x="class", y="probability", height=160)
            column.bar_chart(cv.probs_frame(side.probs), x="class", y="probability", height=200)
    st.plotly_chart(cv.timeline_figure(v), key="clip_timeline")
    wave = cv.waveform_figure(v)
    if wave is not None:
        st.plotly_chart(wave, key="clip_wave")
    if v.thumbnails:
        st.caption("The face about once a second (as the expression network saw it):")
        st.image([th for _, th in v.thumbnails[:24]], caption=[f"{t:.1f} s" for t, _ in v.thumbnails[:24]], width=72)
    if v.geometry:
        st.subheader("Face measurements")
        st.dataframe(cv.geometry_frame(v), hide_index=True, key="clip_geometry")
        geo = cv.geometry_figure(v)
        if geo is not None:
            st.plotly_chart(geo, key="clip_geometry_chart")
    st.subheader("Keep this result")
    st.caption("Downloads are the only copies: nothing is saved on the server.")
    d1, d2 = st.columns(2)
    d1.download_button("Download the report (HTML, printable)", report_html(v, cv.scorer().model).encode(),
                       file_name=f"{v.file}.report.html", mime="text/html", key="clip_dl_html")
    d2.download_button("Download the verdict (JSON)",
                       json.dumps(v.to_dict(), indent=2).encode(),
                       file_name=f"{v.file}.verdict.json", mime="application/json", key="clip_dl_json")

st.divider()
st.subheader("Many clips at once")
files = st.file_uploader("Videos with sound (one verdict each)", key="clip_batch_files",
                         accept_multiple_files=True)
batch_inputs = tuple((f.name, f.file_id) for f in files or [])
if page.batch is not None and page.batch[0] != batch_inputs:
    page.batch = None  # other files now: the table shown was about the old ones
if st.button("Judge them all", disabled=not files, key="clip_batch_go"):
    rows = []
    progress = st.progress(0.0, text="Judging…")
    for i, f in enumerate(files):
        clip = NamedBytes(f.name, f.getvalue())
        try:
            rows.append(cv.judge(clip).to_dict())  # the verdict names its file's sha256
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            rows.append({"file": f.name, "verdict": None, "error": failure_message(exc), "sha256": source_sha256(clip)})
        progress.progress((i + 1) / len(files), text=f"Judged {i + 1} of {len(files)}")
    progress.empty()
    page.batch = (batch_inputs, rows)
if page.batch is not None:
    _, rows = page.batch
    table = verdicts_table(rows)
    st.dataframe(table, hide_index=True, key="clip_batch_table")
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode(), file_name="crossemo-clips.csv",
                       mime="text/csv", key="clip_batch_csv")
