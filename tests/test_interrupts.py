"""Ctrl-C handling shared by ``train`` and ``score`` (crossemo_core/interrupts.py), in this process: SIGINT is sent
to the test process itself, with the handlers saved and restored around each test."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Iterator

import pytest

from crossemo_core import interrupts
from crossemo_core.interrupts import first_ctrl_c_sets, remember_ctrl_c, stop_if_ctrl_c_was_pressed


@pytest.fixture(autouse=True)
def _own_sigint() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts._PRESSED.clear()
    yield
    signal.signal(signal.SIGINT, previous)
    interrupts._PRESSED.clear()


def _press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs between two bytecodes of this thread, here at the latest


def _press_and_swallow() -> None:
    """What the import machinery or a library's bare ``except:`` can do to a Ctrl-C."""
    try:
        _press_ctrl_c()
    except BaseException:  # noqa: BLE001
        pass


def test_a_swallowed_ctrl_c_is_remembered_and_the_job_does_not_start() -> None:
    remember_ctrl_c()
    _press_and_swallow()
    stop = threading.Event()
    started = False
    with pytest.raises(KeyboardInterrupt):
        stop_if_ctrl_c_was_pressed()
    with pytest.raises(KeyboardInterrupt):
        with first_ctrl_c_sets(stop):
            started = True
    assert not started and not stop.is_set()


def test_without_remember_ctrl_c_a_swallowed_ctrl_c_is_lost() -> None:
    """The failure the remembering handler is there for (CI once saw a ``train`` run to its end after a Ctrl-C)."""
    _press_and_swallow()
    stop_if_ctrl_c_was_pressed()
    with first_ctrl_c_sets(threading.Event()):
        pass


def test_the_remembering_handler_still_raises_at_once() -> None:
    remember_ctrl_c()
    with pytest.raises(KeyboardInterrupt):
        _press_ctrl_c()


def test_first_ctrl_c_stops_the_job_and_the_second_stops_at_once() -> None:
    remember_ctrl_c()
    stop = threading.Event()
    with first_ctrl_c_sets(stop):
        _press_ctrl_c()
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            _press_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is interrupts._raise_and_remember
    stop_if_ctrl_c_was_pressed()  # a Ctrl-C the job handled is not a reason to stop the next one


def test_a_callers_handler_and_an_ignored_sigint_are_left_alone() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGINT, mine)
    remember_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is mine
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    remember_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    stop = threading.Event()
    with first_ctrl_c_sets(stop):
        _press_ctrl_c()
    assert not stop.is_set() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_outside_the_main_thread_nothing_is_installed() -> None:
    seen: list[object] = []

    def worker() -> None:
        remember_ctrl_c()
        with first_ctrl_c_sets(threading.Event()):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
