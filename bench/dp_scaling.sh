#!/usr/bin/env bash
# Data-parallel scaling: training tokens/s of the same pretrain run on 1 rank and on 2 MPI ranks (one thread per
# rank, same global batch), from the trainer's own train/tokens_per_s metric (median over steps 4..N).
#   bench/dp_scaling.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-dp-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
mkdir -p "$work"
# A learnable synthetic stream (vocab 4096) as a token file.
"$root/.venv/bin/python" - "$work" <<'PY'
import json, random, sys
import numpy as np
work = sys.argv[1]
random.seed(0)
n, x = 400000, 1
ids = np.empty(n, dtype="<u2")
for i in range(n):
    ids[i] = x
    x = random.randrange(4096) if random.random() < 0.1 else (5 * x + 3) % 4096
ids.tofile(work + "/t.bin")
json.dump({"format": "troupe-tokens", "version": 1, "dtype": "uint16", "count": n, "vocab_size": 4096,
           "documents": 1, "separator": None, "tokenizer": "synthetic", "sources": []}, open(work + "/t.bin.json", "w"))
PY
cat > "$work/dp.yaml" <<YAML
kind: pretrain
run: {dir: $work/runs, overwrite: true}
runtime: {threads: 1}
checkpoint: {every: 0}
model: {n_layer: 4, n_head: 4, n_embd: 256, block_size: 128, vocab_size: 4096}
optim: {warmup_steps: 2}
train: {steps: 20, batch_size: 16, log_every: 10}
data: {train: $work/t.bin}
YAML
"$troupe" train pretrain "$work/dp.yaml" run.name=one >/dev/null
mpirun --allow-run-as-root --oversubscribe -np 2 --mca btl self,vader "$troupe" train pretrain "$work/dp.yaml" run.name=two >/dev/null
source "$root/bench/lib.sh"
median() { metric_median train/tokens_per_s 4 "$work/runs/$1"; }
one=$(median one); two=$(median two)
echo "GPT 4x256, vocab 4096, context 128, global batch 16, 1 thread per rank, OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:+set}${OPENBLAS_CORETYPE:-unset}"
awk -v a="$one" -v b="$two" 'BEGIN {printf "1 rank: %.0f tokens/s\n2 ranks: %.0f tokens/s\nscaling: %.2fx (goal >= 1.7x)\n", a, b, b / a}'
