"""Views for the Clip verdict page: the cached scorer, samples, and plotly figures of a ClipVerdict.

Nothing is written to disk: uploads are read from memory (crossemo_core.clip.decode.NamedBytes) and results live in
the session until the user downloads them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossemo_core.clip.face import GEOMETRY_HELP, GEOMETRY_NAMES

REPO = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO / "assets" / "clips"
SAMPLES = {
    "Smiling face, lively synthetic voice (one video)": ("smile_upbeat.mp4", None),
    "Smiling face, flat low synthetic voice (one video)": ("smile_low.mp4", None),
    "Photo of the face + a separate voice recording": ("face_photo.jpg", "voice_upbeat.wav"),
}
COLOURS = {"consistent": "#1b7f3b", "inconsistent": "#b3261e", "undetermined": "#8a6d00"}


@st.cache_resource(show_spinner="Loading the clip model and the face tracker…")
def scorer():  # noqa: ANN201 - crossemo_core.clip.verdict.ClipScorer, shared by every session (it has a lock)
    from crossemo_core.clip.verdict import ClipScorer

    return ClipScorer()


def sample_paths(label: str) -> tuple[Path, Path | None]:
    face, voice = SAMPLES[label]
    return SAMPLES_DIR / face, (SAMPLES_DIR / voice if voice else None)


def badge(verdict: str) -> str:
    return (f"<span style='background:{COLOURS.get(verdict, '#444')};color:white;padding:6px 14px;"
            f"border-radius:6px;font-size:1.6rem;font-weight:700'>{verdict.upper()}</span>")


def timeline_figure(v) -> go.Figure:  # noqa: ANN001
    fig = go.Figure()
    scored = [w for w in v.timeline if w.status == "scored"]
    for w in v.timeline:
        if w.status != "scored":
            mid = (w.start + w.end) / 2
            fig.add_vrect(x0=mid - 0.25, x1=mid + 0.25, fillcolor="#bbb", opacity=0.35, line_width=0)
    if scored:
        mids = [(w.start + w.end) / 2 for w in scored]
        hover = [f"{w.start:.1f}-{w.end:.1f} s<br>face {w.face_valence}, voice {w.voice_valence}"
                 + (f"<br>atypical: {w.atypical}" if w.atypical else "") for w in scored]
        fig.add_trace(go.Scatter(x=mids, y=[w.p_inconsistent for w in scored], mode="lines+markers",
                                 name="P(inconsistent)", line={"color": "#b3261e"}, text=hover,
                                 hovertemplate="%{text}<br>P(inconsistent) %{y:.2f}<extra></extra>"))
        fig.add_trace(go.Scatter(x=mids, y=[w.similarity for w in scored], mode="lines+markers", name="similarity",
                                 line={"color": "#4a78b5"}, text=hover,
                                 hovertemplate="%{text}<br>similarity %{y:.2f}<extra></extra>"))
    fig.add_hline(y=v.threshold, line_dash="dash", line_color="#b3261e", annotation_text="threshold")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="time (s, window centre)",
                      yaxis={"range": [-0.05, 1.05]}, legend={"orientation": "h", "y": -0.3},
                      title="When face and voice diverge (grey: no face or no speech, not judged)")
    return fig


def waveform_figure(v) -> go.Figure | None:  # noqa: ANN001
    env = np.asarray(v.envelope, dtype=np.float64)
    if env.size == 0:
        return None
    step = max(1, env.size // 1500)
    peaks = env[: env.size // step * step].reshape(-1, step).max(1)
    t = np.arange(len(peaks)) * step / 100.0
    fig = go.Figure(go.Scatter(x=np.r_[t, t[::-1]], y=np.r_[peaks, -peaks[::-1]], fill="toself", mode="lines",
                               line={"color": "#777", "width": 0.5}, hoverinfo="skip", showlegend=False))
    fig.update_layout(height=140, margin={"l": 10, "r": 10, "t": 25, "b": 10}, title="Sound wave",
                      yaxis={"visible": False}, xaxis_title="time (s)")
    return fig


def probs_frame(probs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"class": list(probs), "probability": [p or 0.0 for p in probs.values()]})


def geometry_frame(v) -> pd.DataFrame:  # noqa: ANN001
    return pd.DataFrame([{"measure": n, "median": v.geometry[n]["median"],
                          "10th-90th percentile": f"{v.geometry[n]['p10']:.3f} to {v.geometry[n]['p90']:.3f}",
                          "meaning": GEOMETRY_HELP[n]} for n in GEOMETRY_NAMES if n in v.geometry])


def geometry_figure(v) -> go.Figure | None:  # noqa: ANN001
    series = v.geometry_series
    if not series:
        return None
    fig = go.Figure()
    for n in ("brow_raise", "eye_opening", "lip_corner_pull", "mouth_opening"):
        fig.add_trace(go.Scatter(x=series["t"], y=series[n], mode="lines", name=n))
    fig.update_layout(height=240, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="time (s)",
                      title="Face measurements over time (relative to the eye distance)")
    return fig
