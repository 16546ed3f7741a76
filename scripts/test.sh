#!/usr/bin/env bash
# Install arfx with its test tools into ./.venv and run the whole test suite (slow tests
# included) plus the linter. The preview-window tests need an X server: Xvfb is installed
# from Debian's packages when it is missing (needs root or sudo). The training code's tests
# (model, losses, ONNX export against PyTorch) run first in their own ./.venv-train, since
# PyTorch's ONNX tools need a protobuf that MediaPipe cannot live with.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xvfb libxtst6 >/dev/null
fi
python3 -m venv .venv-train
.venv-train/bin/pip install -q -r requirements-train.txt
PYTHONPATH="$PWD" .venv-train/bin/python -m pytest -q tests/test_training_model.py

python3 -m venv .venv
. .venv/bin/activate
pip install -q -e ".[test]"
ruff check .
pytest -m "slow or not slow" --ignore=tests/test_training_model.py "$@"
