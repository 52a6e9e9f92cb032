import sys

from crossemo_core.cli import main

sys.exit(main())
