"""``python -m crossemo_core``: the command line (:mod:`crossemo_core.cli`). A Ctrl-C while the package is still
being imported is remembered and ends the command with the same one line as one during a command, never a traceback
or an abort, and exit status 130 (:mod:`crossemo_core.interrupts`)."""
import os
import sys

try:
    from crossemo_core.interrupts import STOPPED_AT_ONCE, remember_ctrl_c

    remember_ctrl_c()
    from crossemo_core.cli import main

    code = main()  # its end_start_up() acts on a Ctrl-C remembered since remember_ctrl_c()
except KeyboardInterrupt:
    print(STOPPED_AT_ONCE, file=sys.stderr)
    code = 130
if code == 130:
    # A KeyboardInterrupt caught while a module was being imported can still make the interpreter started by
    # ``-m`` end itself with SIGINT at shutdown (status -2 instead of 130); nothing is left to write, so leave now.
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving already: another Ctrl-C must not interrupt the collection
    gc.collect()  # a worker pool stopped by the Ctrl-C frees its semaphores (else the tracker warns of leaks)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
