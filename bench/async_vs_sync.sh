#!/usr/bin/env bash
# Asynchronous against synchronous rollouts at equal samples, on the arithmetic task with the verifiable reward:
# SFT once (2-digit additions, 40% of the answers off by one), then GRPO (8 samples x 16 prompts per iteration, 60
# iterations, roles as worker processes) synchronously and with a rollout worker at max_staleness 1 and 2. Prints
# the median seconds per iteration (iterations 3..60), the ratio to synchronous, and the held-out sampled accuracy
# before and after (eval/reward_mean on 200 problems).
#   bench/async_vs_sync.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-async-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
rm -rf "$work"; mkdir -p "$work"; cd "$work"
"$troupe" data arithmetic -o task --digits 2 --ops + --sft 3000 --prompts 1000 --test 200 --sft-error-rate 0.4 \
  --seed 1 >/dev/null
# The experiment's configs (experiments/rl_arithmetic), at this benchmark's settings.
configs=$root/experiments/rl_arithmetic
"$troupe" train sft "$configs/sft.yaml" run.dir="$work/runs" model.block_size=16 data.train="$work/task/sft.jsonl" \
  data.tokenizer="$work/task/tokenizer.json" >/dev/null
rl() { "$troupe" run "$configs/rl.yaml" seed=3 run.dir="$work/runs" run.name="$1" actor.init_from="$work/runs/sft" \
  prompts.file="$work/task/prompts.jsonl" prompts.tokenizer="$work/task/tokenizer.json" \
  eval.file="$work/task/test.jsonl" eval.every=60 generation.max_new_tokens=5 "${@:2}" >/dev/null; }
rl sync
rl async1 ppo.async.enabled=true ppo.async.max_staleness=1
rl async2 ppo.async.enabled=true ppo.async.max_staleness=2
source "$root/bench/lib.sh"
median() { metric_median time/iteration_s 3 "runs/$1"; }
acc() { "$troupe" log "runs/$1" --metric eval/reward_mean | awk -F, -v step="$2" 'NR>1 && $1==step {print $2}'; }
s=$(median sync)
echo "GRPO on the arithmetic task: 16 prompts x 8 samples, 60 iterations, worker processes, 1 thread each"
for r in sync async1 async2; do
  m=$(median $r)
  awk -v r="$r" -v m="$m" -v s="$s" -v a0="$(acc $r 0)" -v a1="$(acc $r 60)" 'BEGIN {
    printf "%-7s %.3f s/iteration (%.2fx sync)  held-out accuracy %.3f -> %.3f\n", r, m, m / s, a0, a1 }'
done
