#!/usr/bin/env python3
"""One table of a bench/gpu/stress.sh run: every its-bench JSON summary in OUT (the decode
ceilings, the replay and stream runs, the capacity steps), with the card, the source mode,
where the cameras decoded, p99, drops, errors, throughput and the GPU's utilisation (NVML).

    python3 stress_table.py [--bound 50] OUT
"""
import argparse
import glob
import json
import os


def num(v, fmt):
    return "-" if v is None else fmt % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bound", type=float, default=50.0, help="p99 bound (ms) of 'held'")
    ap.add_argument("out")
    a = ap.parse_args()
    runs, ceil = [], []
    for f in sorted(glob.glob(os.path.join(a.out, "*.json"))):
        try:
            with open(f) as fh:
                d = json.load(fh)
        except (OSError, ValueError) as e:
            print("%s: not a JSON summary (%s)" % (f, e))
            continue
        d["name"] = os.path.basename(f)[:-5]
        (ceil if d.get("mode") == "decode-only" else runs).append(d)
    card = next((d.get("gpu") for d in ceil + runs if d.get("gpu")), "unknown GPU")
    print("\n## %s\n" % card)
    if ceil:
        print("| decode ceiling | decoders | on NVDEC | frames/s | per decoder min-max | "
              "cameras at 30 FPS | GPU util % |\n|---|---|---|---|---|---|---|")
        for d in ceil:
            fps = d.get("frames_per_s")
            print("| %s | %d | %d | %s | %s-%s | %s | %s |" % (
                d["name"], d["decoders"], d["decoders_nvdec"], num(fps, "%.0f"),
                num(d.get("frames_per_s_decoder_min"), "%.0f"),
                num(d.get("frames_per_s_decoder_max"), "%.0f"),
                num(fps / 30 if fps is not None else None, "%.0f"),
                num(d.get("gpu_utilization"), "%.0f")))
        print()
    if runs:
        order = {"replay": 0, "stream": 1, "capacity": 2, "soak": 3}
        runs.sort(key=lambda d: (order.get(d["name"].split("-")[0], 9), d["cameras"]))
        print("| run | source | decode | cameras x FPS | measured s | p50 / p99 / p99.9 ms | "
              "dropped | errors | frames/s | GPU util %% | GPU mem MiB | CPU cores | "
              "held (p99 <= %g ms, 0 drops, 0 errors) |" % a.bound)
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for d in runs:
            lat = d.get("latency_ms") or {}
            p99 = lat.get("p99")
            held = (p99 is not None and p99 <= a.bound and d.get("frames_dropped") == 0
                    and d.get("errors") == 0)
            fps = d["frames"] / d["measured_s"] if d.get("measured_s") else None
            print("| %s | %s | %s | %d x %g | %s | %s / %s / %s | %d | %d | %s | %s | %s | %s | "
                  "%s |" % (
                      d["name"], d.get("source", "?"), d.get("decode", "?"), d["cameras"],
                      d["fps"], num(d.get("measured_s"), "%.0f"), num(lat.get("p50"), "%.2f"),
                      num(p99, "%.2f"), num(lat.get("p99.9"), "%.2f"), d["frames_dropped"],
                      d["errors"], num(fps, "%.0f"), num(d.get("gpu_utilization"), "%.0f"),
                      num(d.get("gpu_memory_mb"), "%.0f"), num(d.get("cpu_cores"), "%.2f"),
                      "yes" if held else "NO"))
        notes = {d.get("gpu_note") for d in runs + ceil if d.get("gpu_note")}
        for n in notes:
            print("\nGPU figures missing: %s" % n)


if __name__ == "__main__":
    main()
