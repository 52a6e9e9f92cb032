"""``python -m crossemo_core score FILE... [--voice FILE] [--baseline FILE] [--json] [--csv OUT] [--segments OUT]
[--report OUT]``.

Registered by :mod:`crossemo_core.cli`. One verdict per file; a folder stands for every supported file in it.
A file that cannot be judged (unreadable, no face track, ...) gets an ``error`` entry and the others go on;
the exit status is 2 when any file failed. Recordings of any length up to ``--max-seconds`` (default 2 hours) are
analysed in bounded memory; one longer than a minute shows a progress bar with the time left on stderr (when stderr
is a terminal).

**Ctrl-C** (the first) ends the analysis at the next frame with the verdict of what it analysed (a second one
stops at once), and exits with status 130 and one line on stderr. The outputs named on the command line
(``--csv``, ``--segments``, ``--report``) are not written or changed. What was finished is not lost: the files
judged before, and the part of the current recording analysed so far (judged as a recording that ends there), are
printed on stdout, and written to ``NAME.partial.csv`` beside ``--csv`` / ``--segments`` when they were given; the
line on stderr says how far the analysis got and where the partial files are.

**Resume.** While a single FILE is analysed with ``--segments`` (or ``--csv``), its finished windows are appended
to ``OUT.resume.jsonl`` beside that output as they are finished (:class:`Journal`); the file is deleted when the
analysis completes and kept when it is interrupted or the process dies. ``--resume`` continues from the last finished
window: the recording is decoded again from the start but only the windows not finished are read and scored, and
they are those an uninterrupted analysis gives. Without ``--resume`` a journal of the same recording is an error
(as ``train`` does with its resume state); one of another recording is replaced.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

from crossemo_core.errors import CrossemoError, DataError, OutputError, single_line
from crossemo_core.executors import add_executor_args, executor_from
from crossemo_core.interrupts import first_ctrl_c_sets
from crossemo_core.paths import atomic_write, check_writable
from crossemo_core.settings import option_number, output_path

PROGRESS_ABOVE_S = 60.0
"""Recordings longer than this get a progress bar on stderr."""


def add_score_parser(sub: Any) -> None:
    p = sub.add_parser(
        "score", help="judge face/voice clips or whole sessions: consistent, inconsistent or undetermined, with a "
                      "timeline and the stretches where face and voice part ways",
        description="Does the emotion of the face agree with the emotion of the voice? Prints a verdict per file "
                    "and, for long recordings, the stretches where they part ways. Research tool, not a diagnostic "
                    "device.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="a video with sound (mp4, mov, m4v, webm, mkv, avi), or a photo/silent video with --voice; "
                        "a folder means every supported file in it")
    p.add_argument("--voice", type=Path, help="the voice as a separate recording (wav, flac, mp3, ogg, m4a, or a "
                                              "video's sound); only with a single FILE")
    p.add_argument("--baseline", type=Path, help="a calm, neutral clip of the same person: the face and voice are "
                                                 "then judged relative to this person's own rest")
    p.add_argument("--checkpoint", type=Path, default=None, help="clip model (default: checkpoints/clip.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (one per line)")
    p.add_argument("--csv", type=output_path("--csv"), help="also write a table of all verdicts to this CSV file")
    p.add_argument("--segments", type=output_path("--segments"), metavar="OUT.csv",
                   help="also write every file's segments (stretches with one outcome: start, end, outcome, "
                        "strength, which side changed) to this CSV file")
    p.add_argument("--report", type=output_path("--report", folder_ok=True),
                   help="write a one-page HTML report: a .html file for one input, or a folder for several")
    p.add_argument("--max-mb", type=option_number("--max-mb", above=0), help="refuse files larger than this "
                                                                                "(default 10000, > 0)")
    p.add_argument("--max-seconds", type=option_number("--max-seconds", above=0),
                   help="refuse recordings longer than this (default 7200, > 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted analysis of FILE from its last finished window (its state is kept "
                        "in OUT.resume.jsonl beside --segments, else --csv, while a single FILE is analysed)")
    add_executor_args(p, default_jobs=1)


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


def partial_path(path: Path) -> Path:
    """Where the finished part goes when an analysis is interrupted: ``segments.csv`` -> ``segments.partial.csv``."""
    return path.with_name(f"{path.stem}.partial{path.suffix or '.csv'}")


def resume_path(path: Path) -> Path:
    """Where the finished windows of the analysis in progress are kept: ``segments.csv`` ->
    ``segments.resume.jsonl``."""
    return path.with_name(f"{path.stem}.resume.jsonl")


class Journal:
    """The resume state of one recording's analysis: a JSON-lines file whose first line names the recording (name
    and size) and whose other lines are its finished windows, in order, appended (and flushed) as they are finished.
    Deleted when the analysis completes; kept when it is interrupted or crashes, for ``--resume``."""

    VERSION = 1

    def __init__(self, path: Path, source: Path) -> None:
        self.path, self.source = path, source
        self.header = {"journal": "crossemo-score-resume", "version": self.VERSION, "file": source.name,
                       "size": source.stat().st_size if source.is_file() else None}
        self._handle: Any = None
        self.n = 0

    def load(self) -> list[Any]:
        """The finished windows kept for this recording ([] when there is no journal); OutputError when the journal
        is another recording's or unreadable. A last line cut short by a crash is ignored."""
        from crossemo_core.clip.score import Window

        if not self.path.exists():
            return []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            head = json.loads(lines[0]) if lines else {}
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise OutputError(f"{self.path} cannot be read ({exc}); delete it to start afresh.") from None
        if {k: head.get(k) for k in self.header} != self.header:
            raise OutputError(f"{self.path} holds the unfinished analysis of {head.get('file', 'another file')} "
                              f"({head.get('size')} bytes), not of {self.source.name}; give that file, or delete "
                              f"{self.path.name} to start afresh.")
        windows = []
        for line in lines[1:]:
            try:
                windows.append(Window.from_record(json.loads(line)))
            except (ValueError, TypeError):
                break  # the line being written when the process ended
        return windows

    def start(self, finished: list[Any]) -> None:
        """Write the journal afresh (the header and ``finished``), then keep it open for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w", encoding="utf-8")
        self._handle.write(json.dumps(self.header) + "\n")
        self.add(finished)

    def add(self, windows: list[Any]) -> None:
        if self._handle is None or not windows:
            return
        self._handle.write("".join(json.dumps(w.to_record()) + "\n" for w in windows))
        self._handle.flush()
        self.n += len(windows)

    def close(self, done: bool) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if done:
            self.path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from crossemo_core.clip.decode import ClipLimits
    from crossemo_core.clip.verdict import ClipScorer

    entries = expand(list(args.files))
    if args.voice is not None and len(entries) != 1:
        raise DataError(f"--voice goes with a single FILE; {len(entries)} were given.")
    segments_out = getattr(args, "segments", None)
    inputs = [f for f, _ in entries] + [args.voice, args.baseline, args.checkpoint]
    for target, option in ((args.csv, "--csv"), (segments_out, "--segments")):
        if target is not None:
            check_writable(target, option, inputs=inputs)
    if args.csv is not None and segments_out is not None and args.csv.resolve() == segments_out.resolve():
        raise OutputError(f"--csv and --segments both name {args.csv}; give two files.")
    if args.report is not None:  # a .html file for one input, else a folder of one page per input
        as_file = args.report.suffix.lower() in (".html", ".htm") and not args.report.is_dir()
        if as_file and len(entries) > 1:
            raise OutputError(f"--report {args.report}: {len(entries)} inputs get one page each; give a folder.")
        if not as_file and args.report.exists() and not args.report.is_dir():
            raise OutputError(f"--report {args.report}: exists and is not a folder; give a folder, or a .html file "
                              f"name for a single input.")
        check_writable(args.report, "--report", folder=not as_file, inputs=inputs)
    limits = ClipLimits()
    if args.max_mb is not None:
        limits = replace(limits, max_bytes=int(args.max_mb * 1_000_000))
    if args.max_seconds is not None:
        limits = replace(limits, max_duration_s=float(args.max_seconds))
    resume = getattr(args, "resume", False)
    target = segments_out or args.csv
    journal = None
    if len(entries) == 1 and target is not None and not entries[0][1]:
        journal = Journal(resume_path(target), entries[0][0])
        check_writable(journal.path, "--segments" if segments_out is not None else "--csv")
        if journal.path.exists() and not resume:
            try:
                journal.load()
            except OutputError:
                pass  # another recording's: replaced by this one's
            else:
                raise OutputError(f"{journal.path} holds an unfinished analysis of {entries[0][0].name}; give "
                                  f"--resume to continue it, or delete it to start afresh.")
    elif resume:
        raise OutputError("--resume continues the analysis of a single FILE with --segments or --csv (where its "
                          "state is kept).")
    if len(entries) > 1 and (args.executor != "local" or args.jobs > 1):
        return _run_spread(args, entries, limits, segments_out)
    finished = journal.load() if journal is not None and resume else []
    if resume and journal is not None:
        print(f"resuming {entries[0][0].name} after {len(finished)} finished windows ({journal.path.name})"
              if finished else f"nothing to resume in {journal.path}; analysing {entries[0][0].name} from the start",
              file=sys.stderr)
    scorer: ClipScorer | None = ClipScorer(args.checkpoint, limits=limits)
    model = scorer.model  # for the reports (the scorer is replaced after an unforeseen failure)
    results: list[dict[str, Any]] = []
    verdicts = []
    stop = threading.Event()
    try:
        calibration = scorer.calibration(args.baseline) if args.baseline is not None else None
        for f, skipped in entries:
            scorer = scorer or ClipScorer(args.checkpoint, limits=limits)
            if stop.is_set():
                return _interrupted(KeyboardInterrupt(), f.name, args, results, segments_out, stopped=True)
            bar = _Bar(f.name)
            try:
                if skipped:
                    raise DataError(skipped)
                if journal is not None:
                    journal.start(finished)
                with first_ctrl_c_sets(stop):
                    v = scorer.score(f, args.voice, calibration, progress=bar.update, should_stop=stop.is_set,
                                     resume=finished, on_windows=journal.add if journal is not None else None)
            except Exception as exc:  # noqa: BLE001 - one file's failure, even an unforeseen one, costs only that file
                bar.close()
                if journal is not None:  # an unforeseen failure keeps the journal for --resume
                    journal.close(done=isinstance(exc, CrossemoError))
                    if isinstance(exc, OSError):  # the journal could not be written: the command stops
                        raise
                row = {"file": f.name, "verdict": None, "error": failure_message(exc)}
                results.append(row)
                print(json.dumps(row) if args.json else single_line(f"{f.name}: ERROR: {row['error']}"), flush=True)
                if not isinstance(exc, CrossemoError):  # the scorer may be what failed: the next file gets a new one
                    with contextlib.suppress(Exception):
                        scorer.close()
                    scorer = None
                continue
            except KeyboardInterrupt as exc:
                bar.close()
                if journal is not None:
                    journal.close(done=False)
                return _interrupted(exc, f.name, args, results, segments_out, journal=journal)
            bar.close()
            stopped = stop.is_set() and getattr(v, "partial", None) is not None
            if journal is not None:
                journal.close(done=not stopped)
            if stopped:  # the first Ctrl-C: the analysis stopped and judged what it had
                from crossemo_core.clip.session import AnalysisInterrupted

                return _interrupted(AnalysisInterrupted(v, v.duration_s, _declared(f)), f.name, args, results,
                                    segments_out, journal=journal)
            verdicts.append(v)
            row = v.to_dict()
            results.append(row)
            print(json.dumps(row) if args.json else describe(v), flush=True)
        _write_outputs(args, results, verdicts, segments_out, lambda: model)
    finally:
        if scorer is not None:
            scorer.close()
    return 2 if any("error" in r for r in results) else 0


_WORKER_SCORERS: dict[tuple[Any, ...], Any] = {}
"""One ClipScorer per worker process and settings, kept between that worker's files."""


def _judge_one(shared: tuple[Any, ...], entry: tuple[Path, str | None]) -> tuple[Any, str | None]:
    """An executor task: (verdict, None) for one file, or (None, the one-line reason it cannot be judged)."""
    from crossemo_core.clip.verdict import ClipScorer

    checkpoint, limits, voice, baseline = shared
    f, skipped = entry
    key = (checkpoint, limits, baseline)
    try:
        if key not in _WORKER_SCORERS:
            scorer = ClipScorer(checkpoint, limits=limits)
            _WORKER_SCORERS[key] = (scorer, scorer.calibration(baseline) if baseline is not None else None)
        scorer, calibration = _WORKER_SCORERS[key]
        if skipped:
            raise DataError(skipped)
        return scorer.score(f, voice, calibration), None
    except CrossemoError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - unforeseen: this file's row says so, and the next file gets a new scorer
        broken = _WORKER_SCORERS.pop(key, None)
        if broken is not None:
            with contextlib.suppress(Exception):
                broken[0].close()
        return None, failure_message(exc)


def failure_message(exc: BaseException) -> str:
    """One line for a file that could not be judged: a :class:`CrossemoError`'s own message, or, for an error no
    check foresaw, its type and message (control characters escaped, at most 300 characters), marked as
    unexpected."""
    if isinstance(exc, CrossemoError):
        return str(exc)
    text = single_line(str(exc).strip())[:300] or "no details"
    return f"unexpected error ({type(exc).__name__}: {text})"


def _run_spread(args: argparse.Namespace, entries: list[tuple[Path, str | None]], limits: Any,
                segments_out: Path | None) -> int:
    """A folder's files as tasks of the executor the command line asks for (local processes or Ray); the
    verdicts are the ones judged one after another in this process, printed and written in the same order."""
    from crossemo_core.clip.score import ClipModel

    with executor_from(args) as executor:
        outcomes = executor.map(_judge_one, entries, shared=(args.checkpoint, limits, args.voice, args.baseline))
    results: list[dict[str, Any]] = []
    verdicts = []
    for (f, _), (verdict, error) in zip(entries, outcomes):
        if verdict is None:
            row = {"file": f.name, "verdict": None, "error": error}
            print(json.dumps(row) if args.json else single_line(f"{f.name}: ERROR: {error}"), flush=True)
        else:
            verdicts.append(verdict)
            row = verdict.to_dict()
            print(json.dumps(row) if args.json else describe(verdict), flush=True)
        results.append(row)
    _write_outputs(args, results, verdicts, segments_out, lambda: ClipModel.load(args.checkpoint))
    return 2 if any("error" in r for r in results) else 0


def _write_outputs(args: argparse.Namespace, results: list[dict[str, Any]], verdicts: list[Any],
                   segments_out: Path | None, model: Any) -> None:
    """The table (``--csv``), the segments (``--segments``) and the reports (``--report``; ``model()`` gives the
    clip model they describe), each written atomically."""
    from crossemo_core.clip.report import segments_table, verdicts_table, write_report

    for target, table, what in ((args.csv, verdicts_table, "table"), (segments_out, segments_table, "segments")):
        if not target:
            continue
        if not verdicts and Path(target).exists():  # every file failed: an earlier table is worth more than errors
            print(f"nothing was judged, so {target} was left as it was", file=sys.stderr)
            continue
        atomic_write(target, table(results).to_csv(index=False).encode())
        print(f"{what} written to {target}", file=sys.stderr)
    if args.report and verdicts:
        written = write_report(verdicts, args.report, model=model())
        print(f"report written to {', '.join(str(w) for w in written)}", file=sys.stderr)


def _declared(path: Path) -> float | None:
    """The recording's declared length (None when unknown): for the line that says how far an analysis got."""
    from crossemo_core.clip.decode import open_media

    try:
        with open_media(path) as stream:
            return stream.expected_s
    except CrossemoError:
        return None


def _interrupted(exc: KeyboardInterrupt, name: str, args: argparse.Namespace, results: list[dict[str, Any]],
                 segments_out: Path | None, journal: Journal | None = None, stopped: bool = False) -> int:
    """Ctrl-C while judging ``name``: print and save what was finished (see the module docstring); returns 130."""
    from crossemo_core.clip.report import segments_table, verdicts_table
    from crossemo_core.clip.segments import fmt_clock
    from crossemo_core.clip.session import AnalysisInterrupted

    partial = exc.partial if isinstance(exc, AnalysisInterrupted) else None
    where = ""
    if isinstance(exc, AnalysisInterrupted):
        where = f" at {fmt_clock(exc.done_s)}" + (f" of {fmt_clock(exc.total_s)}" if exc.total_s else "")
    rows = list(results)
    if partial is not None:
        row = partial.to_dict()
        rows.append(row)
        print(json.dumps(row) if args.json else describe(partial), flush=True)
    written = []
    if rows:
        for target, table in ((args.csv, verdicts_table), (segments_out, segments_table)):
            if target is not None:
                path = partial_path(target)
                atomic_write(path, table(rows).to_csv(index=False).encode())
                written.append(str(path))
    finished = f"{len(results)} file{'s' if len(results) != 1 else ''} finished before it"
    kept = (f"the part analysed ({len(partial.timeline)} windows) and {finished}" if partial is not None
            else finished)
    saved = f"; written to {', '.join(written)}" if written else ""
    again = (f"; continue with --resume ({journal.n} finished windows kept in {journal.path.name})"
             if journal is not None and journal.path.exists() else "")
    if stopped:
        kept = f"{finished.split(' before')[0]}; {name} was not started"
    print(f"interrupted{where} in {name}: {kept}{saved}; the outputs named on the command line were not written "
          f"or changed{again}", file=sys.stderr)
    return 130


class _Bar:
    """A tqdm progress bar on stderr (seconds of media, time left), shown for recordings longer than
    :data:`PROGRESS_ABOVE_S` when stderr is a terminal."""

    def __init__(self, name: str) -> None:
        self.name, self.bar = name, None

    def update(self, done: float, total: float | None, eta: float | None) -> None:  # noqa: ARG002 - tqdm's own ETA
        if self.bar is None:
            if (total or done) <= PROGRESS_ABOVE_S:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=round(total) if total else None, desc=self.name, unit="s", disable=None,
                            file=sys.stderr, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                                                        "of media [{elapsed} elapsed, {remaining} left]"
                            if total else None, leave=False)
        self.bar.n = min(round(done), self.bar.total) if self.bar.total else round(done)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def describe(v: Any) -> str:
    """A short plain-text account of a :class:`~crossemo_core.clip.verdict.ClipVerdict` (for a long recording the
    segments instead of every window)."""
    from crossemo_core.clip.segments import fmt_clock

    lines = [single_line(f"{v.file}{' + ' + v.voice_file if v.voice_file else ''}: {v.label.upper()}")]
    if v.p_inconsistent is not None:
        lines[0] += f" (probability of inconsistency {v.p_inconsistent:.2f})"
    if getattr(v, "partial", None):
        lines[0] += " [PARTIAL]"
    lines.append(f"  {v.reason}")
    if v.conflict:
        lines.append(f"  {v.conflict}")
    for side, d in (("face", v.face), ("voice", v.voice)):
        if d.emotion:
            lines.append(f"  {side}: {d.emotion} -> {d.valence} ({d.confidence:.2f})"
                         + (" uncertain" if d.uncertain else ""))
    if v.duration_s <= 120:
        marks = []
        for w in v.timeline:
            marks.append(f"{w.start:.1f}s:{w.p_inconsistent:.2f}" if w.p_inconsistent is not None else
                         f"{w.start:.1f}s:{w.status}")
        lines.append("  timeline (window start: p_inconsistent): " + "  ".join(marks))
    if getattr(v, "session", None) is not None and v.duration_s > 120:
        lines.append(f"  session: {v.session.sentence()}")
        inconsistent = [s for s in v.segments if s.outcome == "inconsistent"]
        for s in inconsistent[:50]:
            lines.append(f"  inconsistent {fmt_clock(s.start)}-{fmt_clock(s.end)} ({s.strength} evidence, p "
                         f"{s.p_mean:.2f}; changed: {s.changed or '-'})")
        if len(inconsistent) > 50:
            lines.append(f"  ... {len(inconsistent) - 50} more (--segments OUT.csv lists them all)")
    lines.append(f"  rule: {v.rule}")
    lines += [f"  note: {n}" for n in v.notes]
    return "\n".join(lines)
