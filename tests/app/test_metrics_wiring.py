#!/usr/bin/env python3
"""itsd's /metrics, /v1/status, analytics endpoint and SPEC's cache keys against what itsd
itself wrote on its stdout sink, with a real redis-server and the real detector.

    test_metrics_wiring.py --itsd PATH --source DIR --shared DIR --work DIR

Two cameras play 60 frames of the road video through the scene of test_messages.py (a
counting line and a zone); cam-a has a model-metrics baseline on disk that no real traffic
matches (every detection of class 0 with a confidence under 0.05), cam-b none. A third
camera plays for a while and is removed through the API; a fourth points at a port where
nothing listens. Once both cameras have ended, one scrape of /metrics must agree with the
JSON lines itsd wrote (the independent record of what happened): frames, detections per
class name, line crossings per class and direction, the last quality score and 1-minute
flow, the drift of the last drift report, and every message acknowledged by Redis. The
removed camera has no series left; the unreachable one counts failed opens. Exit status 0
pass, 1 fail, 77 skipped (outside CI).
"""
import argparse
import collections
import csv
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_messages import MODEL, VIDEO, Resp, free_port, scene_file, skip, wait_redis  # noqa: E402

FRAMES = 60
SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.status, r.read().decode("utf-8")


def parse(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        if not m:
            raise AssertionError("not exposition format: %r" % line)
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def series(samples, name, **labels):
    """Samples of a family whose labels include these."""
    want = set(labels.items())
    return {k[1]: v for k, v in samples.items() if k[0] == name and want <= set(k[1])}


def value(samples, name, **labels):
    s = series(samples, name, **labels)
    if len(s) != 1:
        raise AssertionError("%s%s: %d series, expected one" % (name, labels, len(s)))
    return next(iter(s.values()))


def write_baseline(path, model):
    """A baseline no real traffic matches: 1000 frames of one class-0 detection each, all with
    a confidence under 0.05 and the smallest box area (docs/analytics.md, "Model drift")."""
    def hist(n, first):
        return " ".join(str(first if i == 0 else 0) for i in range(n))

    count = " ".join("1000" if i == 1 else "0" for i in range(22))
    with open(path, "w") as f:
        f.write("its-modelmon-baseline 1\nmodel %s\nframes 1000\n" % model)
        f.write("conf 20 %s\nclass 81 %s\ncount 22 %s\narea 25 %s\n" %
                (hist(20, 1000), hist(81, 1000), count, hist(25, 1000)))


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        if not ok:
            self.failures += 1
            print("FAIL: " + what)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, "%s: %r, expected %r" % (what, got, want))


def run_noop(o, work, name, rport, until=None):
    """itsd on the no-op engine (frames without detections): one camera looping 40 frames at
    400 frames a second. With `until` (a path), it runs until that file exists (1000 frames
    make a baseline: under 3 s optimised, longer under the sanitizers), then a second more
    and stops on SIGTERM; otherwise 3 s."""
    cfg = os.path.join(work, name + ".yaml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("engine:\n  backend: noop\nanalytics:\n  window_s: 1\n  baseline_dir: %s\n"
                "sink:\n  type: \"null\"\nstatus:\n  interval_s: 0\napi:\n  enabled: false\n"
                "redis:\n  host: 127.0.0.1\n  port: %d\n"
                "cameras:\n  - {id: cam-n, url: %s, kind: replay, fps: 400, replay_frames: 40, "
                "loop: true}\n" % (json.dumps(os.path.join(work, "noop-baselines")), rport,
                                     json.dumps(os.path.join(o.shared, VIDEO))))
    err = os.path.join(work, name + ".err")
    p = subprocess.Popen([o.itsd, "-c", cfg, "--duration", "90" if until else "3"],
                         stdout=subprocess.DEVNULL, stderr=open(err, "wb"))
    if until:
        deadline = time.monotonic() + 80
        while p.poll() is None and not os.path.exists(until) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the model_baselines record on its way to Redis
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    return rc, open(err, encoding="utf-8").read()


def baseline_persisted(o, work, ck):
    """A camera without a baseline file captures one (1000 frames), writes it and SPEC's
    model_baselines key; the next start reads it back instead of capturing again."""
    os.makedirs(os.path.join(work, "noop-baselines"))
    path = os.path.join(work, "noop-baselines", "cam-n.baseline")
    rport = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        if not ck.check(wait_redis(rport, redis), "redis-server did not start"):
            return
        rc, err = run_noop(o, work, "noop1", rport, until=path)
        ck.equal(rc, 0, "itsd (noop, first start) exit status")
        ck.check(os.path.exists(path), "baseline not written to " + path)
        text = open(path).read() if os.path.exists(path) else ""
        ck.check(text.startswith("its-modelmon-baseline 1\nmodel ") and "\nframes 1000\n" in text,
                 "baseline file: %r" % text[:200])
        r = Resp(rport)
        key = "its:model:cam-n:baseline"
        ttl = r.cmd("TTL", key)
        ck.check(300 < ttl <= 86400, "TTL of %s: %r (model_baselines: 86400)" % (key, ttl))
        body = r.cmd("GET", key)
        msg = json.loads(body) if body else {}
        ck.check(msg.get("type") == "model_baseline" and
                 msg.get("features", {}).get("count", {}).get("n") == 1000,
                 "%s: %r" % (key, body[:300] if body else body))
        rc, err = run_noop(o, work, "noop2", rport)
        ck.equal(rc, 0, "itsd (noop, second start) exit status")
        ck.check("model baseline read from " + path in err,
                 "second start did not read the baseline back:\n" + err[-1500:])
    finally:
        redis.terminate()
        redis.wait()


def check_counts_csv(ck, msgs, counts_csv, errors, t_start):
    """GET /v1/cameras/{id}/counts.csv against the camera's own event messages: the CSV's
    counts summed over its intervals equal the line crossings per line, traffic class and
    direction (a crossing's update moves it to its new class, as in the analytics report),
    the intervals lie on the quarter hours of the run, and bad queries are refused."""
    for cam, (code, text) in counts_csv.items():
        ck.equal(code, 200, "counts.csv of " + cam)
        rows = list(csv.DictReader(io.StringIO(text)))
        ck.equal(text.split("\n", 1)[0], "camera,interval_start,interval_end,line,class,"
                 "direction,count,mean_speed_kmh,flow_vph,observed_s", "counts.csv header")
        got = collections.Counter()
        for row in rows:
            got[(row["line"], row["class"], row["direction"])] += int(row["count"])
        by_id = {}
        for m in msgs:
            if m["type"] == "event" and m["kind"] == "line_crossing" and m["camera"] == cam:
                by_id[m["id"]] = (m["line"], m["traffic_class"], m["direction"])
        want = collections.Counter(by_id.values())
        ck.equal(+got, +want, "counts.csv totals of %s against its crossing events" % cam)
        starts = {row["interval_start"] for row in rows}
        q0 = int(t_start // 900 * 900)
        quarters = {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
                    for t in range(q0, int(time.time()) + 1, 900)}
        ck.check(starts and starts <= quarters,
                 "counts.csv intervals %s on the run's quarter hours %s" % (starts, quarters))
        ck.check(all(r["camera"] == cam for r in rows), "counts.csv camera column")
        observed = sum(float(r["observed_s"]) for r in rows
                       if r["line"] == rows[0]["line"] and r["class"] == rows[0]["class"] and
                       r["direction"] == "positive")
        ck.check(0 < observed <= time.time() - t_start,
                 "%s observed %.1f s within the run's %.1f s" % (cam, observed,
                                                                 time.time() - t_start))
    ck.equal(sorted(errors.values()), [400, 400, 400, 404], "counts.csv bad queries %r" % errors)


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    if not shutil.which("redis-server"):
        skip("redis-server is not installed")
    model, video = os.path.join(o.shared, MODEL), os.path.join(o.shared, VIDEO)
    for p in (model, video):
        if not os.path.exists(p):
            skip(p + " is missing")
    work = o.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "baselines"))
    scene = scene_file(o.source, work)
    model_name = os.path.basename(model)
    write_baseline(os.path.join(work, "baselines", "cam-a.baseline"), model_name)
    ck = Checker()

    rport, aport = free_port(), free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=open(os.path.join(work, "redis.log"), "wb"), stderr=subprocess.STDOUT)
    itsd = None
    try:
        if not wait_redis(rport, redis):
            ck.check(False, "redis-server did not start")
            return 1
        cam = ("  - {id: %s, url: %s, kind: replay, fps: 8, replay_frames: %d, loop: %s, "
               "scene: %s}\n")
        cams = (cam % ("cam-a", json.dumps(video), FRAMES, "false", json.dumps(scene)) +
                cam % ("cam-b", json.dumps(video), FRAMES, "false", json.dumps(scene)) +
                cam % ("cam-c", json.dumps(video), 10, "true", json.dumps(scene)) +
                "  - {id: cam-dead, url: \"rtsp://127.0.0.1:%d/none\"}\n" % free_port())
        cfg = os.path.join(work, "itsd.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("engine:\n  backend: cpu\n  model: %s\n  threads: 2\n  conf: 0.25\n"
                    "batch:\n  per_camera: 64\n"
                    "ingest:\n  backoff_min_ms: 50\n  backoff_max_ms: 200\n"
                    "analytics:\n  window_s: 1\n  baseline_dir: %s\n"
                    "sink:\n  type: stdout\nstatus:\n  interval_s: 0\n"
                    "redis:\n  host: 127.0.0.1\n  port: %d\napi:\n  port: %d\n"
                    "cameras:\n%s" % (json.dumps(model), json.dumps(os.path.join(
                        work, "baselines")), rport, aport, cams))
        out_path = os.path.join(work, "itsd.jsonl")
        t_start = time.time()
        itsd = subprocess.Popen([o.itsd, "-c", cfg], stdout=open(out_path, "wb"),
                                stderr=open(out_path + ".err", "wb"))

        # cam-c plays until it has published frames, then is removed through the API
        end = time.time() + 60
        samples = {}
        while time.time() < end:
            time.sleep(0.5)
            try:
                samples = parse(scrape(aport)[1])
            except OSError:
                continue
            if series(samples, "its_frames_total", camera="cam-c"):
                break
        req = urllib.request.Request("http://127.0.0.1:%d/v1/cameras/cam-c" % aport,
                                     method="DELETE")
        ck.equal(urllib.request.urlopen(req, timeout=5).status, 200, "DELETE cam-c")

        # until cam-a and cam-b have ended and their counters stand still
        prev, done, fps_seen = None, False, 0.0
        end = time.time() + 120
        while time.time() < end and not done:
            time.sleep(1.0)
            samples = parse(scrape(aport)[1])
            if series(samples, "its_camera_fps", camera="cam-a"):
                fps_seen = max(fps_seen, value(samples, "its_camera_fps", camera="cam-a"))
            # down after having played (a replay camera is also down while its clip loads)
            ended = all(series(samples, "its_camera_up", camera=c) and
                        value(samples, "its_camera_up", camera=c) == 0 and
                        series(samples, "its_frames_total", camera=c) and
                        value(samples, "its_frames_total", camera=c) > 0
                        for c in ("cam-a", "cam-b"))
            key = [v for k, v in sorted(samples.items(), key=str)
                   if k[0] in ("its_frames_total", "its_publish_messages_total")]
            done = ended and key == prev
            prev = key
        ck.check(done, "cam-a and cam-b did not end within 120 s")
        status = json.loads(scrape(aport, "/v1/status")[1])
        codes, sizes, hour = {}, 0, {}
        for w in ("1m", "15m", "60m", "1m"):  # the second 1m read is served by the API's L1
            try:
                code, body = scrape(aport, "/v1/cameras/cam-a/analytics?window=" + w)
                codes[w] = (code, json.loads(body).get("type"))
                sizes += len(body.encode("utf-8"))
                if w == "60m":
                    hour = json.loads(body)
            except urllib.error.HTTPError as e:
                codes[w] = (e.code, None)
        # interval counts of both cameras, 15-minute rows of the last 24 hours (the default)
        counts_csv = {c: scrape(aport, "/v1/cameras/%s/counts.csv?interval=15m" % c)
                      for c in ("cam-a", "cam-b")}
        counts_errors = {}
        for q in ("/v1/cameras/cam-a/counts.csv?interval=90s",
                  "/v1/cameras/cam-a/counts.csv?from=yesterday",
                  "/v1/cameras/cam-a/counts.csv?from=2026-12-07T09:00:00Z&to=2026-12-07T08:00:00Z",
                  "/v1/cameras/nope/counts.csv"):
            try:
                counts_errors[q] = scrape(aport, q)[0]
            except urllib.error.HTTPError as e:
                counts_errors[q] = e.code
        after = parse(scrape(aport)[1])
        r = Resp(rport)
        ttl = {k: r.cmd("TTL", k) for k in (
            "its:cam:cam-a:quality", "its:cam:cam-a:predictions:short",
            "its:cam:cam-a:predictions:long", "its:cam:cam-a:analytics:15m")}
        itsd.send_signal(signal.SIGTERM)
        ck.equal(itsd.wait(30), 0, "itsd exit status")
    finally:
        if itsd and itsd.poll() is None:
            itsd.kill()
        redis.terminate()
        redis.wait()

    # ---- what itsd wrote ------------------------------------------------------------------
    msgs = [json.loads(line) for line in open(out_path, encoding="utf-8") if line.strip()]
    frames = collections.Counter(m["camera"] for m in msgs if m["type"] == "frame")
    dets = collections.Counter((m["camera"], d["class"]) for m in msgs if m["type"] == "frame"
                               for d in m["detections"])
    crossings = collections.Counter((m["camera"], m["class"], m["direction"]) for m in msgs
                                    if m["type"] == "event" and m["kind"] == "line_crossing")
    # up to the frame of the window the 60m record was cached with
    line_crossings = collections.Counter(
        (m["line"], m["class"], m["direction"]) for m in msgs
        if m["type"] == "event" and m["kind"] == "line_crossing" and m["camera"] == "cam-a" and
        m["frame"] <= hour.get("frame", -1))
    by_type = collections.Counter(m["type"] for m in msgs)
    last = {}
    for m in msgs:
        last[(m["camera"], m["type"])] = m
    print("itsd: %d lines %s, frames %s, crossings %d" %
          (len(msgs), dict(by_type), dict(frames), sum(crossings.values())))
    ck.check(sum(crossings.values()) > 0, "no line crossing in the run")

    # ---- the scrape against it ------------------------------------------------------------
    for c in ("cam-a", "cam-b"):
        ck.equal(value(samples, "its_frames_total", camera=c), frames[c], "its_frames_total " + c)
        ck.check(frames[c] >= FRAMES // 3, "%s published %d frames" % (c, frames[c]))
        got = {dict(k)["class"]: v for k, v in series(samples, "its_detections_total",
                                                      camera=c).items()}
        want = {cls: n for (cam, cls), n in dets.items() if cam == c}
        ck.equal(got, want, "its_detections_total by class name, " + c)
        got = {(dict(k)["class"], dict(k)["direction"]): v
               for k, v in series(samples, "its_vehicle_count_total", camera=c).items()}
        want = {(cls, d): n for (cam, cls, d), n in crossings.items() if cam == c}
        ck.equal(got, want, "its_vehicle_count_total, " + c)
        q = value(samples, "its_quality_score", camera=c)
        ck.check(0 <= q <= 1 and abs(q - last[(c, "frame")]["quality"]) < 1e-4,
                 "its_quality_score %s %r, last frame %r" % (c, q, last[(c, "frame")]["quality"]))
        flow = sum(line["window_1min"]["flow_vph"]
                   for line in last[(c, "window")]["report"]["lines"])
        ck.check(math.isclose(value(samples, "its_flow_rate_vehicles_per_hour", camera=c), flow,
                              rel_tol=1e-5, abs_tol=1e-3),
                 "its_flow_rate_vehicles_per_hour %s, last window says %r" % (c, flow))
        ck.equal(value(samples, "its_camera_stalls_total", camera=c), 0, "stalls " + c)
    # drift: cam-a against the baseline read from disk; cam-b has none yet
    drift = {dict(k)["feature"]: v for k, v in series(samples, "its_model_drift_score",
                                                      camera="cam-a", model=model_name).items()}
    rep = last[("cam-a", "drift")]["report"]
    ck.check(rep["baseline_ready"] and rep["baseline_frames"] == 1000,
             "cam-a's drift report does not use the baseline file: %r" % rep["baseline_frames"])
    for feat in ("confidence", "class"):
        ck.check(drift.get(feat, 0) >= 0.25, "its_model_drift_score %s %r: the baseline differs "
                 "from all traffic (>= 0.25 expected)" % (feat, drift.get(feat)))
    ck.equal(series(samples, "its_model_drift_score", camera="cam-b"), {}, "cam-b drift series")
    # publishing: everything acknowledged, nothing dropped
    ck.equal(value(samples, "its_redis_up"), 1, "its_redis_up")
    ck.equal(value(samples, "its_publish_messages_total", kind="detections"),
             sum(frames.values()), "acknowledged frame messages")
    ck.equal(value(samples, "its_publish_messages_total", kind="event"), by_type["event"],
             "acknowledged events")
    ck.equal(value(samples, "its_publish_messages_total", kind="analytics"),
             by_type["window"] + by_type["drift"], "acknowledged windows and drift reports")
    ck.check(value(samples, "its_publish_messages_total", kind="cache") > 0, "no cache writes")
    ck.equal(sum(series(samples, "its_publish_dropped_total").values()), 0, "publish drops")
    # latency, batches, rates, cameras
    published = sum(frames.values())
    ck.equal(value(samples, "analytics_latency_seconds_count"), published,
             "analytics_latency_seconds: one sample per published frame")
    ck.equal(value(samples, "its_stage_latency_seconds_count", stage="total"), published,
             "its_stage_latency_seconds{stage=total}")
    ck.equal(value(samples, "its_batch_size_sum"), published, "frames over all batches")
    ck.check(value(samples, "its_batch_size_count") >= published / 4,
             "its_batch_size_count (batch.max_size 4)")
    ck.check(0 < fps_seen <= 8 * 1.5, "its_camera_fps of cam-a while it played: %r" % fps_seen)
    ck.equal(value(samples, "its_camera_fps", camera="cam-a"), 0, "its_camera_fps once ended")
    ck.equal(value(samples, "its_cameras"), 3, "its_cameras (a, b and the dead one)")
    ck.equal({dict(k)["reason"] for k in series(samples, "its_frames_dropped_total",
                                                 camera="cam-a")},
             {"camera_limit", "high_water", "shutdown", "no_buffer", "engine_error"},
             "its_frames_dropped_total reasons")
    # the API's cache: two first reads from Redis, one from L1, both entries held
    ck.equal(value(after, "its_cache_hits_total", level="redis"), 3, "cache hits from Redis")
    ck.equal(value(after, "its_cache_hits_total", level="l1"), 1, "cache hits from L1")
    ck.equal(value(after, "its_cache_misses_total"), 0, "cache misses")
    ck.equal(value(after, "its_cache_l1_entries"), 3, "L1 entries")
    ck.check(value(after, "its_cache_l1_bytes") >= sizes * 2 / 3, "L1 bytes")
    # queues, stages, scaling
    queues = {dict(k)["queue"] for k in series(samples, "its_queue_depth")}
    ck.equal(queues, {"ingest", "analytics", "publish"}, "its_queue_depth queues")
    nb = value(samples, "its_stage_latency_seconds_count", stage="batch")
    ck.check(nb > 0 and nb == value(samples, "its_stage_latency_seconds_count", stage="inference"),
             "batch stage histogram: %r samples" % nb)
    ck.check(len(series(samples, "its_scaling_recommendation")) == 1, "its_scaling_recommendation")
    sc = status.get("scaling", {})
    ck.check(sc.get("recommendation") in (-1, 0, 1) and "queue_depth" in sc,
             "/v1/status scaling: %r" % sc)
    # the removed camera's series are gone; the dead one counts failed opens
    gone = [k for k in samples if ("camera", "cam-c") in k[1]]
    ck.equal(gone, [], "series of the removed camera")
    ck.check(value(samples, "its_camera_open_failures_total", camera="cam-dead") >= 1,
             "its_camera_open_failures_total of an unreachable camera")
    ck.equal(value(samples, "its_camera_up", camera="cam-dead"), 0, "its_camera_up cam-dead")
    # SPEC's cache: the keys with their TTL classes, and the API's windows
    for k, (lo, hi) in (("its:cam:cam-a:quality", (0, 300)),
                        ("its:cam:cam-a:predictions:short", (300, 1800)),
                        ("its:cam:cam-a:predictions:long", (1800, 7200)),
                        ("its:cam:cam-a:analytics:15m", (0, 300))):
        ck.check(lo < ttl[k] <= hi, "TTL of %s: %r, expected in (%d, %d]" % (k, ttl[k], lo, hi))
    ck.equal(codes, {"1m": (200, "window"), "15m": (200, "window"), "60m": (200, "window_60m")},
             "analytics endpoint")
    # the hour so far: every crossing cam-a's events reported, per line, class and direction
    got = collections.Counter()
    for line in hour.get("lines", []):
        for cls, (pos, neg) in line["counts"].items():
            got[(line["name"], cls, "positive")] += pos
            got[(line["name"], cls, "negative")] += neg
    ck.equal(+got, line_crossings, "the 60m record's crossings of cam-a")
    ck.check(sum(series(after, "its_http_requests_total", code="200").values()) >= 3,
             "its_http_requests_total{code=200}")
    check_counts_csv(ck, msgs, counts_csv, counts_errors, t_start)
    err = open(out_path + ".err", encoding="utf-8").read()
    ck.check(re.search(r"itsd: redis: sent \d+ .*dropped 0 ", err) is not None,
             "the summary's Redis line:\n" + err[-2000:])
    baseline_persisted(o, work, ck)
    if ck.failures:
        print("%d failures" % ck.failures)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
