#!/usr/bin/env bash
# Self-consistency on the arithmetic task (README.md here): for each seed, three 2-layer GPTs trained with the same
# problems, steps and seed: on answer-only responses, on responses that show one fixed working, and on responses
# that show one of several valid workings at random; then greedy decoding and majority votes over N = 1..16 sampled
# answers / chains of thought, with `troupe eval run` on lm-eval task files. Then table.py prints the results.
# About 45 minutes on 2 cores, 25 with two copies at once.
#   experiments/self_consistency/run.sh [WORK_DIR] [SEEDS...]       (default runs/self-consistency, seeds 1 2 3)
# Each training and evaluation uses 1 thread; on 2 cores, run two copies at once for different seeds (after the first
# has written the data): run.sh DIR 1 3 & sleep 10; run.sh DIR 2; wait.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/runs/self-consistency}
shift || true
seeds=${*:-1 2 3}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
# 3-digit additions; the same problems for every format (the data seed is fixed, the model seed varies).
# Written once, so that several copies of this script (one per seed) can share them.
data() {
  [ -f "$work/data-$1/test.jsonl" ] && return 0
  "$troupe" data arithmetic -o "$work/data-$1" --digits 3 --ops + --sft 4000 --prompts 10 --test 200 --seed 1 \
    "${@:2}" >/dev/null
}
data answer
data cot --working-rate 1
data cot-varied --working-rate 1 --varied-working
cp "$here"/answer_only*.yaml "$work/data-answer/"
cp "$here"/cot_*.yaml "$work/data-cot/"
cp "$here"/cot_*.yaml "$work/data-cot-varied/"
for seed in $seeds; do
  for format in answer cot cot-varied; do
    run="$format-seed-$seed"
    if [ ! -f "$work/$run/sft/log.h5" ]; then
      echo "== train $run"
      "$troupe" train sft "$here/sft.yaml" seed="$seed" run.dir="$work/$run" data.train="$work/data-$format/sft.jsonl" \
        data.tokenizer="$work/data-$format/tokenizer.json" >/dev/null
    fi
    suite=answer_only_suite.yaml
    [ "$format" != answer ] && suite=cot_suite.yaml
    echo "== evaluate $run"
    "$troupe" eval run "$work/data-$format/$suite" -c "$work/$run/sft" -t "$work/data-$format/tokenizer.json" \
      --seed "$seed" --batch-size 64 --threads 1 --quiet -o "$work/eval-$run" >/dev/null
  done
done
"$root/.venv/bin/python" "$here/table.py" "$work"
