"""``python -m crossemo_core``: the command line (:mod:`crossemo_core.cli`). A Ctrl-C while the package is still
being imported ends with the same one line as one during a command, never a traceback."""
import sys

try:
    from crossemo_core.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted: stopped at once; no output file was written or changed", file=sys.stderr)
    code = 130
sys.exit(code)
