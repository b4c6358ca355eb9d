#!/usr/bin/env bash
# Set up (venv with the CPU build of PyTorch) and run the embedded demo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e .
exec .venv/bin/bisector demo "$@"
