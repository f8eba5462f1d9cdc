#!/usr/bin/env python3
"""What the operator console costs itsd (not part of CI): end-to-end p99 with and without it.

    bench/console/console_load.py --itsd build/tools/itsd/itsd --shared ../shared
    CAMERAS=100 FPS=5 PHASE_S=25 ROUNDS=2 bench/console/console_load.py --itsd ... --client http

itsd runs the noop engine on CAMERAS replay cameras of the road video (640x360) at FPS each.
Phases of PHASE_S seconds alternate, ROUNDS times: without a console, then with one. The
console is headless Chromium showing the tile grid at 1280x900 (--client browser, the
default: what an operator's browser asks for, the tiles in view only, plus Chromium itself
when it runs on the same machine), or 9 HTTP clients each fetching an annotated snapshot
every 250 ms as a tile does (--client http: itsd's own cost, without a browser). Per phase it
prints the p50 and p99 of analytics_latency_seconds over the phase (from /metrics bucket
deltas, as PromQL's histogram_quantile), the frames, the snapshots a second and itsd's CPU;
with the browser also how many tiles fetched a picture (only those on screen should).
The issue's bar: the p99 with the console within 10% of the p99 without.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "app"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "common"))
from testutil import free_port  # noqa: E402
from test_console import Browser  # noqa: E402  (re-runs this under /usr/bin/python3 if needed)

BUCKET = re.compile(r'^analytics_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


def buckets(base):
    text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
    return {float("inf") if le == "+Inf" else float(le): float(v) for le, v in BUCKET.findall(text)}


def quantile(a, b, q):
    """histogram_quantile over the counts added between a and b: (ms, samples)."""
    ks = sorted(b)
    total = b[ks[-1]] - a.get(ks[-1], 0)
    prev, lo = 0.0, 0.0
    for k in ks:
        c = b[k] - a.get(k, 0)
        if c >= q * total and total > 0:
            if k == float("inf"):
                return lo * 1000, total
            return (lo + (k - lo) * (q * total - prev) / max(c - prev, 1e-9)) * 1000, total
        prev, lo = c, k
    return float("nan"), total


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (float(f[11]) + float(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--itsd", required=True)
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"))
    ap.add_argument("--client", choices=("browser", "http"), default="browser")
    o = ap.parse_args()
    cameras = int(os.environ.get("CAMERAS", 100))
    fps = float(os.environ.get("FPS", 5))
    phase_s = float(os.environ.get("PHASE_S", 25))
    rounds = int(os.environ.get("ROUNDS", 2))
    work = tempfile.mkdtemp(prefix="console-load-")
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    video = os.path.join(o.shared, "media", "traffic_road_cctv_360p.mp4")
    cfg = os.path.join(work, "itsd.yaml")
    with open(cfg, "w") as f:
        f.write("engine:\n  backend: noop\nsink:\n  type: \"null\"\nstatus:\n  interval_s: 0\n"
                "api:\n  port: %d\ncameras:\n" % port)
        for i in range(cameras):
            f.write("  - {id: c%03d, url: %s, kind: replay, replay_frames: 10, loop: true, "
                    "fps: %g}\n" % (i, json.dumps(video), fps))
    itsd = subprocess.Popen([o.itsd, "-c", cfg], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "itsd.err"), "wb"),
                            env=dict(os.environ, OMP_WAIT_POLICY="passive"))
    browser = None
    stop = threading.Event()
    fetched = [0]

    def tile(cam):
        while not stop.is_set():
            try:
                urllib.request.urlopen(base + "/v1/cameras/%s/snapshot.jpg?annotate=1" % cam,
                                       timeout=5).read()
                fetched[0] += 1
            except OSError:
                pass
            stop.wait(0.25)

    try:
        time.sleep(10)  # the replay clips load, the cameras settle
        if o.client == "browser":
            browser = Browser(work)
        print("%d cameras x %g fps, noop engine; console: %s" % (cameras, fps, o.client))
        for _ in range(rounds):
            for with_console in (False, True):
                threads = []
                if with_console and browser:
                    browser.call("Page.navigate", url=base + "/")
                elif browser:
                    browser.call("Page.navigate", url="about:blank")
                elif with_console:
                    stop.clear()
                    threads = [threading.Thread(target=tile, args=("c%03d" % i,))
                               for i in range(min(9, cameras))]
                    for t in threads:
                        t.start()
                time.sleep(3)
                a, c0, f0, t0 = buckets(base), cpu_s(itsd.pid), fetched[0], time.time()
                time.sleep(phase_s)
                b, c1, f1, t1 = buckets(base), cpu_s(itsd.pid), fetched[0], time.time()
                stop.set()
                for t in threads:
                    t.join()
                shown = ""
                if with_console and browser:  # tiles fetch only while on screen
                    shown = "  tiles fetched %s of %d" % (browser.eval(
                        "[...document.querySelectorAll('.tile img')]"
                        ".filter(i => i.dataset.frames).length"), cameras)
                p50, _ = quantile(a, b, 0.5)
                p99, n = quantile(a, b, 0.99)
                snaps = (f1 - f0) / (t1 - t0) if not browser else float("nan")
                print("%-12s p50 %7.2f ms  p99 %7.2f ms  frames %6d  snapshots/s %5.1f  "
                      "itsd CPU %.2f cores%s" % ("console" if with_console else "no console", p50,
                                                 p99, n, snaps, (c1 - c0) / (t1 - t0), shown),
                      flush=True)
    finally:
        stop.set()
        if browser:
            browser.close()
        itsd.terminate()
        itsd.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
