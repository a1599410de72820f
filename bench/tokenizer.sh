#!/usr/bin/env bash
# Tokenizer benchmark: Troupe vs tiktoken (npm, wasm), js-tiktoken (npm) and sentencepiece, in one run.
#   bench/tokenizer.sh [WORK_DIR]      (default: $TMPDIR/troupe-tokenizer-bench)
# Prepares a ~24.6 MB English corpus from Debian's dict-gcide (first 22 MB) and fortunes, installs the two npm
# packages into WORK_DIR/node (never into the project), then runs `troupe tokenizer bench`.
# Extra arguments after WORK_DIR go to `troupe tokenizer bench` (e.g. --runs 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/troupe-tokenizer-bench}
shift || true
troupe=${TROUPE:-$root/build/cli/troupe}
for tool in node npm spm_train spm_encode; do
  command -v "$tool" >/dev/null || { echo "tokenizer bench: $tool not found (node and npm come with the machine; sentencepiece from scripts/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$work/node"

gcide=/usr/share/dictd/gcide.dict.dz
fortunes=/usr/share/games/fortunes
for f in "$gcide" "$fortunes/cookie"; do
  [ -e "$f" ] || { echo "tokenizer bench: $f missing: run scripts/install-deps.sh (dict-gcide, fortunes)" >&2; exit 1; }
done
if [ ! -s "$work/corpus.txt" ]; then
  # iconv -c drops the few bytes of gcide that are not UTF-8 (JavaScript would replace them and ids would differ).
  { zcat "$gcide" | head -c 22000000 || true; find "$fortunes" -maxdepth 1 -type f ! -name '*.dat' | sort | xargs cat; } |
    iconv -f utf-8 -t utf-8 -c > "$work/corpus.txt"
fi
if [ ! -d "$work/node/node_modules/tiktoken" ] || [ ! -d "$work/node/node_modules/js-tiktoken" ]; then
  (cd "$work/node" && { [ -f package.json ] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund --loglevel=error tiktoken js-tiktoken)
fi
echo "tiktoken $(node -p "require('$work/node/node_modules/tiktoken/package.json').version"), js-tiktoken $(node -p "require('$work/node/node_modules/js-tiktoken/package.json').version"), $(spm_encode --version 2>&1 | head -n1), node $(node --version)"
exec "$troupe" tokenizer bench --corpus "$work/corpus.txt" --tokenizer "$root/tests/data/tokenizers/gpt2.tiktoken" \
  --node-dir "$work/node" --peer-script "$root/bench/tokenizer_peers.mjs" --work-dir "$work/out" \
  --runs 5 --train-runs 3 --json "$work/results.json" "$@"
