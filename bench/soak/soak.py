#!/usr/bin/env python3
"""Soak benchmark: itsd under a week's operations, compressed (not part of CI).

    bench/soak/soak.py --itsd build/tools/itsd/itsd            # 1 hour, 100 cameras x 30 FPS
    DURATION=180 CAMERAS=10 bench/soak/soak.py --itsd ...      # a short run that shows it works

itsd runs the noop engine on CAMERAS replay cameras (one shared 720p clip) at FPS each, with
picture quality measured QUALITY_FPS times per camera per second (5, as deploy/itsd-gpu.yaml;
1 on a 2-core machine, where 100 cameras at 5 take a core), at niceness NICE if set (-10,
as root, ahead of other work on a shared machine) or in the real-time class at RT_PRIO if set
(SCHED_RR, as root: a build or test suite beside it then takes only the CPU that itsd leaves),
publishing into a real redis-server. Every CHURN_S seconds a camera is added or removed over
the HTTP API (alternately); every REDIS_RESTART_S seconds Redis is stopped and started again
(3 s down). Every SAMPLE_S seconds it samples itsd's RSS, threads and open descriptors
(/proc) and, from /metrics, frames processed and dropped and the end-to-end latency p99 of
the interval (analytics_latency_seconds). At the end itsd gets SIGTERM; its summary gives
each camera's in / processed / dropped.

Pass when: RSS drift after the warm-up (the first 5 minutes, or a sixth of a shorter run) is
under 5%; every frame is accounted for (in = processed + dropped for every camera in the
summary, every add and remove answered as expected, itsd exited 0); and the p99 of every
interval after the warm-up is within the budget (BUDGET_MS, SPEC's 100 ms end to end).
Prints a table of the samples and one PASS/FAIL line; exit 0 on pass, 1 on fail.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..", "tests/common"))
from testutil import free_port  # noqa: E402

ENV = os.environ


def env_num(name, default):
    return float(ENV.get(name, default))


def proc_stats(pid):
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, threads, fds


def http(port, method, path, body=None, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)$')


def scrape(port):
    _, text = http(port, "GET", "/metrics")
    out = {}
    for line in text.splitlines():
        m = METRIC.match(line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


def total(metrics, name):
    return sum(v for _, v in metrics.get(name, []))


def buckets(metrics, name):
    b = {}
    for labels, v in metrics.get(name + "_bucket", []):
        le = re.search(r'le="([^"]+)"', labels).group(1)
        b[float("inf") if le == "+Inf" else float(le)] = v
    return sorted(b.items())


def p99_between(b0, b1):
    """p99 (ms) of the samples between two cumulative bucket snapshots, as PromQL's
    histogram_quantile: linear inside the bucket."""
    d = [(le, c1 - dict(b0).get(le, 0.0)) for le, c1 in b1]
    n = d[-1][1] if d else 0
    if n <= 0:
        return None
    rank, prev_le, prev_c = 0.99 * n, 0.0, 0.0
    for le, c in d:
        if c >= rank:
            if le == float("inf"):
                return prev_le * 1e3
            return (prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)) * 1e3
        prev_le, prev_c = le, c
    return None


def start_redis(port, work):
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"],
                            stdout=open(os.path.join(work, "redis.log"), "ab"),
                            stderr=subprocess.STDOUT)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--itsd", required=True)
    ap.add_argument("--clip", default=os.path.join(
        ENV.get("ITS_SHARED_DIR", "../shared"), "media", "traffic_highway_curve_720p.mp4"))
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    duration = env_num("DURATION", 3600)
    cameras = int(env_num("CAMERAS", 100))
    fps = env_num("FPS", 30)
    churn_s = env_num("CHURN_S", 10)
    redis_restart_s = env_num("REDIS_RESTART_S", 600)
    sample_s = env_num("SAMPLE_S", 10)
    budget_ms = env_num("BUDGET_MS", 100)
    warm_s = min(300.0, duration / 6)
    if not shutil.which("redis-server"):
        print("soak: redis-server is not installed", file=sys.stderr)
        return 2
    work = a.work or tempfile.mkdtemp(prefix="its-soak-")
    os.makedirs(work, exist_ok=True)
    rport, aport = free_port(), free_port()
    redis = start_redis(rport, work)
    cams = "".join("  - {id: cam-%03d, url: %s, kind: replay, fps: %g, replay_frames: 60, "
                   "loop: true}\n" % (i, json.dumps(os.path.abspath(a.clip)), fps)
                   for i in range(cameras))
    cfg = os.path.join(work, "soak.yaml")
    with open(cfg, "w") as f:
        f.write("engine:\n  backend: noop\n  noop_cost_us: 0\n"
                "ingest:\n  max_cameras: %d\n"
                "batch:\n  max_size: 16\n"
                # picture quality at the rate of the GPU deployment (deploy/itsd-gpu.yaml) by
                # default: at every frame it is the service's costliest CPU stage
                "analytics:\n  quality_image_fps: %g\n"
                "sink:\n  type: null\n"
                "status:\n  interval_s: 60\n"
                "redis:\n  host: 127.0.0.1\n  port: %d\n"
                "api:\n  port: %d\n"
                "cameras:\n%s" % (cameras + 16, env_num("QUALITY_FPS", 5), rport, aport, cams))
    err_path = os.path.join(work, "itsd.err")
    # NICE (e.g. -10, as root) runs itsd ahead of other work on a shared machine
    cmd = [a.itsd, "-c", cfg]
    if ENV.get("NICE"):
        cmd = ["nice", "-n", ENV["NICE"]] + cmd
    # RT_PRIO (e.g. 10, as root): itsd's threads under SCHED_RR at that priority, ahead of
    # every ordinary process (compilers, test suites) on a machine shared with other work
    if ENV.get("RT_PRIO"):
        cmd = ["chrt", "-r", ENV["RT_PRIO"]] + cmd
    itsd = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(err_path, "wb"))
    for _ in range(300):
        try:
            if http(aport, "GET", "/healthz", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.2)
    t0 = time.time()
    rows, problems = [], []
    extra, removed = 0, 0
    next_churn, next_redis, next_sample = t0 + churn_s, t0 + redis_restart_s, t0
    prev_b, prev_frames, prev_drops, redis_restarts = None, 0.0, 0.0, 0
    while True:
        now = time.time()
        if now - t0 >= duration or itsd.poll() is not None:
            break
        if now >= next_churn:  # add a camera, then remove it, and so on
            next_churn += churn_s
            if extra == removed:
                body = {"id": "churn-%d" % extra, "url": os.path.abspath(a.clip),
                        "kind": "replay", "fps": fps, "loop": True, "replay_frames": 60}
                code, text = http(aport, "POST", "/v1/cameras", body)
                if code != 201:
                    problems.append("add churn-%d: %d %s" % (extra, code, text))
                extra += 1
            else:
                code, text = http(aport, "DELETE", "/v1/cameras/churn-%d" % removed)
                if code != 200:
                    problems.append("remove churn-%d: %d %s" % (removed, code, text))
                removed += 1
        if now >= next_redis:  # Redis restarts
            next_redis += redis_restart_s
            redis.send_signal(signal.SIGTERM)
            redis.wait()
            time.sleep(3)
            redis = start_redis(rport, work)
            redis_restarts += 1
        if now >= next_sample:
            next_sample += sample_s
            m = scrape(aport)
            b = buckets(m, "analytics_latency_seconds")
            frames, drops = total(m, "its_frames_total"), total(m, "its_frames_dropped_total")
            rss, threads, fds = proc_stats(itsd.pid)
            p99 = p99_between(prev_b, b) if prev_b is not None else None
            up = total(m, "its_redis_up") if "its_redis_up" in m else None
            rows.append((now - t0, rss, threads, fds, frames - prev_frames, drops - prev_drops,
                         p99, up))
            prev_b, prev_frames, prev_drops = b, frames, drops
        time.sleep(0.1)
    exited_early = itsd.poll() is not None
    itsd.send_signal(signal.SIGTERM)
    try:
        rc = itsd.wait(timeout=30)
    except subprocess.TimeoutExpired:
        itsd.kill()
        rc = -1
    redis.send_signal(signal.SIGTERM)
    redis.wait()
    if exited_early or rc != 0:
        problems.append("itsd exited %s%s" % (rc, " before the end" if exited_early else ""))
    # every frame accounted for: in = processed + dropped for every camera in the summary
    summary = re.findall(r"itsd: camera (\S+): in (\d+), processed (\d+), dropped (\d+)",
                         open(err_path, errors="replace").read())
    unaccounted = [(c, int(i) - int(p) - int(d)) for c, i, p, d in summary
                   if int(i) != int(p) + int(d)]
    if not summary:
        problems.append("no per-camera summary from itsd")
    if unaccounted:
        problems.append("frames unaccounted for: %s" % unaccounted[:5])

    print("%8s %10s %8s %6s %10s %8s %9s %6s" % ("t_s", "rss_kb", "threads", "fds", "frames",
                                                 "dropped", "p99_ms", "redis"))
    for t, rss, th, fds, fr, dr, p99, up in rows:
        print("%8.0f %10d %8d %6d %10.0f %8.0f %9s %6s" % (
            t, rss, th, fds, fr, dr, "-" if p99 is None else "%.1f" % p99,
            "-" if up is None else "%.0f" % up))
    after = [r for r in rows if r[0] >= warm_s]
    drift = None
    if len(after) >= 2:
        base = after[0][1]
        drift = (max(r[1] for r in after) - base) / base * 100
        if drift >= 5:
            problems.append("RSS drift %.1f%% after the warm-up" % drift)
    else:
        problems.append("too short to measure drift")
    late = [r[6] for r in after if r[6] is not None]
    worst = max(late) if late else None
    if worst is not None and worst > budget_ms:
        problems.append("p99 %.1f ms over the %g ms budget" % (worst, budget_ms))
    frames_all = sum(r[4] for r in rows)
    drops_all = sum(r[5] for r in rows)
    print("soak: %.0f s, %d cameras x %g FPS, %d cameras added and %d removed, %d Redis "
          "restarts; %.0f frames processed, %.0f dropped; RSS drift after %.0f s: %s; worst "
          "p99 after it: %s ms; summary: %d cameras, %d with frames unaccounted for" % (
              rows[-1][0] if rows else 0, cameras, fps, extra, removed, redis_restarts,
              frames_all, drops_all, warm_s, "-" if drift is None else "%.2f%%" % drift,
              "-" if worst is None else "%.1f" % worst, len(summary), len(unaccounted)))
    print("soak: %s%s" % ("PASS" if not problems else "FAIL: ", "; ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
