#!/usr/bin/env bash
# The critic-free saving: seconds per iteration of GRPO against PPO on the same prompts and the same samples
# (8 prompts x 4 samples each, identical model, generation and minibatches; PPO adds the critic's values and
# training), each role a worker process, from the controller's time/iteration_s (median over iterations 3..N of
# three runs each, alternating). Also the cost of runtime.deterministic: true on the PPO run, as a ratio.
#   bench/grpo_vs_ppo.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-grpo-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
cd "$work"
common=(run.dir="$work/runs" checkpoint.every=0 ppo.iterations=15 ppo.rollout_batch=8 ppo.group_size=4
        ppo.minibatch=16 actor.model.n_layer=2 actor.model.n_embd=256 actor.model.n_head=4 actor.model.block_size=64
        actor.model.vocab_size=512 generation.max_new_tokens=24 runtime.threads=1 placement.mode=processes)
source "$root/bench/lib.sh"
median() { metric_median time/iteration_s 3 "$work/runs/$1"-*; }
rm -rf "$work/runs"
for rep in 1 2 3; do
  "$troupe" run "$root/experiments/quickstart/ppo.yaml" "${common[@]}" run.name=ppo-$rep >/dev/null
  "$troupe" run "$root/experiments/quickstart/ppo.yaml" "${common[@]}" run.name=grpo-$rep \
    ppo.advantage_estimator=grpo ppo.kl_mode=loss ppo.kl_estimator=k3 >/dev/null
  "$troupe" run "$root/experiments/quickstart/ppo.yaml" "${common[@]}" run.name=det-$rep runtime.deterministic=true >/dev/null
done
p=$(median ppo); g=$(median grpo); d=$(median det)
echo "GPT 2x256, vocab 512, 8 prompts x 4 samples x 24 tokens, minibatch 16, 1 thread per worker process"
awk -v p="$p" -v g="$g" -v d="$d" 'BEGIN {
  printf "PPO  (actor, critic, reward, reference): %.3f s/iteration\n", p
  printf "GRPO (actor, reward, reference):         %.3f s/iteration  (%.2fx PPO, saving %.0f%%)\n", g, g / p, 100 * (1 - g / p)
  printf "PPO with runtime.deterministic: true:    %.3f s/iteration  (%.2fx the default)\n", d, d / p }'
