"""Views for the Clip verdict page: the cached scorer, samples, and plotly figures of a ClipVerdict.

Nothing is written to disk: uploads are read from memory (crossemo_core.clip.decode.NamedBytes) and results live in
the session until the user downloads them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossemo_core.clip.decode import IMAGE_FORMATS, NamedBytes, open_media, sniff
from crossemo_core.clip.face import GEOMETRY_HELP, GEOMETRY_NAMES
from crossemo_core.clip.segments import fmt_clock
from crossemo_core.errors import DataError
from crossemo_core.paths import REPO

if TYPE_CHECKING:
    from crossemo_core.clip.verdict import SideSummary

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


@st.cache_resource(show_spinner=False)
def _clip_thread() -> ThreadPoolExecutor:
    """One thread, kept for the server's life, on which the Clip verdict page's verdicts run (every session's)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossemo-clip-verdict")


def input_identity(source: NamedBytes | Path | None) -> tuple | None:
    """A cheap identity of an input chosen now (name, size and its first and last 64 KiB; a path's modification time),
    compared on every rerun to drop results that belong to another input. It is not a checksum and costs no pass
    over the bytes: the verdict itself carries the file's sha256."""
    if source is None:
        return None
    if isinstance(source, NamedBytes):
        return ("bytes", source.name, len(source.data), hash(source.data[:65536]), hash(source.data[-65536:]))
    stat = Path(source).stat()
    return ("path", str(source), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class JudgedClip:
    """A verdict with the identity of the inputs it was made from (:func:`input_identity` of each); the page drops it
    when they change."""

    inputs: tuple
    verdict: Any


CLIP_PAGE_MAX_S = 300.0
"""The Clip verdict page judges recordings up to this long (about 15 s of work on 2 cores); they run one at a time
on a thread every session shares, without progress or Stop. A longer one is refused with a pointer to the Session
page, which analyses it in the background with both."""


def judge(face, voice=None, baseline=None):  # noqa: ANN001, ANN201 - Sources in, a ClipVerdict out
    """``scorer().score(face, voice, baseline)`` on the clip thread, for recordings up to :data:`CLIP_PAGE_MAX_S`
    (longer ones: :class:`DataError`). Streamlit runs every rerun in a new thread, and glibc gives new threads their
    own memory arenas: a verdict's temporary arrays freed in one of a dozen arenas are not reused by the next verdict
    in another, so the server's memory crept up by 50-100 MB over the first ~50 verdicts before settling
    (benchmarks/bench_app_load.py). The scorer takes one clip at a time anyway."""
    for source in (face, voice, baseline):
        if source is not None:
            _refuse_long(source)
    s = scorer()  # made here, in the script's thread (it may show a spinner)
    return _clip_thread().submit(s.score, face, voice, baseline).result()


def _refuse_long(source: NamedBytes) -> None:
    """:class:`DataError` when ``source`` declares a length above :data:`CLIP_PAGE_MAX_S` (read from its header; a
    photo has none, and a file that cannot be opened is left for the verdict to explain)."""
    if sniff(source.data[:64]) in IMAGE_FORMATS:
        return
    try:
        with open_media(source, want_video=False, pixels=False) as media:
            length = media.declared_s
    except DataError:
        return
    if length is not None and length > CLIP_PAGE_MAX_S + 0.5:
        raise DataError(f"{source.name} lasts {fmt_clock(length)}; this page judges clips up to "
                        f"{CLIP_PAGE_MAX_S / 60:g} minutes. Give it to the Session page, which analyses long "
                        f"recordings in the background with progress and a Stop button.")


def sample_paths(label: str) -> tuple[Path, Path | None]:
    face, voice = SAMPLES[label]
    return SAMPLES_DIR / face, (SAMPLES_DIR / voice if voice else None)


def badge(verdict: str, label: str | None = None) -> str:
    return (f"<span style='background:{COLOURS.get(verdict, '#444')};color:white;padding:6px 14px;"
            f"border-radius:6px;font-size:1.6rem;font-weight:700'>{(label or verdict).upper()}</span>")


def side_line(title: str, side: SideSummary) -> str:
    """``**Voice:** angry · negative (0.83) · high arousal 0.91`` (the same reading the ``read`` command prints) of a
    verdict's :class:`~crossemo_core.clip.verdict.SideSummary`."""
    if not side.emotion:
        return f"**{title}:** {'no face' if title == 'Face' else 'not judged'}"
    return (f"**{title}:** {side.emotion} · {side.valence} ({side.confidence:.2f})"
            + (f" · high arousal {side.arousal_probs['high']:.2f}" if side.arousal_probs else "")
            + (" · **uncertain**" if side.uncertain else ""))


VALENCE_COLOURS = {"negative": "#b3261e", "neutral": "#888888", "positive": "#1b7f3b"}


def timeline_figure(v) -> go.Figure:  # noqa: ANN001
    """Three lanes on one shared time axis: the face reader's valence, the voice reader's valence (signed score
    P(positive) - P(negative), coloured by the top valence) and the combined probability of inconsistency."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.25, 0.25, 0.5],
                        subplot_titles=("face (valence score)", "voice (valence score)", "P(inconsistent)"))
    for w in v.timeline:
        if w.status != "scored":
            mid = (w.start + w.end) / 2
            for row in (1, 2, 3):
                fig.add_vrect(x0=mid - 0.25, x1=mid + 0.25, fillcolor="#bbb", opacity=0.35, line_width=0,
                              row=row, col=1)
    scored = [w for w in v.timeline if w.status == "scored"]
    if scored:
        mids = [(w.start + w.end) / 2 for w in scored]
        for row, side in ((1, "face"), (2, "voice")):
            readings = [getattr(w, side) for w in scored]
            score = [r.valence["positive"] - r.valence["negative"] for r in readings]
            text = [f"{w.start:.1f}-{w.end:.1f} s: {r.top_emotion}, {r.top_valence} ({r.confidence:.2f})"
                    for w, r in zip(scored, readings)]
            fig.add_trace(go.Scatter(x=mids, y=score, mode="lines+markers", name=side, text=text,
                                     marker={"color": [VALENCE_COLOURS[r.top_valence] for r in readings],
                                             "size": [6 + 10 * (r.confidence - 1 / 3) for r in readings]},
                                     line={"color": "#999", "width": 1},
                                     hovertemplate="%{text}<extra></extra>"), row=row, col=1)
            fig.update_yaxes(range=[-1.1, 1.1], tickvals=[-1, 0, 1], ticktext=["neg", "0", "pos"], row=row, col=1)
        hover = [f"{w.start:.1f}-{w.end:.1f} s<br>face {w.face_valence}, voice {w.voice_valence}"
                 + (f"<br>embedding alone {w.p_embedding:.2f}" if w.p_embedding is not None else "")
                 + (f"<br>atypical: {w.atypical}" if w.atypical else "") for w in scored]
        fig.add_trace(go.Scatter(x=mids, y=[w.p_inconsistent for w in scored], mode="lines+markers",
                                 name="P(inconsistent)", line={"color": "#b3261e"}, text=hover,
                                 hovertemplate="%{text}<br>P(inconsistent) %{y:.2f}<extra></extra>"), row=3, col=1)
    fig.add_hline(y=0.5, line_dash="dash", line_color="#b3261e", row=3, col=1)
    fig.update_yaxes(range=[-0.05, 1.05], row=3, col=1)
    fig.update_layout(height=440, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False,
                      title="Where face and voice part ways (grey: no face or no speech, not judged)")
    fig.update_xaxes(title_text="time (s, window centre)", row=3, col=1)
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
