"""Ctrl-C handling shared by ``train`` and ``score`` (crossemo_core/interrupts.py): in this process (SIGINT sent to
the test process itself, with the handlers saved and restored around each test), and presses while
``python -m crossemo_core`` starts up (in a child process)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from crossemo_core import interrupts
from crossemo_core.interrupts import (
    STOPPED_AT_ONCE,
    end_start_up,
    first_ctrl_c_sets,
    remember_ctrl_c,
    stop_if_ctrl_c_was_pressed,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _own_sigint() -> Iterator[None]:
    previous, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts._pressed = False
    yield
    signal.signal(signal.SIGINT, previous)
    sys.unraisablehook = hook
    interrupts._pressed = False


def _press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs between two bytecodes of this thread, here at the latest


def _press_and_swallow() -> None:
    """What the import machinery or a library's bare ``except:`` can do to a Ctrl-C."""
    try:
        _press_ctrl_c()
    except BaseException:  # noqa: BLE001
        pass


def test_a_ctrl_c_during_start_up_is_only_remembered_and_end_start_up_acts_on_it() -> None:
    remember_ctrl_c()
    _press_ctrl_c()  # nothing raised: start-up may be inside an extension module's callback
    assert interrupts._pressed
    with pytest.raises(KeyboardInterrupt):
        end_start_up()
    assert signal.getsignal(signal.SIGINT) is interrupts._raise_and_remember


def test_end_start_up_without_a_ctrl_c_lets_the_next_one_raise_at_once() -> None:
    remember_ctrl_c()
    end_start_up()
    end_start_up()  # twice is harmless
    with pytest.raises(KeyboardInterrupt):
        _press_ctrl_c()
    assert interrupts._pressed


def test_a_swallowed_ctrl_c_is_remembered_and_the_job_does_not_start() -> None:
    remember_ctrl_c()
    end_start_up()
    _press_and_swallow()
    stop = threading.Event()
    started = False
    with pytest.raises(KeyboardInterrupt):
        stop_if_ctrl_c_was_pressed()
    with pytest.raises(KeyboardInterrupt):
        with first_ctrl_c_sets(stop):
            started = True
    assert not started and not stop.is_set()


def test_a_keyboard_interrupt_python_ignores_is_remembered_quietly_and_other_errors_still_reported() -> None:
    import weakref

    reported: list[type] = []
    sys.unraisablehook = lambda unraisable: reported.append(unraisable.exc_type)
    remember_ctrl_c()
    for error in (KeyboardInterrupt, ValueError):
        def raising(ref: object, error: type = error) -> None:
            raise error

        thing = type("Thing", (), {})()
        ref = weakref.ref(thing, raising)
        del thing  # the callback runs here; Python ignores what it raises and calls the unraisable hook
        assert ref() is None
    assert reported == [ValueError] and interrupts._pressed


def _train_with_a_press_while_importing(tmp_path: Path, press: str) -> None:
    """``python -m crossemo_core train`` whose import of ``crossemo_core.config`` first runs ``press`` (code that
    sends this process SIGINT, indented for a method body); it must end with the one line and status 130."""
    hook = (
        "import os, runpy, signal, sys, time, weakref\n"
        "class Press:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'crossemo_core.config':\n"
        "            sys.meta_path.remove(self)\n"
        f"{press}"
        "        return None\n"
        "sys.meta_path.insert(0, Press())\n"
        "sys.argv = ['crossemo_core'] + sys.argv[1:]\n"
        "runpy.run_module('crossemo_core', run_name='__main__', alter_sys=True)\n")
    out = tmp_path / "model.pt"
    proc = subprocess.run([sys.executable, "-c", hook, "train", "--dataset", "demo", "--out", str(out), "--preset",
                           "fast", "--epochs", "2"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == STOPPED_AT_ONCE
    assert not out.exists()


def test_a_ctrl_c_swallowed_during_start_up_stops_train_in_one_line(tmp_path: Path) -> None:
    """The failure CI once saw: the press lands in the import machinery's module-lock callback, whose exceptions
    Python ignores (printing "Exception ignored ..." and a traceback); ``train`` then ran to its end with exit 0."""
    _train_with_a_press_while_importing(tmp_path, (
        "            thing = type('Thing', (), {})()\n"
        "            ref = weakref.ref(thing, lambda r: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))\n"
        "            del thing\n"))


def test_a_ctrl_c_inside_an_import_is_not_raised_there_and_still_stops_train(tmp_path: Path) -> None:
    """The failure CI saw in session 25: a press while torch was being imported raised ``KeyboardInterrupt`` inside
    Python code that torch's C++ had called, and the process aborted (status -6) instead of printing one line."""
    _train_with_a_press_while_importing(tmp_path, (
        "            try:\n"
        "                os.kill(os.getpid(), signal.SIGINT)\n"
        "                time.sleep(0.2)\n"
        "            except KeyboardInterrupt:\n"
        "                print('raised inside an import', file=sys.stderr)\n"
        "                raise\n"))


def test_a_second_ctrl_c_during_start_up_ends_the_process_at_once() -> None:
    code = ("import os, signal, time\n"
            "from crossemo_core.interrupts import remember_ctrl_c\n"
            "remember_ctrl_c()\n"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.1)\n"
            "print('still starting', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
            "print('not stopped', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "still starting\n"
    assert proc.stderr.strip() == STOPPED_AT_ONCE


@pytest.mark.parametrize("started", [True, False], ids=["after start-up", "a job begun during start-up"])
def test_first_ctrl_c_stops_the_job_and_the_second_stops_at_once(started: bool) -> None:
    remember_ctrl_c()
    if started:
        end_start_up()
    stop = threading.Event()
    with first_ctrl_c_sets(stop):
        _press_ctrl_c()
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            _press_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is (interrupts._raise_and_remember if started
                                               else interrupts._remember_while_starting)
    assert interrupts._pressed  # the second one is remembered too
    interrupts._pressed = False
    with first_ctrl_c_sets(stop):
        _press_ctrl_c()
    stop_if_ctrl_c_was_pressed()  # the first one asks the job to stop; it does not stop the next job from starting


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
