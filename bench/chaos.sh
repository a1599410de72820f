#!/usr/bin/env bash
# The long chaos run: RUNS PPO jobs (actor as a data-parallel group of 2 MPI ranks, async rollout worker, critic,
# reward, reference; fault.tolerance restart), each with FAULTS faults on its own seeded schedule (SIGKILL, SIGSTOP or
# dropped sockets on the controller, either actor rank, or any other role), against one uninterrupted run of the same
# config. Prints per fault the target and the recovery time, and at the end: failures injected, recovered, runs whose
# final metrics, weights and optimizer state equal the clean run's, hangs (must be 0), processes left behind (must be
# 0), and the recovery time (injection -> first iteration completed after the restart), median and worst. Exits 1
# unless every fault was recovered and every run equals the clean one.
#   bench/chaos.sh [RUNS=10] [FAULTS=10] [ITERATIONS=300] [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
faults=${2:-10}
iterations=${3:-300}
work=${4:-${TMPDIR:-/tmp}/troupe-chaos-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
python=${TROUPE_PYTHON:-$root/.venv/bin/python}
rm -rf "$work"
exec "$python" "$root/tests/support/chaos.py" --cli "$troupe" --workdir "$work" --runs "$runs" --faults "$faults" \
  --iterations "$iterations"
