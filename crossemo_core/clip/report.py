"""Sharing verdicts: a table (batch mode, CSV), the segments of each recording (CSV), and a one-page,
self-contained HTML report per verdict (for a long recording: the session summary, the segment table and a timeline
binned to the page's width).

The HTML page has no external resources (charts are inline SVG, thumbnails inline PNG), so it can be saved, printed
to PDF from a browser, or attached to a record as it is. It is written only where the user asks.
"""
from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from crossemo_core.clip.face import GEOMETRY_HELP, GEOMETRY_NAMES
from crossemo_core.clip.segments import RULE as SEGMENT_RULE
from crossemo_core.paths import atomic_write

if TYPE_CHECKING:
    from crossemo_core.clip.verdict import SideSummary

TABLE_COLUMNS = ("file", "verdict", "strength", "p_inconsistent", "reason", "conflict", "face_emotion",
                 "face_valence", "face_confidence", "voice_emotion", "voice_valence", "voice_confidence", "voice_file",
                 "p_embedding", "similarity", "windows_scored", "windows", "duration_s", "inconsistent_stretches",
                 "inconsistent_s", "longest_inconsistent_s", "partial", "notes", "error", "sha256", "voice_sha256")
"""The verdicts table (CSV): the file, then the verdict, its probability and reason first; the sha256 of the
file(s) each verdict belongs to last."""
SEGMENT_COLUMNS = ("file", "segment", "start_s", "end_s", "duration_s", "start", "end", "outcome", "strength", "p_mean",
                   "changed", "face_before", "face_after", "voice_before", "voice_after", "face_valence",
                   "voice_valence", "n_windows", "n_judged", "reason")
VALENCE_COLOURS = {"negative": "#b3261e", "neutral": "#888888", "positive": "#1b7f3b"}
COLOURS = {"consistent": "#1b7f3b", "inconsistent": "#b3261e", "undetermined": "#8a6d00"}
PLAIN = {
    "consistent": "The emotion shown by the face and the emotion carried by the voice agree.",
    "inconsistent": "The emotion shown by the face and the emotion carried by the voice do not agree.",
    "undetermined": "The tool cannot say whether face and voice agree in this clip.",
}
DISCLAIMER = ("Research tool, not a diagnostic device. The verdict is a statistical estimate from a model trained "
              "on posed photographs (FER2013) and acted speech (RAVDESS) of different people; it must not be used to "
              "diagnose, treat or decide about a person.")


def verdicts_table(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per file from ``ClipVerdict.to_dict()`` outputs (or ``{"file", "error"}`` for failures)."""
    rows = []
    for r in results:
        timeline = r.get("timeline") or []
        face, voice = r.get("face") or {}, r.get("voice") or {}
        rows.append({
            "file": r.get("file"), "voice_file": r.get("voice_file"), "verdict": r.get("verdict"),
            "strength": r.get("strength"), "p_inconsistent": r.get("p_inconsistent"),
            "face_emotion": face.get("emotion"), "face_valence": face.get("valence"),
            "face_confidence": face.get("confidence"), "voice_emotion": voice.get("emotion"),
            "voice_valence": voice.get("valence"), "voice_confidence": voice.get("confidence"),
            "p_embedding": r.get("p_embedding"), "similarity": r.get("similarity"),
            "windows_scored": sum(w.get("status") == "scored" for w in timeline), "windows": len(timeline),
            "duration_s": r.get("duration_s"), "inconsistent_stretches": (r.get("session") or {}).get("n_inconsistent"),
            "inconsistent_s": (r.get("session") or {}).get("inconsistent_s"),
            "longest_inconsistent_s": (r.get("session") or {}).get("longest_inconsistent_s"),
            "partial": r.get("partial"), "reason": r.get("reason"), "conflict": r.get("conflict"),
            "notes": " | ".join(r.get("notes") or []),
            "error": r.get("error"), "sha256": r.get("sha256"), "voice_sha256": r.get("voice_sha256")})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def segments_table(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per segment of every file, from ``ClipVerdict.to_dict()`` outputs (failed files have none)."""
    from crossemo_core.clip.segments import fmt_clock

    rows = []
    for r in results:
        for k, seg in enumerate(r.get("segments") or [], start=1):
            rows.append({"file": r.get("file"), "segment": k, "start_s": seg["start"], "end_s": seg["end"],
                         "duration_s": seg["duration_s"], "start": fmt_clock(seg["start"]),
                         "end": fmt_clock(seg["end"]), **{c: seg.get(c) for c in SEGMENT_COLUMNS[7:]}})
    return pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))


def write_report(verdicts: Sequence[Any], out: str | Path, model: Any = None) -> list[Path]:
    """Write one HTML page per verdict: to ``out`` itself for one verdict named ``*.html``, else into folder
    ``out`` as ``<file>.report.html``. Returns the paths written."""
    out = Path(out)
    if len(verdicts) == 1 and out.suffix.lower() in (".html", ".htm"):
        targets = [out]
    else:
        targets = [out / f"{Path(v.file).name}.report.html" for v in verdicts]
    written = []
    for v, target in zip(verdicts, targets):
        atomic_write(target, report_html(v, model).encode("utf-8"))
        written.append(target)
    return written


def report_html(v: Any, model: Any = None) -> str:
    """The one-page report of a :class:`~crossemo_core.clip.verdict.ClipVerdict` as an HTML string."""
    e = html.escape
    colour = COLOURS.get(v.verdict, "#444")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    numbers = ""
    if v.p_inconsistent is not None:
        numbers = (f"<p class='big'>Probability of inconsistency: <b>{v.p_inconsistent:.2f}</b> "
                   f"(the embedding alone {v.p_embedding:.2f}"
                   + (f", the readings alone {v.p_readings:.2f}" if v.p_readings is not None else "")
                   + f") &middot; face/voice similarity {v.similarity:.2f}</p><p class='muted'>{e(v.rule)}</p>")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>crossemo report: {e(v.file)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:24px auto;color:#222;font-size:14px}"
        "h1{font-size:20px;margin:0}h2{font-size:16px;margin:18px 0 6px}.verdict{font-size:26px;font-weight:700;"
        "padding:8px 14px;border-radius:6px;color:#fff;display:inline-block}.big{font-size:15px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
        ".muted{color:#666;font-size:12px}.bar{display:inline-block;height:10px;background:#4a78b5}"
        ".thumbs img{width:64px;height:64px;margin:1px;border-radius:3px}@media print{body{margin:0}}</style>",
        "</head><body>",
        f"<h1>Face/voice emotion consistency: {e(v.file)}{' + ' + e(v.voice_file) if v.voice_file else ''}</h1>",
        *([f"<p class='muted'>sha256 of {e(v.file)}: <code>{v.sha256}</code>"
           + (f"; of {e(v.voice_file)}: <code>{v.voice_sha256}</code>" if v.voice_sha256 else "") + "</p>"]
          if getattr(v, "sha256", None) else []),
        f"<p class='muted'>{when} &middot; model {e(v.checkpoint)} &middot; {_analysed(v.duration_s)} analysed"
        f"{' &middot; calibrated with a baseline clip' if v.calibrated else ''}</p>",
        f"<div class='verdict' style='background:{colour}'>{e(v.label.upper())}</div>",
        f"<p class='big'>{e(PLAIN.get(v.verdict, ''))}</p>",
        f"<p><b>{e(v.partial)}</b></p>" if getattr(v, "partial", None) else "",
        f"<p>Why: {e(v.reason)}</p>", f"<p><b>{e(v.conflict)}</b></p>" if v.conflict else "", numbers,
        "<h2>What each side shows</h2>", _emotions(v),
        "<h2>When face and voice diverge</h2>",
        "<p class='muted'>One shared time axis, each 2-second window (every 0.5 s) at its centre. Face and voice "
        "lanes: the valence each reader gives (red negative, grey neutral, green positive; paler = less sure). "
        "Bottom lane: the probability of inconsistency (dashed line: 0.5). Grey bands: no face or no speech in "
        "that window (not judged). Below: the sound wave and the face about once a second.</p>",
        _timeline_svg(v), _waveform_svg(v), _thumbs(v), _segments_html(v),
        "<h2>Face measurements (from the 478-point face mesh)</h2>", _geometry(v),
    ]
    if v.notes:
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{e(n)}</li>" for n in v.notes] + ["</ul>"]
    parts += ["<h2>How to read this</h2><ul>",
              "<li>The verdict compares the face and the voice with each other; it does not say which emotion is "
              "the 'real' one.</li>",
              "<li>'Undetermined' means the clip could not be judged (no face, no speech, or input unlike the "
              "training material); it is not a finding.</li>",
              "<li>Accents, recording conditions, facial hair, glasses, medication and many clinical conditions can "
              "change how a face or voice looks to the model.</li></ul>",
              f"<h2>About the model</h2><p class='muted'>{e(_model_line(model))}</p>",
              f"<p class='muted'><b>{e(DISCLAIMER)}</b></p>", "</body></html>"]
    return "\n".join(p for p in parts if p)


def _emotions(v: Any) -> str:
    e = html.escape

    def bars(probs: dict[str, float]) -> str:
        return "".join(f"<tr><td>{e(k)}</td><td><span class='bar' style='width:{int(200 * (p or 0))}px'></span> "
                       f"{(p or 0):.2f}</td></tr>" for k, p in probs.items())

    def side(d: SideSummary, nothing: str) -> str:
        if not d.emotion:
            return f"<i>{nothing}</i>"
        sure = " &middot; <b>uncertain</b>" if d.uncertain else ""
        aro = f" &middot; high arousal {d.arousal_probs['high']:.2f}" if d.arousal_probs else ""
        return (f"<b>{e(d.emotion)}</b> &middot; valence {e(d.valence)} ({d.confidence or 0:.2f}){aro}"
                f"{sure}<table>{bars(d.valence_probs)}</table><table>{bars(d.probs)}</table>")

    return (f"<table><tr><th>Face (face reader: expression network)</th><th>Voice (voice reader: log-mel network "
            f"+ prosody)</th></tr><tr><td>{side(v.face, 'no face found')}</td><td>{side(v.voice, 'not judged')}"
            f"</td></tr></table>")


def _timeline_svg(v: Any, width: int = 940, lane: int = 26, plot: int = 110, max_columns: int = 400) -> str:
    """Three lanes on one time axis: face valence, voice valence, probability of inconsistency (a long recording's
    windows binned to at most ``max_columns`` columns); inconsistent segments shaded behind the probability."""
    if not v.timeline:
        return "<p><i>No timeline: nothing was judged.</i></p>"
    end = max(w.end for w in v.timeline) or 1.0
    columns, step = _columns(v.timeline, max_columns)
    height = 2 * lane + plot + 40
    x = lambda t: 60 + (width - 70) * t / end  # noqa: E731
    top = 2 * lane + 14
    y = lambda p: top + plot * (1 - p)  # noqa: E731
    out = [f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg' role='img' "
           f"aria-label='face lane, voice lane and probability of inconsistency over time'>",
           f"<text x='2' y='{lane - 8}' font-size='11'>face</text>",
           f"<text x='2' y='{2 * lane - 8}' font-size='11'>voice</text>",
           f"<text x='2' y='{top + 10}' font-size='10'>P 1</text>", f"<text x='2' y='{top + plot}' font-size='10'>"
           f"P 0</text>"]
    for seg in getattr(v, "segments", None) or []:
        if seg.outcome == "inconsistent" and len(v.timeline) > 1:
            out.append(f"<rect x='{x(seg.start):.1f}' y='{top}' width='{max(1.0, x(seg.end) - x(seg.start)):.1f}' "
                       f"height='{plot}' fill='#b3261e' fill-opacity='0.12'><title>inconsistent {_clock(seg.start)}-"
                       f"{_clock(seg.end)} ({seg.strength} evidence)</title></rect>")
    half = max(1.0, (x(step) - x(0)) / 2)
    for w in columns:
        mid = (w.start + w.end) / 2
        if w.status != "scored":
            out.append(f"<rect x='{x(mid) - half:.1f}' y='0' width='{2 * half:.1f}' height='{height - 20}' "
                       f"fill='#eee'><title>{w.start:.1f}-{w.end:.1f} s: {w.status}</title></rect>")
            continue
        for row, reading, label in ((0, w.face, w.face_valence), (1, w.voice, w.voice_valence)):
            conf = reading.confidence if reading is not None else 0.5
            out.append(f"<rect x='{x(mid) - half:.1f}' y='{row * lane + 4}' width='{2 * half:.1f}' "
                       f"height='{lane - 8}' fill='{VALENCE_COLOURS.get(label, '#444')}' "
                       f"fill-opacity='{0.25 + 0.75 * (conf - 1 / 3) * 1.5:.2f}'><title>{w.start:.1f}-{w.end:.1f} s: "
                       f"{label} ({conf:.2f})</title></rect>")
    out.append(f"<line x1='60' x2='{width - 10}' y1='{y(0.5):.1f}' y2='{y(0.5):.1f}' stroke='#b3261e' "
               f"stroke-dasharray='4 3' stroke-width='1'/>")
    pts = [(x((w.start + w.end) / 2), y(float(np.clip(w.p_inconsistent, 0, 1)))) for w in columns
           if w.p_inconsistent is not None]
    if pts:
        out.append("<polyline fill='none' stroke='#b3261e' stroke-width='2' points='"
                   + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + "'/>")
        if len(pts) <= 200:
            out += [f"<circle cx='{a:.1f}' cy='{b:.1f}' r='2.5' fill='#b3261e'/>" for a, b in pts]
    tick = _tick_step(end)
    for t in np.arange(0, int(end) + 1, tick):
        out.append(f"<text x='{x(t):.1f}' y='{height - 5}' font-size='10' text-anchor='middle'>"
                   f"{int(t)}s</text>" if end <= 120 else
                   f"<text x='{x(t):.1f}' y='{height - 5}' font-size='10' text-anchor='middle'>{_clock(t)}</text>")
    out.append("</svg>")
    return "".join(out)


def _tick_step(end: float) -> int:
    """1 s for a clip up to 2 minutes (every second labelled, as before), else a round step giving <= 20 labels."""
    if end <= 120:
        return 1
    return next((s for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if end / s <= 20), 7200)


def _clock(t: float) -> str:
    from crossemo_core.clip.segments import fmt_clock

    return fmt_clock(t)


def _columns(timeline: Sequence[Any], max_columns: int) -> tuple[list[Any], float]:
    """The windows as they are (at most ``max_columns``), else bins of consecutive windows: each bin judged when any
    of its windows is, with the mean probability and the pooled valence of each side."""
    from types import SimpleNamespace

    from crossemo_core.readers.reading import VALENCES

    hop = timeline[1].start - timeline[0].start if len(timeline) > 1 else 0.5
    if len(timeline) <= max_columns:
        return list(timeline), 0.5
    k = int(np.ceil(len(timeline) / max_columns))
    out = []
    for i in range(0, len(timeline), k):
        group = timeline[i:i + k]
        scored = [w for w in group if w.status == "scored" and w.face is not None and w.voice is not None]
        col = SimpleNamespace(start=group[0].start, end=group[-1].end, status="scored" if scored else group[0].status,
                              face=None, voice=None, face_valence=None, voice_valence=None, p_inconsistent=None)
        if scored:
            for side in ("face", "voice"):
                pooled = np.mean([getattr(w, side).valence_array() for w in scored], axis=0)
                setattr(col, side, SimpleNamespace(confidence=float(pooled.max())))
                setattr(col, f"{side}_valence", VALENCES[int(np.argmax(pooled))])
            ps = [w.p_inconsistent for w in scored if w.p_inconsistent is not None]
            col.p_inconsistent = float(np.mean(ps)) if ps else None
        out.append(col)
    return out, k * hop


def _analysed(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 600 else _clock(seconds) + " (h:mm:ss)" if seconds >= 3600 else \
        f"{_clock(seconds)} (min:s)"


def _segments_html(v: Any) -> str:
    """The session summary and the segment table (inconsistent segments first in colour)."""
    e = html.escape
    segments = getattr(v, "segments", None) or []
    if not segments or v.session is None:
        return ""
    rows = []
    for k, s in enumerate(segments, start=1):
        colour = COLOURS.get(s.outcome, "#444")
        change = "" if s.changed is None else (f"{s.changed} (face {s.face_before or '-'} &rarr; {s.face_after or '-'}"
                                               f", voice {s.voice_before or '-'} &rarr; {s.voice_after or '-'})")
        rows.append(f"<tr><td>{k}</td><td>{_clock(s.start)}</td><td>{_clock(s.end)}</td>"
                    f"<td>{s.duration_s:.1f} s</td><td style='color:{colour};font-weight:600'>{e(s.label)}</td>"
                    f"<td>{'' if s.p_mean is None else f'{s.p_mean:.2f}'}</td><td>{change}</td>"
                    f"<td>{e(s.reason or '')}</td></tr>")
    shown = rows if len(rows) <= 300 else rows[:300] + [f"<tr><td colspan='8'>... {len(rows) - 300} more segments "
                                                         f"(score --segments OUT.csv lists them all)</td></tr>"]
    return ("<h2>Stretches: where face and voice agree and where they part ways</h2>"
            f"<p class='big'>{e(v.session.sentence())}</p>"
            f"<p class='muted'>{e(SEGMENT_RULE)} 'Changed' compares the face's and the voice's valence readings just "
            "before and just after the segment's start.</p>"
            "<table><tr><th>#</th><th>start</th><th>end</th><th>length</th><th>outcome</th><th>mean P</th>"
            f"<th>changed at its start</th><th>why undetermined</th></tr>{''.join(shown)}</table>")


def _waveform_svg(v: Any, width: int = 940, height: int = 60) -> str:
    env = np.asarray(v.envelope, dtype=np.float64)
    if env.size == 0:
        return ""
    end = max([w.end for w in v.timeline] + [env.size / 100.0])
    cols = np.array_split(env, min(env.size, width - 50))
    peaks = np.array([c.max() for c in cols])
    peaks = peaks / max(peaks.max(), 1e-9)
    span = (width - 50) * (env.size / 100.0) / end
    step = span / len(peaks)
    mid = height / 2
    path = " ".join(f"M{40 + i * step:.1f},{mid - p * (mid - 2):.1f}V{mid + p * (mid - 2):.1f}"
                    for i, p in enumerate(peaks))
    return (f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg' role='img' "
            f"aria-label='sound wave'><path d='{path}' stroke='#777' stroke-width='1'/></svg>")


def _thumbs(v: Any) -> str:
    if not v.thumbnails:
        return ""
    thumbs = v.thumbnails
    if len(thumbs) > 40:  # a long recording: 40 spread over it
        thumbs = [thumbs[i] for i in np.linspace(0, len(thumbs) - 1, 40).round().astype(int)]
    imgs = "".join(f"<img src='data:image/png;base64,{_png(th)}' alt='face at {t:.1f} s' title='{t:.1f} s'>"
                   for t, th in thumbs)
    return f"<div class='thumbs'>{imgs}</div>"


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _geometry(v: Any) -> str:
    if not v.geometry:
        return "<p><i>No face was measured.</i></p>"
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v.geometry[n]['median']:.3f}</td>"
                   f"<td>{v.geometry[n]['p10']:.3f} to {v.geometry[n]['p90']:.3f}</td>"
                   f"<td>{html.escape(GEOMETRY_HELP[n])}</td></tr>" for n in GEOMETRY_NAMES if n in v.geometry)
    return ("<table><tr><th>measure</th><th>median</th><th>10th to 90th percentile</th><th>meaning</th></tr>"
            f"{rows}</table><p class='muted'>Distances are relative to the distance between the eyes. These describe "
            "the shape of the face, not an emotion.</p>")


def _model_line(model: Any) -> str:
    if model is None:
        return "Clip model: SIR-HCL (see checkpoints/clip.md)."
    meta = model.detector.metadata
    clip = meta.get("clip", {})
    data = clip.get("data", {})
    runs = len(model.runs)
    auc = [float("nan") if run.metadata.get("best_valid_auc") is None else float(run.metadata["best_valid_auc"])
           for run in model.runs]
    return (f"SIR-HCL clip model ({model.path.name if model.path else 'clip model'}"
            f"{f', the mean similarity of {runs} training runs' if runs > 1 else ''}), trained on faces: "
            f"{data.get('faces', '?')}; voices: {data.get('voices', '?')}. Faces and voices of a training pair come "
            f"from different people. Validation AUC (windows): {', '.join(f'{a:.3f}' for a in auc)}"
            f"{' (each run)' if runs > 1 else ''}. See checkpoints/clip.md for its limits.")
