#!/usr/bin/env python3
"""Acceptance test of messages v2 (docs/messages.md).

Runs itsd on a real video with the real detector, two cameras, a scene whose line and zone
names hold quotes and non-ASCII characters, with the stdout sink AND the Redis sink (a
redis-server started here on a free loopback port); captures every stdout line, every
message published on its:* (PSUBSCRIBE), the durable event stream and every cached key; runs
its-infer (an image, and a short video with --track) and its-replay over itsd's own output.
Every line and every Redis message is validated against docs/schema/ with python3-jsonschema;
the names must round-trip exactly, and its-replay must reproduce itsd's line counts.

    test_messages.py --itsd BIN --infer BIN --replay BIN --source DIR --shared DIR --work DIR

Exit status 0 pass, 1 fail, 77 skipped (no redis-server, python3-jsonschema, model or media;
under CI=true these are failures).
"""
import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

LINE = 'Main "St" \u2192 S\u00fcd'
ZONE = "Zone \u201eN\u00f6rd\u201c \\ 'x'"
MODEL = "models/yolox-nano/yolox_nano.onnx"
VIDEO = "media/traffic_road_cctv_360p.mp4"
IMAGE = "media/bus.jpg"
FRAMES = 100  # per camera: 4 s of the road video (paced at 8 fps), with crossings on the line


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL (CI=true, nothing may be skipped): " + why)
        sys.exit(1)
    print("skipped: " + why)
    sys.exit(77)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Resp:
    """A minimal Redis client (RESP2 over a socket): commands and pub/sub replies."""

    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad RESP reply %r" % line)

    def cmd(self, *args):
        self.send(*args)
        return self.reply()


def wait_redis(port, proc, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            if Resp(port, 1).cmd("PING") == "PONG":
                return True
        except OSError:
            time.sleep(0.05)
    return False


def scene_file(source, work):
    """The road video's scene with the line and zone renamed; YAML written by hand (no
    PyYAML needed): single-quoted scalars, a quote inside doubled."""
    src = open(os.path.join(source, "deploy/scenes/traffic_road_cctv_360p.yaml"), encoding="utf-8")
    text = src.read()
    src.close()
    q = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
    assert "  - name: main\n    points:" in text and "  - name: near_section\n" in text
    text = text.replace("  - name: main\n    points:", "  - name: " + q(LINE) + "\n    points:", 1)
    text = text.replace("  - name: near_section\n", "  - name: " + q(ZONE) + "\n", 1)
    path = os.path.join(work, "scene.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def run(cmd, out_path, timeout):
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        rc = subprocess.run(cmd, stdout=out, stderr=err, timeout=timeout).returncode
    return rc


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return [l for l in f.read().split("\n") if l.strip()]


class Checker:
    def __init__(self, validator):
        self.v = validator
        self.failures = []
        self.checked = collections.Counter()

    def fail(self, what):
        self.failures.append(what)
        print("FAIL: " + what)

    def validate(self, origin, text):
        msg, errs = self.v.check_line(text)
        if errs:
            self.fail("%s: %s\n    %s" % (origin, "; ".join(errs[:3]), text[:300]))
            return None
        self.checked[msg["type"]] += 1
        return msg

    def names_round_trip(self, origin, msg):
        """Every line, zone or lane name in a message must be one of the scene's exactly."""
        names = {LINE, ZONE, "opposite", "main"}
        found = []
        if msg["type"] == "event":
            found = [msg[k] for k in ("line", "zone", "lane") if k in msg]
        elif msg["type"] in ("window", "replay"):
            r = msg["report"]
            found = [x["name"] for k in ("lines", "zones", "lanes") for x in r[k]]
        for n in found:
            if n not in names:
                self.fail("%s: name %r is none of the scene's" % (origin, n))
        return found


def crossings(msgs):
    """Line counts from line_crossing events: (camera, line, direction, class) -> n. A
    crossing's update (same id) carries the class its track ended up with: the last one wins."""
    last = {}
    for m in msgs:
        if m and m["type"] == "event" and m["kind"] == "line_crossing":
            last[(m["camera"], m.get("id"))] = (m["camera"], m["line"], m["direction"],
                                                m["class"])
    return collections.Counter(last.values())


def report_counts(msgs, type_):
    """Line totals of the last report per camera of one type: the same keys as crossings."""
    last = {}
    for m in msgs:
        if m and m["type"] == type_:
            last[m["camera"]] = m["report"]
    c = collections.Counter()
    for cam, r in last.items():
        for line in r["lines"]:
            for cls, (pos, neg) in line["total"].items():
                if pos:
                    c[(cam, line["name"], "positive", cls)] += pos
                if neg:
                    c[(cam, line["name"], "negative", cls)] += neg
    return c


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "infer", "replay", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    sys.path.insert(0, os.path.join(o.source, "scripts"))
    try:
        import validate_messages

        validator = validate_messages.Validator(os.path.join(o.source, "docs", "schema"))
    except ImportError:
        skip("python3-jsonschema is not installed")
    if not shutil.which("redis-server"):
        skip("redis-server is not installed")
    model, video, image = (os.path.join(o.shared, p) for p in (MODEL, VIDEO, IMAGE))
    for p in (model, video, image):
        if not os.path.exists(p):
            skip(p + " is missing")
    work = o.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    scene = scene_file(o.source, work)
    ck = Checker(validator)

    # ---- redis-server and the subscriber ---------------------------------------------------
    rport = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=open(os.path.join(work, "redis.log"), "wb"), stderr=subprocess.STDOUT)
    try:
        if not wait_redis(rport, redis):
            ck.fail("redis-server did not start")
            return 1
        published = []  # (channel, payload)
        sub = Resp(rport, timeout=1)
        sub.cmd("PSUBSCRIBE", "its:*")
        stop = threading.Event()

        def listen():
            while not stop.is_set():
                try:
                    r = sub.reply()
                except socket.timeout:
                    continue
                except (OSError, ConnectionError):
                    return
                if isinstance(r, list) and r[0] == b"pmessage":
                    published.append((r[2].decode(), r[3]))

        th = threading.Thread(target=listen, daemon=True)
        th.start()

        # ---- itsd: two cameras on the same video and scene, stdout + Redis ------------------
        cfg = os.path.join(work, "itsd.yaml")
        cams = "".join(
            "  - {id: %s, url: %s, kind: replay, fps: 8, replay_frames: %d, loop: false, "
            "scene: %s}\n" % (cid, json.dumps(video), FRAMES, json.dumps(scene))
            for cid in ("cam-a", "cam-b"))
        # track_conf = conf: its-replay reruns itsd's tracking from the frame messages, which
        # carry no detection under conf, so itsd's tracker must not see any either
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(
                "engine:\n  backend: cpu\n  model: %s\n  threads: 2\n  conf: 0.25\n"
                "  track_conf: 0.25\n"
                "batch:\n  per_camera: 64\n"
                "analytics:\n  window_s: 1\n"
                "sink:\n  type: stdout\n"
                "status:\n  interval_s: 0\n"
                "redis:\n  host: 127.0.0.1\n  port: %d\n"
                "api:\n  port: %d\n"
                "cameras:\n%s" % (json.dumps(model), rport, free_port(), cams))
        itsd_out = os.path.join(work, "itsd.jsonl")
        rc = run([o.itsd, "-c", cfg, "--duration", "20"], itsd_out, 120)
        if rc != 0:
            ck.fail("itsd exited %d (%s.err)" % (rc, itsd_out))
        time.sleep(0.5)  # the last pub/sub messages
        stop.set()
        th.join(3)

        itsd_msgs = []
        for n, text in enumerate(lines_of(itsd_out), 1):
            m = ck.validate("itsd stdout line %d" % n, text)
            if m:
                ck.names_round_trip("itsd stdout line %d" % n, m)
                itsd_msgs.append(m)
        frames = collections.Counter(m["camera"] for m in itsd_msgs if m["type"] == "frame")
        print("itsd: %d lines, frames per camera %s" % (len(itsd_msgs), dict(frames)))
        for cam in ("cam-a", "cam-b"):
            if frames[cam] < FRAMES // 3:  # frames the detector could not keep up with drop
                ck.fail("itsd published %d frames of %s, expected most of %d" %
                        (frames[cam], cam, FRAMES))

        # ---- everything Redis saw ----------------------------------------------------------
        redis_msgs = []
        for i, (channel, payload) in enumerate(published):
            m = ck.validate("redis %s message %d" % (channel, i), payload.decode("utf-8"))
            if m:
                ck.names_round_trip("redis " + channel, m)
                redis_msgs.append((channel, m))
        want_channel = {"frame": ":detections", "window": ":analytics", "drift": ":drift",
                        "event": "its:events"}
        for channel, m in redis_msgs:
            if not channel.endswith(want_channel[m["type"]]):
                ck.fail("a %s message on %s" % (m["type"], channel))
        r = Resp(rport)
        stream = r.cmd("XRANGE", "its:events:stream", "-", "+")
        stream_msgs = []
        for entry_id, fields in stream:
            kv = dict(zip(fields[::2], fields[1::2]))
            m = ck.validate("its:events:stream " + entry_id.decode(), kv[b"json"].decode("utf-8"))
            if m:
                ck.names_round_trip("its:events:stream", m)
                stream_msgs.append(m)
        keys = sorted(k.decode() for k in r.cmd("KEYS", "its:*"))
        for k in keys:
            if r.cmd("TYPE", k) != "string":
                continue
            m = ck.validate("key " + k, r.cmd("GET", k).decode("utf-8"))
            if m:
                ck.names_round_trip("key " + k, m)
        for k in ("its:cam:cam-a:latest", "its:cam:cam-b:latest", "its:cam:cam-a:analytics:1m",
                  "its:cam:cam-a:drift"):
            if k not in keys:
                ck.fail("key %s missing (keys: %s)" % (k, keys))
        # the same messages on both sinks
        stdout_by_type = collections.Counter(m["type"] for m in itsd_msgs)
        redis_by_type = collections.Counter(m["type"] for _, m in redis_msgs)
        if stdout_by_type != redis_by_type:
            ck.fail("stdout %s != redis pub/sub %s" % (dict(stdout_by_type), dict(redis_by_type)))
        if stdout_by_type["event"] != len(stream_msgs):
            ck.fail("%d events on stdout, %d in its:events:stream" %
                    (stdout_by_type["event"], len(stream_msgs)))

        # ---- names round-trip exactly, events well formed ----------------------------------
        events = [m for m in itsd_msgs if m["type"] == "event"]
        seen = {n for m in events for n in (m.get("line"), m.get("zone")) if n}
        if LINE not in seen or ZONE not in seen:
            ck.fail("line %r / zone %r not both seen in events (%s)" % (LINE, ZONE, seen))
        windows = [m for m in itsd_msgs if m["type"] == "window"]
        if not windows or LINE not in [l["name"] for l in windows[-1]["report"]["lines"]] or \
                ZONE not in [z["name"] for z in windows[-1]["report"]["zones"]]:
            ck.fail("the last window report does not carry the line and zone names")
        ids = collections.defaultdict(list)
        for m in events:
            ids[m["id"]].append(m)
        for eid, ms in ids.items():
            phases = [m.get("phase") for m in ms]
            if phases[0] is None:
                # a line crossing comes again as "update"s when its track's class changes
                if len(ms) != 1 and not (ms[0]["kind"] == "line_crossing" and
                                         all(p == "update" for p in phases[1:])):
                    ck.fail("instant event id %s used %d times" % (eid, len(ms)))
            elif phases[0] != "start" or "start" in phases[1:] or \
                    ("end" in phases and phases.index("end") != len(phases) - 1) or \
                    len({(m["kind"], m["camera"], m.get("zone"), m.get("lane"),
                          m.get("track_id")) for m in ms}) != 1:
                ck.fail("lifecycle of %s: %s" % (eid, phases))

        # ---- its-replay over itsd's own output ---------------------------------------------
        replay_out = os.path.join(work, "replay.jsonl")
        rc = run([o.replay, "--scene", scene, "--events", "--frames", itsd_out], replay_out, 300)
        if rc != 0:
            ck.fail("its-replay exited %d (%s.err)" % (rc, replay_out))
        replay_msgs = []
        for n, text in enumerate(lines_of(replay_out), 1):
            m = ck.validate("its-replay line %d" % n, text)
            if m:
                ck.names_round_trip("its-replay line %d" % n, m)
                replay_msgs.append(m)
        itsd_counts = crossings(itsd_msgs)
        print("itsd line counts: %s" % dict(itsd_counts))
        if sum(itsd_counts.values()) < 2:
            ck.fail("itsd counted %d crossings: too few to compare" % sum(itsd_counts.values()))
        if crossings(replay_msgs) != itsd_counts:
            ck.fail("its-replay's crossings %s != itsd's %s" %
                    (dict(crossings(replay_msgs)), dict(itsd_counts)))
        if report_counts(replay_msgs, "replay") != itsd_counts:
            ck.fail("its-replay's report totals %s != itsd's crossings %s" %
                    (dict(report_counts(replay_msgs, "replay")), dict(itsd_counts)))

        # ---- its-infer: an image, and a short video with --track ---------------------------
        infer_out = os.path.join(work, "infer.jsonl")
        rc = run([o.infer, "-m", model, "-t", "2", "--max-frames", "12", "--track", "--scene",
                  scene, image, video], infer_out, 300)
        if rc != 0:
            ck.fail("its-infer exited %d (%s.err)" % (rc, infer_out))
        infer_msgs = [ck.validate("its-infer line %d" % n, t)
                      for n, t in enumerate(lines_of(infer_out), 1)]
        kinds = collections.Counter(m["type"] for m in infer_msgs if m)
        if kinds != {"infer": 13, "window": 1}:
            ck.fail("its-infer printed %s, expected 13 infer lines and 1 window" % dict(kinds))
        for m in infer_msgs:
            if m and m["type"] == "window":
                ck.names_round_trip("its-infer window", m)
                if LINE not in [l["name"] for l in m["report"]["lines"]]:
                    ck.fail("its-infer's window lost the line name")
    finally:
        redis.send_signal(signal.SIGTERM)
        try:
            redis.wait(10)
        except subprocess.TimeoutExpired:
            redis.kill()

    print("validated: %s" % dict(ck.checked))
    if ck.failures:
        print("%d failures" % len(ck.failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
