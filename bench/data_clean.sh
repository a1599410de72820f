#!/usr/bin/env bash
# `troupe data clean` throughput vs datatrove 0.10.1 on the same seeded JSONL corpus (bench/data_clean_peer.py
# makes it: English-like documents with planted exact and near duplicates, HTML, URLs, PII, mojibake and junk).
#   [RUNS=3] [MB=100] [THREADS="1 2"] [TROUPE=build/cli/troupe] [PYTHON=.venv/bin/python] bench/data_clean.sh [WORK_DIR]
#   (default WORK_DIR: $TMPDIR/troupe-data-clean-bench)
# Troupe runs two configs: "matched", the stages datatrove has (mojibake, pii, gopher_quality, gopher_repetition,
# exact + MinHash dedup), and "full", every stage (normalize, html, urls, whitespace, decontaminate and stats too).
# datatrove runs the matched pipeline with LocalPipelineExecutor(tasks=1, workers=1): one core. Each run is one whole
# process (start-up, reading and writing included), timed wall-clock and in CPU seconds (user + system); medians of
# RUNS runs. MB/s is of the corpus file. "x/core" compares CPU seconds (the work per core, robust to other jobs on the
# machine); "x wall" compares wall-clock. datatrove's JsonlReader needs orjson (scripts/requirements.txt); nothing is
# downloaded at run time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-data-clean-bench}
troupe=${TROUPE:-$root/build/cli/troupe}
python=${PYTHON:-$root/.venv/bin/python}
runs=${RUNS:-3} mb=${MB:-100} threads=${THREADS:-"1 2"}
peer=$root/bench/data_clean_peer.py
mkdir -p "$work"
[ -s "$work/corpus.jsonl" ] && [ "$(cat "$work/corpus.mb" 2>/dev/null)" = "$mb" ] ||
  { "$python" "$peer" make "$work" "$mb" && echo "$mb" > "$work/corpus.mb"; }
bytes=$(stat -c %s "$work/corpus.jsonl")
# Troupe's LSH banding for threshold 0.8 and 128 permutations (datasketch's _optimal_param, which Troupe equals).
read -r bands rows < <("$python" -c "from datasketch.lsh import _optimal_param as p; print(*p(0.8, 128, 0.5, 0.5))")
dedup="{dedup: {threshold: 0.8, num_perm: 128, shingle_size: 5, seed: 1}}"
cat > "$work/matched.yaml" <<EOF
inputs: [corpus.jsonl]
output: troupe/matched.jsonl
stages: [mojibake, pii, gopher_quality, gopher_repetition, $dedup]
EOF
cat > "$work/full.yaml" <<EOF
inputs: [corpus.jsonl]
output: troupe/full.jsonl
stages: [normalize, html, {urls: ""}, mojibake, whitespace, pii, gopher_quality, gopher_repetition,
         {decontaminate: {eval_files: [eval.jsonl], n: 13}}, $dedup, stats]
EOF
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
declare -A kept
rm -f "$work"/t_*
for r in $(seq "$runs"); do
  for config in matched full; do
    for t in $threads; do
      "$python" "$peer" time "$work/t_${config}_$t" "$troupe" data clean "$work/$config.yaml" "threads=$t" --quiet \
        > "$work/troupe_${config}_$t.out"
      kept[$config,$t]=$(awk '/documents kept/ {print $1}' "$work/troupe_${config}_$t.out")
    done
  done
  "$python" "$peer" time "$work/t_datatrove" "$python" "$peer" run "$work" "$bands" "$rows" 2> "$work/datatrove.log" |
    tail -1 > "$work/datatrove.json"
done
json() { "$python" -c "import json; print(json.load(open('$work/datatrove.json'))$1)"; }
docs_in=$(json "['documents_in']")
peer_wall=$(cut -d' ' -f1 "$work/t_datatrove" | median)
peer_cpu=$(cut -d' ' -f2 "$work/t_datatrove" | median)
row() {  # name threads timing-file kept
  local wall cpu
  wall=$(cut -d' ' -f1 "$3" | median)
  cpu=$(cut -d' ' -f2 "$3" | median)
  printf '%-17s %7s %8.1f %8.1f %8.0f %7.2f %8s %8.1fx %8.1fx\n' "$1" "$2" "$wall" "$cpu" \
    "$(echo "$docs_in / $wall" | bc -l)" "$(echo "$bytes / 1000000 / $wall" | bc -l)" "$4" \
    "$(echo "$peer_cpu / $cpu" | bc -l)" "$(echo "$peer_wall / $wall" | bc -l)"
}
echo "corpus: $work/corpus.jsonl, $(echo "$bytes / 1000000" | bc -l | xargs printf '%.1f') MB, $docs_in documents;" \
  "MinHash: word 5-grams, 128 permutations, threshold 0.8 -> $bands bands x $rows rows, seed 1"
printf '%-17s %7s %8s %8s %8s %7s %8s %9s %9s\n' pipeline threads wall_s cpu_s docs/s MB/s kept x/core "x wall"
for config in matched full; do
  for t in $threads; do row "troupe $config" "$t" "$work/t_${config}_$t" "${kept[$config,$t]}"; done
done
row "datatrove" 1 "$work/t_datatrove" "$(json "['documents_out']")"
echo "(medians of $runs runs; docs/s and MB/s from wall-clock; x/core = datatrove's CPU seconds / these CPU seconds;"
echo " x wall = datatrove's wall-clock / this wall-clock)"
echo "troupe matched (1 thread):"
sed -n '/^stage/,/^total/p' "$work/troupe_matched_$(echo "$threads" | cut -d' ' -f1).out"
echo "datatrove: removed $(json "['removed']"); seconds per pipeline (last run): $(json "['stage_seconds']")"
