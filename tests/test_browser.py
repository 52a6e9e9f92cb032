"""The app in a real browser, as a person uses it (issue 16): ``streamlit run app.py`` on a free localhost port,
driven by playwright through Debian's chromium.

- a first request to a page's URL after a server start shows that page inside the app (navigation, sidebar, state);
- the clinician's path: Start -> Judge a clip -> the bundled sample's verdict, named by its file and sha256 -> the
  report downloaded;
- the researcher's path: Start -> Data -> Train (live curves) -> the comparison card -> keep the model in use ->
  a reload gives the run back, a new tab finds it in the workspace -> Embeddings, Similarity (the threshold moves
  the numbers), Verdicts.

A screenshot of every step goes to ``test-artifacts/screenshots/``. Never downloads playwright's browsers; skips with
the reason when no chromium can be had.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pytest

from browser_support import (SHOTS, StreamlitServer, app_url, browser_page, chromium_path, field, goto_page,
                             nav_links, no_errors, open_app, screenshot, wait_idle)
from crossemo_app.ui import NAVIGATION

# app_url and chromium_path are session fixtures (browser_support); the names must be in this module for pytest
__all__ = ["app_url", "chromium_path"]

TRAIN_TIMEOUT_MS = 150_000
EPOCHS = 2  # with the fast preset: a few seconds per epoch on 2 CPU cores
NAV_TITLES = [title for entries in NAVIGATION.values() for _, title, _ in entries]

pytestmark = pytest.mark.slow


def _shot(page, name: str):
    return screenshot(page, SHOTS / f"{name}.png")


def _kept_run(page):
    """The workspace's newest run (the one this test trained), by its history's heading."""
    return page.get_by_text(re.compile(r"^History of run \d{8}-\d{6}-sir-hcl-[0-9a-f]{6}$"))


def _sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_a_first_request_to_a_page_url_shows_that_page_inside_the_app(chromium_path: str) -> None:
    """Streamlit runs pages/ files bare on the first script run after a server start; the app must not."""
    from playwright.sync_api import expect

    with tempfile.TemporaryDirectory(prefix="crossemo-first-") as tmp:
        with StreamlitServer(Path(tmp) / "server.log", env={"CROSSEMO_WORKSPACE": str(Path(tmp) / "ws")}) as server:
            with browser_page(chromium_path, "failure-first-request") as page:
                open_app(page, f"{server.url}/train")  # the very first request this server gets
                expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
                assert [title for title, _ in nav_links(page)] == NAV_TITLES
                assert "Model:" in _sidebar(page) and "bundled demo checkpoint" in _sidebar(page)
                no_errors(page)
                _shot(page, "0-first-request-train")


def test_clinician_path_judges_the_sample_clip_and_downloads_its_report(chromium_path: str, app_url: str,
                                                                        tmp_path: Path) -> None:
    pytest.importorskip("mediapipe", reason="mediapipe is needed for the clip path (requirements-clip.txt)")
    from playwright.sync_api import expect

    with browser_page(chromium_path, "failure-clinician") as page:
        open_app(page, app_url)
        expect(page.get_by_role("heading", name="Does the face's emotion match the voice's?")).to_be_visible()
        expect(page.get_by_text("Research tool, not a diagnostic device").first).to_be_visible()
        _shot(page, "1-start")
        page.locator('[data-testid="stPageLink"] a', has_text="Judge a clip").first.click()
        expect(page.get_by_role("heading", name="Clip verdict")).to_be_visible()
        wait_idle(page)
        page.get_by_role("button", name="Judge this clip").click()
        verdict = page.get_by_text(re.compile(r"^(CONSISTENT|INCONSISTENT) \((WEAK|MODERATE|STRONG) EVIDENCE\)$"
                                              r"|^UNDETERMINED$"))
        expect(verdict.first).to_be_visible(timeout=180_000)
        wait_idle(page, 180_000)
        expect(page.get_by_text("Why:", exact=False).first).to_be_visible()
        expect(page.get_by_text(re.compile(r"This result belongs to face smile_upbeat\.mp4 \(sha256 [0-9a-f]{16}"))
               ).to_be_visible()
        no_errors(page)
        _shot(page, "2-clip-verdict")
        word = verdict.first.inner_text().split(" (")[0]
        with page.expect_download() as info:
            page.get_by_role("button", name="Download the report (HTML, printable)").click()
        report = tmp_path / info.value.suggested_filename
        info.value.save_as(report)
        html = report.read_text(encoding="utf-8")
        assert report.name == "smile_upbeat.mp4.report.html"
        assert "smile_upbeat.mp4" in html and word.lower() in html.lower()


def test_researcher_path_trains_compares_keeps_the_model_and_finds_the_run_after_a_reload(
        chromium_path: str, app_url: str) -> None:
    from playwright.sync_api import expect

    with browser_page(chromium_path, "failure-researcher") as page:
        open_app(page, app_url)
        page.locator('[data-testid="stPageLink"] a', has_text="Choose data").first.click()
        expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible()
        expect(page.get_by_text("Synthetic data.", exact=False).first).to_be_visible()
        wait_idle(page)
        no_errors(page)
        _shot(page, "3-data")

        # Train a short run: live curves, then the comparison card; nothing replaced by itself.
        goto_page(page, "Train")
        expect(page.get_by_role("heading", name="Live curves")).to_be_visible()
        page.get_by_text("fast [ours", exact=False).first.click()
        page.get_by_text("All settings:", exact=False).first.click()  # the settings are folded under the Start
        expect(field(page, "Learning rate")).to_have_value("0.001000")
        expect(field(page, "Epochs")).to_have_count(1)
        wait_idle(page)
        field(page, "Epochs").fill(str(EPOCHS))
        field(page, "Epochs").press("Enter")
        wait_idle(page)
        expect(field(page, "Epochs")).to_have_value(str(EPOCHS))
        started_or_done = page.get_by_text("Training on CPU", exact=False).or_(
            page.get_by_text("Training on GPU", exact=False)).or_(
            page.get_by_text("Training finished after", exact=False))
        for attempt in range(3):  # a click that lands during a rerun can be lost; the app ignores a second one
            page.get_by_role("button", name="Start training").click()
            try:
                expect(started_or_done.first).to_be_visible(timeout=15_000)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        expect(page.get_by_text("Training finished after", exact=False)).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        wait_idle(page)
        expect(page.get_by_text("Training losses").first).to_be_visible()
        expect(page.get_by_role("heading", name="New model or the model in use?")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^New model: AUC \d\.\d{3} on \d+ test pairs \(model in use: "))
               ).to_be_visible()
        assert "bundled demo checkpoint" in _sidebar(page)
        no_errors(page)
        _shot(page, "4-train-comparison")
        page.get_by_role("button", name="Keep the model in use").click()
        expect(page.get_by_text("You kept the model in use", exact=False)).to_be_visible()
        wait_idle(page)
        expect(_kept_run(page).first).to_be_visible()

        # A reload: the same session's data, model and run come back (?s= in the URL).
        assert "?s=" in page.url
        page.reload()
        wait_idle(page)
        expect(page.get_by_text("You kept the model in use", exact=False)).to_be_visible(timeout=30_000)
        assert "bundled demo checkpoint" in _sidebar(page)

    # A new tab without the token: its own session; the run is listed from the workspace.
    with browser_page(chromium_path, "failure-researcher-new-tab") as page:
        open_app(page, f"{app_url}/train")
        expect(page.get_by_role("heading", name="Runs kept in the workspace")).to_be_visible()
        expect(_kept_run(page).first).to_be_visible()
        expect(page.get_by_text("No training run yet in this session.")).to_be_visible()
        no_errors(page)
        _shot(page, "5-train-workspace")

        goto_page(page, "Embeddings")
        expect(page.get_by_text("After training: t-SNE", exact=False)).to_be_visible(timeout=120_000)
        wait_idle(page, 120_000)
        no_errors(page)
        _shot(page, "6-embeddings")

        goto_page(page, "Similarity")
        wait_idle(page)
        thumb = page.locator('[data-testid="stSlider"] [data-testid="stSliderThumbValue"]').first
        before = float(thumb.inner_text())
        page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
        started = time.time()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        wait_idle(page)
        after = float(thumb.inner_text())
        assert after == pytest.approx(min(before + 0.10, 1.0), abs=1e-6)
        assert time.time() - started < 30
        no_errors(page)
        _shot(page, "7-similarity")

        goto_page(page, "Verdicts")
        expect(page.get_by_text(f"Threshold: {after:.2f}", exact=False)).to_be_visible()
        wait_idle(page)
        no_errors(page)
        _shot(page, "8-verdicts")
