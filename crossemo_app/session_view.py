"""Views for the Session page: the sample session, the zoomable timeline and the segment tables of a long recording.

Nothing here holds frames: a session's result is its :class:`~crossemo_core.clip.verdict.ClipVerdict` (per-window
results, segments, a few hundred thumbnails), built once per analysis; the figure is built once per result and kept
with it, so that selecting a segment or zooming does not rebuild it.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossemo_app.clip_view import COLOURS, VALENCE_COLOURS
from crossemo_core.clip.segments import fmt_clock, fmt_time
from crossemo_core.paths import REPO

SAMPLE_SECONDS = 70.0
SAMPLE_NAME = "demo session.mp4"
GL_ABOVE = 400
"""Windows above which the timeline is drawn with WebGL (plotly's Scattergl): an hour has 7,200 windows."""


@st.cache_data(show_spinner="Building the sample session from the bundled clips…")
def sample_session() -> bytes:
    """The two bundled sample clips, one after the other, for :data:`SAMPLE_SECONDS` (packets copied with PyAV
    into a temporary folder that is removed at once)."""
    from crossemo_core.clip.synth import loop_media

    clips = REPO / "assets" / "clips"
    with tempfile.TemporaryDirectory(prefix="crossemo-sample-session-") as tmp:
        path = Path(tmp) / "session.mp4"
        loop_media([clips / "smile_upbeat.mp4", clips / "smile_low.mp4"], path, SAMPLE_SECONDS)
        return path.read_bytes()


def timeline_figure(v: Any) -> go.Figure:
    """Face lane, voice lane (valence score P(positive) - P(negative) per window, coloured by the top valence) and
    the combined probability of inconsistency on one time axis, the inconsistent segments shaded; plotly's own zoom
    and pan (drag to zoom, double-click to reset)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.22, 0.22, 0.56],
                        subplot_titles=("face (valence score)", "voice (valence score)",
                                        "P(inconsistent) and the stretches of inconsistency"))
    scored = [w for w in v.timeline if w.status == "scored" and w.face is not None and w.voice is not None]
    scatter = go.Scattergl if len(v.timeline) > GL_ABOVE else go.Scatter
    if scored:
        mids = np.array([(w.start + w.end) / 2 for w in scored])
        for row, side in ((1, "face"), (2, "voice")):
            readings = [getattr(w, side) for w in scored]
            score = np.array([r.valence["positive"] - r.valence["negative"] for r in readings])
            colours = [VALENCE_COLOURS[r.top_valence] for r in readings]
            fig.add_trace(scatter(x=mids, y=score, mode="markers", name=side, marker={"color": colours, "size": 5},
                                  customdata=np.array([[r.confidence] for r in readings]),
                                  hovertemplate="%{x:.1f} s: valence score %{y:.2f} (confidence %{customdata[0]:.2f})"
                                                "<extra>" + side + "</extra>"), row=row, col=1)
            fig.update_yaxes(range=[-1.1, 1.1], tickvals=[-1, 0, 1], ticktext=["neg", "0", "pos"], row=row, col=1)
        fig.add_trace(scatter(x=mids, y=[w.p_inconsistent for w in scored], mode="lines", name="P(inconsistent)",
                              line={"color": "#b3261e", "width": 1.5},
                              hovertemplate="%{x:.1f} s: P(inconsistent) %{y:.2f}<extra></extra>"), row=3, col=1)
    for s in v.segments:
        if s.outcome == "inconsistent":
            fig.add_vrect(x0=s.start, x1=s.end, fillcolor="#b3261e", opacity=0.15, line_width=0, row=3, col=1)
        elif s.outcome == "undetermined":
            fig.add_vrect(x0=s.start, x1=s.end, fillcolor="#999999", opacity=0.2, line_width=0, row=3, col=1)
    fig.add_hline(y=0.5, line_dash="dash", line_color="#b3261e", row=3, col=1)
    fig.update_yaxes(range=[-0.05, 1.05], row=3, col=1)
    fig.update_layout(height=480, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False, dragmode="zoom",
                      title="Where face and voice part ways (red: inconsistent stretches; grey: not judged)")
    fig.update_xaxes(title_text="time (s from the start; drag to zoom, double-click to reset)", row=3, col=1)
    return fig


def summary_numbers(v: Any) -> list[tuple[str, str, str]]:
    """(label, value, help) for the metric row."""
    s = v.session
    longest = "–" if s.longest_inconsistent is None else fmt_time(s.longest_inconsistent_s)
    return [("Length", fmt_time(v.duration_s), "the recording's length as analysed"),
            ("Stretches of inconsistency", str(s.n_inconsistent), "segments in which face and voice part ways"),
            ("Inconsistent, in total", fmt_time(s.inconsistent_s), "their total length"),
            ("Longest", longest, "the longest stretch of inconsistency"),
            ("Not judged", fmt_time(s.undetermined_s), "no face or no speech, or unlike the training material")]


def segments_frame(v: Any, outcome: str | None = "inconsistent") -> pd.DataFrame:
    """The segments (only those with ``outcome`` unless None) as a table for people."""
    rows = []
    for k, s in enumerate(v.segments, start=1):
        if outcome is not None and s.outcome != outcome:
            continue
        rows.append({"#": k, "start": fmt_clock(s.start), "end": fmt_clock(s.end), "length": fmt_time(s.duration_s),
                     "outcome": s.label, "mean P": None if s.p_mean is None else round(s.p_mean, 2),
                     "changed at its start": _changed(s), "start_s": s.start})
    return pd.DataFrame(rows, columns=["#", "start", "end", "length", "outcome", "mean P", "changed at its start",
                                       "start_s"])


def _changed(s: Any) -> str:
    if s.changed is None:
        return "(the recording's start)"
    detail = f"face {s.face_before or '–'} → {s.face_after or '–'}, voice {s.voice_before or '–'} → " \
             f"{s.voice_after or '–'}"
    return f"{s.changed} ({detail})"


def badge(v: Any) -> str:
    colour = COLOURS.get("inconsistent" if v.session.n_inconsistent else "consistent", "#444")
    words = (f"{v.session.n_inconsistent} STRETCH{'ES' if v.session.n_inconsistent != 1 else ''} OF INCONSISTENCY"
             if v.session.n_judged else "NOTHING JUDGED")
    return (f"<span style='background:{colour};color:white;padding:6px 14px;border-radius:6px;font-size:1.4rem;"
            f"font-weight:700'>{words}</span>")

