#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, builds Troupe with the CUDA path, prints `troupe info`, runs the
# ctest label `gpu` (tests/gpu) and the device unit tests, fails if any gpu test was skipped (a skip there means no
# GPU was seen; the two-rank NCCL test skips, and says so, on a one-GPU machine), then runs the GPU benchmarks:
# training tokens/s and MFU against the GPU's measured bf16/fp32 matmul peak (vs Python eager and torch.compile on
# the same GPU), KV-cache decode tokens/s against the GPU's read bandwidth, and NCCL all-reduce bus bandwidth (vs
# torch.distributed/NCCL; needs 2+ GPUs). Meant for one run of a few minutes on a lent GPU machine:
#   bench/gpu_check.sh [BUILD_DIR]          (default build-gpu; set SKIP_BUILD=1 to reuse a built tree,
#                                            SKIP_BENCH=1 to run only the tests)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-gpu}
cd "$root"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  [ -x .venv/bin/python ] || bash scripts/install-deps.sh
  cmake -S . -B "$build" -G Ninja -DTROUPE_WITH_CUDA=ON -DTROUPE_UNITY=ON
  cmake --build "$build" --target troupe troupe_gpu_tests troupe_core_tests
fi
"$build/cli/troupe" info
nvidia-smi -L 2>/dev/null || true
out=$(mktemp)
ctest --test-dir "$build" -L gpu --output-on-failure -j 1 | tee "$out"
ctest --test-dir "$build" -R '^Device\.' --output-on-failure
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
skipped=$(grep -c "Skipped" "$out" || true)
if [ "$skipped" -gt 0 ] && ! { [ "$gpus" -eq 1 ] && [ "$skipped" -eq 1 ] && grep -q "TwoNcclRanks.*Skipped" "$out"; }; then
  echo "gpu_check: $skipped gpu test(s) skipped with $gpus GPU(s) visible" >&2
  exit 1
fi
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0
troupe="$build/cli/troupe"
echo "== bench train: GPT 4x256 (the CPU benchmark's shape), then GPT-2 small at context 1024"
"$troupe" bench train --device cuda --threads 4 --steps 20 --warmup 5
"$troupe" bench train --device cuda --threads 4 --n-layer 12 --n-head 12 --n-embd 768 --vocab 50304 --block 1024 \
  --batch 8 --steps 10 --warmup 5 --work-dir bench-work/train-gpt2
echo "== bench decode: GPT-2 small, batch 1, context 256"
"$troupe" bench decode --device cuda --repeats 5
if [ "$gpus" -ge 2 ]; then
  echo "== bench allreduce: NCCL over $gpus GPUs"
  mpirun --allow-run-as-root --oversubscribe -np "$gpus" "$troupe" bench allreduce --device cuda
else
  echo "== bench allreduce: skipped (NCCL bus bandwidth needs 2+ GPUs; this machine has $gpus)"
fi
