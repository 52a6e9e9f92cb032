"""Plotly figures drawn from the tables of :mod:`crossemo_core.reports` and :mod:`crossemo_core.projection`.

Only drawing: every number comes from crossemo_core. Colours are fixed per meaning across pages.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from crossemo_core.projection import PAIR_KINDS, PAIR_STATUS
from crossemo_core.reports import LOSS_LABELS

CONSISTENT = "#2c7fb8"     # blue: consistent
INCONSISTENT = "#e7298a"   # pink: inconsistent (the paper's Fig. 8 colours)
FACE = "#1b9e77"           # green: the face side
VOICE = "#7570b3"
MIXTURE = "#333333"
MODALITY_COLOURS = {"face": FACE, "voice": VOICE}
STATUS_COLOURS = {PAIR_STATUS[0]: FACE, PAIR_STATUS[1]: CONSISTENT, PAIR_STATUS[2]: INCONSISTENT}
LOSS_COLOURS = dict(zip(LOSS_LABELS.values(), ("#000000", "#1b9e77", "#d95f02", "#7570b3", "#e7298a")))
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10),
               legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, xanchor="left"))


def time_left(elapsed: float, fraction: float) -> str:
    """"about 40 s left" from the seconds spent so far and the share of the work done (linear extrapolation); while
    nothing is done yet, "estimating the time left"."""
    if fraction <= 0.0 or elapsed <= 0.0:
        return "estimating the time left"
    left = max(elapsed / min(fraction, 1.0) - elapsed, 0.0)
    return f"about {duration(left)} left"


def duration(seconds: float) -> str:
    """A duration for people: "8 s", "2 min 10 s", "1 h 05 min"."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _finish(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=0.98, yanchor="top"), height=height, **_LAYOUT)
    return fig


# ------------------------------------------------------------------------------------------------ data
def class_balance(classes: pd.DataFrame, title: str) -> go.Figure:
    fig = px.bar(classes, x="emotion", y="pairs", color="modality", barmode="group", text="pairs",
                 color_discrete_map=MODALITY_COLOURS, facet_col="stage" if "stage" in classes else None,
                 labels={"emotion": "emotion class", "pairs": "pairs (count)", "modality": "side"})
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return _finish(fig, title)


def speakers(table: pd.DataFrame, title: str, top: int = 60) -> go.Figure:
    shown = table.head(top)
    long = shown.assign(normal=shown["pairs"] - shown["abnormal"]).melt(
        id_vars="speaker", value_vars=["normal", "abnormal"], var_name="pair kind", value_name="count")
    long["pair kind"] = long["pair kind"].map({"normal": "consistent pairs", "abnormal": "inconsistent pairs"})
    fig = px.bar(long, x="speaker", y="count", color="pair kind", barmode="stack",
                 color_discrete_map={"consistent pairs": CONSISTENT, "inconsistent pairs": INCONSISTENT},
                 labels={"count": "pairs (count)", "speaker": "speaker"})
    fig.update_xaxes(type="category", tickangle=-45, automargin=True)
    suffix = f" (the {top} largest of {len(table)})" if len(table) > top else ""
    fig = _finish(fig, title + suffix, height=420)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right", title_text=""))
    return fig


def lengths(table: pd.DataFrame, title: str) -> go.Figure:
    fig = px.histogram(table, x="length", color="modality", facet_col="modality", nbins=40,
                       color_discrete_map=MODALITY_COLOURS,
                       labels={"length": "sequence length (frames)", "count": "sequences"})
    fig.update_xaxes(matches=None)
    fig.update_yaxes(title_text="sequences (count)", col=1)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    fig.update_layout(showlegend=False)
    return _finish(fig, title)


# ------------------------------------------------------------------------------------------------ training
def losses(curves: pd.DataFrame, epochs: pd.DataFrame, n_epochs: int) -> go.Figure:
    fig = go.Figure()
    for term, colour in LOSS_COLOURS.items():
        part = curves[curves["term"] == term]
        if len(part):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["value"], mode="lines", name=term,
                                     line=dict(color=colour, width=2.5 if term.startswith("L_all") else 1.3),
                                     opacity=0.85, legendgroup=term))
        if len(epochs) and term in epochs:
            fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[term], mode="markers", name=f"{term}, epoch mean",
                                     marker=dict(color=colour, size=9, symbol="diamond"), legendgroup=term,
                                     showlegend=False))
    fig.update_xaxes(title_text="epoch", range=[0, max(n_epochs, 1)])
    fig.update_yaxes(title_text="training loss (per batch)")
    return _finish(fig, "Training losses (lines: each batch; diamonds: epoch means)", height=420)


def validation_auc(epochs: pd.DataFrame, n_epochs: int) -> go.Figure:
    fig = go.Figure()
    if len(epochs):
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["validation AUC"], mode="lines+markers",
                                 name="validation AUC", line=dict(color=INCONSISTENT)))
        best = epochs[epochs["best so far"]]
        if len(best):
            last = best.iloc[[-1]]
            refit = bool((epochs["phase"] == "refit").any())
            name = "best (its epoch count is refit on train + valid)" if refit else "best (kept)"
            fig.add_trace(go.Scatter(x=last["epoch"], y=last["validation AUC"], mode="markers", name=name,
                                     marker=dict(size=16, symbol="star", color="#ffb000",
                                                 line=dict(color="black", width=1))))
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance (0.5)")
    fig.update_xaxes(title_text="epoch", range=[0.5, max(n_epochs, 1) + 0.5], dtick=1 if n_epochs <= 30 else None)
    fig.update_yaxes(title_text="AUC (0.5 = chance, 1 = perfect)", range=[0, 1.02])
    return _finish(fig, "Validation AUC after each epoch", height=420)


# ------------------------------------------------------------------------------------------------ embeddings
COLOUR_BY = {
    "status": "pair status (the paper's Fig. 8)",
    "modality": "modality (face / voice)",
    "emotion": "emotion class",
}


def embedding_map(points: pd.DataFrame, colour_by: str, title: str) -> go.Figure:
    data = points.copy()
    if colour_by == "status":
        colour, symbol, cmap = "status", "status", STATUS_COLOURS
    elif colour_by == "modality":
        colour, symbol, cmap = "modality", "pair_kind", MODALITY_COLOURS
    else:
        data["side and pair"] = data["modality"] + ", " + data["pair_kind"] + " pair"
        colour, symbol, cmap = "emotion", "side and pair", None
    fig = px.scatter(data, x="x", y="y", color=colour, symbol=symbol, color_discrete_map=cmap,
                     hover_data={"x": False, "y": False, "pair": True, "clip_id": True, "speaker": True,
                                 "emotion": True, "pair_kind": True, "modality": True},
                     symbol_map={"face": "circle", "voice": "diamond", PAIR_KINDS[0]: "circle", PAIR_KINDS[1]: "x",
                                 PAIR_STATUS[0]: "circle", PAIR_STATUS[1]: "diamond", PAIR_STATUS[2]: "diamond"},
                     labels={"pair_kind": "pair", "status": "point", "emotion": "emotion class"}, opacity=0.8)
    fig.update_traces(marker=dict(size=7))
    fig.update_xaxes(title_text="map axis 1 (no unit)", showticklabels=False)
    fig.update_yaxes(title_text="map axis 2 (no unit)", showticklabels=False)
    fig.update_layout(legend=dict(orientation="v", y=-0.15, yanchor="top", x=0))
    return _finish(fig, title, height=560)


# ------------------------------------------------------------------------------------------------ similarity
#: The one similarity scale of the app, named once (the Similarity page states it; axes and columns repeat this name).
SIMILARITY = "similarity (cosine, -1 … +1)"
SIMILARITY_SCALE = ("**Similarity** is the cosine similarity of the face and voice embeddings: +1 = pointing the "
                    "same way, 0 = unrelated, -1 = opposite. Every similarity in the app (histogram, posterior "
                    "curve, verdict table) is on this scale; **P(inconsistent)** is a probability (0 … 1) derived "
                    "from it.")

#: y-axes of the similarity histogram: "clipped" (the default) keeps the fitted Beta curves visible when one bar is
#: a spike; "log" shows every bar and curve on a logarithmic axis; "full" is the plain linear axis.
HISTOGRAM_AXES = {"clipped": "clipped (keeps the Beta curves visible)", "log": "logarithmic", "full": "linear, full"}
#: A bar more than this many times the next highest is a spike: the clipped axis cuts it off.
SPIKE = 2.5


def histogram_top(hist: pd.DataFrame, curves: pd.DataFrame | None) -> float:
    """Top of the "clipped" y-axis, so that neither a spike bar nor a Beta density running off to infinity at the
    edge of the range squashes the fitted components flat: 15 % above the higher of the fitted curves' peak away
    from the edges (the outer 3 % of the range at each end left out) and the highest bar, where a bar counts as a
    spike, and is left out, when it is more than :data:`SPIKE` times the next one."""
    stacked = np.sort(hist.groupby("center", sort=True)["density"].sum().to_numpy())[::-1]
    bars = float(stacked[0]) if len(stacked) else 0.0
    if len(stacked) > 1 and stacked[0] > SPIKE * stacked[1]:
        bars = float(stacked[1])
    peak = 0.0
    if curves is not None and len(curves):
        x = curves["similarity"].to_numpy()
        margin = 0.03 * (x.max() - x.min())
        inside = (x >= x.min() + margin) & (x <= x.max() - margin)
        values = curves.loc[inside, ["consistent component", "inconsistent component", "mixture"]].to_numpy()
        peak = float(values.max()) if values.size else 0.0
    top = 1.15 * max(peak, bars)
    return top if top > 0 else max(float(stacked.max(initial=0.0)), 1.0)


def similarity_histogram(hist: pd.DataFrame, curves: pd.DataFrame | None, intervals: Sequence[tuple[float, float]],
                         title: str, y_axis: str = "clipped") -> go.Figure:
    """Stacked histogram of pair similarity (consistent / inconsistent pairs) under the fitted Beta components and
    their mixture; ``y_axis`` is a key of :data:`HISTOGRAM_AXES`."""
    if y_axis not in HISTOGRAM_AXES:
        raise ValueError(f"y_axis must be one of {', '.join(HISTOGRAM_AXES)}; got {y_axis!r}.")
    fig = go.Figure()
    for group, colour in (("consistent pairs", CONSISTENT), ("inconsistent pairs", INCONSISTENT)):
        part = hist[hist["group"] == group]
        fig.add_trace(go.Bar(x=part["center"], y=part["density"], width=(part["right"] - part["left"]).tolist(),
                             name=group, marker_color=colour, opacity=0.55, customdata=part["count"],
                             hovertemplate="similarity %{x:.2f}<br>%{customdata} pairs<extra>" + group + "</extra>"))
    if curves is not None:
        for column, colour, dash in (("consistent component", CONSISTENT, "dash"),
                                     ("inconsistent component", INCONSISTENT, "dash"), ("mixture", MIXTURE, "solid")):
            fig.add_trace(go.Scatter(x=curves["similarity"], y=curves[column], mode="lines", line=dict(color=colour,
                                     dash=dash, width=2.5), name=f"Beta {column}" if column != "mixture"
                                     else "Beta mixture"))
    for lo, hi in intervals:
        fig.add_vrect(x0=lo, x1=hi, fillcolor=INCONSISTENT, opacity=0.08, line_width=0,
                      annotation_text="flagged inconsistent", annotation_position="top left")
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(title_text=f"face-voice {SIMILARITY}")
    ytitle = "density (pairs per unit of similarity, share of all)"
    if y_axis == "clipped":
        top = histogram_top(hist, curves)
        stacked = hist.groupby("center", sort=True).agg(density=("density", "sum"), count=("count", "sum"))
        cut = stacked[stacked["density"] > top]
        if len(cut):
            fig.add_trace(go.Scatter(
                x=cut.index, y=[top * 0.985] * len(cut), mode="markers", name="bar cut off (hover: its height)",
                marker=dict(symbol="triangle-up", size=12, color=MIXTURE), customdata=cut[["count", "density"]],
                hovertemplate="similarity %{x:.2f}: %{customdata[0]} pairs, density %{customdata[1]:.2f} "
                              "(above the axis)<extra></extra>"))
        fig.update_yaxes(range=[0, top])
        ytitle += ", clipped"
    elif y_axis == "log":
        values = [hist["density"].to_numpy()]
        if curves is not None:
            values.append(curves[["consistent component", "inconsistent component", "mixture"]].to_numpy().ravel())
        allv = np.concatenate(values)
        positive = allv[allv > 0]
        hi = float(positive.max()) if len(positive) else 1.0
        bars = hist["density"].to_numpy()
        lo = max(float(bars[bars > 0].min()) / 3 if (bars > 0).any() else hi * 1e-3, hi * 1e-4)
        fig.update_yaxes(type="log", range=[math.log10(lo), math.log10(hi * 1.5)])
        ytitle += ", log scale"
    fig.update_yaxes(title_text=ytitle)
    return _finish(fig, title, height=440)


def posterior_curve(curves: pd.DataFrame, threshold: float, similarity_range: tuple[float, float]) -> go.Figure:
    fig = go.Figure(go.Scatter(x=curves["similarity"], y=curves["p_inconsistent"], mode="lines",
                               line=dict(color=INCONSISTENT, width=3), name="P(inconsistent | similarity)"))
    fig.add_hline(y=threshold, line_dash="dash", line_color="black", annotation_text=f"threshold {threshold:.2f}")
    fig.update_xaxes(title_text=f"face-voice {SIMILARITY}", range=list(similarity_range))
    fig.update_yaxes(title_text="probability of inconsistency", range=[-0.02, 1.02])
    return _finish(fig, "Posterior of inconsistency", height=380)


def roc(points: pd.DataFrame, auc: float, operating: tuple[float, float] | None) -> go.Figure:
    fig = go.Figure(go.Scatter(x=points["fpr"], y=points["tpr"], mode="lines", line=dict(color=INCONSISTENT, width=3),
                               name=f"ROC (AUC {auc:.3f})", customdata=points["threshold"],
                               hovertemplate="FPR %{x:.2f}, TPR %{y:.2f}<br>threshold %{customdata:.3f}"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dot"), name="chance"))
    if operating is not None:
        fig.add_trace(go.Scatter(x=[operating[0]], y=[operating[1]], mode="markers", name="current threshold",
                                 marker=dict(size=14, color="black", symbol="circle-open", line=dict(width=3))))
    fig.update_xaxes(title_text="false-positive rate (consistent pairs flagged)", range=[-0.01, 1.01])
    fig.update_yaxes(title_text="true-positive rate (inconsistent pairs caught)", range=[-0.01, 1.01],
                     scaleanchor="x")
    return _finish(fig, "ROC curve", height=380)


# ------------------------------------------------------------------------------------------------ verdicts
def per_type_bars(per_type: pd.DataFrame) -> go.Figure:
    # Plain graph_objects: plotly.express took 70 ms for these eight bars, redrawn at every threshold change.
    fig = go.Figure([go.Bar(x=per_type["anomaly type"], y=per_type[metric], name=metric, marker_color=colour,
                            text=[f"{v:.2f}" for v in per_type[metric]], textposition="auto")
                     for metric, colour in (("accuracy", CONSISTENT), ("AUC", INCONSISTENT))])
    fig.update_layout(barmode="group", legend_title_text="metric")
    fig.update_xaxes(title_text="anomaly type")
    fig.update_yaxes(title_text="value (0-1)", range=[0, 1.05])
    return _finish(fig, "Accuracy and AUC per anomaly type", height=360)


def posterior_gauge(p: float, threshold: float) -> go.Figure:
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=p, number=dict(valueformat=".2f"),
        title=dict(text="probability of inconsistency"),
        gauge=dict(axis=dict(range=[0, 1]), bar=dict(color=INCONSISTENT if p >= threshold else CONSISTENT),
                   threshold=dict(line=dict(color="black", width=4), value=threshold),
                   steps=[dict(range=[0, threshold], color="#e8f1f8"), dict(range=[threshold, 1], color="#fbe4f0")])))
    fig.update_layout(height=260, margin=dict(l=30, r=30, t=60, b=10))
    return fig
