#!/usr/bin/env bash
# The GPU check-and-benchmark run for the cuda backend (issue 4), in one call on the GPU
# machine:
#   1. the GPU unit tests (pre/post-processing kernels, the backend) and, when carried, the
#      per-op and end-to-end parity of the cuda backend against the cpu backend;
#   2. compute-sanitizer memcheck on one full run;
#   3. the PyTorch peer (bench/gpu/onnx_torch.py): checked against ONNX Runtime, then timed
#      eager and under torch.compile(mode="reduce-overhead");
#   4. our engine's timings, same models, batches and card;
#   5. itsd's start to /readyz with two engine workers, cold and warm plan cache, and the GPU
#      memory it holds (bench/gpu/start.sh; START=0 skips it);
#   6. a table (last), naming the card.
# Usage, on the GPU machine: bash STAGE/run.sh, where STAGE holds stage.tar.xz made by
# bench/gpu/stage.sh (binaries built on the dev machine plus the libraries they need), or, in
# a checkout with a build: ITS_BUILD=build bash bench/gpu/run.sh.
# Environment: OUT (results folder, default /tmp/its-gpu-out), BATCHES (default 1,8,16,32),
# ITERS (timed iterations, default 200); to shorten a run: PEER=0 (no PyTorch peer),
# MEMCHECK=0, PROFILE=0 (no ncu table), LEGACY=1 adds a run with the legacy conv path,
# NOVIEWS=1 one without concat elimination (ITS_CUDA_NO_VIEWS=1), TUNE=K one with the
# convolutions autotuned at load among cuDNN's first K engines (ITS_CUDA_TUNE=K; also used for
# the ncu profile),
# TESTS=_parity runs only test_cuda_parity; RECT=WxH (e.g. 640x384) adds the parity test and
# our timings with the network at that input size (its_model_set_input_size's rewrite).
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/its-gpu-out}
mkdir -p "$OUT"
BATCHES=${BATCHES:-1,8,16,32}
ITERS=${ITERS:-200}
fail=0
step() { printf '\n==== %s\n' "$*"; }

if [ -f "$here/stage.tar.xz" ]; then
    W=/tmp/its-gpu
    rm -rf "$W" && mkdir -p "$W" && tar -C "$W" -xJf "$here/stage.tar.xz"
    BIN=$W/bin SHARED=$W/shared SRC=$W/src
else
    SRC=$(cd "$here/../.." && pwd)
    B=${ITS_BUILD:-$SRC/build}
    BIN=$OUT/bin SHARED=${ITS_SHARED_DIR:-$SRC/../shared}
    # the cuda backend is the module lib/its_cuda.so: beside the binaries, the engine finds it
    mkdir -p "$BIN" && cp "$B"/tests/cuda/test_cuda* "$B"/bench/gpu/bench_cuda "$B"/lib/its_cuda.so \
        "$B"/tools/itsd/itsd "$BIN/" 2>/dev/null
fi

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
pyd() { python3 -c "import $1, os; print(os.path.dirname($1.__file__))" 2>/dev/null; }
CUDNN_DIR=$(pyd nvidia.cudnn)
CUBLAS_DIR=$(pyd nvidia.cublas)
echo "cuDNN (python): $CUDNN_DIR  cuBLAS: $CUBLAS_DIR"
export LD_LIBRARY_PATH=${W:+$W/lib:}$CUDNN_DIR/lib:$CUBLAS_DIR/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ITS_SHARED_DIR=$SHARED
Y11=$SHARED/models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx
Y8=$SHARED/models/yolov8n-int8-qdq/yolov8n_entropy.onnx
MEDIA=$SHARED/media
nvcc --version | tail -1

step "GPU tests"
for t in "$BIN"/test_cuda${TESTS:-*}; do
    [ -x "$t" ] || continue
    if timeout 400 "$t" >"$OUT/$(basename "$t").log" 2>&1; then r=0; else r=$?; fi
    grep -E "^(letterbox|decode|parity|public|op |e2e|  e2e|create|\[  (PASSED|FAILED|ERROR)|\[  FAILED|\[   LINE)|load:|cold|warm|shared|broken|rewritten|cut|  (shared|warm|after))" "$OUT/$(basename "$t").log"
    echo "$(basename "$t"): exit $r"
    [ $r = 0 ] || fail=1
done

if [ -n "${RECT:-}" ] && [ -x "$BIN/test_cuda_parity" ]; then
    step "parity at input size $RECT (cuda against cpu, both rewritten)"
    if ITS_BH_INPUT_SIZE=$RECT timeout 400 "$BIN/test_cuda_parity" >"$OUT/parity_rect.log" 2>&1; then r=0; else r=$?; fi
    grep -E "^(parity|op |e2e|  e2e|\[  (PASSED|FAILED|ERROR)|\[  FAILED|\[   LINE))" "$OUT/parity_rect.log"
    echo "test_cuda_parity at $RECT: exit $r"
    [ $r = 0 ] || fail=1
fi

step "compute-sanitizer memcheck"
if [ "${MEMCHECK:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    # one full run of the backend: load, plan, algorithm search, graph capture, graph
    # replays and the host path (run/sync), batches 1 and 2
    target="$BIN/bench_cuda --batches 1,2 --iters 3 $Y11"
    if timeout "${MEMCHECK_S:-240}" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 $target \
        >"$OUT/memcheck.log" 2>&1; then
        echo "memcheck: clean ($target)"
    else
        echo "memcheck: FAILED ($target)"; fail=1
    fi
    grep -E "ERROR SUMMARY|LEAK SUMMARY" "$OUT/memcheck.log" | head -3
fi

if [ -x "$BIN/bench_cuda" ]; then
    step "its engine (cuda) timings"
    "$BIN/bench_cuda" --json "$OUT/ours.json" --batches "$BATCHES" --iters "$ITERS" \
        "$Y11" "$Y8" || fail=1
    if [ -n "${RECT:-}" ]; then
        step "its engine (cuda) with the network at $RECT"
        ITS_BH_INPUT_SIZE=$RECT "$BIN/bench_cuda" --json "$OUT/ours_rect.json" --batches "$BATCHES" \
            --iters "$ITERS" "$Y11" "$Y8" || fail=1
    fi
    if [ -n "${TUNE:-}" ]; then
        step "its engine (cuda), convolutions autotuned at load (ITS_CUDA_TUNE=$TUNE)"
        ITS_CUDA_TUNE=$TUNE "$BIN/bench_cuda" --json "$OUT/ours_tuned.json" --batches "$BATCHES" \
            --iters "$ITERS" "$Y11" "$Y8"
    fi
    if [ "${NOVIEWS:-0}" = 1 ]; then
        step "its engine (cuda) without concat elimination (ITS_CUDA_NO_VIEWS=1), for comparison"
        ITS_CUDA_NO_VIEWS=1 "$BIN/bench_cuda" --json "$OUT/ours_noviews.json" --batches "$BATCHES" \
            --iters "$ITERS" "$Y11"
    fi
    if [ "${LEGACY:-0}" = 1 ]; then
        step "its engine (cuda), legacy cuDNN convolutions + our epilogue kernel, for comparison"
        ITS_CUDA_LEGACY_CONV=1 "$BIN/bench_cuda" --batches "$BATCHES" --iters "$ITERS" "$Y11"
    fi
    if [ "${PROFILE:-1}" = 1 ] && command -v ncu >/dev/null; then
        step "per-kernel times (ncu, one graph replay, YOLO11n batch 32)"
        ${TUNE:+env ITS_CUDA_TUNE=$TUNE} ncu --profile-from-start off --graph-profiling node --metrics gpu__time_duration.sum \
            --csv "$BIN/bench_cuda" --profile 32 --batches 32 "$Y11" >"$OUT/ncu.csv" 2>"$OUT/ncu.err" &&
            python3 "$SRC/bench/gpu/kernels.py" "$OUT/ncu.csv" | tee "$OUT/kernels.txt" ||
            tail -5 "$OUT/ncu.err"
    fi
fi

if [ "${START:-1}" = 1 ]; then
    step "itsd start: cold and warm plan cache, two engine workers"
    bash "$SRC/bench/gpu/start.sh" "$BIN" "$SHARED" "$OUT" || fail=1
fi

if [ "${PEER:-1}" = 1 ]; then
    step "PyTorch peer"
    PYTHONUNBUFFERED=1 python3 "$SRC/bench/gpu/peer.py" --out "$OUT/peer.json" \
        --batches "$BATCHES" --iters "$ITERS" --image "$MEDIA/bus.jpg" \
        "$Y11" "$Y8" 2>"$OUT/peer.err" || {
        fail=1; tail -20 "$OUT/peer.err"; }
fi

step "table ($CARD)"
python3 "$SRC/bench/gpu/table.py" --card "$CARD" "$OUT"/ours*.json "$OUT"/peer.json
[ -f "$OUT/start.txt" ] && cat "$OUT/start.txt"
echo "overall: $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
