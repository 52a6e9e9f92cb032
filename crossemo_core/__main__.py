"""``python -m crossemo_core``: the command line (:mod:`crossemo_core.cli`). A Ctrl-C while the package is still
being imported ends with the same one line as one during a command, never a traceback, and exit status 130, also
when the import machinery swallows it (it can run the handler inside a callback whose exceptions are ignored)."""
import os
import sys

try:
    from crossemo_core.interrupts import remember_ctrl_c, stop_if_ctrl_c_was_pressed

    remember_ctrl_c()
    from crossemo_core.cli import main

    stop_if_ctrl_c_was_pressed()
    code = main()
except KeyboardInterrupt:
    print("interrupted: stopped at once; no output file was written or changed", file=sys.stderr)
    code = 130
if code == 130:
    # A KeyboardInterrupt caught while a module was being imported can still make the interpreter started by
    # ``-m`` end itself with SIGINT at shutdown (status -2 instead of 130); nothing is left to write, so leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
