#!/usr/bin/env bash
# CPU benchmark: our engine against ONNX Runtime (onnxruntime-node), same photo, same thread
# count, every model x batch size in a fresh process (so peak RSS is per configuration).
#   bench/cpu/run.sh [BUILD_DIR]     (default build/; ITERS=20 THREADS=2 to change;
#                                     ORT_SPIN=0: ONNX Runtime's threads do not spin-wait)
# Prints a Markdown table: median latency per batch, images/s, peak RSS and the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shared=${ITS_SHARED_DIR:-$root/../shared}
iters=${ITERS:-20}
threads=${THREADS:-2}
image=${IMAGE:-$shared/media/bus.jpg}
bench=$build/bench/cpu/bench_cpu
# The engine's oneDNN runs on libgomp, whose default is to spin-wait in barriers; on a machine
# shared with other work that costs 5-10x (docs/PERFORMANCE.md). Passive waiting is the
# deployment setting; OMP_WAIT_POLICY=active reproduces the default. GOMP_SPINCOUNT=N (libgomp:
# about 100000 spins per ms) overrides the policy's spin count: a bounded spin (30000) is the
# counterpart of ONNX Runtime's default spinning thread pool (docs/PERFORMANCE.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
[ -x "$bench" ] || { echo "run.sh: $bench missing (build with the engine first)" >&2; exit 1; }
command -v node >/dev/null || { echo "run.sh: node missing" >&2; exit 1; }
[ -d "$root/tests/ref/node_modules/onnxruntime-node" ] || { echo "run.sh: run npm install in tests/ref" >&2; exit 1; }
models="yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx yolov8n-int8-qdq/yolov8n_entropy.onnx yolox-nano/yolox_nano.onnx ${EXTRA_MODELS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results.jsonl
for m in $models; do
    for b in 1 4; do
        "$bench" -m "$shared/models/$m" -i "$image" -b "$b" -n "$iters" -t "$threads" \
            --dump-input "$tmp/input.bin" >> "$results"
        node "$root/bench/cpu/ort_bench.js" "$shared/models/$m" "$tmp/input.bin" "$b" "$iters" "$threads" >> "$results"
    done
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores visible, load average $(cut -d' ' -f1-3 /proc/loadavg), threads=$threads, iters=$iters, image=$(basename "$image"), OMP_WAIT_POLICY=$OMP_WAIT_POLICY, GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset}, ORT spinning ${ORT_SPIN:-1}"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const key = (r) => r.model + "|" + r.batch;
const ours = {}, ort = {};
for (const r of rows) (r.runtime.startsWith("its-engine") ? ours : ort)[key(r)] = r;
console.log("| model | batch | ours ms | ORT ms | ours img/s | ORT img/s | speed ratio | ours peak RSS MB | ORT peak RSS MB (node base) | RSS ratio |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const k of Object.keys(ours)) {
  const a = ours[k], b = ort[k];
  if (!b) continue;
  console.log(`| ${a.model} | ${a.batch} | ${a.median_ms} | ${b.median_ms}${b.batch_mode === "sequential" && b.batch > 1 ? "*" : ""} | ${a.images_per_s} | ${b.images_per_s} | ${(a.images_per_s / b.images_per_s).toFixed(2)} | ${a.peak_rss_mb} | ${b.peak_rss_mb} (${b.base_rss_mb}) | ${(a.peak_rss_mb / b.peak_rss_mb).toFixed(2)} |`);
}
console.log("\nspeed ratio = our images/s / ORT images/s (>1: we are faster); RSS ratio = our peak / ORT peak (<1: we use less).");
console.log("* ORT: the models have a static batch of 1, so batch 4 is 4 back-to-back runs.");
' "$results"
