#!/usr/bin/env python3
"""Evidence end to end: itsd with the real detector on the road video (looped file, 5 frames a
second analysed) and its scene, evidence kept for line crossings (evidence.events), pre_s 1
and post_s 1.5. Checked against independent readers: ffprobe and ffmpeg for the clip (H.264 as
the source, no re-encoding; a duration within 0.5 s of pre_s + post_s; its first picture is the
source's at the event's media time less pre_s, its picture at pre_s the source's at the
event), the event message (its evidence links, class, line and direction), /v1/events (the same, newest
first; one camera's; a byte range of the clip) and the snapshot (a JPEG of the frame's size).

    test_evidence_api.py --itsd PATH --source DIR --shared DIR --work DIR

Exit status 0 pass, 1 fail, 77 the shared data is missing (1 under CI=true).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

PRE, POST = 1.0, 1.5
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, headers=None, want=None):
    """(status, Content-Type, body), or with want the value of that response header too."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            out = r.status, r.headers.get("Content-Type"), r.read()
            hdr = r.headers.get(want) if want else None
    except urllib.error.HTTPError as e:
        out = e.code, e.headers.get("Content-Type"), e.read()
        hdr = e.headers.get(want) if want else None
    return out + (hdr,) if want else out


def probe(path, entries):
    p = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        entries, "-of", "json", path], capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def grey(path, t):
    """The picture at t s, 64x36 grey bytes (ffmpeg)."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-ss", "%.3f" % t, "-i", path, "-frames:v", "1",
                        "-vf", "scale=64:36,format=gray", "-f", "rawvideo", "-"],
                       capture_output=True)
    return p.stdout if len(p.stdout) == 64 * 36 else None


def diff(a, b):
    if a is None or b is None:
        return 1e9
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def media_s(out, event_id):
    """The media time (s) of the frame that showed the event, from itsd's messages so far;
    -1 while they are not written."""
    try:
        msgs = [json.loads(x) for x in open(out, encoding="utf-8").read().split("\n")[:-1]
                if x.strip()]
    except (OSError, ValueError):
        return -1
    frame = next((m["frame"] for m in msgs if m["type"] == "event" and m.get("id") == event_id),
                 None)
    pts = next((m["pts_us"] for m in msgs if m["type"] == "frame" and m["frame"] == frame), None)
    return -1 if frame is None or pts is None else pts / 1e6


def main():
    ap = argparse.ArgumentParser()
    for k in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + k, required=True)
    o = ap.parse_args()
    model = os.path.join(o.shared, "models", "yolox-nano", "yolox_nano.onnx")
    video = os.path.join(o.shared, "media", "traffic_road_cctv_360p.mp4")
    if not (os.path.exists(model) and os.path.exists(video)):
        print("missing shared data")
        return 1 if os.environ.get("CI") == "true" else 77
    shutil.rmtree(o.work, ignore_errors=True)
    os.makedirs(o.work)
    port = free_port()
    evdir = os.path.join(o.work, "evidence")
    cfg = os.path.join(o.work, "itsd.yaml")
    with open(cfg, "w") as f:
        f.write(f"""engine:
  backend: cpu
  model: {json.dumps(model)}
  labels: {json.dumps(os.path.join(o.shared, "media", "coco.names"))}
  threads: 1
  conf: 0.25
status:
  interval_s: 0
shutdown:
  drain_s: 2
api:
  port: {port}
evidence:
  dir: {json.dumps(evdir)}
  events: line_crossing
  pre_s: {PRE}
  post_s: {POST}
cameras:
  - id: road
    url: {json.dumps(video)}
    scene: {json.dumps(os.path.join(o.source, "deploy", "scenes",
                                    "traffic_road_cctv_360p.yaml"))}
    loop: true
    sample_fps: 5
""")
    out = os.path.join(o.work, "itsd.jsonl")
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    t0 = time.time()
    itsd = subprocess.Popen([o.itsd, "-c", cfg], stdout=open(out, "wb"),
                            stderr=open(out + ".err", "wb"), env=env)
    events, ev = [], None
    try:
        end = time.time() + 60
        while time.time() < end and ev is None:
            time.sleep(0.5)
            try:
                code, _, body = get(port, "/v1/events")
            except OSError:
                continue
            if code != 200:
                continue
            events = json.loads(body)["events"]
            # one with pre_s of video before it: its frame's media time (the frame message)
            # past pre_s, in the video's first pass (a slow start can put the first events
            # seconds after t0 and still at the start of the video)
            ev = next((e for e in events if e["clip"] and e["ts_us"] / 1e6 > t0 and
                       PRE + 0.5 < media_s(out, e["id"]) < 40), None)
        check(ev is not None, "an event with a clip within 60 s: %r" % events[:3])
        if ev is None:
            return 1
        ts = [e["ts_us"] for e in events]
        check(ts == sorted(ts, reverse=True), "/v1/events newest first")
        check(ev["snapshot"] == "/v1/events/%s/snapshot.jpg" % ev["id"] and
              ev["clip"] == "/v1/events/%s/clip.mp4" % ev["id"] and ev["kind"] == "line_crossing"
              and ev["camera"] == "road" and ev["clip_pending"] is False, "links of %r" % ev)
        code, ctype, snap = get(port, ev["snapshot"])
        check(code == 200 and ctype == "image/jpeg" and snap[:3] == b"\xff\xd8\xff",
              "snapshot: %d %s" % (code, ctype))
        code, ctype, clip = get(port, ev["clip"])
        check(code == 200 and ctype == "video/mp4", "clip: %d %s" % (code, ctype))
        codes = [get(port, p)[0] for p in ("/v1/events/road-0-0/clip.mp4",
                                           "/v1/events/bad%20id/clip.mp4",
                                           "/v1/events/%s/other.bin" % ev["id"])]
        check(codes == [404, 400, 404], "unknown event 404, bad id 400, other file 404: %r" % codes)
        # a byte range of the clip (a browser's <video> reads it so), and one past its end
        code, _, part, crange = get(port, ev["clip"], {"Range": "bytes=100-1099"}, "Content-Range")
        check(code == 206 and part == clip[100:1100] and
              crange == "bytes 100-1099/%d" % len(clip), "range 100-1099: %d %s" % (code, crange))
        code, _, _, crange = get(port, ev["clip"], {"Range": "bytes=%d-" % len(clip)},
                                 "Content-Range")
        check(code == 416 and crange == "bytes */%d" % len(clip),
              "range past the end: %d %s" % (code, crange))
        # one camera's events, the newest first
        code, _, body = get(port, "/v1/events?camera=road&limit=2")
        some = json.loads(body)["events"] if code == 200 else []
        later = [e["id"] for e in json.loads(get(port, "/v1/events")[2])["events"]]
        check(code == 200 and len(some) == 2 and all(e["camera"] == "road" for e in some) and
              some[0]["ts_us"] >= some[1]["ts_us"] and
              [e["id"] for e in some] == [i for i in later if i in {e["id"] for e in some}],
              "?camera=road&limit=2: two of road's, newest first: %r" % [e["id"] for e in some])
        code, _, body = get(port, "/v1/events?camera=elsewhere")
        check(code == 200 and json.loads(body)["count"] == 0, "?camera=elsewhere: none")
    finally:
        itsd.send_signal(signal.SIGTERM)
        rc = itsd.wait(30)
    check(rc == 0, "itsd exit status %d" % rc)
    snap_path, clip_path = os.path.join(o.work, "snap.jpg"), os.path.join(o.work, "clip.mp4")
    open(snap_path, "wb").write(snap)
    open(clip_path, "wb").write(clip)
    s = probe(snap_path, "stream=width,height").get("streams", [{}])[0]
    check((s.get("width"), s.get("height")) == (640, 360), "snapshot 640x360: %r" % s)
    c = probe(clip_path, "stream=codec_name:format=duration")
    codec = c.get("streams", [{}])[0].get("codec_name")
    dur = float(c.get("format", {}).get("duration", 0))
    check(codec == "h264", "clip codec %s (the source's, not re-encoded)" % codec)
    check(abs(dur - (PRE + POST)) <= 0.5, "clip duration %.3f s within 0.5 s of %.1f" %
          (dur, PRE + POST))
    # the event message: its links, its frame's media time
    msgs = [json.loads(x) for x in open(out, encoding="utf-8") if x.strip()]
    em = [m for m in msgs if m["type"] == "event" and m.get("id") == ev["id"]]
    check(len(em) == 1 and em[0].get("evidence") == {"snapshot": ev["snapshot"],
                                                     "clip": ev["clip"]},
          "the event message carries the links: %r" % (em[0].get("evidence") if em else None))
    keys = ("class", "line", "direction")
    check(len(em) == 1 and all(em[0].get(k) is not None and ev.get(k) == em[0][k] for k in keys),
          "/v1/events has the message's class, line and direction: %r / %r" %
          ({k: ev.get(k) for k in keys}, {k: em[0].get(k) for k in keys} if em else None))
    fm = [m for m in msgs if m["type"] == "frame" and em and m["frame"] == em[0]["frame"]]
    check(len(fm) == 1, "the event's frame message")
    if em and fm:
        t = fm[0]["pts_us"] / 1e6
        for at, src in ((0.0, t - PRE), (PRE, t)):
            d_same = diff(grey(clip_path, at), grey(video, src))
            d_off = diff(grey(clip_path, at), grey(video, src + 1.0))
            print("  clip at %.1f s vs source at %.2f s: %.2f (1 s later: %.2f)" %
                  (at, src, d_same, d_off))
            check(d_same < 4 and d_same < d_off,
                  "the clip at %.1f s is the source at %.2f s (event at %.2f s)" % (at, src, t))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
