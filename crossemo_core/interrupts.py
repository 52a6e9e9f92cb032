"""Ctrl-C the same way everywhere: the first one asks a long job to stop at its next safe point, a second one stops
at once (``train``, ``score``)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

__all__ = ["first_ctrl_c_sets"]


@contextlib.contextmanager
def first_ctrl_c_sets(stop_event: threading.Event) -> Iterator[None]:
    """While the block runs in the main thread: the first SIGINT sets ``stop_event`` (the job ends at its next safe
    point: a training step, a frame of a recording) and a second one raises ``KeyboardInterrupt``. Elsewhere, or
    where SIGINT is ignored, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
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
