#!/usr/bin/env bash
# Configure, build (warnings are errors) and run the whole test suite with ctest.
#   scripts/test.sh                 # build/ , the normal build
#   ITS_SANITIZE=1 scripts/test.sh  # build-asan/ , AddressSanitizer + UndefinedBehaviorSanitizer
# Extra ctest arguments pass through: scripts/test.sh -R core
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" >/dev/null
# oneDNN runs on OpenMP; spinning idle threads cost 5-10x on shared cores (docs/engine.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
jobs=$(nproc 2>/dev/null || echo 2)
args=(-DITS_WERROR=ON)
if [ "${ITS_SANITIZE:-0}" = 1 ]; then
    dir=${ITS_BUILD_DIR:-build-asan}
    args+=(-DITS_ASAN=ON -DITS_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
    dir=${ITS_BUILD_DIR:-build}
fi
cmake -S "$root" -B "$root/$dir" "${args[@]}" >/dev/null
cmake --build "$root/$dir" -j "$jobs"
cd "$root/$dir"
# The demo's 60 s check (label demo) measures latencies against SPEC's budgets, so it runs
# after the rest of the suite with the machine's cores to itself (ctest: RUN_SERIAL). A
# latency check on a shared runner gets one more run if the first is over budget; a real
# regression fails both. ITS_TEST_DEMO=0 leaves it out (a machine busy with other work).
ctest --output-on-failure -j "$jobs" -LE demo "$@"
if [ "${ITS_TEST_DEMO:-1}" = 1 ]; then
    ctest --output-on-failure -L demo --repeat until-pass:2 "$@"
fi
