"""Screenshots of every page of the app, on the bundled demo, for the README: docs/screenshots/<n>-<page>.png.

    python scripts/make_screenshots.py [--out docs/screenshots] [--no-actions] [--max-kb 400]

Starts ``streamlit run app.py`` (a free localhost port, an empty temporary workspace) and walks the app in headless
Debian chromium (tests/browser_support.py). The pages are the ones the app's sidebar navigation shows, in its order
(nothing here lists them): ``<n>`` is the position in the navigation, ``<page>`` the page's URL path (the default
page, served at ``/``, is named by its title). On a page with one of the buttons in :data:`ACTIONS` (the Clip
verdict's sample clip, the sample session, a demo training run) the button is pressed first, so the screenshot
shows a result.

Viewport 1280 x 900. Each screenshot is the whole page when that PNG stays under ``--max-kb`` (first as it is,
then reduced to 256 colours), else the first 900 pixels. The new files replace every PNG in ``--out`` only when every
page worked (exit status 1 otherwise, with the failing page's screenshot in test-artifacts/screenshots/).
About 2 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import io
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import browser_support as bs  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}
ACTIONS = ("Judge this clip", "Analyse the session", "Start training")
"""Buttons pressed (when a page shows one, enabled) before its screenshot: they work on the bundled samples (a
training run on the demo takes seconds and ends with its comparison card)."""
ACTION_TIMEOUT_MS = 300_000


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def page_name(title: str, href: str) -> str:
    """The page's URL path (``clip`` for ``http://host:port/clip``), or its title's slug for the default page."""
    path = urllib.parse.urlsplit(href).path.strip("/")
    return slug(path.rsplit("/", 1)[-1]) if path else slug(title)


def act(page) -> str | None:
    """Press the first enabled button of :data:`ACTIONS` on the page and wait until the app is idle again."""
    for name in ACTIONS:
        button = page.get_by_role("button", name=name, exact=True)
        if button.count() and button.first.is_visible() and button.first.is_enabled():
            button.first.click()
            page.wait_for_timeout(1500)
            bs.wait_idle(page, ACTION_TIMEOUT_MS)
            return name
    return None


def small_png(page, path: Path, max_bytes: int) -> str:
    """The whole page at ``path`` if it fits ``max_bytes`` (reduced to 256 colours when needed), else the viewport.
    Returns which one it wrote."""
    from PIL import Image

    for full in (True, False):
        bs.screenshot(page, path, full=full, viewport=VIEWPORT)
        if path.stat().st_size <= max_bytes:
            return "full page" if full else "viewport"
        with Image.open(path) as im:
            buf = io.BytesIO()
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_bytes or not full:
            path.write_bytes(buf.getvalue())
            return ("full page" if full else "viewport") + ", 256 colours"
    raise AssertionError("unreachable")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--no-actions", action="store_true", help="do not press the sample buttons (ACTIONS)")
    ap.add_argument("--max-kb", type=int, default=400, help="largest PNG for a whole-page screenshot")
    args = ap.parse_args()
    try:
        chromium = bs.find_chromium()
    except bs.BrowserUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="crossemo-shots-") as tmp:
        tmp = Path(tmp)
        made: list[Path] = []
        failed: list[str] = []
        server = bs.StreamlitServer(tmp / "server.log", env={"CROSSEMO_WORKSPACE": str(tmp / "workspace")})
        try:
            with bs.browser_page(chromium, "screenshots-failure", viewport=VIEWPORT,
                                 timeout_ms=bs.PAGE_TIMEOUT_MS) as page:
                bs.open_app(page, server.url)
                entries = bs.nav_links(page)
                if not entries:
                    raise RuntimeError("the app shows no sidebar navigation")
                print(f"{len(entries)} pages in the navigation: {', '.join(t for t, _ in entries)}")
                for n, (title, href) in enumerate(entries, 1):
                    name = f"{n}-{page_name(title, href)}.png"
                    t0 = time.time()
                    try:
                        page.locator(f'[data-testid="stSidebarNav"] a[href="{href}"]').first.click()
                        page.wait_for_timeout(800)
                        bs.wait_idle(page)
                        pressed = None if args.no_actions else act(page)
                        bs.no_errors(page)
                        how = small_png(page, tmp / name, args.max_kb * 1024)
                        made.append(tmp / name)
                        print(f"  {name:<24} {title}{f' (pressed {pressed!r})' if pressed else ''}: {how}, "
                              f"{(tmp / name).stat().st_size // 1024} KB, {time.time() - t0:.1f} s", flush=True)
                    except Exception as exc:  # noqa: BLE001 - reported; the other pages still get theirs
                        failed.append(f"{title}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                        bs.SHOTS.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(bs.SHOTS / f"screenshots-failure-{n}.png"))
                        print(f"  {name:<24} {title}: FAILED ({failed[-1]})", file=sys.stderr, flush=True)
        finally:
            server.stop()
            server.save_log(bs.ARTIFACTS / "screenshots-server.log")
        if failed:
            print(f"{len(failed)} page(s) failed; {args.out} left as it was:\n  " + "\n  ".join(failed),
                  file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for old in args.out.glob("*.png"):
            old.unlink()
        for new in made:
            shutil.copyfile(new, args.out / new.name)
    print(f"wrote {len(made)} screenshots to {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
