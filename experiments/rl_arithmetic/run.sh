#!/usr/bin/env bash
# The RL-algorithm reproductions on the arithmetic task (README.md here):
#   algos:     PPO (critic) | GRPO | RLOO | REINFORCE++-baseline | Dr. GRPO from one SFT policy, seeds 1-3, the same
#              samples each (~6 min);
#   length:    GRPO as published (std, sequence-mean loss) vs Dr. GRPO from an SFT policy with a rambling mode
#              (--ramble-rate), seeds 1-2, 150 iterations (~15 min);
#   staleness: asynchronous GRPO at max_staleness 0, 1, 2, 4, seeds 1-3 (~3 min).
# Then table.py prints the results. About 25 minutes on 2 cores.
#   experiments/rl_arithmetic/run.sh [WORK_DIR] [PART...]      (parts: algos length staleness; default all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/runs/rl-arithmetic}
shift || true
parts=${*:-algos length staleness}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
want() { [[ " $parts " == *" $1 "* ]]; }

# The main task: 2-digit additions, 40% of the SFT answers off by one.
"$troupe" data arithmetic -o "$work/task" --digits 2 --ops + --sft 3000 --prompts 1000 --test 200 \
  --sft-error-rate 0.4 --seed 1 >/dev/null
[ -f "$work/sft/log.h5" ] || "$troupe" train sft "$here/sft.yaml" run.dir="$work" data.train="$work/task/sft.jsonl" \
  data.tokenizer="$work/task/tokenizer.json" >/dev/null
common=(run.dir="$work" run.overwrite=true actor.init_from="$work/sft" prompts.file="$work/task/prompts.jsonl"
        prompts.tokenizer="$work/task/tokenizer.json" eval.file="$work/task/test.jsonl")
rl() { echo "== $1"; "$troupe" run "$here/rl.yaml" "${common[@]}" run.name="$1" "${@:2}" >/dev/null; }
if want algos; then
  for seed in 1 2 3; do
    rl "ppo_seed-$seed" seed=$seed ppo.advantage_estimator=gae ppo.kl_mode=reward
    rl "grpo_seed-$seed" seed=$seed ppo.loss_aggregation=seq_mean_token_mean
    rl "rloo_seed-$seed" seed=$seed ppo.advantage_estimator=rloo
    rl "reinforce_pp_baseline_seed-$seed" seed=$seed ppo.advantage_estimator=reinforce_pp_baseline
    rl "dr_grpo_seed-$seed" seed=$seed ppo.advantage_estimator=dr_grpo ppo.loss_aggregation=seq_mean_token_sum_norm
  done
fi
if want staleness; then
  for seed in 1 2 3; do
    for k in 0 1 2 4; do
      rl "async_staleness-${k}_seed-$seed" seed=$seed ppo.async.enabled=true ppo.async.max_staleness=$k
    done
  done
fi

# The length task: 20% of the SFT answers off by one and 20% of the SFT responses a ramble (the working repeated,
# never answering, truncated without EOS), so the starting policy has a long, always-wrong mode.
if want length; then
  lw="$work/length"
  mkdir -p "$lw"
  "$troupe" data arithmetic -o "$lw/task" --digits 2 --ops + --sft 3000 --prompts 1000 --test 200 \
    --sft-error-rate 0.2 --ramble-rate 0.2 --seed 1 >/dev/null
  [ -f "$lw/sft/log.h5" ] || "$troupe" train sft "$here/sft.yaml" run.dir="$lw" data.train="$lw/task/sft.jsonl" \
    data.tokenizer="$lw/task/tokenizer.json" model.block_size=32 data.max_length=32 train.steps=1500 >/dev/null
  long=(run.dir="$lw" run.overwrite=true actor.init_from="$lw/sft" prompts.file="$lw/task/prompts.jsonl"
        prompts.tokenizer="$lw/task/tokenizer.json" eval.file="$lw/task/test.jsonl" generation.max_new_tokens=24
        ppo.iterations=150 eval.every=50)
  lrl() { echo "== length/$1"; "$troupe" run "$here/rl.yaml" "${long[@]}" run.name="$1" "${@:2}" >/dev/null; }
  for seed in 1 2; do
    lrl "grpo_seed-$seed" seed=$seed ppo.loss_aggregation=seq_mean_token_mean
    lrl "dr_grpo_seed-$seed" seed=$seed ppo.advantage_estimator=dr_grpo ppo.loss_aggregation=seq_mean_token_sum_norm
  done
fi
"$root/.venv/bin/python" "$here/table.py" "$work"
[ -d "$work/length" ] && "$root/.venv/bin/python" "$here/table.py" "$work/length" --length
exit 0
