"""The app in a real browser, for tests, benchmarks and scripts: Debian's chromium, a ``streamlit run app.py``
server on a free localhost port, and playwright pages with the project's settings and helpers.

Import it as ``browser_support`` with ``tests/`` on ``sys.path``: pytest puts it there for the test modules (rootdir
``tests/`` has no ``__init__.py``); a benchmark or script adds it first::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import browser_support as bs

    chromium = bs.find_chromium()                      # path, or BrowserUnavailable with the reason
    with bs.StreamlitServer(log_path) as server, bs.browser_page(chromium, "failure") as page:
        bs.open_app(page, server.url)                  # goto + until the app's script has run and is idle
        bs.screenshot(page, bs.SHOTS / "home.png")

In a test module, ``from browser_support import app_url, chromium_path`` brings in two session-scoped pytest
fixtures: the chromium path (the test skips with the reason when there is none) and the URL of a server started
for the session with its own empty workspace (``CROSSEMO_WORKSPACE``).

Chromium is Debian's (``/usr/bin/chromium`` or ``$CROSSEMO_CHROMIUM``), installed with apt-get when missing and we
are root; playwright's own browsers are never downloaded (``executable_path``). Only the standard library is
imported at module level: playwright and pytest are imported where they are used.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

__all__ = [
    "REPO", "ARTIFACTS", "SHOTS", "CHROMIUM", "CHROMIUM_ARGS", "VIEWPORT", "PAGE_TIMEOUT_MS", "IDLE_JS",
    "BrowserUnavailable", "chromium_problem", "find_chromium", "launch_options", "free_port", "wait_healthy",
    "StreamlitServer", "browser_page", "open_app", "wait_idle", "goto_page", "nav_links", "no_errors", "field",
    "screenshot", "chromium_path", "app_url",
]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
"""Where screenshots (and failure screenshots) of tests and benchmarks go; ignored by git."""
CHROMIUM = Path(os.environ.get("CROSSEMO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 1000}
PAGE_TIMEOUT_MS = 60_000
SERVER_START_S = 90.0

IDLE_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
           " && document.querySelectorAll('[data-testid=\"stProgress\"]').length === 0"
           " && document.querySelectorAll('[data-stale=\"true\"]').length === 0")
"""True when the app runs no script (no status widget), shows no progress bar and nothing is stale."""


# ------------------------------------------------------------------------------------------------ the browser
class BrowserUnavailable(RuntimeError):
    """No chromium or no playwright here; the message says why."""


def chromium_problem(install: bool = True) -> str | None:
    """None when :data:`CHROMIUM` is there (apt-get installing it first when ``install``, it is missing and we are
    root), else the reason it is not."""
    if CHROMIUM.exists():
        return None
    if not install:
        return f"{CHROMIUM} is missing (apt-get install chromium, or set CROSSEMO_CHROMIUM)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{CHROMIUM} is missing and we are not root to apt-get install chromium"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return None if CHROMIUM.exists() else f"chromium was installed but {CHROMIUM} is still missing"


def find_chromium(install: bool = True) -> str:
    """The chromium to drive, as a string for ``executable_path``; :class:`BrowserUnavailable` with the reason when
    there is none or playwright is not installed."""
    reason = chromium_problem(install)
    if reason:
        raise BrowserUnavailable(reason)
    if importlib.util.find_spec("playwright") is None:
        raise BrowserUnavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    return str(CHROMIUM)


def launch_options(chromium: str) -> dict:
    """Keyword arguments for ``playwright.chromium.launch`` (sync or async API)."""
    return {"executable_path": chromium, "args": list(CHROMIUM_ARGS), "headless": True}


# ------------------------------------------------------------------------------------------------ the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout_s: float = SERVER_START_S) -> bool:
    """Until ``url``/_stcore/health answers 200 (True), the process ends or the time is up (False)."""
    deadline = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        if (proc is not None and proc.poll() is not None) or time.time() > deadline:
            return False
        time.sleep(0.5)


class StreamlitServer:
    """``streamlit run APP`` (headless, no usage statistics) on a free localhost port in its own process group,
    its output in ``log``; started by the constructor, which returns once the server answers its health check (or
    stops it and raises RuntimeError with the log's tail). A context manager that stops it on exit.

    ``env`` is added to this process's environment (e.g. ``{"CROSSEMO_WORKSPACE": DIR}``); ``args`` are more
    ``streamlit run`` options.
    """

    def __init__(self, log: Path, *, app: str = "app.py", cwd: Path = REPO, env: dict[str, str] | None = None,
                 args: Sequence[str] = (), timeout_s: float = SERVER_START_S) -> None:
        self.port, self.log = free_port(), Path(log)
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", app, "--server.port", str(self.port),
                 "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                 *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        if not wait_healthy(self.url, self.proc, timeout_s):
            self.stop()
            raise RuntimeError(f"streamlit did not start; its log:\n{self.log_text()[-3000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 20 s; nothing when it has ended."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def save_log(self, dest: Path) -> Path:
        """A copy of the server's log at ``dest`` (e.g. next to the screenshots)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self.log_text())
        return dest

    def __enter__(self) -> StreamlitServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------ pages
@contextmanager
def browser_page(chromium: str, failure_name: str | None = "failure", *, shots: Path = SHOTS,
                 viewport: dict | None = None, timeout_ms: int = PAGE_TIMEOUT_MS) -> Iterator:
    """A page (sync playwright) of a fresh headless chromium with ``timeout_ms`` as the default timeout of the page
    and of ``expect``. An exception inside leaves ``shots/<failure_name>.png`` (the whole page) before it goes on."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=timeout_ms)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(**launch_options(chromium))
        try:
            page = browser.new_page(viewport=dict(viewport or VIEWPORT))
            page.set_default_timeout(timeout_ms)
            try:
                yield page
            except BaseException:
                if failure_name:
                    try:
                        shots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(shots / f"{failure_name}.png"), full_page=True)
                        print(f"failure screenshot: {shots / f'{failure_name}.png'}", file=sys.stderr)
                    except Exception as exc:  # noqa: BLE001 - the page may be gone; the first error matters
                        print(f"no failure screenshot: {exc}", file=sys.stderr)
                raise
        finally:
            browser.close()


def wait_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Until the app is not running a script (the status widget disappears), no progress bar is left and nothing is
    stale (:data:`IDLE_JS`), with short pauses before and after for the next render."""
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    page.wait_for_timeout(500)


def open_app(page, url: str, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Go to ``url`` and wait until the app's script has run once, its own navigation is shown and the app is idle.
    (On a server's first request Streamlit first sends its own list of the files in pages/ as the navigation, then
    the app's, which has section headers; :func:`wait_idle` alone can return in between.)"""
    page.goto(url)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stMain\"] "
                           "[data-testid=\"stElementContainer\"]')", timeout=timeout_ms)
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSidebarNav\"] "
                           "[data-testid=\"stNavSectionHeader\"]')", timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def nav_links(page) -> list[tuple[str, str]]:
    """(title, href) of every page in the app's sidebar navigation, in order (the icon's name left out; "View more"
    is opened first when the navigation is collapsed). Call it after :func:`open_app`."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.wait_for()
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.first.inner_text().lower():
        more.first.click()
        page.wait_for_timeout(300)
    links = nav.locator("a")
    out = []
    for i in range(links.count()):
        lines = [ln.strip() for ln in links.nth(i).inner_text().splitlines() if ln.strip()]
        out.append((lines[-1] if lines else "", links.nth(i).get_attribute("href") or ""))
    return out


def goto_page(page, title: str) -> None:
    """Click the sidebar navigation link whose text contains ``title``."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_timeout(500)


def no_errors(page) -> None:
    """Assert that the page shows no exception box, no traceback and no error message."""
    assert page.locator('[data-testid="stException"]').count() == 0, "an exception box is shown"
    body = page.locator("body").inner_text()
    assert "Traceback" not in body, "a traceback is shown"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"error message shown: {errors.first.inner_text()}"


def field(page, label: str):
    """The visible input with this exact label (a re-created widget can leave a hidden copy in the page)."""
    return page.locator(f'input[aria-label="{label}"]:visible')


def screenshot(page, path: Path | str, *, full: bool = True, max_height: int = 6000,
               viewport: dict | None = None) -> Path:
    """A PNG of the page at ``path`` (folders made). ``full``: the whole page; Streamlit scrolls inside its main
    block, so the viewport is stretched to the content's height (at most ``max_height``) and set back afterwards.
    Otherwise just the viewport."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    view = dict(viewport or page.viewport_size or VIEWPORT)
    if not full:
        page.screenshot(path=str(path))
        return path
    height = page.evaluate("() => { const m = document.querySelector('[data-testid=\"stMain\"]')"
                           " || document.body; return m.scrollHeight; }")
    page.set_viewport_size({"width": view["width"], "height": int(min(max(height, view["height"]), max_height))})
    page.wait_for_timeout(800)
    page.screenshot(path=str(path))
    page.set_viewport_size(view)
    page.wait_for_timeout(300)
    return path


# ------------------------------------------------------------------------------------------------ pytest fixtures
try:
    import pytest
except ImportError:  # benchmarks and scripts do not need it
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def chromium_path() -> str:
        """Debian's chromium (installed when missing and we are root); skips the test with the reason otherwise."""
        try:
            return find_chromium()
        except BrowserUnavailable as exc:
            pytest.skip(str(exc))

    @pytest.fixture(scope="session")
    def app_url() -> Iterator[str]:
        """``streamlit run app.py`` for the test session, with an empty workspace of its own; its log is copied to
        test-artifacts/streamlit-server.log at the end."""
        with tempfile.TemporaryDirectory(prefix="crossemo-browser-") as tmp:
            try:
                server = StreamlitServer(Path(tmp) / "server.log", env={"CROSSEMO_WORKSPACE": str(Path(tmp) / "ws")})
            except RuntimeError as exc:
                pytest.fail(str(exc))
            try:
                yield server.url
            finally:
                server.stop()
                server.save_log(ARTIFACTS / "streamlit-server.log")
