#!/usr/bin/env bash
# SPEC's stress test on the GPU machine (issues 8 and 20), in one call:
#   dev machine:  bench/gpu/stress.sh stage DEST   (DEST: an ignored folder of the checkout the
#                 device tool sends, e.g. .gpu-stress; builds itsd + its-bench with CUDA and packs
#                 them, the cuda module, redis-server and every non-system library they need -
#                 FFmpeg's among them: NVDEC needs only the driver's libcuda and libnvcuvid there)
#   GPU machine:  bash DEST/stress.sh              (unpacks, starts nothing else by hand: its-bench
#                 starts redis-server and itsd itself)
# Phases (PHASES, comma-separated; default ceiling,replay,stream,capacity), YOLO11n, 720p traffic
# video, 30 FPS per camera:
#   ceiling   the decode ceiling: DECODERS (32) readers of the 720p sample in one process on
#             NVDEC, unpaced, CEIL_S (20) s; then CPU_DECODERS (nproc) on the CPU, 10 s
#   replay    100 cameras of pre-decoded frames (clips in memory), STRESS_S (60) s
#   stream    100 cameras, each decoding its own H.264 stream (the looped file, paced, start
#             points staggered) with decode DECODE (auto: NVDEC, CPU for the rest), STREAM_S
#             (120) s: the SPEC run with real decode and a short soak
#   capacity  the stream run at CAP_STEPS cameras (300,400), STEP_S (60) s each after the
#             warm-up (bench.warmup_s, CAP_WARMUP 10 s); held: p99 <= P99_BOUND (50) ms, no drops,
#             no errors
#   soak      the stream run for SOAK_S (540) s (alone: it fills a call)
# and prints one table last (bench/gpu/stress_table.py: every JSON of the run). Other environment: OUT,
# CAP_WORKERS / WORKERS (engine workers, default spec.yaml's), INPUT_SIZE (network input WxH,
# e.g. 640x384 for the 16:9 video; default the model's 640x640), BATCH (largest batch; default
# spec.yaml's 16), NVDEC_MAX (engine.nvdec_max_sessions; default no limit).
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
    # the cuda backend module, beside the binaries (where the engine looks for it first)
    [ -f "$build/lib/its_cuda.so" ] && cp "$build/lib/its_cuda.so" "$tmp/s/bin/"
    cp "$here/stress_table.py" "$tmp/s/"
    . "$here/pack.sh"
    its_pack_libs "$tmp/s"
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
        ${INPUT_SIZE:+--set bench.input_size=$INPUT_SIZE} ${BATCH:+--batch $BATCH}
        ${WORKERS:+--set bench.engine_workers=$WORKERS})
if [ -n "${NVDEC_MAX:-}" ]; then
    printf 'engine:\n  nvdec_max_sessions: %s\n' "$NVDEC_MAX" >"$W/extra.yaml"
    common+=(--set bench.extra_config=$W/extra.yaml)
fi
video=$W/shared/media/traffic_highway_overpass_720p.mp4
# (no quote characters inside ${...:-...}: bash 5.2 reads a quote there as the start of a
# quoted word, and the line fails with "bad substitution" when the variable is unset)
echo "input size: ${INPUT_SIZE:-model default}, batch: ${BATCH:-spec.yaml default}"
PHASES=${PHASES:-ceiling,replay,stream,capacity}
stream=(--set bench.source=stream --set bench.decode="${DECODE:-auto}")
# one its-bench run: NAME, then its arguments; the JSON summary goes to $OUT/NAME.json
run() {
    local name=$1
    shift
    echo "==== $name: $*"
    its-bench -c spec.yaml "${common[@]}" "$@" --set bench.json="$OUT/$name.json" \
        >"$OUT/$name.txt" 2>"$OUT/$name.err" || true
    tail -n 4 "$OUT/$name.txt"
}
if [[ $PHASES == *ceiling* ]]; then
    echo "==== decode ceiling: ${DECODERS:-32} NVDEC readers, then ${CPU_DECODERS:-$(nproc)} CPU readers"
    its-bench --decode-only --decoders "${DECODERS:-32}" --decode nvdec --duration "${CEIL_S:-20}" \
        --set bench.warmup_s=3 --set bench.json="$OUT/ceiling-nvdec.json" "$video" \
        >"$OUT/ceiling-nvdec.txt" 2>&1 || true
    its-bench --decode-only --decoders "${CPU_DECODERS:-$(nproc)}" --decode cpu --duration 10 \
        --set bench.warmup_s=2 --set bench.json="$OUT/ceiling-cpu.json" "$video" \
        >"$OUT/ceiling-cpu.txt" 2>&1 || true
    grep -h "frames/s (all\|on NVDEC\|first failure" "$OUT"/ceiling-*.txt || true
fi
[[ $PHASES == *replay* ]] && run replay-100 --cameras 100 --duration "${STRESS_S:-60}"
[[ $PHASES == *stream* ]] && run stream-100 --cameras 100 --duration "${STREAM_S:-120}" "${stream[@]}"
if [[ $PHASES == *capacity* ]]; then
    IFS=, read -r -a steps <<<"${CAP_STEPS:-300,400}"
    for n in "${steps[@]}"; do
        run "capacity-$n" --cameras "$n" --duration "${STEP_S:-60}" "${stream[@]}" \
            --set bench.warmup_s="${CAP_WARMUP:-10}" \
            ${CAP_WORKERS:+--set bench.engine_workers=$CAP_WORKERS}
    done
fi
[[ $PHASES == *soak* ]] && run soak-100 --cameras 100 --duration "${SOAK_S:-540}" "${stream[@]}"
kill $smi_pid 2>/dev/null || true
echo "==== summary ($CARD)"
awk -F', ' '{gsub(/ %/,"",$2); if ($2+0 > 0) {s += $2; n++}} END {if (n) printf "GPU utilisation (nvidia-smi, busy samples): mean %.0f%% over %d samples\n", s/n, n}' \
    "$OUT/nvidia-smi.csv" 2>/dev/null || true
python3 "$W/stress_table.py" --bound "${P99_BOUND:-50}" "$OUT" || true
exit 0
