#!/usr/bin/env bash
# Evaluation harness benchmark: `troupe eval run` vs lm-evaluation-harness (lm_eval.simple_evaluate) on the same
# Hugging Face GPT-2 directory and the same task YAML files (a 3-shot multiple-choice task and a 2-shot greedy
# generation task), same batch size and thread count; RUNS runs each, medians of documents per second, and the
# metrics of both (which must agree).
#   [RUNS=3] [DOCS=300] [BATCH=32] [THREADS=2] bench/harness.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-harness-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
python=${PYTHON:-$root/.venv/bin/python}
runs=${RUNS:-3} docs=${DOCS:-300} batch=${BATCH:-32} threads=${THREADS:-2}
mkdir -p "$work"
[ -f "$work/hf/model.safetensors" ] || "$python" "$root/bench/harness_peer.py" make "$work" "$docs" >/dev/null 2>&1
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
printf '%-10s %12s %12s %9s   %s\n' task troupe_doc/s lm_eval_doc/s ratio "metrics (troupe | lm-eval)"
for task in mc gen; do
  name=bench_$task
  : > "$work/t_$task" ; : > "$work/p_$task"
  for r in $(seq "$runs"); do
    "$troupe" eval run "$work/$task.yaml" -c "$work/hf" --batch-size "$batch" --threads "$threads" --quiet \
      -o "$work/out_$task" >/dev/null
    "$python" -c "import json; r=json.load(open('$work/out_$task/results.json'))['results']['$name']; print(r['documents']/r['seconds'])" >> "$work/t_$task"
    "$python" "$root/bench/harness_peer.py" run "$work" "$name" "$batch" "$threads" 2>/dev/null | tail -1 > "$work/peer_$task.json"
    "$python" -c "import json; r=json.load(open('$work/peer_$task.json')); print(r['documents']/r['seconds'])" >> "$work/p_$task"
  done
  t=$(median < "$work/t_$task"); p=$(median < "$work/p_$task")
  ours=$("$python" -c "import json; print(json.load(open('$work/out_$task/results.json'))['results']['$name']['metrics'])")
  theirs=$("$python" -c "import json; print({k.split(',')[0]: v for k, v in json.load(open('$work/peer_$task.json'))['metrics'].items() if 'stderr' not in k})")
  printf '%-10s %12.1f %12.1f %8.2fx   %s | %s\n' "$task" "$t" "$p" "$(echo "$t / $p" | bc -l)" "$ours" "$theirs"
done
echo "(medians of $runs runs; $docs documents per task; batch $batch; $threads threads; troupe: the harness's time for the task with the model loaded; lm-eval: simple_evaluate, which also loads the model and builds the task)"
