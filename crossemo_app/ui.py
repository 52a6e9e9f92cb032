"""Common widgets: the disclaimer, plain-language explanations, the error guard, "what is missing" notices."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import streamlit as st

from crossemo_app import state
from crossemo_core.errors import CrossemoError

log = logging.getLogger("crossemo_app")

REPO, BUNDLED_CHECKPOINT = state.REPO, state.BUNDLED_CHECKPOINT

DISCLAIMER = ("**Research tool, not a diagnostic device.** crossemo estimates whether the emotion a face shows and "
              "the emotion a voice carries agree. Its verdicts are statistical guesses learnt from labelled data; "
              "they must not be used to diagnose, treat or decide about a person.")

PAGES = {
    "start": "pages/start.py",
    "clip": "pages/clip.py",
    "session": "pages/session.py",
    "data": "pages/data.py",
    "train": "pages/train.py",
    "embeddings": "pages/embeddings.py",
    "similarity": "pages/similarity.py",
    "verdicts": "pages/verdicts.py",
}
NAVIGATION: dict[str, list[tuple[str, str, str]]] = {
    "": [("start", "Start", ":material/home:")],
    "Judge a clip": [("clip", "Clip verdict", ":material/videocam:"),
                     ("session", "Whole session", ":material/timeline:")],
    "Train and evaluate": [("data", "Data", ":material/dataset:"),
                           ("train", "Train", ":material/model_training:"),
                           ("embeddings", "Embeddings", ":material/scatter_plot:"),
                           ("similarity", "Similarity", ":material/bar_chart:"),
                           ("verdicts", "Verdicts", ":material/gavel:")],
}
"""The app's navigation: section -> (page key, title, icon); the first page is the landing page."""


def inside_app() -> None:
    """Call first on every page. Streamlit runs the files of a project's ``pages/`` folder as bare legacy pages (no
    app.py, no navigation, no state) on the first script run after a server start, and on every AppTest run, until
    ``st.navigation`` has been called once. A page run that way turns the legacy mode off, runs app.py in its place
    (its navigation resolves the same URL to this page, shown inside the app with the sidebar and the session state)
    and ends the bare run. No rerun: a button click that started this run is not lost."""
    import runpy

    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(REPO / "app.py"), run_name="__main__")
        st.stop()


def disclaimer() -> None:
    st.caption(DISCLAIMER)


def explain(text: str) -> None:
    """A short plain-language explanation of what a chart or table means."""
    st.info(text, icon=":material/info:")


@contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show errors as messages, never as tracebacks. Streamlit's own control flow (rerun, stop) passes through,
    because it is not an ``Exception``."""
    try:
        yield
    except CrossemoError as exc:
        st.error(f"{what + ': ' if what else ''}{exc}", icon=":material/error:")
    except (ValueError, OSError) as exc:  # bad settings, unreadable files
        st.error(f"{what + ': ' if what else ''}{exc}", icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - a page must never show a traceback
        log.exception("unexpected error%s", f" in {what}" if what else "")
        st.error(f"Something unexpected went wrong{' in ' + what if what else ''} ({type(exc).__name__}: "
                 f"{str(exc).splitlines()[0] if str(exc) else 'no details'}). The details are in the terminal "
                 f"that runs the app.", icon=":material/error:")


def need_dataset() -> bool:
    """True when a dataset is loaded; otherwise a notice with a link to the Data page."""
    if state.dataset() is not None:
        return True
    st.warning("No dataset is loaded yet. Choose one on the Data page (the bundled demo needs nothing of yours).")
    st.page_link(PAGES["data"], label="Go to Data", icon=":material/dataset:")
    return False


def need_detector(key: str) -> bool:
    """True when a model is available; otherwise a notice, a link to Train and a bundled-checkpoint button."""
    if state.detector() is not None:
        return True
    st.warning("No model yet. Train one on the Train page"
               + (", or load the bundled demo checkpoint." if _bundled_fits() else "."))
    st.page_link(PAGES["train"], label="Go to Train", icon=":material/model_training:")
    if _bundled_fits() and st.button("Load the bundled demo checkpoint", key=f"bundled_{key}"):
        with guard("loading the bundled checkpoint"):
            load_bundled_checkpoint()
            st.rerun()
    return False


def _bundled_fits() -> bool:
    """The bundled checkpoint fits the demo data as loaded (not normalised per person: other features)."""
    return (BUNDLED_CHECKPOINT.is_file() and state.data_kind() == "demo"
            and state.dataset() is state.loaded_dataset())


load_bundled_checkpoint = state.load_bundled_checkpoint


def dataset_banner() -> None:
    """One line naming the data in view; synthetic data is always said to be synthetic."""
    loaded = state.app().data
    if loaded is None:
        return
    data = loaded.dataset
    if data.synthetic:
        st.caption(f"Data: **{data.display_name}**: generated, not recorded from people.")
    else:
        st.caption(f"Data: **{data.display_name}** ({loaded.source})")


PART_LABELS = {"test": "test (speakers never seen in training)", "valid": "validation", "train": "training"}


def part_select(key: str, where=st) -> str:
    st.session_state.setdefault(key, "test")
    return state.widget(where.selectbox, "Pairs to show", key, list(PART_LABELS), format_func=PART_LABELS.get,
                        help="Test pairs come from speakers the model never saw; use them to judge the model.")
