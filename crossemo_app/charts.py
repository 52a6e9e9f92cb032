"""Plotly figures drawn from the tables of :mod:`crossemo_core.reports` and :mod:`crossemo_core.projection`.

Only drawing: every number comes from crossemo_core. Colours are fixed per meaning across pages.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from crossemo_core.projection import PAIR_STATUS
from crossemo_core.reports import LOSS_LABELS

CONSISTENT = "#2c7fb8"     # blue: consistent / normal
INCONSISTENT = "#e7298a"   # pink: inconsistent / abnormal (the paper's Fig. 8 colours)
FACE = "#1b9e77"           # green: the face side
VOICE = "#7570b3"
MIXTURE = "#333333"
MODALITY_COLOURS = {"face": FACE, "voice": VOICE}
STATUS_COLOURS = {PAIR_STATUS[0]: FACE, PAIR_STATUS[1]: CONSISTENT, PAIR_STATUS[2]: INCONSISTENT}
LOSS_COLOURS = dict(zip(LOSS_LABELS.values(), ("#000000", "#1b9e77", "#d95f02", "#7570b3", "#e7298a")))
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10),
               legend=dict(orientation="h", yanchor="top", y=-0.18, x=0, xanchor="left"))


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
                     symbol_map={"face": "circle", "voice": "diamond", "normal": "circle", "abnormal": "x",
                                 PAIR_STATUS[0]: "circle", PAIR_STATUS[1]: "diamond", PAIR_STATUS[2]: "diamond"},
                     labels={"pair_kind": "pair", "status": "point", "emotion": "emotion class"}, opacity=0.8)
    fig.update_traces(marker=dict(size=7))
    fig.update_xaxes(title_text="map axis 1 (no unit)", showticklabels=False)
    fig.update_yaxes(title_text="map axis 2 (no unit)", showticklabels=False)
    fig.update_layout(legend=dict(orientation="v", y=-0.15, yanchor="top", x=0))
    return _finish(fig, title, height=560)


# ------------------------------------------------------------------------------------------------ similarity
def similarity_histogram(hist: pd.DataFrame, curves: pd.DataFrame | None, intervals: Sequence[tuple[float, float]],
                         title: str) -> go.Figure:
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
    fig.update_xaxes(title_text="face-voice similarity (cosine, -1 opposite … +1 identical)")
    fig.update_yaxes(title_text="density (pairs per unit of similarity, share of all)")
    return _finish(fig, title, height=440)


def posterior_curve(curves: pd.DataFrame, threshold: float, similarity_range: tuple[float, float]) -> go.Figure:
    fig = go.Figure(go.Scatter(x=curves["similarity"], y=curves["p_inconsistent"], mode="lines",
                               line=dict(color=INCONSISTENT, width=3), name="P(inconsistent | similarity)"))
    fig.add_hline(y=threshold, line_dash="dash", line_color="black", annotation_text=f"threshold {threshold:.2f}")
    fig.update_xaxes(title_text="face-voice similarity (cosine)", range=list(similarity_range))
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
    long = per_type.melt(id_vars="anomaly type", value_vars=["accuracy", "AUC"], var_name="metric",
                         value_name="value")
    fig = px.bar(long, x="anomaly type", y="value", color="metric", barmode="group", text_auto=".2f",
                 color_discrete_map={"accuracy": CONSISTENT, "AUC": INCONSISTENT},
                 labels={"value": "value (0-1)"})
    fig.update_yaxes(range=[0, 1.05])
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
