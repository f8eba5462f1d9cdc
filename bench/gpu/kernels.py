"""Summarise an ncu CSV (gpu__time_duration.sum per kernel) into a per-kernel time table."""
import csv
import sys
from collections import defaultdict


def main(path, top=20):
    tot = defaultdict(float)
    cnt = defaultdict(int)
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        v = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        us = v / 1000.0 if unit.startswith("n") else (v * 1000.0 if unit.startswith("m") else v)
        name = r["Kernel Name"]
        name = name.split("(")[0][:70]
        tot[name] += us
        cnt[name] += 1
    all_us = sum(tot.values())
    print(f"per-kernel device time of one graph replay: {all_us:.1f} us in {sum(cnt.values())} kernels")
    print(f"{'kernel':72s} {'calls':>5s} {'us':>9s} {'share':>6s}")
    for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{k:72s} {cnt[k]:5d} {v:9.1f} {100 * v / all_us:5.1f}%")


if __name__ == "__main__":
    main(sys.argv[1])
