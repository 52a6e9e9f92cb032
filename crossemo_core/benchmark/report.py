"""Tables (markdown), machine-readable results (JSON) and plots (one self-contained plotly HTML file) of a suite.

Aggregation everywhere: the metrics of a seed are the mean over its folds (as
:func:`crossemo_core.experiment.cross_validate` does), and a cell shows mean +- sample sd over seeds.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossemo_core.benchmark.cache import json_safe
from crossemo_core.benchmark.paper_values import PAPER_TABLES, TABLE_VI_ABLATION
from crossemo_core.benchmark.protocols import FINE_GRAINED_CASES, ROC_GRID, RunSpec
from crossemo_core.benchmark.suites import RATIOS
from crossemo_core.paths import atomic_write

TYPE_COLUMNS = (("pos-neg", "neg-pos"), ("pos-neu", "neu-pos"), ("neu-neg", "neg-neu"))
"""Table IV's anomaly types: (shown as, key of :func:`crossemo_core.data.labels.anomaly_type`)."""


@dataclass
class Cell:
    """The aggregated runs of one table cell."""

    summary: dict[str, Any]
    n_seeds: int
    n_runs: int
    expected_runs: int
    fit_seconds: float
    roc_tpr: np.ndarray

    def value(self, *path: str, digits: int = 3) -> str:
        """``mean ± sd`` of the metric at ``path`` (e.g. ``"per_type", "neg-pos", "auc"``), "–" when absent."""
        node: Any = self.summary
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return "–"
            node = node[key]
        if not isinstance(node, dict) or "mean" not in node or not np.isfinite(node["mean"]):
            return "–"
        return f"{node['mean']:.{digits}f} ± {node['sd']:.{digits}f}"

    def mean(self, *path: str) -> float:
        node: Any = self.summary
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return float(node.get("mean", np.nan)) if isinstance(node, dict) else float("nan")

    def runs_label(self) -> str:
        done = f"{self.n_runs}" if self.n_runs == self.expected_runs else f"{self.n_runs} of {self.expected_runs}"
        return f"{done} ({self.n_seeds} seeds)"


def _nan(obj: Any) -> Any:
    """None (JSON's NaN) back to NaN."""
    if isinstance(obj, dict):
        return {k: _nan(v) for k, v in obj.items()}
    return float("nan") if obj is None else obj


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample sd and count of every numeric metric over ``runs``, NaN skipped; nested dicts recurse.

    Like :func:`crossemo_core.evaluation.mean_sd`, but over the union of the runs' keys: an anomaly type missing
    from one small test fold does not drop it from the others."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for r in runs for k in r):
        values = [r[key] for r in runs if key in r]
        if all(isinstance(v, dict) for v in values):
            out[key] = summarise(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            arr = arr[np.isfinite(arr)]
            out[key] = {"mean": float(arr.mean()) if len(arr) else float("nan"),
                        "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}
    return out


def _means(summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in summary.items():
        out[key] = value["mean"] if "mean" in value else _means(value)
    return out


def aggregate(records: Sequence[dict[str, Any]], expected_runs: int) -> Cell | None:
    """Per seed the mean over folds, then mean +- sd over seeds; None when no run is done."""
    if not records:
        return None
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_seed[r["spec"]["seed"]].append(_nan(r["metrics"]))
    per_seed = [_means(summarise(runs)) for runs in by_seed.values()]
    rocs = np.array([[np.nan if v is None else v for v in r["roc_tpr"]] for r in records], dtype=np.float64)
    return Cell(summary=summarise(per_seed), n_seeds=len(by_seed), n_runs=len(records), expected_runs=expected_runs,
                fit_seconds=float(np.mean([r["fit_seconds"] for r in records])),
                roc_tpr=np.nanmean(rocs, axis=0) if np.isfinite(rocs).any() else np.full(len(ROC_GRID), np.nan))


def cells(specs: Sequence[RunSpec], records: dict[str, dict[str, Any]]) -> dict[tuple[str, str], Cell | None]:
    """(row, column) -> aggregated cell, in the order the specs list them."""
    grouped: dict[tuple[str, str], list[RunSpec]] = defaultdict(list)
    for spec in specs:
        grouped[(spec.row, spec.column)].append(spec)
    return {place: aggregate([records[s.key()] for s in group if s.key() in records], len(group))
            for place, group in grouped.items()}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- suites
@dataclass
class Rendered:
    """What a suite's renderer produces."""

    sections: list[str]
    figures: list[Any]
    summary: dict[str, Any]


def _rows(table: dict[tuple[str, str], Cell | None], column: str) -> list[tuple[str, Cell]]:
    return [(row, cell) for (row, col), cell in table.items() if col == column and cell is not None]


def _summary(table: dict[tuple[str, str], Cell | None]) -> dict[str, Any]:
    out: dict[str, Any] = defaultdict(dict)
    for (row, column), cell in table.items():
        if cell is not None:
            out[row][column or "-"] = {"summary": cell.summary, "n_seeds": cell.n_seeds, "n_runs": cell.n_runs,
                                       "expected_runs": cell.expected_runs, "fit_seconds": cell.fit_seconds}
    return dict(out)


def render_paper(specs: Sequence[RunSpec], records: dict[str, dict[str, Any]], dataset: str) -> Rendered:
    table = cells(specs, records)
    main = _rows(table, "3 classes")
    sections = ["## Tables II/III layout: detection (3 classes)\n\nAbnormal = positive class. AUC, FPR, TPR and "
                "accuracy are computed on each method's output probability (`p_abnormal`) and verdict; "
                "\"AUC (raw score)\" is the AUC of the method's own anomaly score before its verdict rule "
                "(e.g. the cosine), which shows what a saturating verdict costs.\n\n" + markdown_table(
                    ("Method", "AUC", "FPR", "TPR", "Accuracy", "AUC (raw score)", "runs", "train s/run"),
                    [(row, c.value("auc"), c.value("fpr"), c.value("tpr"), c.value("accuracy"),
                      c.value("auc_score"), c.runs_label(), f"{c.fit_seconds:.1f}") for row, c in main])]
    paired = paired_differences(specs, records, "3 classes")
    if paired:
        sections.append("## Paired with SIR-HCL\n\nTest AUC of SIR-HCL minus the method's, on the same (seed, fold) "
                        "runs (same speakers, same abnormal pairs): mean ± sd over runs, and in how many runs SIR-HCL "
                        "is higher.\n\n" + markdown_table(("Method", "AUC difference", "SIR-HCL higher"), paired))
    header = ["Method", "undivided Acc", "undivided AUC"]
    for shown, _ in TYPE_COLUMNS:
        header += [f"{shown} Acc", f"{shown} AUC"]
    rows = []
    for row, c in main:
        cols = [row, c.value("accuracy"), c.value("auc")]
        for _, key in TYPE_COLUMNS:
            cols += [c.value("per_type", key, "accuracy"), c.value("per_type", key, "auc")]
        rows.append(cols)
    sections.append("## Table IV layout: per anomaly type\n\nEach type: all normal test pairs plus the abnormal "
                    "pairs of that type.\n\n" + markdown_table(header, rows))
    fine = _rows(table, "7 classes")
    if fine:
        header = ["Method", "undivided Acc", "undivided AUC"]
        for case in FINE_GRAINED_CASES:
            header += [f"{case} Acc", f"{case} AUC"]
        rows = []
        for row, c in fine:
            cols = [row, c.value("accuracy"), c.value("auc")]
            for case in FINE_GRAINED_CASES:
                cols += [c.value("per_case", case, "accuracy"), c.value("per_case", case, "auc")]
            rows.append(cols)
        sections.append("## Table V layout: fine-grained (7 classes of Table I)\n\nA pair is abnormal when its "
                        "7-class labels differ; \"same valence\" are abnormal pairs in none of the paper's five "
                        "cases (two intensities of one valence).\n\n" + markdown_table(header, rows))
    if dataset in PAPER_TABLES:
        title, values = PAPER_TABLES[dataset]
        sections.append(f"## The paper's {title}, for reference\n\n**These are the paper's numbers, not ours**: its "
                        "own corpus, features and split; CMPC and HFIR are not implemented here.\n\n" + markdown_table(
                            ("Method (paper)", "AUC", "FPR", "TPR", "Accuracy"),
                            [(name, *(f"{v:.4f}" for v in vals)) for name, vals in values.items()]))
    return Rendered(sections, [roc_figure(main), per_type_figure(main)], _summary(table))


def paired_differences(specs: Sequence[RunSpec], records: dict[str, dict[str, Any]],
                       column: str) -> list[tuple[str, str, str]]:
    """Rows (method, "mean ± sd" of SIR-HCL's AUC minus the method's, "wins/runs") over matched (seed, fold)."""
    auc: dict[str, dict[tuple[int, int], float]] = defaultdict(dict)
    titles = {}
    for spec in specs:
        record = records.get(spec.key())
        if spec.column == column and record is not None and record["metrics"]["auc"] is not None:
            auc[spec.method][(spec.seed, spec.fold)] = record["metrics"]["auc"]
            titles[spec.method] = spec.row
    reference = auc.get("sir-hcl", {})
    rows = []
    for method, values in auc.items():
        common = sorted(set(reference) & set(values))
        if method == "sir-hcl" or len(common) < 2:
            continue
        diff = np.array([reference[k] - values[k] for k in common])
        rows.append((titles[method], f"{diff.mean():+.3f} ± {diff.std(ddof=1):.3f}",
                     f"{int((diff > 0).sum())}/{len(common)}"))
    return rows


def render_ablation(specs: Sequence[RunSpec], records: dict[str, dict[str, Any]], dataset: str) -> Rendered:
    table = cells(specs, records)
    rows = _rows(table, "")
    sections = ["## Table VI layout: ablation of SIR-HCL, and per-person calibration\n\nCalibration rows standardise "
                "each speaker's features by that speaker's own reference clips before anything else "
                "(`crossemo_core.data.calibration`); they are not comparable with the main numbers of other "
                "tools.\n\n" + markdown_table(
                    ("Variant", "AUC", "Accuracy", "FPR", "TPR", "AUC (raw score)", "runs"),
                    [(row, c.value("auc"), c.value("accuracy"), c.value("fpr"), c.value("tpr"), c.value("auc_score"),
                      c.runs_label()) for row, c in rows])]
    variants = _rows(table, "baseline variants")
    if variants:
        sections.append("## Baseline variants\n\n" + markdown_table(
            ("Variant", "AUC", "Accuracy", "FPR", "TPR", "AUC (raw score)", "runs"),
            [(row, c.value("auc"), c.value("accuracy"), c.value("fpr"), c.value("tpr"), c.value("auc_score"),
              c.runs_label()) for row, c in variants]))
    sections.append("## The paper's Table VI, for reference\n\n**The paper's numbers, not ours** (CMU-MOSI and "
                    "CMU-MOSEI).\n\n" + markdown_table(
                        ("Variant (paper)", "MOSI AUC", "MOSI Acc", "MOSEI AUC", "MOSEI Acc"),
                        [(name, *(f"{v:.4f}" for v in vals)) for name, vals in TABLE_VI_ABLATION.items()]))
    return Rendered(sections, [bar_figure(rows, "auc", "Ablation: AUC (mean ± sd over seeds)")], _summary(table))


def render_ratio(specs: Sequence[RunSpec], records: dict[str, dict[str, Any]], dataset: str) -> Rendered:
    table = cells(specs, records)
    columns = [f"{n}:{a}" for n, a in RATIOS]
    methods = list(dict.fromkeys(row for row, _ in table))
    sections = []
    for metric, title in (("accuracy", "accuracy"), ("auc", "AUC")):
        rows = [[m] + [table[(m, col)].value(metric) if table.get((m, col)) else "–" for col in columns]
                for m in methods]
        sections.append(f"## TN-BCL Table V layout: {title} by normal:abnormal ratio\n\nThe ratio applies to every "
                        "split (train, valid, test).\n\n" + markdown_table(["Method", *columns], rows))
    return Rendered(sections, [ratio_figure(table, methods, columns)], _summary(table))


RENDERERS = {"paper": render_paper, "ablation": render_ablation, "ratio": render_ratio}


# ---------------------------------------------------------------------------------------------------- plots
def roc_figure(rows: Sequence[tuple[str, Cell]]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for row, cell in rows:
        fig.add_trace(go.Scatter(x=ROC_GRID, y=cell.roc_tpr, mode="lines",
                                 name=f"{row} (AUC {cell.value('auc')})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}))
    fig.update_layout(title="ROC, 3 classes (TPR averaged over runs at each FPR)", xaxis_title="FPR",
                      yaxis_title="TPR", width=720, height=560)
    return fig


def per_type_figure(rows: Sequence[tuple[str, Cell]]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for row, cell in rows:
        keys = [("undivided", ())] + [(shown, ("per_type", key)) for shown, key in TYPE_COLUMNS]
        fig.add_trace(go.Bar(name=row, x=[k for k, _ in keys], y=[cell.mean(*p, "auc") for _, p in keys],
                             error_y={"type": "data", "array": [_sd(cell, *p, "auc") for _, p in keys]}))
    fig.update_layout(barmode="group", title="AUC per anomaly type (mean ± sd over seeds)", yaxis_title="AUC",
                      width=900, height=500)
    return fig


def bar_figure(rows: Sequence[tuple[str, Cell]], metric: str, title: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=[r for r, _ in rows], y=[c.mean(metric) for _, c in rows],
                           error_y={"type": "data", "array": [_sd(c, metric) for _, c in rows]}))
    fig.update_layout(title=title, yaxis_title=metric.upper(), width=900, height=500)
    return fig


def ratio_figure(table: dict[tuple[str, str], Cell | None], methods: Sequence[str], columns: Sequence[str]) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for m in methods:
        present = [c for c in columns if table.get((m, c))]
        fig.add_trace(go.Scatter(x=present, y=[table[(m, c)].mean("accuracy") for c in present], name=m,
                                 error_y={"type": "data", "array": [_sd(table[(m, c)], "accuracy") for c in present]}))
    fig.update_layout(title="Accuracy by normal:abnormal ratio", xaxis_title="normal:abnormal",
                      yaxis_title="accuracy", width=800, height=500)
    return fig


def _sd(cell: Cell, *path: str) -> float:
    node: Any = cell.summary
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    return float(node.get("sd", 0.0)) if isinstance(node, dict) else 0.0


# ---------------------------------------------------------------------------------------------------- files
def write_outputs(out_dir: Path, stem: str, header: str, rendered: Rendered, extra: dict[str, Any]) -> list[Path]:
    """``<stem>.md``, ``<stem>.json`` and ``<stem>.html`` (all figures, plotly.js inlined once) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stem}.md"
    atomic_write(md, (header + "\n\n" + "\n\n".join(rendered.sections) + "\n").encode())
    js = out_dir / f"{stem}.json"
    atomic_write(js, json.dumps(json_safe({**extra, "tables": rendered.summary}), indent=1).encode())
    paths = [md, js]
    if rendered.figures:
        html = out_dir / f"{stem}.html"
        parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(rendered.figures)]
        atomic_write(html, (f"<html><head><meta charset='utf-8'><title>{stem}</title></head><body>"
                            + "\n".join(parts) + "</body></html>").encode())
        paths.append(html)
    return paths
