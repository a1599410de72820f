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
cat > sft.yaml <<'YAML'
kind: sft
seed: 1
run: {dir: runs, name: sft}
runtime: {threads: 2}
checkpoint: {every: 0, keep_last: 1}
model: {n_layer: 2, n_head: 4, n_embd: 64, block_size: 16, vocab_size: 257, dropout: 0.0}
optim: {lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 10, weight_decay: 0.0}
train: {steps: 800, batch_size: 64, eval_every: 1000, log_every: 100}
data: {train: task/sft.jsonl, tokenizer: task/tokenizer.json, max_length: 16}
YAML
cat > grpo.yaml <<'YAML'
kind: ppo
seed: 3
run: {dir: runs}
runtime: {threads: 1}
checkpoint: {every: 0, keep_last: 1}
actor: {init_from: runs/sft, optim: {lr: 2.0e-4, warmup_steps: 0, schedule: constant, weight_decay: 0.0}}
reward: {function: {type: answer}}
prompts: {file: task/prompts.jsonl, tokenizer: task/tokenizer.json}
generation: {max_new_tokens: 5, do_sample: true}
ppo: {iterations: 60, rollout_batch: 16, group_size: 8, minibatch: 64, epochs: 1, advantage_estimator: grpo,
      kl_mode: loss, kl_estimator: k3, kl: {init_coef: 0.0}}
eval: {file: task/test.jsonl, every: 60, greedy: false}
placement: {mode: processes}
YAML
"$troupe" train sft sft.yaml >/dev/null
"$troupe" run grpo.yaml run.name=sync >/dev/null
"$troupe" run grpo.yaml run.name=async1 ppo.async.enabled=true ppo.async.max_staleness=1 >/dev/null
"$troupe" run grpo.yaml run.name=async2 ppo.async.enabled=true ppo.async.max_staleness=2 >/dev/null
median() { "$troupe" log "runs/$1" --metric time/iteration_s | awk -F, 'NR>1 && $1>=3 {print $2}' | sort -n |
  awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
acc() { "$troupe" log "runs/$1" --metric eval/reward_mean | awk -F, -v step="$2" 'NR>1 && $1==step {print $2}'; }
s=$(median sync)
echo "GRPO on the arithmetic task: 16 prompts x 8 samples, 60 iterations, worker processes, 1 thread each"
for r in sync async1 async2; do
  m=$(median $r)
  awk -v r="$r" -v m="$m" -v s="$s" -v a0="$(acc $r 0)" -v a1="$(acc $r 60)" 'BEGIN {
    printf "%-7s %.3f s/iteration (%.2fx sync)  held-out accuracy %.3f -> %.3f\n", r, m, m / s, a0, a1 }'
done
