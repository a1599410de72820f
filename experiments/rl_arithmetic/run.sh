#!/usr/bin/env bash
# The RL-algorithm reproductions on the arithmetic task (README.md here): one SFT policy, then
#   algorithms: PPO (critic) | GRPO | RLOO | REINFORCE++-baseline, seeds 1-3, the same samples each;
#   GRPO as published (std-normalised, sequence-mean loss) vs Dr. GRPO (no std, constant normaliser), seeds 1-3;
#   asynchronous GRPO at max_staleness 0, 1, 2, 4.
# Then table.py prints the results. About 6 minutes on 2 cores.
#   experiments/rl_arithmetic/run.sh [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/runs/rl-arithmetic}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
"$troupe" data arithmetic -o "$work/task" --digits 2 --ops + --sft 3000 --prompts 1000 --test 200 \
  --sft-error-rate 0.4 --seed 1
[ -f "$work/sft/log.h5" ] || "$troupe" train sft "$here/sft.yaml" run.dir="$work" data.train="$work/task/sft.jsonl" \
  data.tokenizer="$work/task/tokenizer.json" >/dev/null
common=(run.dir="$work" run.overwrite=true actor.init_from="$work/sft" prompts.file="$work/task/prompts.jsonl"
        prompts.tokenizer="$work/task/tokenizer.json" eval.file="$work/task/test.jsonl")
rl() { echo "== $1"; "$troupe" run "$here/rl.yaml" "${common[@]}" run.name="$1" "${@:2}" >/dev/null; }
for seed in 1 2 3; do
  rl "ppo_seed-$seed" seed=$seed ppo.advantage_estimator=gae ppo.kl_mode=reward
  rl "grpo_seed-$seed" seed=$seed ppo.loss_aggregation=seq_mean_token_mean
  rl "rloo_seed-$seed" seed=$seed ppo.advantage_estimator=rloo
  rl "reinforce_pp_baseline_seed-$seed" seed=$seed ppo.advantage_estimator=reinforce_pp_baseline
  rl "dr_grpo_seed-$seed" seed=$seed ppo.advantage_estimator=dr_grpo ppo.loss_aggregation=seq_mean_token_sum_norm
done
for k in 0 1 2 4; do
  rl "async_staleness-$k" ppo.async.enabled=true ppo.async.max_staleness=$k
done
"$root/.venv/bin/python" "$here/table.py" "$work"
