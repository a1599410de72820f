#!/usr/bin/env bash
# PPO placement overhead: seconds per iteration of the same PPO run with the four roles as separate `troupe worker`
# processes (ipc://) and with all of them on threads of one process (inproc://), from the controller's own
# time/iteration_s metric (median over iterations 3..N of three runs each). Both runs log identical metrics (the test checks it),
# so the difference is the cost of separate processes: serialisation into frames, ipc copies, scheduling.
#   bench/ppo_overhead.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-ppo-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
cd "$work"
# The quickstart task with a larger model and longer responses, so an iteration does real work.
common=(run.dir="$work/runs" checkpoint.every=0 ppo.iterations=15 ppo.rollout_batch=32 ppo.minibatch=16
        actor.model.n_layer=2 actor.model.n_embd=256 actor.model.n_head=4 actor.model.block_size=64
        actor.model.vocab_size=512 generation.max_new_tokens=24 runtime.threads=1)
source "$root/bench/lib.sh"
# Median of time/iteration_s over iterations 3..N of every run whose name starts with $1.
median() { metric_median time/iteration_s 3 "$work/runs/$1"-*; }
# Three rounds, alternating the placements, so that a disturbance on the machine hits both alike.
for rep in 1 2 3; do
  "$troupe" run "$root/experiments/quickstart/ppo.yaml" "${common[@]}" run.name=inproc-$rep placement.mode=inproc >/dev/null
  "$troupe" run "$root/experiments/quickstart/ppo.yaml" "${common[@]}" run.name=processes-$rep placement.mode=processes >/dev/null
done
a=$(median inproc); b=$(median processes)
echo "PPO iteration: GPT 2x256, vocab 512, 32 rollouts x 24 tokens, minibatch 16, 1 thread per process," \
     "OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:+set}${OPENBLAS_CORETYPE:-unset}"
awk -v a="$a" -v b="$b" 'BEGIN {printf "inproc (one process):  %.3f s/iteration\n4 worker processes:    %.3f s/iteration\noverhead: %+.1f%% (goal <= 10%%)\n", a, b, 100 * (b / a - 1)}'
