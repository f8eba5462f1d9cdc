#!/usr/bin/env bash
# The product on the sample traffic videos, for a fresh Debian 12 machine: install what is
# needed, build, then run itsd with deploy/itsd.yaml: three looped cameras playing at their own
# rate, 4 frames a second of each analysed by YOLOX-Nano, tracks, line counts and a 15 s
# analytics window per camera, in real time and inside every stage's budget on 2 CPU cores.
# Where a GPU is present (nvidia-smi) and the build has the CUDA backend, the same cameras run
# on the GPU. Results go to stdout as JSON lines (docs/messages.md); itsd says at start where
# its HTTP API and /metrics are, and prints a status line on stderr every 5 s.
#   ITS_DEMO_SECONDS=60 scripts/demo.sh    # stop after 60 s (default: 120; 0 runs until ^C)
#   ITS_ENGINE_BACKEND=cpu scripts/demo.sh # the CPU engine even where a GPU is present
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh >&2
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target itsd >&2 # build log to stderr: stdout is the results
export ITS_SHARED_DIR=${ITS_SHARED_DIR:-$root/../shared}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
if [ -z "${ITS_ENGINE_BACKEND:-}" ]; then
    ITS_ENGINE_BACKEND=cpu
    if grep -q '^ITS_CUDA:BOOL=ON' build/CMakeCache.txt 2>/dev/null &&
        gpu=$(nvidia-smi -L 2>/dev/null | head -n 1) && [ -n "$gpu" ]; then
        ITS_ENGINE_BACKEND=cuda
        echo "demo: GPU found ($gpu): the cuda engine" >&2
    fi
    export ITS_ENGINE_BACKEND
fi
if [ "$ITS_ENGINE_BACKEND" = cpu ]; then
    echo "demo: the CPU engine ($(nproc) cores); ITS_ENGINE_BACKEND=cuda on a GPU machine" >&2
fi
echo "demo: itsd -c deploy/itsd.yaml: 3 cameras, results as JSON lines below" \
    "(format: docs/messages.md), status on stderr every 5 s; Ctrl-C stops" >&2
exec build/tools/itsd/itsd -c deploy/itsd.yaml --duration "${ITS_DEMO_SECONDS:-120}"
