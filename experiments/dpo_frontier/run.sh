#!/usr/bin/env bash
# Reproduces DPO (Rafailov et al. 2023) Fig. 2 left on the tiny pattern task, end to end, with one command:
#   experiments/dpo_frontier/run.sh            (from the repository root; TROUPE=path/to/troupe to pick a binary)
# Steps: Markov-chain corpus -> reference policy (pretrain) -> its exact distribution -> preference pairs (BT on
# r*) -> DPO sweep over beta, PPO sweep over the KL coefficient with r* (and PPO with a reward model trained on the
# same pairs unless WITH_RM=0) -> `troupe eval exact` of every run -> CSV, table and plot in results/.
# Writes runs under $OUT (default runs/dpo_frontier); ~5-10 minutes on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
TROUPE=${TROUPE:-$ROOT/build/cli/troupe}
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-runs/dpo_frontier}
RES=${RES:-experiments/dpo_frontier/results}
WITH_RM=${WITH_RM:-1}
HERE=experiments/dpo_frontier
SCALE=10                               # Bradley-Terry labels on SCALE * r*
PATTERN=3,5,1,6                        # r*: fraction of the 4 response tokens matching this
BETAS=(0.01 0.015 0.02 0.025 0.03 0.035 0.04 0.045 0.05 0.06 0.07 0.08 0.09 0.1 0.11 0.12 0.14 0.16 0.18 0.2 0.25 0.3 0.4 0.5 0.7 1 1.5 2 3 5 10)   # frontier points pi*_beta
EXACT=(--all-prompts 2 --response-length 4 --pattern "$PATTERN" --threads 2)
start=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
mkdir -p "$OUT/eval" "$RES"

step "1/7 corpus: Markov chain over 8 ids"
"$PY" $HERE/frontier.py tokens --out "$OUT/tokens.bin" --count 100000 --alpha 1.5 --seed 1

step "2/7 reference policy (pretrain)"
"$TROUPE" train pretrain $HERE/reference.yaml "run.dir=$OUT" "data.train=$OUT/tokens.bin" >"$OUT/reference.out" 2>&1 ||
  { tail -20 "$OUT/reference.out"; exit 1; }
tail -2 "$OUT/reference.out"

step "3/7 exact distribution of the reference and the frontier"
beta_args=(); for b in "${BETAS[@]}"; do beta_args+=(--beta "$b"); done
"$TROUPE" eval exact -c "$OUT/reference" -r "$OUT/reference" "${EXACT[@]}" "${beta_args[@]}" \
  --json "$OUT/eval/frontier.json" --dump-csv "$OUT/reference.csv"

step "4/7 preference pairs sampled from pi_ref, labels BT(${SCALE} r*)"
"$PY" $HERE/frontier.py prefs --distribution "$OUT/reference.csv" --out "$OUT/prefs" --pairs 4096 --val-pairs 512 \
  --scale $SCALE --seed 2

step "5/7 DPO sweep over beta"
"$TROUPE" run $HERE/dpo.yaml "run.dir=$OUT" "init_from=$OUT/reference" "data.train=$OUT/prefs/train.jsonl" \
  "data.val=$OUT/prefs/val.jsonl" >"$OUT/dpo.out" 2>&1 || { tail -30 "$OUT/dpo.out"; exit 1; }
tail -8 "$OUT/dpo.out"

step "6/7 PPO sweep over the KL coefficient, reward r*"
"$TROUPE" run $HERE/ppo.yaml "run.dir=$OUT" "actor.init_from=$OUT/reference" >"$OUT/ppo.out" 2>&1 ||
  { tail -30 "$OUT/ppo.out"; exit 1; }
tail -8 "$OUT/ppo.out"

if [[ "$WITH_RM" == 1 ]]; then
  step "6b/7 reward model on the same pairs, then PPO against it"
  "$TROUPE" train rm $HERE/rm.yaml "run.dir=$OUT" "init_from=$OUT/reference" "data.train=$OUT/prefs/train.jsonl" \
    "data.val=$OUT/prefs/val.jsonl" >"$OUT/rm.out" 2>&1 || { tail -30 "$OUT/rm.out"; exit 1; }
  grep -E "eval/accuracy|finished" "$OUT/rm.out" | tail -2 || true
  "$TROUPE" run $HERE/ppo_rm.yaml "run.dir=$OUT" "actor.init_from=$OUT/reference" "reward.model=$OUT/rm" \
    >"$OUT/ppo_rm.out" 2>&1 || { tail -30 "$OUT/ppo_rm.out"; exit 1; }
  tail -8 "$OUT/ppo_rm.out"
fi

step "7/7 exact evaluation of every run, plot"
runs=()
eval_dir() {  # METHOD KNOB RUN_DIR
  local json="$OUT/eval/$(basename "$(dirname "$3")")_$(basename "$3").json"
  "$TROUPE" eval exact -c "$3" -r "$OUT/reference" "${EXACT[@]}" --json "$json" | sed -n 3p | sed "s|^policy|$1 $2|"
  runs+=("$1=$2=$json")
}
for d in "$OUT"/dpo/*/; do d=${d%/}; eval_dir DPO "beta=$(sed -n 's/.*beta-//p' <<<"$(basename "$d")")" "$d"; done
for d in "$OUT"/ppo/*/; do d=${d%/}; eval_dir "PPO (r*)" "kl_coef=$(sed -n 's/.*init_coef-//p' <<<"$(basename "$d")")" "$d"; done
if [[ "$WITH_RM" == 1 ]]; then
  for d in "$OUT"/ppo_rm/*/; do d=${d%/}; eval_dir "PPO (RM)" "kl_coef=$(sed -n 's/.*init_coef-//p' <<<"$(basename "$d")")" "$d"; done
fi
"$PY" $HERE/frontier.py plot --frontier "$OUT/eval/frontier.json" --runs "${runs[@]}" --csv "$RES/frontier.csv" \
  --table "$RES/table.md" --png "$RES/frontier.png" \
  --title "DPO vs PPO reward-KL frontier (8 ids, 4-token responses, exact)"
step "done"
