#!/usr/bin/env bash
# Install arfx with its test tools into ./.venv and run the whole test suite (slow tests
# included) plus the linter. The preview-window tests need an X server: Xvfb is installed
# from Debian's packages when it is missing (needs root or sudo). The training code's tests
# (model, losses, ONNX export against PyTorch, the training command end to end on a small
# cache made here) run first in their own ./.venv-train, since PyTorch's ONNX tools need a
# protobuf that MediaPipe cannot live with.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v Xvfb >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo "sudo")
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq xvfb libxtst6 >/dev/null
fi
python3 -m venv .venv
. .venv/bin/activate
pip install -q -e ".[test]"

# A small training cache from the real faces (MediaPipe lives in .venv only) for the
# training command's end-to-end test; without the shared data that test fails under CI.
DATA="${ARFX_DATA:-$PWD/../shared/data}"
if [ -d "$DATA" ]; then
    ARFX_TRAIN_CACHE="$(mktemp -d)"
    export ARFX_TRAIN_CACHE
    trap 'rm -rf "$ARFX_TRAIN_CACHE"' EXIT
    if ! python -m arfx.training.prepare --data "$DATA" --cache "$ARFX_TRAIN_CACHE" --limit 6 \
        --videos single_face.mp4 >"$ARFX_TRAIN_CACHE/prepare.log" 2>&1; then
        cat "$ARFX_TRAIN_CACHE/prepare.log" >&2
        exit 1
    fi
fi

python3 -m venv .venv-train
.venv-train/bin/pip install -q -r requirements-train.txt
PYTHONPATH="$PWD" .venv-train/bin/python -m pytest -q tests/test_training_model.py

ruff check .
pytest -m "slow or not slow" --ignore=tests/test_training_model.py "$@"
