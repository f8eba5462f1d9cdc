#!/usr/bin/env bash
# SPEC's stress test on the GPU machine (issue 8), in one call:
#   dev machine:  bench/gpu/stress.sh stage DEST   (DEST: an ignored folder of the checkout the
#                 device tool sends, e.g. .gpu-stress; builds itsd + its-bench with CUDA and packs
#                 them with redis-server and every non-system library they need)
#   GPU machine:  bash DEST/stress.sh              (unpacks, starts nothing else by hand: its-bench
#                 starts redis-server and itsd itself)
# Runs 100 cameras x 30 FPS of replayed 720p traffic video with YOLO11n for STRESS_S seconds
# (default 300), then the capacity search at 30 FPS (p99 < 100 ms, no drops), and prints the
# tables last. Environment: STRESS_S, STEP_S (capacity step, default 20), OUT, PHASES
# (stress,capacity), CAP_WORKERS, CAP_START (first camera count of the search, default 100),
# INPUT_SIZE (network input WxH, e.g. 640x384 for the 16:9 video; default the model's 640x640),
# BATCH (largest batch; default spec.yaml's 16).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = stage ]; then
    dest=${2:?usage: stress.sh stage DEST}
    root=$(cd "$here/../.." && pwd)
    shared=${ITS_SHARED_DIR:-$root/../shared}
    build=${BUILD_DIR:-$root/build-gpu}
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DITS_CUDA=ON >/dev/null
    make -C "$build" -j"$(nproc)" itsd its-bench >/dev/null
    tmp=$(mktemp -d)
    mkdir -p "$tmp/s/bin" "$tmp/s/lib" "$tmp/s/shared/models/yolo11n-fp32-dequant" "$tmp/s/shared/media"
    cp "$build/tools/itsd/itsd" "$build/tools/its-bench/its-bench" "$(command -v redis-server)" "$tmp/s/bin/"
    for b in "$tmp"/s/bin/*; do
        ldd "$b" | awk '/=> \//{print $3}' |
            grep -vE 'libc\.so|libm\.so|libdl\.so|librt\.so|libpthread|ld-linux|libcudnn|libcublas|libcudart|libnvidia|libcuda\.so' || true
    done | sort -u | while read -r l; do cp -L "$l" "$tmp/s/lib/"; done
    cp "$shared/models/yolo11n-fp32-dequant/"*.onnx "$tmp/s/shared/models/yolo11n-fp32-dequant/"
    cp "$shared/media/traffic_highway_overpass_720p.mp4" "$shared/media/coco.names" "$tmp/s/shared/media/"
    cp "$root/bench/stress/spec.yaml" "$tmp/s/"
    mkdir -p "$dest" && rm -f "$dest/stress.tar.xz"
    tar -C "$tmp/s" -cJf "$dest/stress.tar.xz" . && cp "$here/stress.sh" "$dest/stress.sh"
    rm -rf "$tmp"
    du -sh "$dest"/*
    exit 0
fi

OUT=${OUT:-/tmp/its-stress-out}
W=${STRESS_WORK:-/tmp/its-stress}
rm -rf "$W" && mkdir -p "$W" "$OUT" && tar -C "$W" -xJf "$here/stress.tar.xz"
pyd() { python3 -c "import $1, os; print(os.path.dirname($1.__file__))" 2>/dev/null; }
export LD_LIBRARY_PATH=$W/lib:$(pyd nvidia.cudnn)/lib:$(pyd nvidia.cublas)/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ITS_SHARED_DIR=$W/shared OMP_WAIT_POLICY=passive PATH=$W/bin:$PATH
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
# itsd loads NVML by soname; where the driver's copy is outside the loader's cache, point at it
nvml=$(ldconfig -p 2>/dev/null | awk '/libnvidia-ml\.so\.1 /{print $NF; exit}')
[ -n "$nvml" ] || nvml=$(find /usr /lib /opt -name 'libnvidia-ml.so.1' 2>/dev/null | head -1)
[ -n "$nvml" ] && export ITS_NVML_LIBRARY=$nvml
echo "NVML: ${nvml:-not found}"
# an independent GPU utilisation record (nvidia-smi, every 2 s) beside its-bench's NVML figure
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 2 \
    >"$OUT/nvidia-smi.csv" 2>/dev/null &
smi_pid=$!
trap 'kill $smi_pid 2>/dev/null || true' EXIT
cd "$W"
common=(--set bench.itsd=$W/bin/itsd --set bench.redis_server=$W/bin/redis-server
        --set bench.workdir=$OUT --set bench.backend=cuda
        ${INPUT_SIZE:+--set bench.input_size=$INPUT_SIZE} ${BATCH:+--batch $BATCH})
# (no quote characters inside ${...:-...}: bash 5.2 reads a quote there as the start of a
# quoted word, and the line fails with "bad substitution" when the variable is unset)
echo "input size: ${INPUT_SIZE:-model default}, batch: ${BATCH:-spec.yaml default}"
PHASES=${PHASES:-stress,capacity}
if [[ $PHASES == *stress* ]]; then
    echo "==== stress: 100 cameras x 30 FPS, ${STRESS_S:-300} s, $CARD"
    its-bench -c spec.yaml --duration "${STRESS_S:-300}" "${common[@]}" \
        --set bench.json=$OUT/stress.json >"$OUT/stress.txt" 2>"$OUT/stress.err" || true
fi
if [[ $PHASES == *capacity* ]]; then
    # CAP_WORKERS engine workers (default: spec.yaml's); each step restarts itsd, whose engines
    # take ~40 s each to plan, so one worker (two batches in flight) fits more steps in a call
    echo "==== capacity search at 30 FPS, $CARD"
    its-bench -c spec.yaml --find-capacity --cameras "${CAP_START:-100}" "${common[@]}" \
        ${CAP_WORKERS:+--set bench.engine_workers=$CAP_WORKERS} \
        --set bench.capacity_step_s="${STEP_S:-20}" >"$OUT/capacity.txt" 2>"$OUT/capacity.err" || true
fi
kill $smi_pid 2>/dev/null
echo "==== summary ($CARD)"
awk -F', ' '{gsub(/ %/,"",$2); if ($2+0 > 0) {s += $2; n++}} END {if (n) printf "GPU utilisation (nvidia-smi, busy samples): mean %.0f%% over %d samples\n", s/n, n}' \
    "$OUT/nvidia-smi.csv" 2>/dev/null || true
[ -f "$OUT/stress.txt" ] && tail -n 45 "$OUT/stress.txt"
[ -f "$OUT/capacity.txt" ] && tail -n 15 "$OUT/capacity.txt"
exit 0
