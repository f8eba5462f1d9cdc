#!/usr/bin/env bash
# The main job on sensible defaults, for a fresh Debian 12 machine: install what is needed,
# build, then run the best end-to-end program the tree has on the sample traffic media in
# ../shared/media.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >&2   # build log to stderr: stdout is the results
shared=${ITS_SHARED_DIR:-$root/../shared}
export ITS_SHARED_DIR=$shared
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
if [ -x build/tools/itsd/itsd ]; then
    # The service: several looped sample videos through the CPU engine, results as JSON lines.
    exec build/tools/itsd/itsd -c deploy/itsd.yaml --duration "${ITS_DEMO_SECONDS:-30}"
elif [ -x build/tools/its-infer/its-infer ]; then
    exec build/tools/its-infer/its-infer -m "$shared/models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx" \
        --threads "$(nproc)" "$shared/media/traffic_intersection_cctv_480p.mp4"
else
    exec build/bench/queue/bench_queue
fi
