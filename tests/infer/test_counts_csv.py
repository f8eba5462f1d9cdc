#!/usr/bin/env python3
"""Interval counts as CSV (its-infer --csv, its-replay --csv; columns in docs/analytics.md) on a
real video: the bridge clip (traffic_bridge_720p, 144 frames) through the demo's detector
(YOLOX-Nano, confidence 0.25 as deploy/itsd.yaml), ByteTrack and the scene deploy/scenes/
traffic_bridge_720p.yaml.

The truths it is checked against: the analytics report of the same run (the window message
its-infer prints at the video's end, the replay message of its-replay): the CSV's totals per
line, class and direction equal its traffic_total; the hand labels of tests/eval/
traffic_bridge_720p (5 crossings away, 1 towards), within one per direction as the suite's
evaluation allows; the clock: intervals start on the quarter hours of --csv-start, each
interval's observed time is the video's time inside it (143 frame steps at 30 fps).

    test_counts_csv.py INFER REPLAY SOURCE SHARED WORK

Exit status: 0 pass, 1 fail, 77 the shared data is missing (1 under CI=true).
"""
import csv
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone

HEADER = ["camera", "interval_start", "interval_end", "line", "class", "direction", "count",
          "mean_speed_kmh", "flow_vph", "observed_s"]
CLASSES = ["pedestrian", "bicycle", "motorcycle", "car", "light_goods", "heavy_goods", "bus"]
FPS = 30.0
FRAMES = 144

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def totals(rows):
    t = Counter()
    for r in rows:
        t[(r["line"], r["class"], r["direction"])] += int(r["count"])
    return t


def report_totals(report):
    t = Counter()
    for line in report["lines"]:
        for cls, (pos, neg) in line["traffic_total"].items():
            t[(line["name"], cls, "positive")] += pos
            t[(line["name"], cls, "negative")] += neg
    return t


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_clock(rows, start, what):
    """Intervals of 15 minutes on the quarter hours; the video's time inside each."""
    end = start + timedelta(seconds=(FRAMES - 1) / FPS)
    q0 = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
    want = {}
    t = q0
    while t <= end:
        t1 = t + timedelta(minutes=15)
        want[iso(t)] = (min(end, t1) - max(start, t)).total_seconds()
        t = t1
    got = {}
    for r in rows:
        got[r["interval_start"]] = float(r["observed_s"])
        ok = (datetime.strptime(r["interval_end"], "%Y-%m-%dT%H:%M:%SZ") -
              datetime.strptime(r["interval_start"], "%Y-%m-%dT%H:%M:%SZ")) == timedelta(minutes=15)
        if not ok:
            check(False, f"{what}: interval {r['interval_start']}-{r['interval_end']} is 15 min")
            return
    check(sorted(got) == sorted(want), f"{what}: intervals {sorted(got)} == {sorted(want)}")
    for k, v in want.items():
        check(k in got and abs(got[k] - v) < 0.002,
              f"{what}: {k} observed {got.get(k)} s == {v:.3f} s")
    # one row per interval, line, class and direction
    check(len(rows) == len(want) * len(CLASSES) * 2,
          f"{what}: {len(rows)} rows == {len(want)} intervals x 7 classes x 2 directions")
    for r in rows:
        obs, n = float(r["observed_s"]), int(r["count"])
        if obs > 0 and abs(float(r["flow_vph"]) - n * 3600 / obs) > 0.05 + 1e-3 * n * 3600 / obs:
            check(False, f"{what}: flow {r['flow_vph']} == {n} x 3600 / {obs}")


def main():
    infer, replay, source, shared, work = sys.argv[1:6]
    model = os.path.join(shared, "models", "yolox-nano", "yolox_nano.onnx")
    video = os.path.join(shared, "media", "traffic_bridge_720p.mp4")
    scene = os.path.join(source, "deploy", "scenes", "traffic_bridge_720p.yaml")
    if not (os.path.exists(model) and os.path.exists(video)):
        print(f"missing shared data: {model}, {video}")
        return 1 if os.environ.get("CI") == "true" else 77
    os.makedirs(work, exist_ok=True)
    labels = json.load(open(os.path.join(source, "tests", "eval", "traffic_bridge_720p",
                                         "labels.json")))
    env = dict(os.environ, OMP_WAIT_POLICY="passive")

    # its-infer: detector, tracker, analytics, CSV; 08:14:00 -> one quarter hour
    out_csv = os.path.join(work, "bridge.csv")
    start = datetime(2026, 12, 7, 8, 14, 0, tzinfo=timezone.utc)
    p = subprocess.run([infer, "-m", model, "--confidence", "0.25", "--track", "-s", scene,
                        "--csv", out_csv, "--csv-start", iso(start), video],
                       capture_output=True, text=True, env=env)
    check(p.returncode == 0, f"its-infer --csv exits 0 ({p.returncode}: {p.stderr[-500:]})")
    msgs = [json.loads(x) for x in p.stdout.splitlines()]
    window = [m for m in msgs if m.get("type") == "window"]
    check(len(window) == 1, "its-infer prints the video's analytics window")
    head, rows = read_csv(out_csv)
    check(head == HEADER, f"header {head}")
    check({r["camera"] for r in rows} == {video}, "camera column: the video's path")
    check_clock(rows, start, "its-infer")
    t = totals(rows)
    want = report_totals(window[0]["report"])
    check(t == want, f"CSV totals {dict(+t)} == the report's traffic_total {dict(+want)}")
    for d in ("positive", "negative"):
        lab = sum(1 for c in labels["crossings"] if c["direction"] == d)
        got = sum(v for (line, _, dd), v in t.items() if line == labels["line"] and dd == d)
        check(abs(got - lab) <= 1, f"{d}: CSV total {got} within 1 of the hand labels' {lab}")
    for r in rows:
        if int(r["count"]) and r["mean_speed_kmh"]:
            check(5 < float(r["mean_speed_kmh"]) < 80,
                  f"{r['class']} {r['direction']}: mean speed {r['mean_speed_kmh']} km/h is a "
                  "bridge's slow traffic")

    # its-replay over those detections, the video starting 2 s before 08:15: two intervals
    dets = os.path.join(work, "bridge.jsonl")
    with open(dets, "w") as f:
        f.write(p.stdout)
    rcsv = os.path.join(work, "bridge_replay.csv")
    start = datetime(2026, 12, 7, 8, 14, 58, tzinfo=timezone.utc)
    p = subprocess.run([replay, "-s", scene, "--csv", rcsv, "--csv-start", iso(start), dets],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"its-replay --csv exits 0 ({p.returncode}: {p.stderr[-500:]})")
    rep = [json.loads(x) for x in p.stdout.splitlines()][-1]
    head, rows = read_csv(rcsv)
    check(head == HEADER, "its-replay: the same header")
    check_clock(rows, start, "its-replay")
    t = totals(rows)
    want = report_totals(rep["report"])
    check(t == want, f"its-replay: CSV totals {dict(+t)} == its report's {dict(+want)}")
    check(sum(t.values()) > 0, "its-replay: something was counted")

    # usage errors: one line, exit 2
    for args, msg in (([infer, "-m", model, "--csv", out_csv, video], "--csv needs --track"),
                      ([infer, "-m", model, "--track", "-s", scene, "--csv", out_csv,
                        "--csv-interval", "90s", video], "--csv-interval"),
                      ([replay, "-s", scene, "--csv-start", "yesterday", dets], "--csv-start")):
        p = subprocess.run(args, capture_output=True, text=True)
        check(p.returncode == 2 and msg in p.stderr and p.stderr.count("\n") == 1,
              f"{os.path.basename(args[0])}: '{msg}' is a usage error ({p.returncode}: "
              f"{p.stderr.strip()})")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
