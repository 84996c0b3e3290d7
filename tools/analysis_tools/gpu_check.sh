#!/usr/bin/env bash
# One-GPU check of the pretraining step, in under 8 minutes (what it prints: tools/analysis_tools/gpu_check.py).
#   PYTHON=.venv/bin/python bash tools/analysis_tools/gpu_check.sh   # one GPU; JSON to work_dirs/gpu_check.json
#   ... gpu_check.sh --dry-run            # on CPU, tiny ViT (what tests/test_tools/test_gpu_check.py runs)
#   ... gpu_check.sh --peak-tflops 989    # a card missing from the peak-FLOPs table
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "$PYTHON" tools/analysis_tools/gpu_check.py \
    --json work_dirs/gpu_check.json "$@"
