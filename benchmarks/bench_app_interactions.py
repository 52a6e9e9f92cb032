"""How fast the app answers a threshold change (issue 16): the Similarity and Verdicts pages on the bundled demo.

    OMP_NUM_THREADS=1 python benchmarks/bench_app_interactions.py [--moves 12] [--scales 1 10] [--browser]
                                                                  [--out docs] [--note MARKDOWN]

The app is driven in this process by ``streamlit.testing.v1.AppTest`` (as tests/test_app.py does): it opens on the
bundled demo data and checkpoint, goes to the Similarity page and moves the threshold slider ``--moves`` times
(0.30, 0.35, ... and back), then does the same with the Verdicts page's slider (it sets the same threshold). One
interaction is one ``set_value(...).run()``: the whole script run the browser would wait for (app.py, the page,
its tables and Plotly figures), plus AppTest's own polling (a few ms). The first opening of each page, which scores
the pairs once, is reported apart; a page switch back and forth is reported too (nothing is recomputed).

``--scales``: besides the bundled demo (scale 1, 360 pairs), the demo repeated K times with renamed speakers and
clips (K x 360 pairs, the same bundled checkpoint) is put into the session the way the Home page would load it, to
show how the answer time grows with the number of pairs.

``--browser`` adds what a person waits for: one ``streamlit run app.py`` server (a free localhost port, an empty
workspace of its own) and Debian's chromium through playwright (tests/browser_support.py). On each page the
threshold slider is focused and moved one step with the arrow key; an interaction lasts from the key press until
the page shows the new threshold (Similarity: the posterior chart's "threshold 0.xx" line; Verdicts: the
"Threshold: 0.xx" text) and the app is idle again (no script running, nothing stale). This includes the network
and the browser's drawing of the tables and Plotly charts.

Each run is checked: no error or exception on the page, and the page shows the threshold that was set (the
Similarity page's "Flagged" count equals the pairs whose P(inconsistent) is at least the threshold).

Writes OUT/app_interactions.md and OUT/app_interactions.json (atomically). Exit status 1 when a check fails or the
median threshold interaction takes 1 s or more.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from crossemo_core.paths import atomic_writer  # noqa: E402

APP = str(ROOT / "app.py")
LIMIT_S = 1.0


def wk(at: AppTest, key: str) -> str:
    versions = at.session_state["app"].widget_versions if "app" in at.session_state else {}
    v = versions.get(key, 0)
    return f"w_{key}" if v == 0 else f"w_{key}~{v}"


def clean(at: AppTest, what: str) -> None:
    if at.exception or at.error:
        raise SystemExit(f"{what}: {[e.value for e in [*at.exception, *at.error]]}")


def timed(at: AppTest, action, what: str) -> float:
    t0 = time.perf_counter()
    action()
    seconds = time.perf_counter() - t0
    clean(at, what)
    return seconds


def thresholds(moves: int) -> list[float]:
    up = [round(0.30 + 0.05 * i, 2) for i in range((moves + 1) // 2)]
    return (up + up[::-1][1:] + [0.5] * moves)[:moves]


def check_flagged(at: AppTest, threshold: float) -> None:
    flagged = int(next(m.value for m in at.metric if m.label == "Flagged").split("/")[0])
    cache = at.session_state["app"].cache
    scored = [v for k, v in cache.items() if k[:3] == ("scored", "test", "after")]
    expected = int((scored[0].p_abnormal >= threshold).sum())
    if flagged != expected:
        raise SystemExit(f"threshold {threshold}: the page flags {flagged} pairs, the scores say {expected}")


def summary(name: str, seconds: list[float]) -> dict:
    return {"interaction": name, "n": len(seconds), "median_s": statistics.median(seconds), "max_s": max(seconds),
            "seconds": [round(s, 4) for s in seconds]}


def scaled_demo(k: int):
    """The demo repeated ``k`` times, each copy with its own speakers and clip ids."""
    from dataclasses import replace

    import numpy as np

    from crossemo_core.data.container import concatenate
    from crossemo_core.workspace import load_dataset

    demo = load_dataset("demo")
    copies = [replace(demo, speaker=np.char.add(demo.speaker.astype(str), f"~{i}"),
                      clip_id=np.char.add(demo.clip_id.astype(str), f"~{i}"),
                      voice_clip_id=np.char.add(demo.voice_clip_id.astype(str), f"~{i}"),
                      protocol={}, extractor=dict(demo.extractor)) for i in range(k)]
    return concatenate(copies, name=f"demo x{k}")


def run(moves: int, scale: int) -> dict:
    rows: list[dict] = []
    t0 = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    clean(at, "start")
    rows.append(summary("app start (demo data + bundled checkpoint)", [time.perf_counter() - t0]))
    if scale > 1:  # what state.set_dataset does, from outside the script
        state = at.session_state["app"]
        scaled = scaled_demo(scale)
        state.data = dataclasses.replace(state.data, dataset=scaled, loaded=scaled)
        state.data_id += 1
        state.cache, state.jobs = {}, {}

    at.switch_page("pages/similarity.py")
    rows.append(summary("Similarity: first opening (scores the test pairs)", [timed(at, at.run, "similarity")]))
    sim = []
    for t in thresholds(moves):
        sim.append(timed(at, lambda: at.slider(key=wk(at, "p_threshold")).set_value(t).run(), f"similarity {t}"))
        check_flagged(at, t)
    rows.append(summary("Similarity: move the threshold slider", sim))

    at.switch_page("pages/verdicts.py")
    rows.append(summary("Verdicts: first opening", [timed(at, at.run, "verdicts")]))
    ver = []
    for t in thresholds(moves):
        ver.append(timed(at, lambda: at.slider(key=wk(at, "p_threshold")).set_value(t).run(), f"verdicts {t}"))
        if not any(f"{t:.2f}" in str(m.value) for m in at.markdown):
            raise SystemExit(f"the Verdicts page does not show the threshold {t:.2f}")
    rows.append(summary("Verdicts: move the threshold slider", ver))

    switch = []
    for page in ("similarity", "verdicts") * 3:
        at.switch_page(f"pages/{page}.py")
        switch.append(timed(at, at.run, f"switch to {page}"))
    rows.append(summary("switch Similarity <-> Verdicts (cached scores)", switch))
    n_test = len(next(v for k, v in at.session_state["app"].cache.items() if k[:3] == ("scored", "test", "after"))
                 .p_abnormal)
    return {"scale": scale, "pairs": len(at.session_state["app"].data.dataset), "test_pairs": n_test, "rows": rows}


def run_browser(moves: int) -> dict:
    """The same moves in a real browser (see the module docstring)."""
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import IDLE_JS, StreamlitServer, browser_page, find_chromium, goto_page, no_errors, open_app

    chromium = find_chromium()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="crossemo-bench-") as tmp, \
            StreamlitServer(Path(tmp) / "server.log", env={"CROSSEMO_WORKSPACE": tmp}) as server, \
            browser_page(chromium, "bench-app-interactions") as page:
        t0 = time.perf_counter()
        open_app(page, server.url)
        rows.append(summary("browser: open the app (demo data + bundled checkpoint)", [time.perf_counter() - t0]))
        for title, shown in (("Similarity", "threshold {:.2f}"), ("Verdicts", "Threshold: {:.2f}")):
            t0 = time.perf_counter()
            goto_page(page, title)
            page.wait_for_function(IDLE_JS, timeout=120_000)
            rows.append(summary(f"browser: open {title}", [time.perf_counter() - t0]))
            thumb = page.locator('[data-testid="stSlider"] [data-testid="stSliderThumbValue"]').first
            slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
            seconds = []
            for i in range(moves):
                value = float(thumb.inner_text())
                key = "ArrowRight" if i < moves // 2 else "ArrowLeft"
                target = round(value + (0.01 if key == "ArrowRight" else -0.01), 2)
                slider.focus()
                t0 = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function("t => document.querySelector('[data-testid=\"stMain\"]').textContent"
                                       ".includes(t)", arg=shown.format(target), timeout=60_000)
                page.wait_for_function(IDLE_JS, timeout=60_000)
                seconds.append(time.perf_counter() - t0)
                page.wait_for_timeout(200)
            no_errors(page)
            rows.append(summary(f"browser: {title}: move the threshold slider one step", seconds))
    return {"scale": 1, "pairs": 360, "test_pairs": 72, "rows": rows, "browser": True}


def commit() -> str:
    if os.environ.get("CROSSEMO_COMMIT"):
        return os.environ["CROSSEMO_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out + (" (with uncommitted edits)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(result: dict, note: str) -> str:
    head = (f"Commit {result['commit']}; {result['machine']}; Python {result['python']}, Streamlit "
            f"{result['streamlit']}; OMP_NUM_THREADS={result['omp_threads']}.")
    lines = [
        "# App interactions: how fast a threshold change is answered",
        "",
        "Measured by `benchmarks/bench_app_interactions.py` (streamlit.testing AppTest in one process, bundled demo "
        "data and checkpoint). One interaction = one full script run after the widget changed (what a browser waits "
        "for, minus the network and the drawing in the browser).",
        "",
        head,
        "",
        "| data | interaction | n | median s | max s |",
        "|---|---|---:|---:|---:|",
    ]
    for run_ in result["runs"]:
        data = (f"demo x{run_['scale']}" if run_["scale"] > 1 else "demo") + \
            f" ({run_['pairs']} pairs, {run_['test_pairs']} test)" + (", chromium" if run_.get("browser") else "")
        for row in run_["rows"]:
            lines.append(f"| {data} | {row['interaction']} | {row['n']} | {row['median_s']:.3f} | "
                         f"{row['max_s']:.3f} |")
    lines += ["", f"Limit: the median threshold interaction under {LIMIT_S:.0f} s "
                  f"({'met' if result['ok'] else 'NOT met'})."]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=12, help="threshold moves per page (default 12)")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10],
                    help="data sizes: 1 = the bundled demo, K = the demo repeated K times (default 1 10)")
    ap.add_argument("--browser", action="store_true",
                    help="also time the moves in a real browser (chromium, streamlit run app.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for app_interactions.md/.json")
    ap.add_argument("--note", default="", help="a markdown paragraph added to the report")
    args = ap.parse_args(argv)
    if args.moves < 2:
        ap.error("--moves must be at least 2")
    if min(args.scales) < 1:
        ap.error("--scales must be at least 1")
    result: dict = {"runs": [run(args.moves, k) for k in args.scales]}
    if args.browser:
        result["runs"].append(run_browser(args.moves))
    result.update(commit=commit(), machine=f"{platform.machine()}, {os.cpu_count()} CPU(s)",
                  python=platform.python_version(), streamlit=importlib.metadata.version("streamlit"),
                  omp_threads=os.environ.get("OMP_NUM_THREADS", "unset"))
    medians = [r["median_s"] for run_ in result["runs"] for r in run_["rows"] if "threshold" in r["interaction"]]
    result["ok"] = bool(medians) and max(medians) < LIMIT_S
    text = markdown(result, args.note)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(args.out / "app_interactions.md") as f:
        f.write(text.encode())
    with atomic_writer(args.out / "app_interactions.json") as f:
        f.write((json.dumps(result, indent=2) + "\n").encode())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
