#!/usr/bin/env bash
# CPU benchmark for a shared, noisy machine: like run.sh, but each configuration runs our
# engine and ONNX Runtime alternately REPS times (fresh processes, ITERS timed runs each) and
# reports the median of the medians and the REPS pairwise ratios, so that load changing
# between the two runtimes' turns shows up instead of deciding the result.
#   bench/cpu/alternate.sh [BUILD_DIR] spin|passive
#     spin:    ours GOMP_SPINCOUNT=${SPIN:-30000} (bounded spin) vs ORT's default spinning
#     passive: ours OMP_WAIT_POLICY=passive vs ORT with spinning off (ORT_SPIN=0)
#   REPS=5 ITERS=10 THREADS=2 MODELS="a/b.onnx ..." to change.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
mode=${2:-spin}
shared=${ITS_SHARED_DIR:-$root/../shared}
reps=${REPS:-5}
iters=${ITERS:-10}
threads=${THREADS:-2}
image=${IMAGE:-$shared/media/bus.jpg}
bench=$build/bench/cpu/bench_cpu
models=${MODELS:-yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx yolov8n-int8-qdq/yolov8n_entropy.onnx yolox-nano/yolox_nano.onnx}
case $mode in
spin)
    unset OMP_WAIT_POLICY
    export GOMP_SPINCOUNT=${SPIN:-30000} ORT_SPIN=1
    ;;
passive)
    unset GOMP_SPINCOUNT
    export OMP_WAIT_POLICY=passive ORT_SPIN=0
    ;;
*)
    echo "alternate.sh: mode is spin or passive" >&2
    exit 2
    ;;
esac
[ -x "$bench" ] || { echo "alternate.sh: $bench missing (build with the engine first)" >&2; exit 1; }
[ -d "$root/tests/ref/node_modules/onnxruntime-node" ] || { echo "alternate.sh: run npm install in tests/ref" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl
loads=""
for m in $models; do
    for b in 1 4; do
        for ((r = 0; r < reps; r++)); do
            "$bench" -m "$shared/models/$m" -i "$image" -b "$b" -n "$iters" -t "$threads" \
                --dump-input "$tmp/input.bin" >> "$results" 2> /dev/null
            node "$root/bench/cpu/ort_bench.js" "$shared/models/$m" "$tmp/input.bin" "$b" "$iters" "$threads" >> "$results"
            loads="$loads $(cut -d' ' -f1 /proc/loadavg)"
        done
    done
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores visible, 1-min load average per pair:$loads"
echo "mode $mode (OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}, ORT spinning $ORT_SPIN), threads=$threads, iters=$iters, reps=$reps, image=$(basename "$image")"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (a) => { const s = a.slice().sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const groups = new Map();
for (const r of rows) {
  const k = r.model + "|" + r.batch;
  if (!groups.has(k)) groups.set(k, { ours: [], ort: [] });
  groups.get(k)[r.runtime.startsWith("its-engine") ? "ours" : "ort"].push(r);
}
console.log("| model | batch | ours ms | ORT ms | speed ratio | pairwise ratios | ours peak RSS MB | ORT peak RSS MB (node base) | RSS ratio |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const [k, g] of groups) {
  const [model, batch] = k.split("|");
  const om = med(g.ours.map((r) => r.median_ms)), tm = med(g.ort.map((r) => r.median_ms));
  const pw = g.ours.map((r, i) => (g.ort[i].median_ms / r.median_ms).toFixed(2)).join(" ");
  const orss = Math.max(...g.ours.map((r) => r.peak_rss_mb)), trss = Math.max(...g.ort.map((r) => r.peak_rss_mb));
  const seq = g.ort[0].batch_mode === "sequential" && Number(batch) > 1 ? "*" : "";
  console.log(`| ${model} | ${batch} | ${om} | ${tm}${seq} | **${(tm / om).toFixed(2)}** | ${pw} | ${orss} | ${trss} (${g.ort[0].base_rss_mb}) | ${(orss / trss).toFixed(2)} |`);
}
console.log("\nspeed ratio = ORT median ms / ours (per batch; > 1: we are faster), median of the medians of alternating runs.");
console.log("* ORT: the models have a static batch of 1, so batch 4 is 4 back-to-back runs.");
' "$results"
