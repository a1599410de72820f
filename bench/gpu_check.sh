#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, builds Troupe with the CUDA path, prints `troupe info`, runs the
# ctest label `gpu` (tests/gpu) and the device unit tests, and fails if any gpu test was skipped (a skip there means
# no GPU was seen). Meant for one run of a few minutes on a lent GPU machine:
#   bench/gpu_check.sh [BUILD_DIR]          (default build-gpu; set SKIP_BUILD=1 to reuse a built tree)
# Not yet here (issue 13): the GPU benchmarks (training tokens/s and MFU, decode, NCCL bus bandwidth), which need
# the trainer and `troupe bench` on devices first.
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
if grep -q "Not Run\|Skipped" "$out"; then
  echo "gpu_check: some gpu tests were skipped: no CUDA GPU visible to this process" >&2
  exit 1
fi
