"""Ctrl-C the same way everywhere: the first one asks a long job to stop at its next safe point, a second one stops
at once (``train``, ``score``). On the command line a Ctrl-C is also remembered (:func:`remember_ctrl_c`), so that one
a library swallows while the command starts up (the import machinery can run the handler inside a callback whose
exceptions are ignored) still stops ``train`` and ``score`` before their job begins, without a traceback."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Iterator

__all__ = ["first_ctrl_c_sets", "remember_ctrl_c", "stop_if_ctrl_c_was_pressed"]

_pressed = False  # set by _raise_and_remember; a plain flag: a signal handler may interrupt another one


def _raise_and_remember(signum: int, frame: Any) -> None:  # noqa: ARG001
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def _quiet_about_ctrl_c(previous: Any) -> Any:
    """An ``sys.unraisablehook`` that drops a ``KeyboardInterrupt`` (remembered here, whoever raised it) and hands
    on the rest."""
    def hook(unraisable: Any) -> None:
        global _pressed
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            _pressed = True
            return
        previous(unraisable)

    return hook


def remember_ctrl_c() -> None:
    """For the command line, called first thing: a Ctrl-C raises ``KeyboardInterrupt`` as Python's own handler does
    and is also remembered, for :func:`stop_if_ctrl_c_was_pressed` and :func:`first_ctrl_c_sets`; one raised where
    Python ignores exceptions (and would print "Exception ignored" with a traceback) is then only remembered.
    Nothing where SIGINT is ignored or already has a handler of the caller's, or outside the main thread."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _raise_and_remember)
        sys.unraisablehook = _quiet_about_ctrl_c(sys.unraisablehook)


def stop_if_ctrl_c_was_pressed() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C was seen since :func:`remember_ctrl_c`, even one that was swallowed."""
    if _pressed:
        raise KeyboardInterrupt


@contextlib.contextmanager
def first_ctrl_c_sets(stop_event: threading.Event) -> Iterator[None]:
    """While the block runs in the main thread: the first SIGINT sets ``stop_event`` (the job ends at its next safe
    point: a training step, a frame of a recording) and a second one raises ``KeyboardInterrupt`` (remembered too,
    where the command line remembers them). Elsewhere, or where SIGINT is ignored, nothing. A Ctrl-C remembered from
    before the block (:func:`remember_ctrl_c`) raises ``KeyboardInterrupt`` at once: the job does not start."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_if_ctrl_c_was_pressed()
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield
        return
    second = _raise_and_remember if previous is _raise_and_remember else signal.default_int_handler

    def first(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop_event.set()
        signal.signal(signal.SIGINT, second)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
