#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (a second build tree, TROUPE_FUZZ=ON: AddressSanitizer +
# UndefinedBehaviorSanitizer + libFuzzer) and runs each for SECONDS on a copy of its seed corpus (fuzz/corpus/<t>/;
# new inputs go to the copy, not the repository). Prints each target's executions, coverage and findings; exits 1
# on any crash, sanitizer report or leak (the reproducer is left in the work directory).
#   fuzz/run.sh [SECONDS=10] [TARGET...]      (targets: config_yaml tokenizer_file token_file
#                                               message safetensors jsonl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
shift || true
targets=${*:-config_yaml tokenizer_file token_file message safetensors jsonl}
build=${TROUPE_FUZZ_BUILD:-$root/build-fuzz}
work=$(mktemp -d "${TMPDIR:-/tmp}/troupe-fuzz-run-XXXXXX")
cxx=$(command -v clang++-14 || command -v clang++ || echo clang++)
cc=$(command -v clang-14 || command -v clang || echo clang)
# Without clang's libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev) there is nothing to run: exit 77, which
# ctest reports as skipped.
if ! printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' |
    "$cxx" -x c++ -fsanitize=fuzzer,address,undefined - -o "$work/probe" > "$work/probe.log" 2>&1; then
  echo "skipped: clang++ with libFuzzer and the sanitizer runtimes is not installed (scripts/install-deps.sh installs"
  echo "clang-14 and libclang-rt-14-dev):"
  head -5 "$work/probe.log"
  exit 77
fi
# The tensor-producing targets compile against the torch wheel's headers and libtorch_cpu: TROUPE_PYTHON names the
# Python that has it (default: the project's .venv).
CC=$cc CXX=$cxx cmake -S "$root" -B "$build" -G Ninja -DTROUPE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  ${TROUPE_PYTHON:+-DTROUPE_PYTHON=$TROUPE_PYTHON} > "$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$build" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
status=0
for t in $targets; do
  mkdir -p "$work/$t"
  log=$work/$t.log
  if (cd "$work" && "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 "$work/$t" "$root/fuzz/corpus/$t" > "$log" 2>&1); then
    verdict=ok
  else
    verdict=FAILED
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  echo "fuzz_$t: $verdict, $execs executions in ${seconds}s, coverage $cov edges"
  if [ "$verdict" = FAILED ]; then grep -A 30 -m 1 "ERROR\|==ERROR\|runtime error\|deadly signal" "$log" | head -40; fi
done
echo "logs and new inputs: $work"
exit $status
