#!/usr/bin/env bash
# Fails (listing the files) when a C++ source differs from .clang-format: `clang-format --dry-run --Werror` over
# every .h/.cpp of the modules, the benchmarks and the tests. `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$FORMAT" >/dev/null || { echo "check-format: $FORMAT not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
# Every tracked C++ file (a new module is covered without editing this list); outside a git checkout, every module.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.h' '*.cpp' | sort)
else
  mapfile -t files < <(find core tokenizers metrics dataprep data models evaluation distributed rlhf experiments \
                         cluster cli bench tests cmake -name '*.h' -o -name '*.cpp' | sort)
fi
if [[ "${1:-}" == "--fix" ]]; then
  "$FORMAT" -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if (( ${#bad[@]} )); then
  printf 'check-format: %s differs from .clang-format\n' "${bad[@]}"
  echo "check-format: ${#bad[@]} of ${#files[@]} files; run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files match .clang-format ($("$FORMAT" --version))"
