#!/usr/bin/env python3
"""its-bench's report and bench/gpu/stress.sh, without a GPU.

- stress.sh runs under bash with INPUT_SIZE and BATCH unset (bash 5.2 once stopped it at its
  "input size" line with "bad substitution"); nvidia-smi and the packed folder are stand-ins,
  no phase runs.
- its-bench's JSON summary (file and last stdout line) is strict JSON: no NaN, Infinity or
  nan anywhere (a missing figure is null), and it names the source mode, the decoder and the
  GPU model. Without NVML the GPU figures are null with a note; with the stand-in NVML
  (tests/metrics/fake_nvml.c: one "its fake GPU" at 73 %, 1 GiB used) they are its values.
  Runs: 3 streamed cameras (each decodes the file itself) and 3 replayed ones, no-op engine,
  a real redis-server.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def strict(text):
    def reject(name):
        raise ValueError("not JSON: " + name)
    return json.loads(text, parse_constant=reject)


def check_stress_sh(root, work):
    d = os.path.join(work, "stress-sh")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "bin"))
    os.makedirs(os.path.join(d, "empty"))
    subprocess.run(["tar", "-C", os.path.join(d, "empty"), "-cJf",
                    os.path.join(d, "stress.tar.xz"), "."], check=True)
    shutil.copy(os.path.join(root, "bench/gpu/stress.sh"), d)
    smi = os.path.join(d, "bin", "nvidia-smi")
    with open(smi, "w") as f:
        f.write("#!/bin/sh\necho 'stand-in GPU'\n")
    os.chmod(smi, 0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("INPUT_SIZE", "BATCH")}
    env.update(PATH=os.path.join(d, "bin") + ":" + env["PATH"], PHASES="none",
               OUT=os.path.join(d, "out"), STRESS_WORK=os.path.join(d, "w"))
    p = subprocess.run(["bash", os.path.join(d, "stress.sh")], env=env,
                       capture_output=True, text=True, timeout=120)
    print(p.stdout + p.stderr)
    assert p.returncode == 0, "stress.sh exited %d" % p.returncode
    assert "bad substitution" not in p.stderr
    assert "input size: model default, batch: spec.yaml default" in p.stdout


def run_bench(args, work, name, source, nvml):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    js = os.path.join(d, "summary.json")
    env = dict(os.environ, ITS_NVML_LIBRARY=nvml)
    cmd = [args.bench, "--cameras", "3", "--fps", "10", "--batch", "4", "--duration", "3",
           "--quiet", "--set", "bench.itsd=" + args.itsd, "--set", "bench.backend=noop",
           "--set", "bench.source=" + source, "--set", "bench.video=" + args.video,
           "--set", "bench.workdir=" + d, "--set", "bench.warmup_s=1",
           "--set", "bench.json=" + js]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    print(p.stdout[-3000:] + p.stderr[-2000:])
    assert p.returncode == 0, "its-bench exited %d" % p.returncode
    with open(js) as f:
        text = f.read()
    for bad in ("nan", "NaN", "inf", "Infinity"):
        assert bad not in text.replace("gpu_note", ""), "%s in %s" % (bad, text)
    doc = strict(text)
    last = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    assert strict(last) == doc, "stdout's JSON line differs from the file"
    assert doc["source"] == source
    assert doc["decode"] == "cpu"  # no GPU here: every camera decodes on the CPU
    assert doc["frames_in"] > 0 and doc["errors"] == 0
    return doc, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--itsd", required=True)
    ap.add_argument("--fake-nvml", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.video = os.path.join(args.shared, "media/traffic_intersection_cctv_480p.mp4")
    ci = os.environ.get("CI") == "true"
    if not os.path.exists(args.video) or not shutil.which("redis-server"):
        print("shared media or redis-server missing")
        return 1 if ci else 77
    os.makedirs(args.work, exist_ok=True)
    check_stress_sh(args.source, args.work)

    absent = os.path.join(args.work, "no-such-dir", "libnvidia-ml.so.1")
    doc, out = run_bench(args, args.work, "stream-no-nvml", "stream", absent)
    assert doc["gpu"] is None and doc["gpu_utilization"] is None
    assert doc["gpu_memory_mb"] is None
    assert "NVML absent" in doc["gpu_note"], doc["gpu_note"]
    assert "| GPU utilisation (NVML) | not measured: NVML absent" in out
    assert "stream source, cpu decode" in out

    doc, out = run_bench(args, args.work, "replay-fake-nvml", "replay", args.fake_nvml)
    assert doc["gpu"] == "its fake GPU", doc["gpu"]
    assert doc["gpu_utilization"] == 73.0, doc["gpu_utilization"]
    assert doc["gpu_memory_mb"] == 1024, doc["gpu_memory_mb"]
    assert doc["gpu_note"] is None
    assert "| GPU utilisation (NVML, mean) | 73.0% |" in out
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
