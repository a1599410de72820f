#!/usr/bin/env bash
# The weight formats' size / speed / quality table (issue 17):
#   bench/quantize.sh [WORK_DIR]        (default build/bench-quantize; TROUPE=path/to/troupe)
# 1. `troupe bench quantize` on GPT-2 small's shape: weight MB, batch-1 decode tokens/s (KV cache, context 256,
#    1 thread, median of 5) for fp32, bf16 (the peer: torch's kernels on bf16 weights), int8, int4, nf4 and
#    int8_dynamic, with the ratio to bf16.
# 2. The RLHF quickstart (experiments/quickstart.yaml, reused when WORK_DIR/quickstart/summary.json exists), then
#    the perplexity of its SFT model on the held-out fortunes in every format (bench quantize --model).
# 3. The quickstart's PPO stage again with the reference and reward roles quantized (int8, int4, nf4; every trunk
#    linear and the tied embedding), then `troupe eval policies`: win rate against SFT, true-lexicon reward and KL
#    of each PPO policy, next to the full-precision PPO of step 2.
# About 25 minutes on 2 cores (the quickstart 6, each PPO run 3, evaluation 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
troupe=${TROUPE:-$root/build/cli/troupe}
work=$(mkdir -p "${1:-$root/build/bench-quantize}" && cd "${1:-$root/build/bench-quantize}" && pwd)

echo "== 1. size and batch-1 decode speed, GPT-2 small's shape"
"$troupe" bench quantize --threads 1 --repeats 5

q=$work/quickstart
if [ ! -f "$q/summary.json" ]; then
  echo "== 2. the quickstart (log: $work/quickstart.log)"
  (cd "$root" && "$troupe" run experiments/quickstart.yaml "run.dir=$work") > "$work/quickstart.log" 2>&1
fi
cat "$q"/data/docs/val/*.txt > "$work/val.txt"
echo "== 2. perplexity of the quickstart SFT model on its held-out documents"
"$troupe" bench quantize --threads 1 --n-layer 2 --n-head 4 --n-embd 128 --vocab 1024 --context 64 --new-tokens 16 \
  --schemes fp32,bf16,int8,int4,nf4,int8_dynamic --model "$q/sft" --text "$work/val.txt" --tokenizer "$q/tokenizer.json"

echo "== 3. PPO with quantized reference and reward roles"
policies=(--policy "ppo_fp32=$q/ppo")
for scheme in int8 int4 nf4; do
  run=$work/ppo-$scheme
  if [ ! -f "$run/done" ]; then
    (cd "$root/experiments" && "$troupe" run quickstart/ppo_rm.yaml "run.dir=$run" "actor.init_from=$q/sft" \
      "reward.model=$q/rm" "prompts.file=$q/data/prompts_train.jsonl" "prompts.tokenizer=$q/tokenizer.json" \
      "reference.quantization.scheme=$scheme" "reference.quantization.embedding=true" \
      "reward.quantization.scheme=$scheme" "reward.quantization.embedding=true") > "$work/ppo-$scheme.log" 2>&1
    touch "$run/done"
  fi
  policies+=(--policy "ppo_ref_rm_$scheme=$run/ppo")
done
(cd "$root/experiments" && "$troupe" eval policies --reference "$q/sft" "${policies[@]}" -t "$q/tokenizer.json" \
  --prompts "$q/data/prompts_val.jsonl" --max-prompts 200 --samples 4 --reward lexicon \
  --lexicon ../tests/fixtures/lexicons/afinn165.tsv --max-new-tokens 20 --seed 4 --out "$work/ppo_quantized.json")
