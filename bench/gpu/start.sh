#!/usr/bin/env bash
# itsd's start on the GPU: seconds from the process start to /readyz answering 200, and the
# GPU memory it then holds, for YOLO11n on the cuda backend (batch sizes up to 16, as
# deploy/itsd-gpu.yaml) with an empty plan cache (cold: every cuDNN plan searched and
# finalised), then with the cache that run wrote (warm), each with two engine workers sharing
# one engine, and warm with one worker (what the second worker adds). No cameras, no Redis:
# the pipeline, the engine workers and the API are what is timed.
#   bench/gpu/start.sh BIN SHARED OUT     (run.sh calls it; BIN holds itsd and its_cuda.so)
# Environment: START_PORT (default 18090), START_BATCH (batch.max_size, default 16),
# START_TIMEOUT_S (per start, default 300). Output: OUT/start_*.err (itsd's log),
# OUT/start.txt (the table, also printed).
set -u
BIN=${1:?usage: start.sh BIN SHARED OUT}
SHARED=${2:?usage: start.sh BIN SHARED OUT}
OUT=${3:?usage: start.sh BIN SHARED OUT}
itsd=$BIN/itsd
if [ ! -x "$itsd" ]; then
    echo "start: no itsd in $BIN (bench/gpu/stage.sh packs it): skipped"
    exit 0
fi
port=${START_PORT:-18090}
limit=${START_TIMEOUT_S:-300}
mkdir -p "$OUT"
plans=$OUT/plans
rm -rf "$plans"
cfg=$OUT/start.yaml
cat >"$cfg" <<EOF
log:
  level: info
engine:
  backend: cuda
  fallback: none
  model: $SHARED/models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx
  workers: 2
  plan_cache_dir: $plans
batch:
  max_size: ${START_BATCH:-16}
sink:
  type: "null"
api:
  enabled: true
  bind: 127.0.0.1
  port: $port
redis:
  host:
EOF

# GET path from itsd's API: the status line and body (no curl needed)
get() {
    exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    cat <&3
    exec 3<&-
}
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
now() { date +%s.%N; }

rows=()
fail=0
run() { # name workers
    local name=$1 workers=$2 base t0 ready="" mem pid s hits miss rej
    base=$(gpu_used)
    t0=$(now)
    SECONDS=0
    ITS_ENGINE_WORKERS=$workers "$itsd" -c "$cfg" >"$OUT/start_$name.out" 2>"$OUT/start_$name.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if get /readyz 2>/dev/null | head -1 | grep -q ' 200'; then
            ready=$(now)
            break
        fi
        [ "$SECONDS" -lt "$limit" ] || break
        sleep 0.05
    done
    if [ -z "$ready" ]; then
        echo "start $name: not ready (see $OUT/start_$name.err)"; tail -5 "$OUT/start_$name.err"
        kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        rows+=("$(printf '%-6s %7s %8s %9s  %s' "$name" "$workers" "-" "-" "not ready")")
        fail=1
        return
    fi
    s=$(awk -v a="$ready" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
    sleep 2 # let the workers' first batches settle
    mem=$(( $(gpu_used) - base ))
    metrics=$(get /metrics 2>/dev/null)
    hits=$(echo "$metrics" | sed -n 's/^its_engine_plan_cache_total{result="hit"} //p' | head -1)
    miss=$(echo "$metrics" | sed -n 's/^its_engine_plan_cache_total{result="miss"} //p' | head -1)
    rej=$(echo "$metrics" | sed -n 's/^its_engine_plan_cache_total{result="rejected"} //p' | head -1)
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    grep -E "plan cache|engine ready|sharing|fused cuDNN" "$OUT/start_$name.err" | head -6 |
        sed "s/^/  [$name] /"
    rows+=("$(printf '%-6s %7s %8s %9s  %s hit, %s planned anew, %s files rejected' "$name" \
        "$workers" "$s" "$mem" "${hits:-?}" "${miss:-?}" "${rej:-?}")")
}

run cold 2
run warm 2
run warm1 1
card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
{
    echo "itsd start to /readyz, YOLO11n on cuda, batch sizes up to ${START_BATCH:-16} ($card)"
    printf '%-6s %7s %8s %9s  %s\n' run workers ready_s gpu_MiB "plan cache"
    for r in "${rows[@]}"; do echo "$r"; done
    echo "cold: empty plan cache; warm: the file cold wrote ($(ls "$plans" 2>/dev/null | wc -l) file(s), $(du -sh "$plans" 2>/dev/null | cut -f1) in $plans)"
    echo "gpu_MiB: memory.used once ready minus before the start (the whole card)"
} | tee "$OUT/start.txt"
exit $fail
