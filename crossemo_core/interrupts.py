"""Ctrl-C the same way everywhere: the first one asks a long job to stop at its next safe point, a second one stops
at once (``train``, ``score``).

On the command line (:func:`remember_ctrl_c`, first thing) a Ctrl-C while the command starts up is only remembered,
and acted on when start-up ends (:func:`end_start_up`) or a job would begin. Start-up imports torch and other
extension modules, which run Python code inside C++ callbacks: an exception raised there by a handler can abort the
whole process (``std::terminate``, status -6) instead of ending it with one line, and the import machinery can also
swallow one (it runs some callbacks where exceptions are ignored). A second Ctrl-C during start-up ends the process
at once, with the same line and status 130; nothing has been written by then."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Iterator

__all__ = ["STOPPED_AT_ONCE", "end_start_up", "first_ctrl_c_sets", "remember_ctrl_c", "stop_if_ctrl_c_was_pressed"]

STOPPED_AT_ONCE = "interrupted: stopped at once; no output file was written or changed"
"""The one line the command line prints when a Ctrl-C ends it anywhere but inside a training run."""

_pressed = False  # set by the handlers below; a plain flag: a signal handler may interrupt another one


def _remember_while_starting(signum: int, frame: Any) -> None:  # noqa: ARG001
    """Start-up's handler: the first Ctrl-C is remembered, a second one ends the process with status 130."""
    global _pressed
    if _pressed:
        with contextlib.suppress(OSError):
            os.write(2, f"\n{STOPPED_AT_ONCE}\n".encode())
        os._exit(130)  # nothing has been written yet; raising here could abort the process mid-import
    _pressed = True


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
    """For the command line, called first thing: until :func:`end_start_up` a Ctrl-C is only remembered (a second
    one ends the process at once, status 130); after it, a Ctrl-C raises ``KeyboardInterrupt`` as Python's own
    handler does and is remembered too, and one raised where Python ignores exceptions (and would print "Exception
    ignored" with a traceback) is then only remembered. Nothing where SIGINT is ignored or already has a handler of
    the caller's, or outside the main thread."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _remember_while_starting)
        sys.unraisablehook = _quiet_about_ctrl_c(sys.unraisablehook)


def end_start_up() -> None:
    """The command's modules are imported: raise ``KeyboardInterrupt`` if a Ctrl-C was seen since
    :func:`remember_ctrl_c`, and from now on let a Ctrl-C raise at once (and be remembered)."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _remember_while_starting):
        signal.signal(signal.SIGINT, _raise_and_remember)
    stop_if_ctrl_c_was_pressed()


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
    remembering = previous in (_raise_and_remember, _remember_while_starting)
    second = _raise_and_remember if remembering else signal.default_int_handler

    def first(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop_event.set()
        signal.signal(signal.SIGINT, second)

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
