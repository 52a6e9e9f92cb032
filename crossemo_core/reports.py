"""Tables and curve data for people: dataset overview, training curves, the verdict table, thresholds, ROC,
similarity histograms with the fitted Beta components (the paper's Figs. 3 and 9) and Table IV.

Everything returns plain pandas DataFrames / dicts of numbers, so any front end (the Streamlit app, a notebook)
only has to draw them. Conventions: "abnormal" (the face and the voice carry different classes) is the positive
class; ``p_abnormal`` is the Beta-mixture posterior of inconsistency; a pair is flagged when
``p_abnormal >= threshold``. Internal names keep "abnormal"/"normal" (so do a few column names that
scripts read, e.g. :func:`split_overview`'s, which the app renames); verdicts and explanations say consistent /
inconsistent, and similarity is always the cosine (-1 … +1).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from crossemo_core.data.container import PairDataset
from crossemo_core.data.labels import anomaly_type
from crossemo_core.detector import Detector, ScoredPairs
from crossemo_core.errors import DataError
from crossemo_core.evaluation import detection_metrics
from crossemo_core.mixture import BetaMixture, similarity_to_score
from crossemo_core.thresholds import youden_threshold
from crossemo_core.training import LOSS_NAMES, EpochEvent, StepEvent

__all__ = [
    "LOSS_LABELS", "VERDICT_ABNORMAL", "VERDICT_NORMAL", "dataset_overview", "split_overview", "class_balance",
    "loss_curves", "speakers_by_part", "similarity_range", "epoch_table", "verdict_table", "apply_threshold",
    "threshold_metrics", "roc_points",
    "similarity_histogram", "mixture_curves", "flagged_intervals", "youden_on", "per_type_table", "table_iv",
    "explain_pair", "filter_verdicts",
]

#: Display names of the loss terms of a :class:`~crossemo_core.training.StepEvent` (paper notation).
LOSS_LABELS = {"total": "L_all (weighted total)", "share": "L_share", "intra": "L_intra", "cross": "L_cross",
               "hard": "L_hard"}
VERDICT_ABNORMAL = "inconsistent"
VERDICT_NORMAL = "consistent"
_TYPE_TITLES = {"neg-pos": "Positive-Negative", "neu-pos": "Positive-Neutral", "neg-neu": "Neutral-Negative"}
_TABLE_IV_ORDER = ("neg-pos", "neu-pos", "neg-neu")


# ------------------------------------------------------------------------------------------------ data
def dataset_overview(data: PairDataset) -> dict[str, pd.DataFrame]:
    """Long-format tables for plots of one pair set.

    ``classes``: modality, emotion, pairs. ``speakers``: speaker, pairs, abnormal (sorted by pairs, descending).
    ``lengths``: modality, length (frames) per sequence.
    """
    n_cls = data.n_classes
    rows = []
    for modality, labels in (("face", data.face_label), ("voice", data.voice_label)):
        counts = np.bincount(labels, minlength=n_cls)
        rows += [{"modality": modality, "emotion": data.class_names[c], "pairs": int(counts[c])} for c in range(n_cls)]
    spk = pd.DataFrame({"speaker": data.speaker, "abnormal": data.is_abnormal.astype(int)})
    speakers = (spk.groupby("speaker", sort=False).agg(pairs=("abnormal", "size"), abnormal=("abnormal", "sum"))
                .reset_index().sort_values(["pairs", "speaker"], ascending=[False, True], kind="stable")
                .reset_index(drop=True))
    lengths = pd.DataFrame({"modality": ["face"] * len(data) + ["voice"] * len(data),
                            "length": np.concatenate([data.face_lengths, data.voice_lengths])})
    return {"classes": pd.DataFrame(rows), "speakers": speakers, "lengths": lengths}


def class_balance(parts: Mapping[str, PairDataset]) -> pd.DataFrame:
    """Class counts per modality summed over the parts (after the abnormal-pair protocol): modality, emotion,
    pairs."""
    tables = [dataset_overview(p)["classes"] for p in parts.values()]
    return (pd.concat(tables).groupby(["modality", "emotion"], sort=False, as_index=False)["pairs"].sum())


def speakers_by_part(parts: Mapping[str, PairDataset]) -> pd.DataFrame:
    """Per speaker after the protocol: speaker, part (train/valid/test), pairs, abnormal (largest first)."""
    tables = [dataset_overview(p)["speakers"].assign(part=name) for name, p in parts.items()]
    return (pd.concat(tables, ignore_index=True).sort_values(["pairs", "speaker"], ascending=[False, True],
                                                             kind="stable").reset_index(drop=True))


def split_overview(parts: Mapping[str, PairDataset]) -> pd.DataFrame:
    """One row per split part: pairs, speakers, abnormal pairs (count and share), fallbacks, protocol rate/seed."""
    rows = []
    for name, part in parts.items():
        p = part.protocol
        n_abn = int(part.is_abnormal.sum())
        rows.append({"part": name, "pairs": len(part), "speakers": int(len(np.unique(part.speaker))),
                     "abnormal pairs": n_abn, "abnormal share": n_abn / len(part) if len(part) else float("nan"),
                     "partner from another speaker": int(p.get("n_fallback", 0)),
                     "left normal (no partner)": int(p.get("n_unpaired", 0)),
                     "rate": p.get("rate"), "protocol seed": p.get("seed")})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ training
def loss_curves(steps: Sequence[StepEvent], max_points: int = 1500) -> pd.DataFrame:
    """Per-step loss values in long format: ``epoch`` (fractional, e.g. 1.5 = half way through epoch 2 ... counted
    from 0), ``term`` (see :data:`LOSS_LABELS`), ``value``. Long runs are thinned by block means to at most
    ``max_points`` points per term."""
    if not steps:
        return pd.DataFrame(columns=["epoch", "term", "value"])
    x = np.array([(s.epoch - 1) + s.step / max(s.n_steps, 1) for s in steps])
    values = {name: np.array([s.losses.get(name, np.nan) for s in steps], dtype=np.float64) for name in LOSS_NAMES}
    if len(x) > max_points:
        block = math.ceil(len(x) / max_points)
        cut = len(x) // block * block
        tail = len(x) - cut

        def thin(a: np.ndarray) -> np.ndarray:
            head = a[:cut].reshape(-1, block).mean(1)
            return np.concatenate([head, [a[cut:].mean()]]) if tail else head

        x = np.concatenate([x[:cut].reshape(-1, block)[:, -1], x[-1:]]) if tail else x[:cut].reshape(-1, block)[:, -1]
        values = {k: thin(v) for k, v in values.items()}
    return pd.concat([pd.DataFrame({"epoch": x, "term": LOSS_LABELS[k], "value": v}) for k, v in values.items()],
                     ignore_index=True)


def epoch_table(epochs: Sequence[EpochEvent]) -> pd.DataFrame:
    """One row per finished epoch: its phase ("select", or "refit" on train + valid), the mean training losses,
    validation AUC (NaN while refitting), best-so-far mark, lr, seconds."""
    rows = []
    for e in epochs:
        row: dict[str, Any] = {"epoch": e.epoch, "phase": e.phase}
        row.update({LOSS_LABELS[k]: e.train_losses.get(k, float("nan")) for k in LOSS_NAMES})
        row.update({"validation AUC": e.valid_auc, "best so far": bool(e.is_best), "learning rate": e.lr,
                    "seconds": e.seconds})
        rows.append(row)
    columns = ["epoch", "phase", *LOSS_LABELS.values(), "validation AUC", "best so far", "learning rate", "seconds"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------------ verdicts
def verdict_table(data: PairDataset, scored: ScoredPairs, threshold: float) -> pd.DataFrame:
    """One row per pair with its ids, classes, similarity, posterior of inconsistency, verdict and correctness.

    Columns: pair, clip_id (face clip), voice_clip_id, speaker, face_class, voice_class, truth
    ("consistent"/"inconsistent": whether the two classes differ), anomaly_type ("normal" or e.g. "neg-pos"),
    similarity (cosine, -1..1), p_inconsistent (0..1), verdict, correct.
    """
    if len(scored.similarity) != len(data):
        raise DataError(f"{len(scored.similarity)} scores for {len(data)} pairs.")
    names = np.asarray(data.class_names)
    table = pd.DataFrame({
        "pair": np.arange(len(data)),
        "clip_id": data.clip_id,
        "voice_clip_id": data.voice_clip_id,
        "speaker": data.speaker,
        "face_class": names[data.face_label],
        "voice_class": names[data.voice_label],
        "truth": np.where(data.is_abnormal, VERDICT_ABNORMAL, VERDICT_NORMAL),
        "anomaly_type": anomaly_type(data.face_label, data.voice_label, data.class_names),
        "similarity": np.asarray(scored.similarity, dtype=np.float64),
        "p_inconsistent": np.asarray(scored.p_abnormal, dtype=np.float64),
    })
    return apply_threshold(table, threshold)


def apply_threshold(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """A copy of a :func:`verdict_table` with ``verdict`` and ``correct`` recomputed for ``threshold``."""
    _check_threshold(threshold)
    out = table.copy()
    flagged = out["p_inconsistent"].to_numpy() >= threshold
    out["verdict"] = np.where(flagged, VERDICT_ABNORMAL, VERDICT_NORMAL)
    out["correct"] = out["verdict"].to_numpy() == out["truth"].to_numpy()
    return out


def filter_verdicts(table: pd.DataFrame, *, verdicts: Sequence[str] | None = None,
                    correct: Sequence[bool] | None = None, anomaly_types: Sequence[str] | None = None,
                    speakers: Sequence[str] | None = None, text: str = "", sort_by: str | None = None,
                    ascending: bool = True) -> pd.DataFrame:
    """Rows of a verdict table kept by every given filter (None or empty = no filter), optionally sorted.

    ``text`` keeps rows whose clip ids or speaker contain it (case-insensitive).
    """
    keep = np.ones(len(table), dtype=bool)
    for column, allowed in (("verdict", verdicts), ("correct", correct), ("anomaly_type", anomaly_types),
                            ("speaker", speakers)):
        if allowed:
            keep &= table[column].isin(list(allowed)).to_numpy()
    if text.strip():
        needle = text.strip().lower()
        hay = (table["clip_id"].astype(str) + " " + table["voice_clip_id"].astype(str) + " "
               + table["speaker"].astype(str)).str.lower()
        keep &= hay.str.contains(needle, regex=False).to_numpy()
    out = table[keep]
    if sort_by:
        if sort_by not in out.columns:
            raise DataError(f"cannot sort by {sort_by!r}; columns are {', '.join(out.columns)}.")
        out = out.sort_values(sort_by, ascending=ascending, kind="stable")
    return out


def threshold_metrics(abnormal: np.ndarray, p_abnormal: np.ndarray, threshold: float) -> dict[str, Any]:
    """TPR, FPR, accuracy (and AUC) at ``threshold``, plus the confusion counts and the number flagged."""
    _check_threshold(threshold)
    y = np.asarray(abnormal, dtype=bool)
    p = np.asarray(p_abnormal, dtype=np.float64)
    pred = p >= threshold
    out = detection_metrics(y, p, pred)
    out.update(tp=int((pred & y).sum()), fp=int((pred & ~y).sum()), tn=int((~pred & ~y).sum()),
               fn=int((~pred & y).sum()), n_flagged=int(pred.sum()), threshold=float(threshold))
    return out


def roc_points(abnormal: np.ndarray, p_abnormal: np.ndarray) -> tuple[pd.DataFrame, float]:
    """The ROC curve (``fpr``, ``tpr``, ``threshold``; the "flag nothing" point has threshold 1.0 + ...) and AUC.

    Raises :class:`DataError` when only one class is present (the ROC is undefined).
    """
    y = np.asarray(abnormal, dtype=bool)
    p = np.asarray(p_abnormal, dtype=np.float64)
    if y.all() or not y.any():
        raise DataError("the ROC curve needs both consistent and inconsistent pairs.")
    fpr, tpr, thr = roc_curve(y.astype(int), p, drop_intermediate=False)
    thr = np.where(np.isfinite(thr), thr, np.nan)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr}), float(roc_auc_score(y, p))


def youden_on(detector: Detector, data: PairDataset) -> float:
    """The Youden-index threshold on the posterior of inconsistency, chosen on ``data`` (the validation pairs)."""
    p = detector.posterior_abnormal(detector.similarity(data))
    return float(youden_threshold(data.is_abnormal.astype(int), p))


# ------------------------------------------------------------------------------------------------ histograms
def similarity_histogram(similarity: np.ndarray, abnormal: np.ndarray, bins: int = 30,
                         value_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Histogram of pair similarity split into normal and abnormal pairs, on a common set of bins.

    ``density`` is count / (all pairs x bin width), so the two groups *stacked* integrate to 1 and can be drawn
    under the mixture density. Columns: group ("consistent pairs"/"inconsistent pairs"), left, right, center,
    count, density.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    y = np.asarray(abnormal, dtype=bool)
    if sim.ndim != 1 or sim.shape != y.shape or sim.size == 0:
        raise DataError("similarity and abnormal must be 1-D arrays of the same, non-zero length.")
    if not np.isfinite(sim).all():
        raise DataError("similarities contain NaN or inf values.")
    lo, hi = value_range if value_range is not None else similarity_range(sim)
    edges = np.linspace(lo, hi, int(bins) + 1)
    width = edges[1] - edges[0]
    rows = []
    for group, mask in (("consistent pairs", ~y), ("inconsistent pairs", y)):
        counts, _ = np.histogram(np.clip(sim[mask], lo, hi), bins=edges)
        rows.append(pd.DataFrame({"group": group, "left": edges[:-1], "right": edges[1:],
                                  "center": (edges[:-1] + edges[1:]) / 2, "count": counts,
                                  "density": counts / (len(sim) * width)}))
    return pd.concat(rows, ignore_index=True)


def similarity_range(similarity: np.ndarray, pad: float = 0.05) -> tuple[float, float]:
    """A plotting range around the similarities, inside [-1, 1]."""
    sim = np.asarray(similarity, dtype=np.float64)
    lo, hi = float(sim.min()), float(sim.max())
    span = max(hi - lo, 0.1)
    return max(-1.0, lo - pad * span), min(1.0, hi + pad * span)


def mixture_curves(mixture: BetaMixture, value_range: tuple[float, float] = (-1.0, 1.0),
                   n: int = 400) -> pd.DataFrame:
    """The fitted Beta components, their mixture and the posterior on the *cosine similarity* axis.

    Densities are per unit of cosine similarity: ``f_cos(c) = f_u((1 + c) / 2) / 2`` (u is the Beta's score), and
    the components are weighted by their mixing weights, so they add up to the mixture. Columns: similarity,
    "consistent component", "inconsistent component", mixture, p_inconsistent.
    """
    lo, hi = value_range
    if not -1.0 <= lo < hi <= 1.0:
        raise DataError(f"value range must satisfy -1 <= low < high <= 1; got {value_range}.")
    c = np.linspace(lo, hi, int(n))
    u = similarity_to_score(c)
    comp = mixture.component_pdf(u, weighted=True) / 2.0
    return pd.DataFrame({
        "similarity": c,
        "consistent component": comp[:, mixture.normal_component_],
        "inconsistent component": comp[:, mixture.abnormal_component_],
        "mixture": comp.sum(1),
        "p_inconsistent": mixture.posterior_abnormal(u),
    })


def flagged_intervals(mixture: BetaMixture, threshold: float, value_range: tuple[float, float] = (-1.0, 1.0),
                      n: int = 2001) -> list[tuple[float, float]]:
    """Intervals of cosine similarity where the posterior of inconsistency is >= ``threshold`` (on a grid of n).

    Usually one interval (low similarity); two Beta components can make it two.
    """
    _check_threshold(threshold)
    curve = mixture_curves(mixture, value_range, n)
    flagged = curve["p_inconsistent"].to_numpy() >= threshold
    x = curve["similarity"].to_numpy()
    out, start = [], None
    for i, f in enumerate(flagged):
        if f and start is None:
            start = i
        if not f and start is not None:
            out.append((float(x[start]), float(x[i - 1])))
            start = None
    if start is not None:
        out.append((float(x[start]), float(x[-1])))
    return out


# ------------------------------------------------------------------------------------------------ per type
def per_type_table(table: pd.DataFrame) -> pd.DataFrame:
    """Metrics per anomaly type from a verdict table: each type's abnormal pairs plus *all* normal pairs
    (Table IV's protocol), and an "undivided" row with every pair. Columns: anomaly type, pairs, inconsistent
    pairs, AUC, TPR, FPR, accuracy."""
    y = table["truth"].to_numpy() == VERDICT_ABNORMAL
    p = table["p_inconsistent"].to_numpy()
    pred = table["verdict"].to_numpy() == VERDICT_ABNORMAL
    types = table["anomaly_type"].to_numpy()
    rows = [("undivided", np.ones(len(table), dtype=bool))]
    present = sorted(set(types.tolist()) - {"normal"}, key=lambda t: (_TABLE_IV_ORDER + (t,)).index(t))
    rows += [(t, (types == "normal") | (types == t)) for t in present]
    out = []
    for name, keep in rows:
        m = detection_metrics(y[keep], p[keep], pred[keep])
        out.append({"anomaly type": _TYPE_TITLES.get(name, "Undivided" if name == "undivided" else name),
                    "pairs": m["n_pairs"], "inconsistent pairs": m["n_abnormal"], "AUC": m["auc"], "TPR": m["tpr"],
                    "FPR": m["fpr"], "accuracy": m["accuracy"]})
    return pd.DataFrame(out)


def table_iv(table: pd.DataFrame, dataset: str, method: str = "SIR-HCL (this run)") -> pd.DataFrame:
    """The paper's Table IV layout: one row (dataset, method) with Acc and AUC for Undivided, Positive-Negative,
    Positive-Neutral and Neutral-Negative (other types, e.g. on 7 classes, follow)."""
    per = per_type_table(table).set_index("anomaly type")
    row: dict[str, Any] = {"dataset": dataset, "method": method}
    for name in per.index:
        row[f"{name} Acc"] = per.loc[name, "accuracy"]
        row[f"{name} AUC"] = per.loc[name, "AUC"]
    return pd.DataFrame([row])


# ------------------------------------------------------------------------------------------------ one pair
def explain_pair(row: Mapping[str, Any], threshold: float) -> str:
    """A plain-language account of one verdict-table row (markdown)."""
    p = float(row["p_inconsistent"])
    flagged = p >= threshold
    same_clip = str(row["clip_id"]) == str(row["voice_clip_id"])
    source = ("The face and the voice come from the same recording."
              if same_clip else f"The voice was taken from another recording (`{row['voice_clip_id']}`) of the "
                                f"same speaker by the inconsistent-pair protocol.")
    truth = ("they **do not match**" if row["truth"] == VERDICT_ABNORMAL else "they **match**")
    verdict = (f"**{VERDICT_ABNORMAL}** (posterior {p:.2f} ≥ threshold {threshold:.2f})" if flagged
               else f"**{VERDICT_NORMAL}** (posterior {p:.2f} < threshold {threshold:.2f})")
    outcome = "The verdict is **correct**." if bool(row["correct"]) else "The verdict is **wrong**."
    return (f"Pair {int(row['pair'])} of speaker `{row['speaker']}`: the face (clip `{row['clip_id']}`) is labelled "
            f"*{row['face_class']}* and the voice is labelled *{row['voice_class']}*, so {truth}. {source}\n\n"
            f"The model places the two signals at similarity {float(row['similarity']):+.3f} (cosine, -1 … +1). "
            f"The Beta mixture turns this into a probability of inconsistency of "
            f"{p:.2f}, so the verdict is {verdict}. {outcome}")


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float, np.floating)) and 0.0 <= float(threshold) <= 1.0):
        raise DataError(f"the threshold must be a number in [0, 1]; got {threshold!r}.")
