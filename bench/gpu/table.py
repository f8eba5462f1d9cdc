"""Print the GPU benchmark table from run.sh's JSON files (ours.json, peer.json)."""
import argparse
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--card", default="?")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    rows = []
    for f in a.files:
        if os.path.exists(f):
            with open(f) as fh:
                d = json.load(fh)
            for r in d["rows"]:
                base = os.path.basename(f)
                if base.startswith("ours"):  # ours.json, ours_tuned.json, ours_noviews.json
                    tag = base[len("ours"):-len(".json")].lstrip("_")
                    r["engine"] = "its-cuda" + ("-" + tag if tag else "")
                else:
                    r.setdefault("engine", "torch-" + r["mode"])
                rows.append(r)
    if not rows:
        print("no timings")
        return
    ref = {(r["model"], r["batch"]): r for r in rows if r["engine"] == "torch-compile"}
    print(f"card: {a.card}")
    print(f"{'model':28s} {'engine':16s} {'batch':>5s} {'median ms':>10s} {'p99 ms':>8s} "
          f"{'images/s':>10s} {'GPU MiB':>8s} {'x compile':>9s}")
    for r in sorted(rows, key=lambda r: (r["model"], r["batch"], r["engine"])):
        c = ref.get((r["model"], r["batch"]))
        ratio = f"{r['img_s'] / c['img_s']:.2f}" if c else "-"
        print(f"{r['model']:28s} {r['engine']:16s} {r['batch']:5d} {r['median_ms']:10.3f} "
              f"{r['p99_ms']:8.3f} {r['img_s']:10.0f} {r['gpu_mem_mb']:8.1f} {ratio:>9s}")


if __name__ == "__main__":
    main()
