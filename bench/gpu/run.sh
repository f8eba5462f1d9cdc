#!/usr/bin/env bash
# The GPU check-and-benchmark run for the cuda backend (issue 4), in one call on the GPU
# machine:
#   1. the GPU unit tests (pre/post-processing kernels, the backend) and, when carried, the
#      per-op and end-to-end parity of the cuda backend against the cpu backend;
#   2. compute-sanitizer memcheck on one full run;
#   3. the PyTorch peer (bench/gpu/onnx_torch.py): checked against ONNX Runtime, then timed
#      eager and under torch.compile(mode="reduce-overhead");
#   4. our engine's timings, same models, batches and card;
#   5. a table (last), naming the card.
# Usage, on the GPU machine: bash STAGE/run.sh, where STAGE holds stage.tar.xz made by
# bench/gpu/stage.sh (binaries built on the dev machine plus the libraries they need), or, in
# a checkout with a build: ITS_BUILD=build bash bench/gpu/run.sh.
# Environment: OUT (results folder, default /tmp/its-gpu-out), BATCHES (default 1,8,16,32),
# PEER=0 to skip the PyTorch peer, ITERS (timed iterations, default 200).
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
    BIN=$W/bin MODELS=$W/models MEDIA=$W/media SRC=$W/src
else
    SRC=$(cd "$here/../.." && pwd)
    BIN=${ITS_BUILD:-$SRC/build}/bin MODELS=${ITS_SHARED_DIR:-$SRC/../shared}/models
    MEDIA=${ITS_SHARED_DIR:-$SRC/../shared}/media
fi

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
pyd() { python3 -c "import $1, os; print(os.path.dirname($1.__file__))" 2>/dev/null; }
CUDNN_DIR=$(pyd nvidia.cudnn)
CUBLAS_DIR=$(pyd nvidia.cublas)
echo "cuDNN (python): $CUDNN_DIR  cuBLAS: $CUBLAS_DIR"
export LD_LIBRARY_PATH=${W:+$W/lib:}$CUDNN_DIR/lib:$CUBLAS_DIR/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ITS_SHARED_DIR=${MODELS%/models}
nvcc --version | tail -1

step "GPU tests"
for t in "$BIN"/test_cuda*; do
    [ -x "$t" ] || continue
    if "$t" >"$OUT/$(basename "$t").log" 2>&1; then r=0; else r=$?; fi
    grep -E "^(letterbox|decode|parity|op |e2e|\[  (PASSED|FAILED)|\[  FAILED)" "$OUT/$(basename "$t").log"
    echo "$(basename "$t"): exit $r"
    [ $r = 0 ] || fail=1
done

step "compute-sanitizer memcheck"
if command -v compute-sanitizer >/dev/null; then
    target=$BIN/test_cuda_prepost
    [ -x "$BIN/its-infer" ] && target="$BIN/its-infer --device cuda -m $MODELS/yolo11n_fp32_dequant.onnx $MEDIA/bus.jpg"
    if compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 $target \
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
        "$MODELS/yolo11n_fp32_dequant.onnx" "$MODELS/yolov8n_entropy.onnx" || fail=1
fi

if [ "${PEER:-1}" = 1 ]; then
    step "PyTorch peer"
    PYTHONUNBUFFERED=1 python3 "$SRC/bench/gpu/peer.py" --out "$OUT/peer.json" \
        --batches "$BATCHES" --iters "$ITERS" --image "$MEDIA/bus.jpg" \
        "$MODELS/yolo11n_fp32_dequant.onnx" "$MODELS/yolov8n_entropy.onnx" 2>"$OUT/peer.err" || {
        fail=1; tail -20 "$OUT/peer.err"; }
fi

step "table ($CARD)"
python3 "$SRC/bench/gpu/table.py" --card "$CARD" "$OUT"/ours.json "$OUT"/peer.json
echo "overall: $([ $fail = 0 ] && echo PASS || echo FAIL)"
exit $fail
