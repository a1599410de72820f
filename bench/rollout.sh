#!/usr/bin/env bash
# The rollout engine against llama.cpp on one model (issue 20):
#   bench/rollout.sh [WORK_DIR] [THREADS]     (default build/bench-rollout, 2 threads; TROUPE=path/to/troupe)
# 1. A random Llama-architecture model (`troupe bench rollout`'s default shape: 4 layers, width 256, 8 heads with 2
#    key/value heads, SwiGLU 704, vocabulary 8192) written as a Hugging Face directory, a byte-level BPE tokenizer
#    trained on the repository's READMEs (the GGUF file needs one; ids it lacks are [PAD i]), and the model exported
#    with `troupe export gguf` as f32, bf16 and q8_0.
# 2. `troupe bench rollout --model`: the engine (64 prompts x 8 samples x 128 new tokens, sampled), the simple loop's
#    per-batch generation, KV memory with and without prefix sharing, batch-1 decode (f32, bf16 weights); and
#    batch-1 decode of the int8-quantized model (`troupe quantize --scheme int8`; the engine runs its int8 codes).
# 3. bench/rollout_llamacpp.py on each GGUF file with the same prompts and threads: parallel decoding of the same
#    64 x 8 x 128 rollout (f32 only) and batch-1 greedy decode.
# Prints the ratios. Speed does not depend on the weights' values; no stop tokens, so every sample runs 128 tokens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
troupe=${TROUPE:-$root/build/cli/troupe}
python=${TROUPE_PYTHON:-$root/.venv/bin/python}
work=$(mkdir -p "${1:-$root/build/bench-rollout}" && cd "${1:-$root/build/bench-rollout}" && pwd)
threads=${2:-2}

echo "== 1. model, tokenizer, GGUF files in $work"
"$troupe" bench rollout --save "$work/model" > /dev/null
mkdir -p "$work/docs" && cp "$root"/README.md "$root"/experiments/*/README.md "$work/docs/" 2> /dev/null || true
"$troupe" tokenizer train --input "$work/docs" -o "$work/tokenizer.json" --vocab-size 1024 > /dev/null
for t in f32 bf16 q8_0; do
  "$troupe" export gguf "$work/model" -o "$work/model-$t.gguf" --type "$t" --tokenizer "$work/tokenizer.json" > /dev/null
done
"$troupe" quantize --model "$work/model" -o "$work/model-int8" --scheme int8 > /dev/null

echo "== 2. Troupe ($threads threads)"
"$troupe" bench rollout --model "$work/model" --threads "$threads" | tee "$work/troupe.txt"
"$troupe" bench rollout --model "$work/model-int8" --threads "$threads" --prompts 1 --samples 1 --skip-generate \
  | grep -E "(engine|generate) batch-1 decode  " | sed 's/batch-1 decode  /batch-1 decode int8/' | tee -a "$work/troupe.txt"

echo "== 3. llama.cpp ($threads threads)"
for t in f32 bf16 q8_0; do
  extra=$([ "$t" = f32 ] || echo --skip-rollout)
  "$python" "$root/bench/rollout_llamacpp.py" "$work/model-$t.gguf" --vocab 8192 --threads "$threads" $extra 2> "$work/llamacpp-$t.log" \
    > "$work/llamacpp-$t.json"
  echo "  $t: $(cat "$work/llamacpp-$t.json" | "$python" -c 'import json,sys; d=json.load(sys.stdin); d.pop("greedy_tokens"); print(d)')"
done

echo "== ratios (Troupe / llama.cpp)"
"$python" - "$work" << 'PY'
import json, re, sys
work = sys.argv[1]
text = open(f"{work}/troupe.txt").read()
def tps(label):
    m = re.search(re.escape(label) + r"\s+([0-9.]+) tokens/s", text)
    return float(m.group(1))
cpp = {t: json.load(open(f"{work}/llamacpp-{t}.json")) for t in ("f32", "bf16", "q8_0")}
rows = [("batch-1 decode f32", tps("engine batch-1 decode"), cpp["f32"]["decode_tokens_per_s"], 0.9),
        ("batch-1 decode bf16", tps("engine batch-1 decode bf16"), cpp["bf16"]["decode_tokens_per_s"], 0.9),
        ("batch-1 decode int8 vs q8_0", tps("engine batch-1 decode int8"), cpp["q8_0"]["decode_tokens_per_s"], 0.9),
        ("rollout 64x8x128", tps("engine, prefix sharing"), cpp["f32"]["rollout_tokens_per_s"], 1.5)]
for name, ours, theirs, goal in rows:
    print(f"  {name:<28} Troupe {ours:9.1f}  llama.cpp {theirs:9.1f} tokens/s  ratio {ours / theirs:5.2f} (goal >= {goal})")
PY
