"""Ctrl-C the same way everywhere: the first one asks a long job to stop at its next safe point, a second one stops
at once (``train``, ``score``). A Ctrl-C pressed while the command line starts up is remembered, so that one a
library swallows (a bare ``except:`` around an optional import, a ``__del__`` that runs the handler) still stops the
command before its job begins."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["first_ctrl_c_sets", "remember_ctrl_c", "stop_if_ctrl_c_was_pressed"]

_PRESSED = threading.Event()  # set by the handler of remember_ctrl_c


def _raise_and_remember(signum: int, frame: Any) -> None:  # noqa: ARG001
    _PRESSED.set()
    raise KeyboardInterrupt


def remember_ctrl_c() -> None:
    """For the command line, called first thing: a Ctrl-C raises ``KeyboardInterrupt`` as Python's own handler does
    and is also remembered, for :func:`stop_if_ctrl_c_was_pressed` and :func:`first_ctrl_c_sets`. Nothing where
    SIGINT is ignored or already has a handler of the caller's, or outside the main thread."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _raise_and_remember)


def stop_if_ctrl_c_was_pressed() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C was seen since :func:`remember_ctrl_c`, even one that was swallowed."""
    if _PRESSED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def first_ctrl_c_sets(stop_event: threading.Event) -> Iterator[None]:
    """While the block runs in the main thread: the first SIGINT sets ``stop_event`` (the job ends at its next safe
    point: a training step, a frame of a recording) and a second one raises ``KeyboardInterrupt``. Elsewhere, or
    where SIGINT is ignored, nothing. A Ctrl-C remembered from before the block (:func:`remember_ctrl_c`) raises
    ``KeyboardInterrupt`` at once: the job does not start."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_if_ctrl_c_was_pressed()
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield
        return

    def first(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop_event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
