#!/usr/bin/env bash
# Tokenizer benchmark: Troupe vs native tiktoken, Hugging Face tokenizers (both from the project venv) and
# sentencepiece (Debian's spm_train/spm_encode), in one run.
#   [RUNS=5] [TRAIN_RUNS=3] bench/tokenizer.sh [WORK_DIR] [troupe tokenizer bench options...]   (default WORK_DIR: $TMPDIR/troupe-tokenizer-bench)
# Prepares a ~24.6 MB English corpus from Debian's dict-gcide (first 22 MB) and fortunes, then runs
# `troupe tokenizer bench` with GPT-2's vocabulary; TOKENIZER=... picks another (e.g. cl100k_base.tiktoken).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-tokenizer-bench}
shift || true
troupe=${TROUPE:-$root/build/cli/troupe}
tokenizer=${TOKENIZER:-$root/tests/fixtures/tokenizers/gpt2.tiktoken}
for tool in spm_train spm_encode; do
  command -v "$tool" >/dev/null || { echo "tokenizer bench: $tool not found (sentencepiece, from scripts/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$work"
gcide=/usr/share/dictd/gcide.dict.dz
fortunes=/usr/share/games/fortunes
for f in "$gcide" "$fortunes/cookie"; do
  [ -e "$f" ] || { echo "tokenizer bench: $f missing: run scripts/install-deps.sh (dict-gcide, fortunes)" >&2; exit 1; }
done
if [ ! -s "$work/corpus.txt" ]; then
  # iconv -c drops the few bytes of gcide that are not UTF-8 (Python would reject them and ids would differ).
  { zcat "$gcide" | head -c 22000000 || true; find "$fortunes" -maxdepth 1 -type f ! -name '*.dat' | sort | xargs cat; } |
    iconv -f utf-8 -t utf-8 -c > "$work/corpus.txt"
fi
echo "$(spm_encode --version 2>&1 | head -n1)"
exec "$troupe" tokenizer bench --corpus "$work/corpus.txt" --tokenizer "$tokenizer" \
  --peer-script "$root/bench/tokenizer_peers.py" --work-dir "$work/out" \
  --runs "${RUNS:-5}" --train-runs "${TRAIN_RUNS:-3}" --json "$work/results.json" "$@"
