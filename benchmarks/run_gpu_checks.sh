#!/usr/bin/env bash
# The GPU checks of skforml in one go (issue 12), for a machine with CUDA:
#   1. the CUDA tests (tests marked `cuda`), with the GPU-path tests that also
#      run on the CPU (pickling, no host sync, mixed precision, Datasets,
#      images, the meta step's engines);
#   2. benchmarks/bench_gpu.py on the GPU: FORML / plain skorch epoch time of
#      the MLP and the CNN, and peak GPU memory;
#   3. with two GPUs, a data-parallel fit under torchrun (nccl) against the
#      one-GPU fit with the global batch (benchmarks/distributed_gpu_check.py).
# Takes a few minutes. Usage: bash benchmarks/run_gpu_checks.sh [bench args]
set -uo pipefail
cd "$(dirname "$0")/.."

python - <<'PY' || { echo "no CUDA device: nothing to check"; exit 1; }
import torch, sys
print("torch", torch.__version__, "cuda", torch.version.cuda)
sys.exit(0 if torch.cuda.is_available() else 1)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

status=0
echo "== CUDA tests"
python -m pytest -q -m cuda tests/ || status=1
python -m pytest -q -k cuda tests/test_classifier.py || status=1
echo "== GPU-path tests (CPU and CUDA)"
python -m pytest -q -x tests/test_gpu.py tests/test_images.py \
    tests/training/test_data.py tests/engines/test_meta_step.py || status=1
echo "== bench_gpu.py (cuda)"
python benchmarks/bench_gpu.py --device cuda --engines jvp "$@" || status=1
if python -c "import sys, torch; sys.exit(torch.cuda.device_count() < 2)"; then
    echo "== two GPUs: data-parallel fit (torchrun, nccl) against one GPU"
    out=$(mktemp -d)
    python benchmarks/distributed_gpu_check.py --out "$out/one.npz" || status=1
    torchrun --nproc_per_node=2 benchmarks/distributed_gpu_check.py \
        --out "$out/two.npz" --compare "$out/one.npz" || status=1
else
    echo "== two GPUs: skipped (fewer than two CUDA devices)"
fi
exit $status
