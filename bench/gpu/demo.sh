#!/usr/bin/env bash
# The demo (deploy/itsd.yaml) on the GPU machine, in one call, from demo.tar.xz made by
# bench/gpu/demo-stage.sh:
#   1. on the GPU: the configuration scripts/demo.sh runs, with engine.backend cuda, as
#      scripts/demo.sh chooses where nvidia-smi finds a GPU;
#   2. on the CPU engine with the process held to two cores (taskset), as on the 2-core
#      machine the demo is sized for: with the decoding threads at nice 10 (the default) and,
#      for comparison, at nice 0 (ITS_INGEST_NICE=0);
#   3. a table: each run's per-stage p99 against its budget, windows, events, drops.
# Environment: SECONDS_EACH (default 60), OUT (default /tmp/its-demo-out), RUNS (default
# "gpu cpu2-nice10 cpu2-nice0": which of the runs above).
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/its-demo-out}
S=${SECONDS_EACH:-60}
mkdir -p "$OUT"
W=/tmp/its-demo
rm -rf "$W" && mkdir -p "$W" && tar -C "$W" -xJf "$here/demo.tar.xz"
pyd() { python3 -c "import $1, os; print(os.path.dirname($1.__file__))" 2>/dev/null; }
export LD_LIBRARY_PATH=$W/lib:$(pyd nvidia.cudnn)/lib:$(pyd nvidia.cublas)/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ITS_SHARED_DIR=$W/shared OMP_WAIT_POLICY=passive
CARD=$(nvidia-smi -L | head -1)
echo "machine: $CARD; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
cd "$W/src"
run() { # name, then env assignments and a command prefix
    local name=$1; shift
    echo "==== $name"
    env ITS_API_PORT=18080 "$@" "$W/bin/itsd" -c deploy/itsd.yaml --duration "$S" \
        >"$OUT/$name.jsonl" 2>"$OUT/$name.err"
    echo "exit $?"
    grep -E "engine|backend|cuda|GPU" "$OUT/$name.err" | head -5
    tail -6 "$OUT/$name.err"
}
RUNS=${RUNS:-gpu cpu2-nice10 cpu2-nice0}
for r in $RUNS; do
    case $r in
    gpu) run gpu ITS_ENGINE_BACKEND=cuda ;;
    cpu2-nice10) run cpu2-nice10 ITS_ENGINE_BACKEND=cpu taskset -c 0,1 ;;
    cpu2-nice0) run cpu2-nice0 ITS_ENGINE_BACKEND=cpu ITS_INGEST_NICE=0 taskset -c 0,1 ;;
    esac
done
echo "==== table ($CARD)"
python3 - "$OUT" "$RUNS" <<'PY'
import json, sys, os, collections
out = sys.argv[1]
budget = {"queue": 5, "batch": 10, "inference": 50, "postprocess": 10, "analytics": 15,
          "quality": 5, "modelmon": 5}
print(f"{'run':<13} {'frames':>6} " + " ".join(f"{k[:5]:>7}" for k in budget) +
      f" {'windows':>7} {'events':>6}  over budget")
for name in sys.argv[2].split():
    lat = collections.defaultdict(list); win = ev = fr = 0
    try:
        for line in open(os.path.join(out, name + ".jsonl")):
            try: m = json.loads(line)
            except ValueError: continue
            t = m.get("type")
            if t == "frame":
                fr += 1
                for k, v in m.get("latency_ms", {}).items(): lat[k].append(v)
            elif t == "window": win += 1
            elif t == "event": ev += 1
    except OSError:
        pass
    def p99(v):
        v = sorted(v); return v[min(len(v) - 1, int(0.99 * len(v)))] if v else float("nan")
    cols = [p99(lat[k]) for k in budget]
    over = [k for k, c in zip(budget, cols) if c > budget[k]]
    print(f"{name:<13} {fr:>6} " + " ".join(f"{c:>7.2f}" for c in cols) +
          f" {win:>7} {ev:>6}  {','.join(over) or 'none'}")
print("p99 in ms; budgets:", budget)
PY
