#!/usr/bin/env python3
"""Three itsd replicas sharing 24 cameras through Redis with Sentinel, on loopback.

    test_cluster.py --itsd PATH --source DIR --shared DIR --work DIR

A redis-server master with two replicas and three redis-sentinel processes (quorum 2); three
itsd (noop engine, replay cameras at 2 frames per second) with cluster.enabled, capacities 8,
8 and 16, lease 5 s. A subscriber on each Redis replica records every frame message (camera,
frame, replica, capture time); replicas receive what the master publishes, and one of them
survives the master. Checked, with the expected values from the rule in its/cluster.h, not from
the code:
  1. every camera is served by exactly one replica, and the split is 6, 6, 12 (24 x 8/32,
     24 x 16/32); every replica is ready, /v1/status and every frame message name it;
  2. kill -9 of a replica: its cameras are served elsewhere within lease TTL + 5 s;
  3. restarted, it takes back at most 24/3 + 1 cameras, and the assignment is the one before;
     a replica stalled past its lease (SIGSTOP) loses its cameras to the others, and when it
     resumes its fence keeps it from publishing them while they are served elsewhere (the
     check of 5), then it takes its share back;
  4. a camera added through one replica's API is served, and still is after all three restart;
  5. over the whole run, no camera's frame messages come from two replicas within one second;
  6. the master is killed (kill -9): Sentinel promotes a replica, publishing resumes there, and
     the distinct frame messages received equal the frames the replicas processed (their
     summaries on exit), with redis.wait_replicas 1 so that nothing acknowledged is lost.
Exit status 0 pass, 1 fail, 77 skipped (no redis-server/redis-sentinel outside CI).
"""
import argparse
import collections
import json
import os
import re
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

N_CAMS = 24
TTL_MS = 5000
CAPS = {"itsd-0": 8, "itsd-1": 8, "itsd-2": 16}
EXPECT = {"itsd-0": 6, "itsd-1": 6, "itsd-2": 12}  # 24 x capacity / 32
CAMS = ["cam-%02d" % i for i in range(N_CAMS)]
MASTER = "its"
SUMMARY = re.compile(r"^itsd: camera (\S+): in \d+, processed (\d+),")

failures = []
validator = None


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


def log(msg):
    print("[%6.1f] %s" % (time.time() - T0, msg), flush=True)


T0 = time.time()


class Subscriber(threading.Thread):
    """PSUBSCRIBE its:cam:*:detections on one Redis server; every frame message kept. Sentinel
    disconnects the pub/sub clients of the servers it reconfigures in a failover: the
    subscriber then subscribes again at once, as a consumer of a Sentinel setup must."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.msgs = []
        self.raw = []  # the first messages whole, for the schema
        self.lock = threading.Lock()
        self.r = self.subscribe()
        self.reconnects = 0

    def subscribe(self):
        r = Resp(self.port, timeout=None)
        r.cmd("PSUBSCRIBE", "its:cam:*:detections")
        return r

    def run(self):
        while True:
            try:
                rep = self.r.reply()
            except (OSError, ConnectionError, RuntimeError):
                try:
                    self.r = self.subscribe()
                    self.reconnects += 1
                except (OSError, ConnectionError, RuntimeError):
                    time.sleep(0.01)
                continue
            if isinstance(rep, list) and rep[0] == b"pmessage":
                m = json.loads(rep[3])
                with self.lock:
                    if len(self.raw) < 200:
                        self.raw.append(m)
                    self.msgs.append((m["camera"], m["frame"], m.get("replica"), m["ts_us"],
                                      time.time()))

    def snapshot(self):
        with self.lock:
            return list(self.msgs)


class Itsd:
    def __init__(self, o, name, ttl_ms):
        self.name = name
        self.runs = 0
        self.o = o
        self.proc = None
        self.configure(ttl_ms)

    def configure(self, ttl_ms):
        o, name = self.o, self.name
        self.port = free_port()
        self.path = os.path.join(o.work, name + ".yaml")
        cams = "".join(
            "  - {id: %s, url: '%s', kind: replay, fps: 2, replay_frames: 4, loop: true}\n" %
            (c, os.path.join(o.shared, VIDEO)) for c in CAMS)
        with open(self.path, "w") as f:
            f.write("log: {level: info}\n"
                    "engine: {backend: noop}\n"
                    "analytics: {enabled: false}\n"
                    "sink: {type: 'null'}\n"
                    "status: {interval_s: 0}\n"
                    "shutdown: {drain_s: 1}\n"
                    "redis: {sentinels: '%s', master_name: %s, wait_replicas: 1,\n"
                    "        connect_timeout_ms: 200, command_timeout_ms: 500,\n"
                    "        backoff_min_ms: 50, backoff_max_ms: 500}\n"
                    "api: {port: %d}\n"
                    "cluster: {enabled: true, replica: %s, capacity: %d, lease_ttl_ms: %d,\n"
                    "          resync_ms: 2000}\n"
                    "cameras:\n%s" % (o.sentinels, MASTER, self.port, name, CAPS[name], ttl_ms,
                                      cams))

    def start(self):
        self.runs += 1
        self.err = os.path.join(self.o.work, "%s.%d.err" % (self.name, self.runs))
        self.proc = subprocess.Popen([self.o.itsd, "-c", self.path], stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "wb"))
        self.started = time.time()

    def cameras(self):
        """The cameras this replica serves now ([] if it does not answer)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/cameras" % self.port,
                                        timeout=2) as r:
                doc = json.loads(r.read())
            return sorted(c["id"] for c in doc["cameras"])
        except (OSError, ValueError, KeyError):
            return None

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        """SIGTERM; the per-camera frames processed from its summary."""
        self.terminate()
        return self.summary()

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def summary(self):
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            fail("%s did not stop within 20 s of SIGTERM" % self.name)
            self.proc.kill()
            self.proc.wait()
        if self.proc.returncode != 0:
            fail("%s exited %d (%s)" % (self.name, self.proc.returncode, self.err))
        processed = {}
        for line in open(self.err, errors="replace"):
            m = SUMMARY.match(line)
            if m:
                processed[m.group(1)] = processed.get(m.group(1), 0) + int(m.group(2))
        return processed


def stop_all(reps):
    """SIGTERM to every replica at once, then their summaries."""
    for r in reps:
        r.terminate()
    return [r.summary() for r in reps]


def owners(reps):
    """{camera: [replicas serving it]} from every replica's /v1/cameras."""
    out = collections.defaultdict(list)
    for r in reps:
        if r.proc and r.proc.poll() is None:
            for c in r.cameras() or []:
                out[c].append(r.name)
    return out


def settled(reps, cams, expect=None):
    own = owners(reps)
    if set(own) != set(cams) or any(len(v) != 1 for v in own.values()):
        return None
    if expect:
        n = collections.Counter(v[0] for v in own.values())
        if dict(n) != expect:
            return None
    return {c: v[0] for c, v in own.items()}


def wait_settled(reps, cams, expect, seconds, what):
    end = time.time() + seconds
    last = None
    while time.time() < end:
        a = settled(reps, cams, expect)
        if a:
            log("%s: settled %s" % (what, dict(collections.Counter(a.values()))))
            return a
        last = owners(reps)
        time.sleep(0.25)
    fail("%s: not settled in %d s: %s" % (what, seconds,
                                           {c: v for c, v in last.items() if len(v) != 1} or
                                           dict(collections.Counter(v[0] for v in last.values()))))
    return None


def sentinel_conf(work, port, master_port):
    path = os.path.join(work, "sentinel-%d.conf" % port)
    with open(path, "w") as f:
        f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 4000\n"
                "sentinel parallel-syncs %s 1\n" % (port, work, MASTER, master_port, MASTER, MASTER,
                                                     MASTER))
    return path


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    server, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
    if not server or not sentinel:
        skip("redis-server or redis-sentinel is not installed (Debian redis-sentinel)")
    if not os.path.exists(os.path.join(o.shared, VIDEO)):
        skip(VIDEO + " is missing")
    sys.path.insert(0, os.path.join(o.source, "scripts"))
    try:
        import validate_messages

        global validator
        validator = validate_messages.Validator(os.path.join(o.source, "docs", "schema"))
    except ImportError:
        skip("python3-jsonschema is not installed")
    shutil.rmtree(o.work, ignore_errors=True)
    os.makedirs(o.work)
    procs = []

    def spawn(args, name):
        p = subprocess.Popen(args, stdout=open(os.path.join(o.work, name + ".log"), "wb"),
                             stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    reps = []
    try:
        # ---- Redis: a master, two replicas, three Sentinels ----------------------------------
        ports = [free_port() for _ in range(3)]
        redis = []
        for i, p in enumerate(ports):
            args = [server, "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", o.work, "--dbfilename", "dump-%d.rdb" % p]
            if i:
                args += ["--replicaof", "127.0.0.1", str(ports[0])]
            redis.append(spawn(args, "redis-%d" % i))
        for p, proc in zip(ports, redis):
            if not wait_redis(p, proc):
                fail("redis-server on %d did not start" % p)
                return
        end = time.time() + 10
        while time.time() < end:
            info = Resp(ports[0]).cmd("INFO", "replication").decode()
            if "connected_slaves:2" in info and info.count("state=online") == 2:
                break
            time.sleep(0.1)
        else:
            fail("the replicas did not attach")
            return
        sports = [free_port() for _ in range(3)]
        for sp in sports:
            spawn([sentinel, sentinel_conf(o.work, sp, ports[0])], "sentinel-%d" % sp)
        o.sentinels = ",".join("127.0.0.1:%d" % sp for sp in sports)
        end = time.time() + 20
        ok = False
        while time.time() < end and not ok:
            time.sleep(0.2)
            try:
                ok = all(
                    len(Resp(sp, 1).cmd("SENTINEL", "replicas", MASTER)) == 2 and
                    len(Resp(sp, 1).cmd("SENTINEL", "sentinels", MASTER)) == 2 for sp in sports)
            except (OSError, RuntimeError):
                pass
        if not ok:
            fail("the Sentinels did not find the replicas and each other in 20 s")
            return
        log("redis master %d, replicas %s, sentinels %s" % (ports[0], ports[1:], sports))
        subs = [Subscriber(p) for p in ports[1:]]
        for s in subs:
            s.start()

        # ---- 1. three replicas, 24 cameras -----------------------------------------------------
        reps = [Itsd(o, n, TTL_MS) for n in CAPS]
        for r in reps:
            r.start()
        a0 = wait_settled(reps, CAMS, EXPECT, 30, "start")
        if not a0:
            return
        time.sleep(2)
        if settled(reps, CAMS, EXPECT) != a0:
            fail("the assignment changed without a membership change")
        for r in reps:  # ready = holds its lease; /v1/status names the replica
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % r.port, timeout=2) as h:
                if h.status != 200:
                    fail("%s: /readyz %d" % (r.name, h.status))
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/status" % r.port, timeout=2) as h:
                if json.loads(h.read()).get("replica") != r.name:
                    fail("%s: /v1/status does not name the replica" % r.name)
        bad = [m for s in subs for m in s.snapshot() if m[2] not in CAPS]
        if bad:
            fail("frame messages without a replica's name: %s" % bad[:3])
        for s in subs:  # docs/schema/ (frame.schema.json, with the replica field)
            with s.lock:
                sample = list(s.raw)
            for m in sample:
                errs = validator.errors(m)
                if errs:
                    fail("a frame message fails the schema: %s (%s)" % (errs[:2], m))
                    break

        # ---- 2. kill -9 of itsd-0 --------------------------------------------------------------
        victim = reps[0]
        moved = sorted(c for c, r in a0.items() if r == victim.name)
        t_kill = time.time()
        victim.kill()
        log("kill -9 %s (%d cameras)" % (victim.name, len(moved)))
        a1 = wait_settled(reps, CAMS, {"itsd-1": 8, "itsd-2": 16}, TTL_MS / 1000 + 10, "after kill")
        if not a1:
            return
        # when each moved camera's first frame message from its new replica arrived
        seen = {}
        end = time.time() + TTL_MS / 1000 + 6
        while time.time() < end and len(seen) < len(moved):
            for s in subs:
                for cam, _, rep, _, t in s.snapshot():
                    if cam in moved and t > t_kill and rep == a1[cam] and cam not in seen:
                        seen[cam] = t - t_kill
            time.sleep(0.1)
        if len(seen) < len(moved):
            fail("no frame from the new replica of %s" % sorted(set(moved) - set(seen)))
        worst = max(seen.values()) if seen else float("nan")
        log("moved %d cameras; first frame from the new replica after %.2f s (max), limit %.1f s" %
            (len(moved), worst, TTL_MS / 1000 + 5))
        if not worst <= TTL_MS / 1000 + 5:
            fail("a camera took %.2f s to move (lease TTL + 5 s = %.1f s)" %
                 (worst, TTL_MS / 1000 + 5))

        # ---- 3. restart itsd-0 -----------------------------------------------------------------
        victim.start()
        a2 = wait_settled(reps, CAMS, EXPECT, 20, "after restart")
        if a2:
            back = sum(1 for c in CAMS if a2[c] != a1[c])
            log("restart moved %d cameras (limit %d)" % (back, N_CAMS // 3 + 1))
            if back > N_CAMS // 3 + 1:
                fail("the restart moved %d cameras, more than a third plus one" % back)
            if a2 != a0:
                fail("the assignment after the restart differs from the one before the kill")

        # ---- 3b. a stalled replica (SIGSTOP past its lease): fenced, then back -----------------
        stalled = reps[1]
        t_stop = time.time()
        stalled.proc.send_signal(signal.SIGSTOP)
        log("SIGSTOP %s for %.0f s" % (stalled.name, TTL_MS / 1000 + 3))
        time.sleep(TTL_MS / 1000 + 3)
        a_s = settled([r for r in reps if r is not stalled], CAMS, {"itsd-0": 8, "itsd-2": 16})
        if not a_s:
            fail("the stalled replica's cameras did not move within its lease + 3 s")
        stalled.proc.send_signal(signal.SIGCONT)
        log("SIGCONT %s" % stalled.name)
        a_b = wait_settled(reps, CAMS, EXPECT, 20, "after the stall")
        if a_b and a_b != a0:
            fail("the assignment after the stall differs from the one before")
        stall_msgs = [m for sb in subs for m in sb.snapshot()
                      if m[2] == stalled.name and m[4] > t_stop + 0.5]
        log("the stalled replica published %d frame messages after it resumed" % len(stall_msgs))

        # ---- 4. a camera added through the API, then all three restarted ---------------------
        body = json.dumps({"id": "cam-api", "url": os.path.join(o.shared, VIDEO), "kind": "replay",
                           "fps": 2, "replay_frames": 4, "loop": True}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/cameras" % reps[1].port, data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            if r.status != 201:
                fail("POST /v1/cameras answered %d" % r.status)
        all_cams = CAMS + ["cam-api"]
        if not wait_settled(reps, all_cams, None, 10, "after the API add"):
            return
        stop_all(reps)
        log("all three stopped")
        restart_wall = time.time()
        for r in reps:
            r.configure(10000)  # a longer lease through the master failover below
            r.start()
        a3 = wait_settled(reps, all_cams, None, 30, "after restarting all three")
        if not a3:
            return

        # ---- 6. the master killed ----------------------------------------------------------------
        time.sleep(2)
        t_master = time.time()
        redis[0].kill()
        redis[0].wait()
        log("kill -9 the Redis master")
        promoted = None
        end = time.time() + 20
        while time.time() < end and not promoted:
            time.sleep(0.2)
            for p in ports[1:]:
                try:
                    if Resp(p, 1).cmd("ROLE")[0] == b"master":
                        promoted = p
                except (OSError, RuntimeError):
                    pass
        if not promoted:
            fail("no replica was promoted in 20 s")
            return
        log("promoted %d after %.1f s" % (promoted, time.time() - t_master))
        end = time.time() + 15
        resumed = False
        while time.time() < end and not resumed:
            time.sleep(0.2)
            resumed = any(t > t_master and ts / 1e6 > time.time() - 1 for s in subs
                          for _, _, _, ts, t in s.snapshot()[-50:])
        if not resumed:
            fail("publishing did not resume after the failover")
        log("publishing resumed (subscribers resubscribed %s times)" %
            [s.reconnects for s in subs])
        time.sleep(3)
        # all at once: a replica stopped alone would hand its cameras to the others, and a
        # camera that leaves a replica leaves that replica's summary with it
        processed = collections.Counter()
        for r, counts in zip(reps, stop_all(reps)):
            for cam, n in counts.items():
                if n:
                    processed[(r.name, cam)] += n
        time.sleep(1)  # the last messages through the replicas' pub/sub
        got = set()
        total_msgs = 0
        for s in subs:
            for cam, frame, rep, ts, _ in s.snapshot():
                if ts / 1e6 >= restart_wall:
                    got.add((rep, cam, frame))
                    total_msgs += 1
        received = collections.Counter((rep, cam) for rep, cam, _ in got)
        n_proc, n_got = sum(processed.values()), len(got)
        log("frames processed %d, distinct frame messages received %d (%d deliveries over two "
            "subscribers)" % (n_proc, n_got, total_msgs))
        if n_proc == 0 or received != processed:
            diff = {k: (processed.get(k, 0), received.get(k, 0))
                    for k in set(processed) | set(received) if processed.get(k) != received.get(k)}
            fail("messages received != frames processed: %s" % dict(list(diff.items())[:8]))

        # ---- 5. never two replicas for one camera within a second -------------------------------
        by = collections.defaultdict(list)
        for s in subs:
            for cam, _, rep, ts, _ in s.snapshot():
                by[cam].append((ts, rep))
        worst = None
        for cam, v in by.items():
            v.sort()
            for (t1, r1), (t2, r2) in zip(v, v[1:]):
                if r1 != r2 and (worst is None or t2 - t1 < worst[0]):
                    worst = (t2 - t1, cam, r1, r2)
                if r1 != r2 and t2 - t1 < 1e6:
                    fail("%s: frames from %s and %s %.3f s apart" % (cam, r1, r2, (t2 - t1) / 1e6))
                    break
        if worst:
            log("closest handover: %.2f s (%s, %s -> %s)" % (worst[0] / 1e6, worst[1], worst[2],
                                                             worst[3]))
    finally:
        for r in reps:
            if r.proc and r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if failures:
        print("FAILED: %d check(s)" % len(failures))
        sys.exit(1)
    print("cluster: all checks passed in %.1f s" % (time.time() - T0))


if __name__ == "__main__":
    main()
