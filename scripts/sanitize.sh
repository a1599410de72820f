#!/usr/bin/env bash
# Sanitizer builds and their test runs: `make test-asan` (AddressSanitizer + UndefinedBehaviorSanitizer: the unit
# and multiprocess suites) and `make test-tsan` (ThreadSanitizer: the transport, launcher and communicator tests).
# Each builds its own tree (build-asan/, build-tsan/) with -DTROUPE_SANITIZE; a sanitizer report fails the test
# that produced it. Not part of `make test` (the ASan tree is a second full build: see README, Sanitizers).
#   usage: scripts/sanitize.sh asan|tsan [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh asan|tsan [ctest arguments]}
shift
SUPP=$PWD/tests/sanitizers

case "$kind" in
  asan)
    build=${TROUPE_ASAN_BUILD:-build-asan}
    cmake -S . -B "$build" -G Ninja -DTROUPE_UNITY=ON -DTROUPE_SANITIZE=address,undefined
    cmake --build "$build"
    # halt_on_error: the first report ends the process (non-zero), so the test that caused it fails. Leaks are
    # checked (LeakSanitizer) with suppressions only for what uninstrumented libraries keep at exit.
    export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:fast_unwind_on_malloc=0:strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1:detect_odr_violation=0:suppressions=$SUPP/asan.supp"
    export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:suppressions=$SUPP/ubsan.supp"
    ctest --test-dir "$build" -L '^(unit|multiprocess)$' --output-on-failure -j "${CTEST_JOBS:-2}" --timeout 1200 "$@"
    ;;
  tsan)
    build=${TROUPE_TSAN_BUILD:-build-tsan}
    cmake -S . -B "$build" -G Ninja -DTROUPE_UNITY=ON -DTROUPE_SANITIZE=thread
    # Only what the transport, launcher and communicator tests need (the distributed test binaries and helpers).
    cmake --build "$build" --target troupe_distributed_tests troupe_distributed_mp_tests \
      troupe_transport_server_helper troupe_communicator_helper
    export TSAN_OPTIONS="halt_on_error=1:exitcode=88:second_deadlock_stack=1:suppressions=$SUPP/tsan.supp"
    ctest --test-dir "$build" -R "${TROUPE_TSAN_TESTS:-^(Transport|Endpoints/TransportProcess|CurveFixture|CurveKeyFile|CurveTransport|Message|Launcher|WorkerLaunch|ThreadCommunicator|SingleProcessCommunicator|MpiCommunicator|GroupRelay|Heartbeat|DataParallel|FileStore)\.}" \
      --output-on-failure -j "${CTEST_JOBS:-2}" --timeout 1200 "$@"
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan [ctest arguments]" >&2
    exit 2
    ;;
esac
