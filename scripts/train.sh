#!/usr/bin/env bash
# Train the face model from scratch, reproducibly, and export it into the package.
#
#   bash scripts/train.sh [MINUTES] [RUN_DIR]
#
# 1. the runtime venv (.venv, with MediaPipe and the hair teacher) prepares the cache of
#    crops, pseudo-labels and poses from ../shared/data (ARFX_DATA overrides);
# 2. a separate training venv (.venv-train: PyTorch CPU, onnx) trains with seed 0 for
#    MINUTES (default 95) and logs curves to RUN_DIR (default runs/face-v1);
# 3. the best checkpoint is exported to arfx/models/face_multitask.onnx and checked
#    against PyTorch with ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-95}
RUN=${2:-runs/face-v1}
DATA=${ARFX_DATA:-../shared/data}
CACHE=${ARFX_CACHE:-$HOME/.cache/arfx}/train-v1

[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]"; }
.venv/bin/python -m arfx.training.prepare --data "$DATA" --cache "$CACHE"

if [ ! -x .venv-train/bin/python ]; then
    python3 -m venv .venv-train
    .venv-train/bin/pip install -q -r requirements-train.txt
fi
export PYTHONPATH="$PWD"
.venv-train/bin/python -m arfx.training.train --cache "$CACHE" --out "$RUN" \
    --minutes "$MINUTES" --seed 0 $( [ -f "$RUN/last.pt" ] && echo --resume )
.venv-train/bin/python -m arfx.training.export --checkpoint "$RUN/best.pt" \
    --out arfx/models/face_multitask.onnx
