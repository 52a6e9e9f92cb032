"""The app's Clip verdict page under load: several browser sessions at once, then many verdicts in a row.

    python benchmarks/bench_app_load.py [--verdicts 200] [--sessions 5] [--rounds 3] [--warmup 10] [--out docs]
                                        [--note MARKDOWN]

About 13 minutes on 2 cores with the defaults. The server runs the code of this checkout (edits in progress
included): measure a clean tree, e.g. ``git archive HEAD | tar -x -C DIR`` and run DIR's copy with
``CROSSEMO_COMMIT=<commit>`` so that the report names it.

One ``streamlit run app.py`` server (headless, a free localhost port) is driven by Debian's chromium through
playwright (``executable_path``; playwright's own browsers are never downloaded), with tests/browser_support.py
(the helpers tests/test_browser.py uses).

- expected: every input is first judged in this process by the Python API (``ClipScorer().score``); the page must
  show the same verdict, P(inconsistent), embedding posterior, face share, speech seconds and reason.
- phase A (concurrency): ``--sessions`` browser contexts (separate Streamlit sessions) open the Clip verdict page at
  once; in each of ``--rounds`` rounds every session uploads a different input (face/voice pairings of the bundled
  demo clips in assets/clips, under a file name unique to the session and round) and all of them press "Judge this
  clip" together. Each must show the verdict of its own upload and never a file name of another session.
- phase B (endurance): one session judges ``--verdicts`` inputs in a row (cycling through the same pairings, each
  under a fresh name). The server's resident memory (RSS of the server process and its children, from /proc) is
  sampled throughout; growth = RSS at the end - RSS after ``--warmup`` verdicts.

Also reported, outside the pass/fail: tracebacks in the server's log and HTTP >= 500 answers the browsers saw (the
log is copied to test-artifacts/app-load-server.log), and files an uploader had to be given twice. A page that shows
a wrong verdict, an error or nothing leaves a screenshot in test-artifacts/screenshots/load-*.png.

Writes OUT/app_load.md and OUT/app_load.json (atomically). Exit status 1 when a verdict is wrong, a session saw
another's result, or memory grew by 50 MB or more (issue 15).
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import (IDLE_JS, SHOTS, VIEWPORT, BrowserUnavailable, StreamlitServer,  # noqa: E402
                             find_chromium, launch_options)

ASSETS = ROOT / "assets" / "clips"
TIMEOUT_MS = 180_000
GROWTH_LIMIT_MB = 50.0
FAILURE_SHOTS = SHOTS
UPLOAD_RETRIES: list[str] = []
"""Files set on an uploader again because no chip showed them after 30 s."""
HTTP_ERRORS: list[str] = []
"""Server responses the browsers saw fail (status >= 500), as "500 /media/<hash>.jpg"."""
MIME = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".wav": "audio/wav"}
FACE_LABEL = "Video with sound, or a photo / silent video of the face"
VOICE_LABEL = "Voice recording (only if the first file has no sound)"

# Face/voice pairings of the demo clips; neighbours differ in verdict or probability, so concurrent sessions judge
# inputs whose expected results differ.
INPUTS: list[tuple[str, str | None]] = [
    ("smile_upbeat.mp4", None),
    ("smile_low.mp4", None),
    ("face_photo.jpg", "voice_upbeat.wav"),
    ("smile_upbeat.mp4", "smile_low.mp4"),
    ("face_photo.jpg", "smile_low.mp4"),
]


# ------------------------------------------------------------------------------------------------ expected results
@dataclass(frozen=True)
class Expected:
    label: str  # "CONSISTENT (WEAK EVIDENCE)", as the badge shows it
    metrics: tuple[str, str, str, str]  # P(inconsistent), Embedding alone, Face found, Speech, as the page shows them
    reason: str


def expected_results() -> list[Expected]:
    """The Python API's verdict on every pairing, formatted as the Clip verdict page formats it."""
    from crossemo_core.clip.decode import NamedBytes
    from crossemo_core.clip.verdict import ClipScorer

    scorer = ClipScorer()
    out = []
    try:
        for face, voice in INPUTS:
            v = scorer.score(NamedBytes(face, (ASSETS / face).read_bytes()),
                             NamedBytes(voice, (ASSETS / voice).read_bytes()) if voice else None)
            out.append(Expected(
                label=v.label.upper(),
                metrics=("–" if v.p_inconsistent is None else f"{v.p_inconsistent:.2f}",
                         "–" if v.p_embedding is None else f"{v.p_embedding:.2f}",
                         f"{v.face_fraction:.0%}", f"{v.speech_s:.1f} s"),
                reason=_norm(f"Why: {v.reason}")))
    finally:
        scorer.close()
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("*", "")).strip()


# ------------------------------------------------------------------------------------------------ server and memory
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (VmRSS from /proc)."""
    kids, todo, total = _children(), [pid], 0
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


class MemorySampler(threading.Thread):
    """Samples the server's RSS every ``every`` seconds; ``max_since(t)`` is the peak after time t."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples = pid, every, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.time(), tree_rss_mb(self.pid)))
            self._stop_event.wait(self.every)

    def now(self) -> float:
        value = tree_rss_mb(self.pid)
        self.samples.append((time.time(), value))
        return value

    def max_since(self, t0: float) -> float:
        return max((v for t, v in self.samples if t >= t0), default=float("nan"))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


# ------------------------------------------------------------------------------------------------ one browser session
READ_JS = """() => {
  const md = [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')];
  const badge = md.flatMap(m => [...m.querySelectorAll('span')]).find(s => s.style.fontSize === '1.6rem');
  const why = md.map(m => m.innerText).find(t => t.trim().startsWith('Why:'));
  const metrics = {};
  for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
    const l = m.querySelector('[data-testid="stMetricLabel"]'), v = m.querySelector('[data-testid="stMetricValue"]');
    if (l && v) metrics[l.innerText.trim()] = v.innerText.trim();
  }
  const errors = [...document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')]
    .map(e => e.innerText.slice(0, 300));
  return {badge: badge ? badge.innerText.trim() : null, why: why || null, metrics, errors,
          body: document.body.innerText};
}"""

OUTCOME_JS = """(line) => {
  if (document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]')) return 'error';
  return [...document.querySelectorAll('[data-testid="stMarkdownContainer"] strong')]
    .some(s => s.innerText.trim() === line) ? 'result' : false;
}"""

DRAWN_JS = """(line) => {
  if (document.querySelector('[data-testid="stException"], [data-testid="stAlertContentError"]')) return true;
  const md = [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')];
  const strong = md.some(m => [...m.querySelectorAll('strong')].some(s => s.innerText.trim() === line));
  const badge = md.some(m => [...m.querySelectorAll('span')].some(s => s.style.fontSize === '1.6rem'));
  const metrics = document.querySelectorAll('[data-testid="stMetricValue"]').length >= 4;
  const json = [...document.querySelectorAll('button')].some(b => b.innerText.includes('Download the verdict'));
  return strong && badge && metrics && json;
}"""


@dataclass
class Check:
    session: int
    index: int
    file_line: str
    right: bool
    leak: bool
    problems: list[str]
    seconds: float


class Session:
    """One browser context (= one Streamlit session) on the Clip verdict page, in upload mode."""

    def __init__(self, browser, url: str, number: int, tag: str) -> None:
        self.browser, self.url, self.number, self.tag = browser, url, number, tag
        self.context = self.page = None

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport=VIEWPORT)
        self.page = await self.context.new_page()
        self.page.on("response", lambda r: HTTP_ERRORS.append(f"{r.status} {urllib.parse.urlsplit(r.url).path}")
                     if r.status >= 500 else None)
        self.page.set_default_timeout(TIMEOUT_MS)
        await self.page.goto(f"{self.url}/clip")
        await self.page.get_by_role("heading", name="Clip verdict").wait_for()
        await self.idle()
        await self.page.locator('[data-testid="stRadio"] label', has_text="Upload").first.click()
        await self.page.locator('[data-testid="stFileUploader"]', has_text=FACE_LABEL).wait_for()
        await self.idle()

    async def shot(self, what: str) -> None:
        """A screenshot of the page when something went wrong: test-artifacts/screenshots/load-<tag>-<what>.png."""
        try:
            FAILURE_SHOTS.mkdir(parents=True, exist_ok=True)
            path = FAILURE_SHOTS / f"load-{self.tag}-{what}.png"
            await self.page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of session {self.tag}: {path}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - the page may be gone
            print(f"no screenshot of session {self.tag}: {exc}", file=sys.stderr)

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()

    async def idle(self) -> None:
        await self.page.wait_for_timeout(250)
        await self.page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)
        await self.page.wait_for_timeout(250)

    def _uploader(self, label: str):
        return self.page.locator('[data-testid="stFileUploader"]', has_text=label).first

    async def upload(self, label: str, name: str, data: bytes) -> None:
        box = self._uploader(label)
        # the chip shows a shortened name; its title has the whole one
        chip = box.locator(f'[data-testid="stFileChipName"][title="{name}"]')
        for attempt in range(3):  # a file given while the page re-renders can be dropped: give it again
            await box.locator('input[type="file"]').set_input_files(
                {"name": name, "mimeType": MIME[Path(name).suffix], "buffer": data})
            try:
                await chip.wait_for(timeout=30_000 if attempt < 2 else TIMEOUT_MS)
                break
            except Exception:
                if attempt == 2:
                    raise
                UPLOAD_RETRIES.append(name)
                await self.idle()
        await self.idle()
        # one file: the upload replaced the last one
        chips = await box.locator('[data-testid="stFileChipName"]').count()
        if chips != 1:
            raise RuntimeError(f"{chips} files in the uploader {label!r} after uploading {name}")

    async def clear_voice(self) -> None:
        box = self._uploader(VOICE_LABEL)
        delete = box.locator('[data-testid="stFileChipDeleteBtn"] button')
        if await delete.count():
            await delete.first.click()
            await box.locator('[data-testid="stFileChip"]').wait_for(state="detached")
            await self.idle()

    async def prepare(self, names: tuple[str, str | None], which: int) -> None:
        """Upload input ``which`` under the given file names (face, voice)."""
        face, voice = INPUTS[which]
        await self.upload(FACE_LABEL, names[0], (ASSETS / face).read_bytes())
        if voice:
            await self.upload(VOICE_LABEL, names[1], (ASSETS / voice).read_bytes())
        else:
            await self.clear_voice()

    async def judge(self, names: tuple[str, str | None], expected: Expected, index: int,
                    foreign: re.Pattern | None, t0: float) -> Check:
        """Press "Judge this clip" and compare what the page shows with ``expected``."""
        line = names[0] + (f" + {names[1]}" if names[1] else "")
        button = self.page.get_by_role("button", name="Judge this clip")
        await button.wait_for()
        for attempt in range(3):  # a click landing during a rerun can be lost
            await button.click()
            try:  # this upload's result, or an error message
                outcome = await (await self.page.wait_for_function(
                    OUTCOME_JS, arg=line, timeout=60_000 if attempt < 2 else TIMEOUT_MS)).json_value()
                break
            except Exception:
                if attempt == 2:
                    raise
        if outcome == "result":  # drawn to the end (badge, metrics, the download buttons) and the run is over
            await self.page.wait_for_function(DRAWN_JS, arg=line, timeout=TIMEOUT_MS)
        await self.idle()
        seen = await self.page.evaluate(READ_JS)
        problems = []
        if seen["errors"]:
            problems.append(f"error shown: {seen['errors'][0]}")
            return Check(self.number, index, line, right=False, leak=False, problems=problems,
                         seconds=time.time() - t0)
        if seen["badge"] != expected.label:
            problems.append(f"badge {seen['badge']!r}, expected {expected.label!r}")
        shown = tuple(seen["metrics"].get(k) for k in ("P(inconsistent)", "Embedding alone", "Face found", "Speech"))
        if shown != expected.metrics:
            problems.append(f"metrics {shown}, expected {expected.metrics}")
        if _norm(seen["why"] or "") != expected.reason:
            problems.append(f"reason {_norm(seen['why'] or '')[:160]!r}, expected {expected.reason[:160]!r}")
        leaked = sorted({m.group(0) for m in foreign.finditer(seen["body"])}) if foreign else []
        if leaked:
            problems.append(f"another session's file name on the page: {leaked}")
        return Check(self.number, index, line, right=not [p for p in problems if not p.startswith("another")],
                     leak=bool(leaked), problems=problems, seconds=time.time() - t0)


# ------------------------------------------------------------------------------------------------ the two phases
def _failed(session: int, index: int, names: tuple[str, str | None], problem: str, t0: float) -> Check:
    return Check(session, index, names[0] + (f" + {names[1]}" if names[1] else ""), right=False, leak=False,
                 problems=[problem], seconds=time.time() - t0)


def _names(tag: str, which: int) -> tuple[str, str | None]:
    face, voice = INPUTS[which]
    return f"{tag}-{face}", (f"{tag}-voice-{voice}" if voice else None)


async def phase_a(browser, url: str, expected: list[Expected], sessions: int, rounds: int) -> tuple[list[Check], float]:
    barrier = asyncio.Barrier(sessions)
    opened = [Session(browser, url, i, f"A{i}") for i in range(sessions)]

    async def run(s: Session) -> list[Check]:
        """Every session goes through every round and both barriers, even after a failure of its own (the
        failure is its round's result), so that one broken session cannot hold up the others."""
        checks = []
        failure = None
        try:
            await s.open()
        except Exception as exc:  # noqa: BLE001 - reported as this session's failed verdicts
            failure = f"the page did not open: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        foreign = re.compile(rf"\bA(?!{s.number}-)\d+-r\d+-")
        for r in range(rounds):
            which = (s.number + r) % len(INPUTS)
            names = _names(f"A{s.number}-r{r}", which)
            t0 = time.time()
            problem = failure
            if problem is None:
                try:
                    await s.prepare(names, which)
                except Exception as exc:  # noqa: BLE001
                    problem = f"upload failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            await barrier.wait()  # all sessions press the button together
            if problem is None:
                t0 = time.time()
                try:
                    checks.append(await s.judge(names, expected[which], r, foreign, t0))
                except Exception as exc:  # noqa: BLE001
                    problem = f"no verdict: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            if problem is not None:
                checks.append(_failed(s.number, r, names, problem, t0))
            if checks[-1].problems and failure is None:
                await s.shot(f"r{r}")
            await barrier.wait()  # and look at the result before anyone uploads the next input
        return checks

    t0 = time.time()
    try:
        results = await asyncio.gather(*(run(s) for s in opened))
    finally:
        await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    return [c for r in results for c in r], time.time() - t0


async def phase_b(browser, url: str, expected: list[Expected], verdicts: int, warmup: int, memory: MemorySampler,
                  progress) -> tuple[list[Check], float, dict]:
    s = Session(browser, url, 0, "B")
    await s.open()
    checks, mem = [], {"per_verdict": []}
    foreign = re.compile(r"\bA\d+-r\d+-")  # phase A's sessions are closed: none of theirs may show up
    t_start = time.time()
    t_warm = None
    try:
        for k in range(verdicts):
            which = k % len(INPUTS)
            names = _names(f"B{k:03d}", which)
            t0 = time.time()
            try:
                await s.prepare(names, which)
                checks.append(await s.judge(names, expected[which], k, foreign, t0))
            except Exception as exc:  # noqa: BLE001 - a failed verdict; three in a row end the phase
                checks.append(_failed(0, k, names, f"no verdict: {type(exc).__name__}: "
                                                   f"{str(exc).splitlines()[0]}", t0))
            if checks[-1].problems:
                await s.shot(f"{k:03d}")
            if len(checks) >= 3 and not any(c.right for c in checks[-3:]):
                progress(k + 1, checks[-1])
                print(f"phase B: three wrong verdicts in a row; stopping after {k + 1} verdicts", flush=True)
                break
            if k + 1 == warmup:
                await asyncio.sleep(1.0)
                mem["warm"], t_warm = memory.now(), time.time()
            mem["per_verdict"].append(round(memory.samples[-1][1], 1))
            progress(k + 1, checks[-1])
        await asyncio.sleep(1.0)
        mem["end"] = memory.now()
        mem["max"] = memory.max_since(t_warm if t_warm is not None else t_start)
        after = mem["per_verdict"][warmup:]
        if len(after) >= 20:  # RSS swings by tens of MB between verdicts: medians of 10 show the trend
            mem["median_growth"] = round(_median(after[-10:]) - _median(after[:10]), 1)
    finally:
        await s.close()
    return checks, time.time() - t_start, mem


# ------------------------------------------------------------------------------------------------ report
def _code_version() -> str | None:
    """The commit the app ran from (with "+changes" when app or core files differ from it); $CROSSEMO_COMMIT when
    the code is not a git checkout (e.g. a ``git archive`` snapshot)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app.py", "pages", "crossemo_app",
                                "crossemo_core", ".streamlit"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("CROSSEMO_COMMIT")


def _server_errors(log: str) -> dict:
    """Tracebacks in the server's log and the failed responses the browsers saw, grouped by kind of path."""
    kinds: dict[str, int] = {}
    for e in HTTP_ERRORS:
        status, path = e.split(" ", 1)
        kind = f"{status} " + re.sub(r"/[0-9a-f]{16,}(\.\w+)$", r"/<hash>\1", path)
        kinds[kind] = kinds.get(kind, 0) + 1
    last = None
    if "Traceback" in log:
        tail = log[log.rindex("Traceback"):].splitlines()
        last = next((ln.strip() for ln in tail[1:] if ln and not ln.startswith(" ")), tail[-1].strip())
    return {"tracebacks": log.count("Traceback (most recent call last)"), "last_error": last, "http_5xx": kinds,
            "log": "test-artifacts/app-load-server.log"}


COLUMNS = ["phase", "sessions", "verdicts", "all right", "wrong", "leaks", "wall s", "s / verdict", "RSS warm MB",
           "RSS end MB", "RSS max MB", "growth MB", "median growth MB"]


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2


def _row(phase: str, sessions: int, checks: list[Check], wall: float, mem: dict) -> dict:
    n = len(checks)
    f = (lambda k: round(mem[k], 1) if k in mem else None)
    return {"phase": phase, "sessions": sessions, "verdicts": n, "all right": all(c.right for c in checks) and n > 0,
            "wrong": sum(not c.right for c in checks), "leaks": sum(c.leak for c in checks), "wall s": round(wall, 1),
            "s / verdict": round(wall / n, 2) if n else None, "RSS warm MB": f("warm"), "RSS end MB": f("end"),
            "RSS max MB": f("max"),
            "growth MB": round(mem["end"] - mem["warm"], 1) if phase.startswith("B") else None,
            "median growth MB": mem.get("median_growth")}


def _table(rows: list[dict]) -> str:
    def cell(v) -> str:
        return "–" if v is None else ("yes" if v is True else "no" if v is False else str(v))
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def _markdown(result: dict) -> str:
    a, b = result["settings"], result["machine"]
    pairings = ", ".join(f"`{f}`" + (f" + voice `{v}`" if v else "") for f, v in INPUTS)
    lines = [
        "# App under load: Clip verdict page (issue 15)",
        "",
        (f"Measured by `python benchmarks/bench_app_load.py --sessions {a['sessions']} --rounds {a['rounds']} "
         f"--verdicts {a['verdicts']}` on {b['cpus']} CPU cores ({b['machine']}, no GPU, Python {b['python']}, "
         f"streamlit {b['streamlit']}, starlette {b['starlette']}, Debian chromium driven by playwright), "
         f"{result['date']}, code {result['code'] or 'unknown'}. The whole run took "
         f"{result['total_s'] / 60:.0f} min; 1-minute load average {b['load_average_1min'].get('start')} at the "
         f"start, {b['load_average_1min'].get('end')} at the end (the server, chromium and the benchmark share "
         f"the cores with whatever else runs, which shows in the seconds per verdict)."),
        "",
        _table(result["rows"]),
        "",
        *([result["note"], ""] if result.get("note") else []),
        (f"Method: one `streamlit run app.py` server on a free localhost port. The inputs are five face/voice "
         f"pairings of the bundled demo clips (assets/clips): {pairings}. Each is first judged in the benchmark "
         f"process by the Python API (`ClipScorer().score`); a verdict on the page is *right* when its badge, "
         f"P(inconsistent), embedding posterior, face share, speech seconds and reason are what the API gives for "
         f"the same input, under the file name that was uploaded, with no error message on the page."),
        "",
        (f"- **A, concurrency**: {a['sessions']} browser contexts (separate Streamlit sessions) open the Clip "
         f"verdict page together; in each of {a['rounds']} rounds every session uploads a different pairing under "
         f"a file name unique to it (`A<session>-r<round>-...`) and all press *Judge this clip* at the same "
         f"moment. A *leak* is a page showing a file name of another session. RSS warm is the freshly started "
         f"server before any session opened, so A's end - warm is the clip model and the sessions, not a leak; "
         f"RSS max is the peak during the phase."),
        (f"- **B, endurance**: one session judges {a['verdicts']} inputs in a row, cycling through the pairings "
         f"(upload the face, upload or remove the voice, judge), each under a fresh file name; phase A's sessions "
         f"are closed and none of their file names may show up. RSS warm is the server's resident memory after "
         f"{a['warmup']} verdicts, RSS end after the last; growth = end - warm (target < {GROWTH_LIMIT_MB:.0f} "
         f"MB); RSS max is the peak after the warm-up. RSS can move by tens of MB from one verdict to the next "
         f"(allocator), so *median growth* (median RSS after the last 10 verdicts - median after the 10 following "
         f"the warm-up) shows the trend more steadily. Seconds per verdict include the uploads and the browser "
         f"drawing the page (charts, thumbnails), not just the scoring."),
        "",
        ("RSS is the server process and its children (VmRSS from /proc), sampled every 0.25 s; app_load.json has "
         "the RSS after every verdict of phase B."),
    ]
    if result["problems"]:
        lines += ["", "Problems seen:", ""] + [f"- {p}" for p in result["problems"][:20]]
    if result["upload_retries"]:
        lines += ["", (f"Files given to an uploader a second time because it did not show them after 30 s (not "
                       f"counted as wrong when the second try worked): {len(result['upload_retries'])} "
                       f"({', '.join(result['upload_retries'][:5])}).")]
    err = result["server_errors"]
    if err["tracebacks"] or err["http_5xx"]:
        failed = ", ".join(f"{n} x `{k}`" for k, n in err["http_5xx"].items()) or "none"
        lines += ["", (f"Server errors outside the verdict checks: {err['tracebacks']} tracebacks in the server's "
                       f"log (last: `{err['last_error']}`); failed responses the browsers saw: {failed}.")]
        if "Expected ASGI message 'http.response.start'" in (err["last_error"] or ""):
            lines += ["", ("Cause: Streamlit 1.60's gzip middleware for media does not send the response start "
                           "that Starlette >= 1.8 leaves to it, so every image, video and favicon response fails "
                           "with HTTP 500: the page's face thumbnails and the sample video are not shown. "
                           "Streamlit >= 1.62 (which hands media to Starlette's own middleware) or Starlette < 1.8 "
                           "fixes it; with starlette 1.7.0 `/favicon.png` answers 200 and the log stays clean.")]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verdicts", type=int, default=200, help="phase B: verdicts in a row from one session")
    ap.add_argument("--sessions", type=int, default=5, help="phase A: browser sessions at once")
    ap.add_argument("--rounds", type=int, default=3, help="phase A: verdicts per session")
    ap.add_argument("--warmup", type=int, default=10, help="phase B: verdicts before the memory baseline")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--note", default="", help="a paragraph (markdown) added under the table in app_load.md")
    args = ap.parse_args()
    try:
        chromium = find_chromium(install=False)
    except BrowserUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    from playwright.async_api import async_playwright

    from crossemo_core.paths import atomic_write

    started = time.time()
    load = {"start": round(os.getloadavg()[0], 2)}
    versions = {name: importlib.metadata.version(name) for name in ("streamlit", "starlette", "playwright")}
    t = time.time()
    expected = expected_results()
    print(f"expected verdicts from the Python API ({time.time() - t:.1f} s):")
    for (face, voice), e in zip(INPUTS, expected):
        print(f"  {face}{' + ' + voice if voice else '':<20} {e.label:<30} P {e.metrics[0]}")

    with tempfile.TemporaryDirectory(prefix="crossemo-load-") as tmp:
        server = StreamlitServer(Path(tmp) / "server.log")
        memory = MemorySampler(server.pid)
        memory.start()
        rows, problems, extra = [], [], {}
        try:
            async def drive() -> None:
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(**launch_options(chromium))
                    try:
                        t_a = time.time()
                        mem_a = {"warm": memory.now()}
                        checks, wall = await phase_a(browser, server.url, expected, args.sessions, args.rounds)
                        await asyncio.sleep(1.0)
                        mem_a.update(end=memory.now(), max=memory.max_since(t_a))
                        rows.append(_row("A concurrency", args.sessions, checks, wall, mem_a))
                        problems.extend(f"A session {c.session} round {c.index} ({c.file_line}): {p}"
                                        for c in checks for p in c.problems)
                        print(f"phase A: {len(checks)} verdicts from {args.sessions} sessions in {wall:.1f} s, "
                              f"{sum(not c.right for c in checks)} wrong, {sum(c.leak for c in checks)} leaks")

                        def progress(k: int, c: Check) -> None:
                            if c.problems or k % 20 == 0 or k == args.verdicts:
                                print(f"phase B: {k}/{args.verdicts} ({time.time() - t_a:.0f} s), "
                                      f"RSS {memory.samples[-1][1]:.0f} MB"
                                      + (f"; verdict {k}: {c.problems}" if c.problems else ""), flush=True)

                        checks, wall, mem_b = await phase_b(browser, server.url, expected, args.verdicts,
                                                            min(args.warmup, args.verdicts), memory, progress)
                        rows.append(_row("B endurance", 1, checks, wall, mem_b))
                        extra["rss_after_each_verdict_mb"] = mem_b["per_verdict"]
                        problems.extend(f"B verdict {c.index} ({c.file_line}): {p}"
                                        for c in checks for p in c.problems)
                    finally:
                        await browser.close()

            asyncio.run(drive())
            load["end"] = round(os.getloadavg()[0], 2)
        finally:
            memory.stop()
            server.stop()
            log = server.save_log(FAILURE_SHOTS.parent / "app-load-server.log").read_text()
        server_errors = _server_errors(log)

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "total_s": round(time.time() - started, 1),
        "settings": {"sessions": args.sessions, "rounds": args.rounds, "verdicts": args.verdicts,
                     "warmup": args.warmup, "growth_limit_mb": GROWTH_LIMIT_MB},
        "code": _code_version(),
        "machine": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                    **versions,  # as installed when the server started
                    "load_average_1min": load},
        "inputs": [{"face": f, "voice": v, "expected": e.label, "p_inconsistent": e.metrics[0]}
                   for (f, v), e in zip(INPUTS, expected)],
        "rows": rows,
        "note": args.note,
        "problems": problems,
        "server_errors": server_errors,
        "upload_retries": UPLOAD_RETRIES,
        **extra,
        "rss_every_5s_mb": [round(v, 1) for _, v in memory.samples[::20]],
    }
    growth = rows[-1]["growth MB"] if rows else None
    ok = (len(rows) == 2 and all(r["all right"] and r["leaks"] == 0 for r in rows)
          and growth is not None and growth < GROWTH_LIMIT_MB)
    result["passed"] = ok
    atomic_write(args.out / "app_load.json", (json.dumps(result, indent=2) + "\n").encode())
    atomic_write(args.out / "app_load.md", _markdown(result).encode())
    print()
    print(_table(rows))
    for p in problems[:20]:
        print("problem:", p)
    if server_errors["tracebacks"] or server_errors["http_5xx"]:
        print(f"server errors (not verdict failures): {server_errors['tracebacks']} tracebacks in its log "
              f"({server_errors['last_error']}); failed responses seen by the browsers: {server_errors['http_5xx']}")
    print(f"{'PASSED' if ok else 'FAILED'} in {time.time() - started:.0f} s; wrote {args.out / 'app_load.md'} and "
          f"{args.out / 'app_load.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
