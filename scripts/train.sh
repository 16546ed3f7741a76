#!/usr/bin/env bash
# Train the face model from scratch, reproducibly, and export it into the package.
#
#   bash scripts/train.sh [RECIPE] [RUN_DIR]
#
# RECIPE is the shipped model's, v16 (default), or an earlier one (v10, v1):
#   v10: v8's recipe from scratch (4200 steps, about 98 minutes on the 2-core CPU), then a
#        fine-tune of its best checkpoint with heads cut at a frame's top edge (1600 steps,
#        about 42 minutes); RUN_DIR/v8 and RUN_DIR/v10.
#   v16: v10, exported, then 800 steps from that ONNX file (as v16 was made: it started from
#        the shipped v10) with the photos with a hat four times as often and fake previous
#        hair masks with a hole below a frame's top edge (about 20 minutes); RUN_DIR/v16.
#        About 160 minutes in all.
#   v1:  95 minutes of v1's recipe.
# RUN_DIR defaults to runs/face-RECIPE.
#
# 1. the runtime venv (.venv, with MediaPipe and the hair teacher) prepares the cache of
#    crops, pseudo-labels and poses from ../shared/data (ARFX_DATA overrides);
# 2. a separate training venv (.venv-train: PyTorch CPU, onnx) trains with seed 0 and logs
#    curves into each run's folder; an interrupted run resumes from its last checkpoint;
# 3. the final checkpoint is exported to arfx/models/face_multitask.onnx and checked
#    against PyTorch with ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-v16}
RUN=${2:-runs/face-$RECIPE}
DATA=${ARFX_DATA:-../shared/data}
CACHE=${ARFX_CACHE:-$HOME/.cache/arfx}/train-v1
case "$RECIPE" in
    v16|v10|v1) ;;
    *) echo "unknown recipe '$RECIPE' (v16, v10 or v1)" >&2; exit 2 ;;
esac

[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]"; }
.venv/bin/python -m arfx.training.prepare --data "$DATA" --cache "$CACHE"

if [ ! -x .venv-train/bin/python ]; then
    python3 -m venv .venv-train
    .venv-train/bin/pip install -q -r requirements-train.txt
fi
export PYTHONPATH="$PWD"

train() {  # OUT, then train.py options
    local out=$1
    shift
    .venv-train/bin/python -m arfx.training.train --cache "$CACHE" --out "$out" --seed 0 "$@" \
        $( [ -f "$out/last.pt" ] && echo --resume )
}

if [ "$RECIPE" = v1 ]; then
    train "$RUN" --minutes 95
    BEST=$RUN/best.pt
else
    COMMON=(--precision bf16 --crop-border reflect --mix 7,3,2 --loss-weights dice=1.0
            --val-minutes 12)
    train "$RUN/v8" --steps 4200 "${COMMON[@]}" \
        --augment context_zero=0.6,previous_grow=5,previous_shift=0.04
    train "$RUN/v10" --steps 1600 "${COMMON[@]}" --init "$RUN/v8/best.pt" --lr 1e-3 \
        --augment context_zero=0.3,previous_grow=2,previous_shift=0.02,frame_cut=0.3
    BEST=$RUN/v10/best.pt
    if [ "$RECIPE" = v16 ]; then
        .venv-train/bin/python -m arfx.training.export --checkpoint "$BEST" \
            --out "$RUN/v10/face_v10.onnx"
        train "$RUN/v16" --steps 800 "${COMMON[@]}" --init "$RUN/v10/face_v10.onnx" \
            --lr 5e-4 --hats 4 --val-minutes 30 \
            --augment context_zero=0.3,previous_grow=2,previous_shift=0.02,frame_cut=0.3,previous_hole=0.5
        BEST=$RUN/v16/last.pt  # the run's end, not a checkpoint chosen on the held-out split
    fi
fi
.venv-train/bin/python -m arfx.training.export --checkpoint "$BEST" \
    --out arfx/models/face_multitask.onnx
# 4. the mesh refinement of the new model's 68 points, fitted on the udacity training faces
#    (arfx/points68.py); it names the ONNX file's SHA-256, so an old fit is never applied.
.venv/bin/python -m arfx.training.fit_points68 --data "$DATA/landmarks68/udacity"
