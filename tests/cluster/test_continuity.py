#!/usr/bin/env python3
"""A camera's counts continue across a move between two itsd replicas (docs/scale-out.md,
"Checkpoints").

    test_continuity.py --itsd PATH --source DIR --shared DIR --work DIR [--sanitized]

One redis-server, two itsd (cpu engine, YOLOX-nano, the road video looped at 5 frames a
second with its scene), two cameras, analytics.window_s 1, lease 3 s. A subscriber keeps every
window message (its:cam:*:analytics); a poller reads each camera's checkpoint key every 20 ms
and keeps every version (epoch, data); the event stream (its:events:stream) gives every line
crossing published. A camera's cumulative line count is the sum of its window's "total" over
lines, classes and directions; a crossing adds one to it and comes as one line_crossing event
without a phase. Checked, with the events as the independent count:
  1. kill -9 of the replica serving cam-0: on its new replica, the first window's count is at
     least the last one published before the kill (not reset to 0), and equals the
     checkpoint it restored plus the crossings published by the new replica up to that
     window's frame;
  2. the killed replica restarted takes its camera back (a handover), and its first window
     equals the handing-over replica's last checkpoint plus its own crossings (--sanitized: at
     least that checkpoint);
  3. SIGTERM of that replica: it exits within shutdown.drain_s + 5 s, its camera is served by
     the other within drain_s + 2.5 s (the drain, the handover gap of 1.5 s and the take, not
     the lease's expiry; measured, with the first frame message from the new replica), its final checkpoint equals its last window plus the crossings after
     it, and the new replica's first window equals that checkpoint plus its own crossings.
--sanitized (ASan/UBSan builds): the detector and the process's exit are several times slower,
so the two time limits are three times as long (the times are printed either way).
Exit status 0 pass, 1 fail, 77 skipped (no redis-server or shared data outside CI).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "app"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from test_messages import VIDEO, Resp, wait_redis  # noqa: E402
from testutil import free_port, skip  # noqa: E402

CAMS = ["cam-0", "cam-1"]
TTL_MS = 3000
DRAIN_S = 1
failures = []
T0 = time.time()


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


def log(msg):
    print("[%6.1f] %s" % (time.time() - T0, msg), flush=True)


def total(report):
    """The cumulative line count of a window report or checkpoint: every line's totals."""
    n = 0
    for line in report["lines"]:
        t = line["total"]
        n += sum(sum(v) for v in t.values()) if isinstance(t, dict) else sum(t)
    return n


class Watch(threading.Thread):
    """Window and frame messages from pub/sub, and every version of the checkpoint keys."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.windows = []  # (camera, replica, frame, count, received)
        self.frames = []  # (camera, replica, received)
        self.ckpts = {c: [] for c in CAMS}  # [(epoch, count, received)]
        self.ckpt_bytes = 0  # the largest checkpoint seen
        self.r = Resp(port, timeout=None)
        self.r.cmd("PSUBSCRIBE", "its:cam:*:analytics", "its:cam:*:detections")
        threading.Thread(target=self.poll, daemon=True).start()

    def run(self):
        while True:
            try:
                rep = self.r.reply()
            except (OSError, ConnectionError, RuntimeError):
                return  # redis-server stopped at the end
            if not (isinstance(rep, list) and rep[0] == b"pmessage"):
                continue
            m = json.loads(rep[3])
            with self.lock:
                if m["type"] == "window":
                    self.windows.append((m["camera"], m.get("replica"), m["frame"],
                                         total(m["report"]), time.time()))
                elif m["type"] == "frame":
                    self.frames.append((m["camera"], m.get("replica"), time.time()))

    def poll(self):
        r = Resp(self.port)
        while True:
            for c in CAMS:
                try:
                    v = r.cmd("HMGET", "its:cluster:ckpt:{%s}" % c, "epoch", "data")
                except (OSError, RuntimeError):
                    return
                if v[1] is None:
                    continue
                epoch, count = int(v[0]), total(json.loads(v[1]))
                with self.lock:
                    self.ckpt_bytes = max(self.ckpt_bytes, len(v[1]))
                    h = self.ckpts[c]
                    if not h or h[-1][:2] != (epoch, count):
                        h.append((epoch, count, time.time()))
            time.sleep(0.02)

    def snap(self):
        with self.lock:
            return list(self.windows), list(self.frames), {c: list(v) for c, v in
                                                           self.ckpts.items()}


class Itsd:
    def __init__(self, o, name):
        self.o, self.name = o, name
        self.port = free_port()
        self.path = os.path.join(o.work, name + ".yaml")
        self.runs = 0
        cams = "".join(
            "  - {id: %s, url: '%s', scene: '%s', loop: true, sample_fps: 5}\n" %
            (c, os.path.join(o.shared, VIDEO),
             os.path.join(o.source, "deploy", "scenes", "traffic_road_cctv_360p.yaml"))
            for c in CAMS)
        with open(self.path, "w") as f:
            f.write("log: {level: info}\n"
                    "engine: {backend: cpu, model: '%s', labels: '%s', threads: 1, conf: 0.25}\n"
                    "analytics: {window_s: 1}\n"
                    "sink: {type: 'null'}\n"
                    "status: {interval_s: 0}\n"
                    "shutdown: {drain_s: %d}\n"
                    "redis: {host: 127.0.0.1, port: %d}\n"
                    "api: {port: %d}\n"
                    "cluster: {enabled: true, replica: %s, capacity: 4, lease_ttl_ms: %d,\n"
                    "          resync_ms: 1000}\n"
                    "cameras:\n%s" %
                    (os.path.join(o.shared, "models", "yolox-nano", "yolox_nano.onnx"),
                     os.path.join(o.shared, "media", "coco.names"), DRAIN_S, o.redis_port,
                     self.port, name, TTL_MS, cams))

    def start(self):
        self.runs += 1
        self.err = os.path.join(self.o.work, "%s.%d.err" % (self.name, self.runs))
        env = dict(os.environ, OMP_WAIT_POLICY="passive")
        self.proc = subprocess.Popen([self.o.itsd, "-c", self.path], stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "wb"), env=env)

    def cameras(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/cameras" % self.port,
                                        timeout=2) as r:
                return sorted(c["id"] for c in json.loads(r.read())["cameras"])
        except (OSError, ValueError, KeyError):
            return []


def owner(reps, cam):
    own = [r for r in reps if r.proc.poll() is None and cam in r.cameras()]
    return own[0] if len(own) == 1 else None


def crossings(port, cam, replica, since, upto_frame):
    """Line crossings of the camera published by the replica after `since` (wall s), in
    frames up to upto_frame: line_crossing events without a phase, from the event stream."""
    n = 0
    for _, fields in Resp(port).cmd("XRANGE", "its:events:stream", "-", "+"):
        m = json.loads(fields[1])
        if (m["camera"] == cam and m.get("replica") == replica and m["kind"] == "line_crossing"
                and "phase" not in m and m["ts_us"] / 1e6 >= since and m["frame"] <= upto_frame):
            n += 1
    return n


def first_window(w, cam, replica, after):
    return next((x for x in w.snap()[0] if x[0] == cam and x[1] == replica and x[4] > after),
                None)


def wait_window(w, cam, replica, after, seconds):
    end = time.time() + seconds
    while time.time() < end:
        x = first_window(w, cam, replica, after)
        if x:
            return x
        time.sleep(0.1)
    return None


def check_continues(o, w, cam, to, ck, after, what, exact=True):
    """The first window of the camera from `to` after `after` equals the checkpoint count ck
    plus the crossings `to` published up to that window's frame (not exact: at least ck)."""
    x = wait_window(w, cam, to, after, 15)
    if not x:
        fail("%s: no window of %s from %s" % (what, cam, to))
        return None
    own = crossings(o.redis_port, cam, to, after, x[2])
    log("%s: %s continued on %s at %d (checkpoint %d + %d crossings since)" %
        (what, cam, to, x[3], ck, own))
    if (x[3] != ck + own) if exact else (x[3] < ck):
        fail("%s: %s's first window on %s counts %d, not checkpoint %d + %d crossings" %
             (what, cam, to, x[3], ck, own))
    return x


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--sanitized", action="store_true")
    o = ap.parse_args()
    slow = 3 if o.sanitized else 1
    server = shutil.which("redis-server")
    if not server:
        skip("redis-server is not installed")
    model = os.path.join(o.shared, "models", "yolox-nano", "yolox_nano.onnx")
    if not (os.path.exists(os.path.join(o.shared, VIDEO)) and os.path.exists(model)):
        skip("the road video or YOLOX-nano is missing")
    shutil.rmtree(o.work, ignore_errors=True)
    os.makedirs(o.work)
    o.redis_port = free_port()
    redis = subprocess.Popen([server, "--port", str(o.redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", o.work],
                             stdout=open(os.path.join(o.work, "redis.log"), "wb"),
                             stderr=subprocess.STDOUT)
    reps = []
    try:
        if not wait_redis(o.redis_port, redis):
            fail("redis-server did not start")
            return
        w = Watch(o.redis_port)
        w.start()
        reps = [Itsd(o, "itsd-a"), Itsd(o, "itsd-b")]
        for r in reps:
            r.start()
        # ---- both cameras served, one each, and counting ---------------------------------
        end = time.time() + 60
        own = {}
        while time.time() < end:
            own = {c: owner(reps, c) for c in CAMS}
            counted = {c for c, _, _, n, _ in w.snap()[0] if n > 0}
            if all(own.values()) and len({r.name for r in own.values()}) == 2 and \
                    counted >= set(CAMS):
                break
            time.sleep(0.5)
        else:
            fail("not one camera per replica, both counting, in 60 s: %s, counted %s" %
                 ({c: r and r.name for c, r in own.items()}, sorted(counted)))
            return
        cam = CAMS[0]
        victim = own[cam]
        other = next(r for r in reps if r is not victim)
        log("%s on %s, %s on %s" % (cam, victim.name, CAMS[1], other.name))
        time.sleep(3)  # a few more windows and crossings

        # ---- 1. kill -9 ------------------------------------------------------------------
        windows, _, cks = w.snap()
        before = [x for x in windows if x[0] == cam and x[1] == victim.name][-1][3]
        t_kill = time.time()
        victim.proc.kill()
        victim.proc.wait()
        time.sleep(0.2)
        if not w.snap()[2][cam]:
            fail("no checkpoint of %s in Redis (its:cluster:ckpt:{%s})" % (cam, cam))
            return
        ck = w.snap()[2][cam][-1]
        log("kill -9 %s: %s's last window counted %d, its checkpoint (epoch %d) %d" %
            (victim.name, cam, before, ck[0], ck[1]))
        x = check_continues(o, w, cam, other.name, ck[1], t_kill, "after kill -9")
        if x:
            frames = [f for f in w.snap()[1] if f[0] == cam and f[1] == other.name and
                      f[2] > t_kill]
            log("after kill -9: first frame of %s from %s %.2f s after the kill (lease %.1f s)"
                % (cam, other.name, frames[0][2] - t_kill if frames else -1, TTL_MS / 1000))
            if x[3] < before or x[3] == 0:
                fail("after kill -9: %s counts %d on %s, less than %d before the move or 0" %
                     (cam, x[3], other.name, before))

        # ---- 2. restarted: the camera comes back through a handover -------------------------
        victim.start()
        t_back = time.time()
        end = time.time() + 40
        while time.time() < end and not (owner(reps, cam) is victim):
            time.sleep(0.25)
        if owner(reps, cam) is not victim:
            fail("%s did not come back to the restarted %s" % (cam, victim.name))
            return
        # the handing-over replica's last checkpoint: the newest of its epoch
        time.sleep(0.3)
        h = w.snap()[2][cam]
        mine = [v for v in h if v[2] > t_back]
        epochs = sorted({v[0] for v in mine})
        handed = [v for v in mine if v[0] == epochs[0]][-1] if mine else ck
        # (under the sanitizers a handover may give up waiting for the camera's frames in flight,
        # and its last checkpoint is then the last window's: at least that)
        check_continues(o, w, cam, victim.name, handed[1], t_back, "handover",
                        exact=not o.sanitized)

        # ---- 3. SIGTERM: graceful handover ---------------------------------------------------
        time.sleep(2)
        windows, _, _ = w.snap()
        t_term = time.time()
        last_win = [x for x in windows if x[0] == cam and x[1] == victim.name][-1]
        victim.proc.send_signal(signal.SIGTERM)
        exit_s = served_s = frame_s = None
        end = time.time() + 15 * slow
        while time.time() < end and (exit_s is None or served_s is None or frame_s is None):
            now = time.time() - t_term
            if exit_s is None and victim.proc.poll() is not None:
                exit_s = now
            if served_s is None and cam in other.cameras():
                served_s = now
            if frame_s is None and any(f[0] == cam and f[1] == other.name and f[2] > t_term
                                       for f in w.snap()[1]):
                frame_s = time.time() - t_term
            time.sleep(0.02)
        moved = t_term + frame_s if frame_s is not None else None
        if exit_s is None or exit_s > (DRAIN_S + 5) * slow:
            fail("%s did not exit within (drain_s + 5 s) x %d of SIGTERM" % (victim.name, slow))
            victim.proc.kill()
        victim.proc.wait()
        if victim.proc.returncode != 0:
            fail("%s exited %s after SIGTERM" % (victim.name, victim.proc.returncode))
        nan = float("nan")
        log("SIGTERM %s: exited after %.2f s (limit %d s); %s served by %s %.2f s after the "
            "SIGTERM, its first frame there after %.2f s (handover gap 1.5 s, lease %.1f s)" %
            (victim.name, exit_s or nan, (DRAIN_S + 5) * slow, cam, other.name, served_s or nan,
             frame_s or nan, TTL_MS / 1000))
        # a couple of seconds: the handover gap, then the take (not the lease's expiry)
        if served_s is None or served_s > (DRAIN_S + 2.5) * slow:
            fail("after SIGTERM, %s took %s s to be served elsewhere (limit %.1f s)" %
                 (cam, served_s, (DRAIN_S + 2.5) * slow))
        if frame_s is None:
            fail("after SIGTERM, no frame of %s from %s" % (cam, other.name))
        # the final checkpoint of the stopped replica: its last window plus its crossings since
        h = w.snap()[2][cam]
        stop_ck = [v for v in h if v[2] <= (moved or time.time())][-1]
        after_last = crossings(o.redis_port, cam, victim.name, t_back, 1 << 62) - \
            crossings(o.redis_port, cam, victim.name, t_back, last_win[2])
        log("SIGTERM: %s's last window %d + %d crossings after it; final checkpoint %d" %
            (victim.name, last_win[3], after_last, stop_ck[1]))
        if stop_ck[1] != last_win[3] + after_last:
            fail("the final checkpoint counts %d, not last window %d + %d crossings" %
                 (stop_ck[1], last_win[3], after_last))
        check_continues(o, w, cam, other.name, stop_ck[1], t_term, "after SIGTERM")
        windows, frames, cks = w.snap()
        log("messages: %d windows, %d frames; checkpoint versions %s, up to %d bytes" %
            (len(windows), len(frames), {c: len(v) for c, v in cks.items()}, w.ckpt_bytes))
    finally:
        for r in reps:
            if r.proc and r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        redis.kill()
        redis.wait()
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        sys.exit(1)
    print("continuity: all checks passed in %.1f s" % (time.time() - T0))


if __name__ == "__main__":
    main()
