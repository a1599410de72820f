#!/usr/bin/env bash
# Reward-model pairwise accuracy vs the Bayes limit, with one command (from anywhere; TROUPE=path/to/troupe):
#   experiments/rm_bayes/run.sh
# Synthetic pairs from a known r* -> `troupe run rm.yaml` (a sweep: N = 64, 256, 1024, 4096 pairs x 2 seeds) ->
# held-out accuracy vs N with the Bayes limit E[sigma(s |Δr*|)] in results/. Runs under runs/rm_bayes; ~2-4 min.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TROUPE=${TROUPE:-$ROOT/build/cli/troupe}
PY=${PY:-$ROOT/.venv/bin/python}
OUT=runs/rm_bayes          # fixed: rm.yaml's sweep names the data files under it
RES=${RES:-experiments/rm_bayes/results}
HERE=experiments/rm_bayes
start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
mkdir -p "$OUT" "$RES"

step "1/3 synthetic pairs (uniform reference, BT labels on 10 r*)"
"$PY" $HERE/rm_bayes.py data --out "$OUT/data" --sizes 64,256,1024,4096 --val-pairs 2048 --scale 10 --seed 5

step "2/3 reward models: sweep over N and seed"
"$TROUPE" run $HERE/rm.yaml >"$OUT/rm.out" 2>&1 || { tail -30 "$OUT/rm.out"; exit 1; }
tail -14 "$OUT/rm.out"

step "3/3 plot"
"$PY" $HERE/rm_bayes.py plot --runs "$OUT/rm" --bayes "$OUT/data/bayes.json" --csv "$RES/accuracy.csv" \
  --table "$RES/table.md" --png "$RES/accuracy.png"
step "done"
