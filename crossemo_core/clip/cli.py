"""``python -m crossemo_core score FILE... [--voice FILE] [--baseline FILE] [--json] [--csv OUT] [--report OUT]``.

Registered by :mod:`crossemo_core.cli`. One verdict per file; a folder stands for every supported file in it.
A file that cannot be judged (unreadable, no face track, ...) gets an ``error`` entry and the others go on;
the exit status is 2 when any file failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crossemo_core.errors import CrossemoError, DataError, OutputError
from crossemo_core.paths import atomic_write, check_writable
from crossemo_core.settings import option_number


def add_score_parser(sub: Any) -> None:
    p = sub.add_parser(
        "score", help="judge face/voice clips: consistent, inconsistent or undetermined, with a timeline",
        description="Does the emotion of the face agree with the emotion of the voice? Prints a verdict per file. "
                    "Research tool, not a diagnostic device.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="a video with sound (mp4, mov, m4v, webm, mkv, avi), or a photo/silent video with --voice; "
                        "a folder means every supported file in it")
    p.add_argument("--voice", type=Path, help="the voice as a separate recording (wav, flac, mp3, ogg, m4a, or a "
                                              "video's sound); only with a single FILE")
    p.add_argument("--baseline", type=Path, help="a calm, neutral clip of the same person: the face and voice are "
                                                 "then judged relative to this person's own rest")
    p.add_argument("--checkpoint", type=Path, default=None, help="clip model (default: checkpoints/clip.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (one per line)")
    p.add_argument("--csv", type=Path, help="also write a table of all verdicts to this CSV file")
    p.add_argument("--report", type=Path,
                   help="write a one-page HTML report: a .html file for one input, or a folder for several")
    p.add_argument("--max-mb", type=option_number("--max-mb", above=0), help="refuse files larger than this "
                                                                                "(default 200, > 0)")
    p.add_argument("--max-seconds", type=option_number("--max-seconds", above=0),
                   help="refuse clips longer than this (default 120, > 0)")


def expand(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Files as given (each with ``None``); a folder becomes every file in it (sorted, not recursive), each with
    ``None`` when it decodes or the reason it is skipped, so that the caller reports it instead of losing it."""
    from crossemo_core.clip.decode import media_files

    out: list[tuple[Path, str | None]] = []
    for p in paths:
        if p.is_dir():
            entries = media_files(p)
            if all(reason for _, reason in entries):
                raise DataError(f"{p} holds no video, audio or image file that crossemo (ffmpeg) can read.")
            out += entries
        else:
            out.append((p, None))
    return out


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from crossemo_core.clip.decode import ClipLimits
    from crossemo_core.clip.report import verdicts_table, write_report
    from crossemo_core.clip.verdict import ClipScorer

    entries = expand(list(args.files))
    if args.voice is not None and len(entries) != 1:
        raise DataError(f"--voice goes with a single FILE; {len(entries)} were given.")
    if args.csv is not None:
        check_writable(args.csv, "--csv")
    if args.report is not None:  # a .html file for one input, else a folder of one page per input
        as_file = args.report.suffix.lower() in (".html", ".htm") and not args.report.is_dir()
        if as_file and len(entries) > 1:
            raise OutputError(f"--report {args.report}: {len(entries)} inputs get one page each; give a folder.")
        if not as_file and args.report.exists() and not args.report.is_dir():
            raise OutputError(f"--report {args.report}: exists and is not a folder; give a folder, or a .html file "
                              f"name for a single input.")
        check_writable(args.report, "--report", folder=not as_file)
    limits = ClipLimits()
    if args.max_mb is not None:
        limits = replace(limits, max_bytes=int(args.max_mb * 1_000_000))
    if args.max_seconds is not None:
        limits = replace(limits, max_duration_s=float(args.max_seconds))
    scorer = ClipScorer(args.checkpoint, limits=limits)
    try:
        calibration = scorer.calibration(args.baseline) if args.baseline is not None else None
        results: list[dict[str, Any]] = []
        verdicts = []
        for f, skipped in entries:
            try:
                if skipped:
                    raise DataError(skipped)
                v = scorer.score(f, args.voice, calibration)
            except CrossemoError as exc:
                row = {"file": f.name, "verdict": None, "error": str(exc)}
                results.append(row)
                print(json.dumps(row) if args.json else f"{f.name}: ERROR: {exc}", flush=True)
                continue
            verdicts.append(v)
            row = v.to_dict()
            results.append(row)
            print(json.dumps(row) if args.json else describe(v), flush=True)
        if args.csv:
            atomic_write(args.csv, verdicts_table(results).to_csv(index=False).encode())
            print(f"table written to {args.csv}", file=sys.stderr)
        if args.report and verdicts:
            written = write_report(verdicts, args.report, model=scorer.model)
            print(f"report written to {', '.join(str(w) for w in written)}", file=sys.stderr)
    finally:
        scorer.close()
    return 2 if any("error" in r for r in results) else 0


def describe(v: Any) -> str:
    """A short plain-text account of a :class:`~crossemo_core.clip.verdict.ClipVerdict`."""
    lines = [f"{v.file}{' + ' + v.voice_file if v.voice_file else ''}: {v.label.upper()}"]
    if v.p_inconsistent is not None:
        lines[0] += f" (probability of inconsistency {v.p_inconsistent:.2f})"
    lines.append(f"  {v.reason}")
    if v.conflict:
        lines.append(f"  {v.conflict}")
    for side, d in (("face", v.face), ("voice", v.voice)):
        if d.get("emotion"):
            lines.append(f"  {side}: {d['emotion']} -> {d['valence']} ({d['confidence']:.2f})"
                         + (" uncertain" if d.get("uncertain") else ""))
    marks = []
    for w in v.timeline:
        marks.append(f"{w.start:.1f}s:{w.p_inconsistent:.2f}" if w.p_inconsistent is not None else
                     f"{w.start:.1f}s:{w.status}")
    lines.append("  timeline (window start: p_inconsistent): " + "  ".join(marks))
    lines.append(f"  rule: {v.rule}")
    lines += [f"  note: {n}" for n in v.notes]
    return "\n".join(lines)
