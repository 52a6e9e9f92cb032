#!/bin/sh
# Everything crossemo needs, on a fresh machine with Python 3.11 and pip:  sh scripts/install.sh [--dev]
# (mediapipe needs --no-deps, which a requirements file cannot say per package; see requirements-clip.txt.)
set -e
cd "$(dirname "$0")/.."
pip install -q -r requirements.txt
pip install -q --no-deps -r requirements-clip.txt
if [ "${1:-}" = "--dev" ]; then
    pip install -q -r requirements-dev.txt
fi
