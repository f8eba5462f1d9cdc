#!/usr/bin/env python3
"""The monitoring stack against a real Prometheus (docs/operations.md).

Starts redis-server, prometheus-redis-exporter, itsd (the real detector on a real video, a
scene with counting lines and a zone, the stand-in NVML library so that the GPU series exist;
one camera plays 15 s of the video once, a second one loops it so that itsd keeps publishing;
a model baseline file so that drift is measured at once) and a real `prometheus` server that
scrapes itsd and the exporter every second and evaluates the rules of
deploy/prometheus/alerts.yml (a copy with every `for:` shortened to 3 s). Then, through
Prometheus' HTTP API:

  1. every expression of every panel of deploy/grafana/dashboard.json, read from the JSON with
     the dashboard's variables substituted as Grafana does ("All": every value the variable's
     label_values() query finds), returns at least one series with a number (not NaN);
  2. every series selector of every alert rule matches at least one series (the rules name
     what itsd and the exporter really export);
  3. the rules judge this run's own readings: GPUUtilizationBelowTarget fires on the stand-in
     GPU's 73 % and GPUUtilizationLow does not, CameraThroughputLow fires for the camera
     that plays at 4 FPS, the GPU memory, Redis memory and streams rules stay quiet;
  4. the vehicle count series of the camera that played once (its_vehicle_count_total by
     class and direction) equal the line_crossing events itsd published for it in the same
     run (its stdout messages, the same as on Redis);
  5. RedisDown is inactive while Redis runs, fires after redis-server is killed, and clears
     after it is back.

    test_prometheus.py --itsd BIN --fake-nvml LIB --source DIR --shared DIR --work DIR
                       [--sanitized]

Exit status 0 pass, 1 fail, 77 skipped (a missing tool, model or video; under CI=true these
are failures). --sanitized (ASan/UBSan builds): the detector runs several times slower, so
the run may count no vehicle at all; the counts must still agree.
"""
import argparse
import collections
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testutil import free_port, skip  # noqa: E402

MODEL = "models/yolox-nano/yolox_nano.onnx"
VIDEO = "media/traffic_road_cctv_360p.mp4"
SCENE = "deploy/scenes/traffic_road_cctv_360p.yaml"
CAMERA = "cam-a"  # the counted camera: a finite replay
FRAMES = 120  # 15 s of the road video paced at 8 fps: several crossings of its lines
FPS = 8
LOOP_CAMERA = "cam-b"  # keeps the pipeline publishing (to Redis) until the end, as cameras do
LOOP_FPS = 4
SCRAPE_S = 1  # scrape and rule evaluation interval
FOR_S = 3  # every rule's "for:" in the test copy


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_get(url, timeout=5):
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


class Prom:
    """Prometheus' HTTP API (/api/v1)."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def ready(self):
        return http_get(self.base + "/-/ready", 2)[0] == 200

    def api(self, path, **params):
        url = self.base + "/api/v1/" + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        status, body = http_get(url, 10)
        if status == 0:
            raise RuntimeError("prometheus did not answer " + url)
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise RuntimeError("%s: %s: %s" % (path, doc.get("errorType"), doc.get("error")))
        return doc["data"]

    def query(self, expr):
        """The instant vector (or scalar) of expr now, as [(labels, value)]."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return [(r["metric"], float(r["value"][1])) for r in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise RuntimeError("%s: a %s, not a vector" % (expr, data["resultType"]))

    def alert_state(self, name, **labels):
        """'inactive', 'pending' or 'firing' (the most advanced of its instances that carry
        the given labels)."""
        states = [a["state"] for a in self.api("alerts")["alerts"]
                  if a["labels"].get("alertname") == name and
                  all(a["labels"].get(k) == v for k, v in labels.items())]
        for s in ("firing", "pending"):
            if s in states:
                return s
        return "inactive"


def wait_for(fn, seconds, step=0.5):
    """fn()'s first true value within seconds, else its last value."""
    end = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


# ---- the dashboard -------------------------------------------------------------------------

def panel_targets(panels):
    """(panel title, expr) of every target of every panel, rows' nested panels included."""
    for p in panels:
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p.get("title", "?"), t["expr"]
        yield from panel_targets(p.get("panels", []))


def substitute(expr, values):
    """Grafana's interpolation of $var / ${var} / [[var]] in a regex matcher: the values,
    regex-escaped inside a PromQL string (a backslash written twice), as (a|b) when there are
    several."""
    def one(name):
        if name not in values:
            raise KeyError("dashboard variable $%s has no value" % name)
        vs = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values[name]]
        return vs[0] if len(vs) == 1 else "(" + "|".join(vs) + ")"

    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: one(m.group(1)), expr)
    expr = re.sub(r"\[\[(\w+)\]\]", lambda m: one(m.group(1)), expr)
    return re.sub(r"\$(\w+)", lambda m: one(m.group(1)), expr)


def variable_values(prom, dash):
    """Every query variable of the dashboard: the values its label_values() query finds."""
    values = {}
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", q or "")
        if not m:
            raise RuntimeError("variable %s: query %r is not label_values(metric, label)" %
                               (v.get("name"), q))
        values[v["name"]] = sorted(prom.api("label/%s/values" % m.group(2),
                                            **{"match[]": m.group(1)}))
    return values


def has_number(result):
    return any(not math.isnan(v) for _, v in result)


# ---- the alert rules -------------------------------------------------------------------------

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
               "bottomk", "topk", "quantile"}


def rule_selectors(expr):
    """The series selectors (metric name with its matchers) of a rule's expression."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: "S" * len(m.group(0)), expr)  # blank strings
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
               lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), e)
    e = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m.group(0)), e)  # ranges
    out = []
    pos = 0
    while True:
        m = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*").search(e, pos)
        if not m:
            return out
        name, pos = m.group(0), m.end()
        if name.lower() in KEYWORDS or (m.start() and e[m.start() - 1] in "0123456789."):
            continue  # an operator, or the exponent of a number
        rest = e[pos:].lstrip()
        if rest.startswith("(") or name in AGGREGATORS:
            continue  # a function or an aggregation
        sel = name
        if rest.startswith("{"):
            open_ = e.index("{", pos)
            pos = e.index("}", open_) + 1
            sel += expr[open_:pos]
        if sel not in out:
            out.append(sel)


def rules_copy(src, dst):
    """alerts.yml with every `for:` set to FOR_S seconds; returns the rules (name, expr)."""
    text = open(src, encoding="utf-8").read()
    short, n = re.subn(r"(?m)^(\s+)for: \S+\s*$", r"\g<1>for: %ds" % FOR_S, text)
    if n == 0:
        raise RuntimeError(src + ": no `for:` found")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(short)
    rules = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"\s*- alert: (\S+)", lines[i])
        if m:
            name = m.group(1)
            j = i + 1
            while not re.match(r"\s*expr:", lines[j]):
                j += 1
            e = lines[j].split("expr:", 1)[1].strip()
            if e == "|":
                ind = len(lines[j + 1]) - len(lines[j + 1].lstrip())
                block = []
                j += 1
                while j < len(lines) and (not lines[j].strip() or
                                          len(lines[j]) - len(lines[j].lstrip()) >= ind):
                    block.append(lines[j].strip())
                    j += 1
                e = " ".join(b for b in block if b)
            rules.append((name, e))
            i = j
        i += 1
    return rules


def write_baseline(path):
    """A model-metrics baseline (docs/analytics.md, "Model drift") for itsd to load at start, so
    that drift is measured within this test's seconds instead of after the default 1000
    baseline frames: 1000 frames of 5 detections (3500 cars, 500 trucks, 300 buses, 700
    people), confidences spread evenly over [0.25, 1), box areas over 10^-3.4 .. 10^-2 of the
    frame."""
    conf = [0] * 5 + [334] * 14 + [324]  # 20 bins on [0, 1]
    cls = [0] * 81
    cls[0], cls[2], cls[5], cls[7] = 700, 3500, 300, 500
    count = [0] * 22
    count[5] = 1000
    area = [0] * 8 + [625] * 8 + [0] * 9  # 25 bins on [-5, 0]
    assert sum(conf) == sum(cls) == sum(area) == 5000
    with open(path, "w", encoding="utf-8") as f:
        f.write("its-modelmon-baseline 1\nmodel -\nframes 1000\n")
        for name, h in (("conf", conf), ("class", cls), ("count", count), ("area", area)):
            f.write("%s %d %s\n" % (name, len(h), " ".join(map(str, h))))


# ---- the run ---------------------------------------------------------------------------------

class Failures:
    def __init__(self):
        self.items = []

    def __call__(self, what):
        self.items.append(what)
        print("FAIL: " + what, flush=True)


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "fake-nvml", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--sanitized", action="store_true")
    o = ap.parse_args()
    for tool in ("prometheus", "promtool", "redis-server", "prometheus-redis-exporter"):
        if not shutil.which(tool):
            skip(tool + " is not installed (scripts/packages.txt)")
    model, video = os.path.join(o.shared, MODEL), os.path.join(o.shared, VIDEO)
    for p in (model, video, o.itsd, o.fake_nvml):
        if not os.path.exists(p):
            skip(p + " is missing")
    work = o.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    fail = Failures()
    procs = {}
    t0 = time.time()

    def log(msg):
        print("[%5.1f s] %s" % (time.time() - t0, msg), flush=True)

    def start(name, cmd):
        """A server with its output in WORK/name.log."""
        with open(os.path.join(work, name + ".log"), "wb") as out:
            procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        return procs[name]

    rport, eport, aport, pport = free_port(), free_port(), free_port(), free_port()
    redis_cmd = ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"]
    try:
        # ---- Redis and its exporter ----------------------------------------------------------
        start("redis", redis_cmd)
        if not wait_for(lambda: redis_ping(rport), 10):
            fail("redis-server did not start")
            return 1
        start("redis-exporter", ["prometheus-redis-exporter", "-redis.addr",
                                 "redis://127.0.0.1:%d" % rport, "-web.listen-address",
                                 "127.0.0.1:%d" % eport])

        # ---- itsd: one camera on the road video and its scene, stdout + Redis ----------------
        cfg = os.path.join(work, "itsd.yaml")
        scene = os.path.join(o.source, SCENE)
        baselines = os.path.join(work, "baselines")
        os.makedirs(baselines)
        for cam in (CAMERA, LOOP_CAMERA):
            write_baseline(os.path.join(baselines, cam + ".baseline"))
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(
                "engine:\n  backend: cpu\n  model: %s\n  threads: 2\n  conf: 0.25\n"
                "batch:\n  per_camera: 64\n"
                "analytics:\n  window_s: 1\n  baseline_dir: %s\n"
                "sink:\n  type: stdout\n"
                "status:\n  interval_s: 0\n"
                "redis:\n  host: 127.0.0.1\n  port: %d\n"
                "api:\n  port: %d\n"
                "cameras:\n"
                "  - {id: %s, url: %s, kind: replay, fps: %d, replay_frames: %d, loop: false, "
                "scene: %s}\n"
                "  - {id: %s, url: %s, kind: replay, fps: %d, loop: true, scene: %s}\n" %
                (json.dumps(model), json.dumps(baselines), rport, aport, CAMERA, json.dumps(video), FPS, FRAMES,
                 json.dumps(scene), LOOP_CAMERA, json.dumps(video), LOOP_FPS, json.dumps(scene)))
        env = dict(os.environ, ITS_NVML_LIBRARY=o.fake_nvml, OMP_WAIT_POLICY="passive")
        messages = []  # itsd's stdout, parsed
        last_frame = [0.0]
        itsd = subprocess.Popen([o.itsd, "-c", cfg, "--duration", "600"], env=env,
                                stdout=subprocess.PIPE,
                                stderr=open(os.path.join(work, "itsd.err"), "wb"))
        procs["itsd"] = itsd

        def read_stdout():
            with open(os.path.join(work, "itsd.jsonl"), "wb") as copy:
                for line in itsd.stdout:
                    copy.write(line)
                    try:
                        m = json.loads(line)
                    except ValueError:
                        continue
                    messages.append(m)
                    if m.get("type") == "frame" and m.get("camera") == CAMERA:
                        last_frame[0] = time.time()

        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()

        # ---- prometheus, scraping itsd and the exporter, with the rules (short "for") --------
        rules = rules_copy(os.path.join(o.source, "deploy/prometheus/alerts.yml"),
                           os.path.join(work, "alerts.yml"))
        pcfg = os.path.join(work, "prometheus.yml")
        with open(pcfg, "w", encoding="utf-8") as f:
            f.write("global:\n  scrape_interval: %ds\n  evaluation_interval: %ds\n"
                    "rule_files:\n  - alerts.yml\n"
                    "scrape_configs:\n"
                    "  - job_name: itsd\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n"
                    "  - job_name: redis\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (SCRAPE_S, SCRAPE_S, aport, eport))
        rc = subprocess.run(["promtool", "check", "config", pcfg], capture_output=True)
        if rc.returncode != 0:
            fail("promtool check config: %s" % rc.stdout.decode() + rc.stderr.decode())
            return 1
        start("prometheus", ["prometheus", "--config.file=" + pcfg,
                             "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"])
        prom = Prom(pport)
        if not wait_for(prom.ready, 30):
            fail("prometheus did not become ready (prometheus.log)")
            return 1
        log("prometheus ready on %d, itsd API on %d" % (pport, aport))
        if not wait_for(lambda: prom.query('up{job="itsd"} == 1'), 60):
            fail("prometheus never scraped itsd (itsd.err)")
            return 1
        log("itsd scraped")

        # ---- 1. every panel expression returns data (while the video plays) ------------------
        dash = json.load(open(os.path.join(o.source, "deploy/grafana/dashboard.json"),
                              encoding="utf-8"))
        panels = list(panel_targets(dash.get("panels", [])))
        if len(panels) < 20:
            fail("only %d panel expressions in the dashboard" % len(panels))
        pending = dict(enumerate(panels))
        results = {}
        api_base = "http://127.0.0.1:%d" % aport
        deadline = time.time() + FRAMES / FPS + 30
        while pending and time.time() < deadline:
            # an operator's reads of the analytics cache (the cache panels count them)
            for window in ("1m", "15m"):
                http_get("%s/v1/cameras/%s/analytics?window=%s" % (api_base, CAMERA, window))
            try:
                values = variable_values(prom, dash)
            except RuntimeError as e:
                fail(str(e))
                break
            for i, (title, expr) in list(pending.items()):
                try:
                    res = prom.query(substitute(expr, values))
                except (RuntimeError, KeyError) as e:
                    results[i] = "error: %s" % e
                    continue
                results[i] = res
                if has_number(res):
                    del pending[i]
            time.sleep(SCRAPE_S)
        log("panels: %d of %d expressions returned data" % (len(panels) - len(pending),
                                                            len(panels)))
        for i, (title, expr) in sorted(pending.items()):
            r = results.get(i)
            fail("panel %r: no data from %s (%s)" %
                 (title, expr, r if isinstance(r, str) else "%d series, all NaN" % len(r)
                  if r else "no series"))

        # ---- 2. every selector of every alert rule matches series ----------------------------
        missing = collections.OrderedDict()
        for name, expr in rules:
            for sel in rule_selectors(expr):
                if not prom.query("count(%s)" % sel):
                    missing.setdefault(sel, []).append(name)
        for sel, names in missing.items():
            fail("alert rule %s: %s matches no series" % (", ".join(names), sel))
        loaded = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        if sorted(r["name"] for r in loaded) != sorted(n for n, _ in rules):
            fail("prometheus loaded the rules %s, alerts.yml has %s" %
                 (sorted(r["name"] for r in loaded), sorted(n for n, _ in rules)))
        for r in loaded:
            if r.get("health") != "ok":
                fail("alert rule %s: health %s: %s" % (r["name"], r.get("health"),
                                                       r.get("lastError")))
        log("rules: %d rules, %d selectors without series" % (len(rules), len(missing)))

        # ---- 3. the rules on this run's readings ----------------------------------------------
        # Rules on this run's own readings: the stand-in NVML reports 73 % utilisation and
        # 1 GiB of GPU memory (tests/metrics/fake_nvml.c), the looping camera is up at
        # LOOP_FPS frames a second, two cameras, a test Redis of a few MiB.
        expect = (("GPUUtilizationBelowTarget", {}, "firing"),  # 73 < 80
                  ("GPUUtilizationLow", {}, "inactive"),  # 73 >= 50
                  ("GPUMemoryHigh", {}, "inactive"),
                  ("RedisMemoryHigh", {}, "inactive"),
                  ("CameraStreamsHigh", {}, "inactive"),
                  ("CameraThroughputLow", {"camera": LOOP_CAMERA}, "firing"))  # 4 < 25 FPS
        wait_for(lambda: all(prom.alert_state(n, **l) == st for n, l, st in expect),
                 FOR_S + 10 * SCRAPE_S)
        for name, labels, state in expect:
            got = prom.alert_state(name, **labels)
            if got != state:
                fail("alert %s%s is %s, expected %s" % (name, labels or "", got, state))
        log("alerts on this run's readings: %s" %
            ", ".join("%s %s" % (n, prom.alert_state(n, **l)) for n, l, _ in expect))

        # ---- 4. vehicle counts: the series equal the line crossings itsd published -----------
        # The video has played once: the camera's source ended (its_camera_up 0) and its last
        # frames have left the pipeline (no frame message for 3 s). Both sides only grow, so
        # they must then agree within a few scrapes.
        ended = 'its_camera_up{camera="%s"} == 0' % CAMERA
        if not wait_for(lambda: prom.query(ended) and last_frame[0] and
                        time.time() - last_frame[0] > 3, FRAMES / FPS + 60):
            fail("%s's video has not ended %.0f s after it should have" %
                 (CAMERA, FRAMES / FPS + 60))

        def counts():
            series = {}
            for labels, v in prom.query('sum by (camera, class, direction) '
                                        '(its_vehicle_count_total{camera="%s"})' % CAMERA):
                if v:
                    series[(labels.get("camera"), labels.get("class"),
                            labels.get("direction"))] = v
            events = collections.Counter(
                (m["camera"], m["class"], m["direction"]) for m in list(messages)
                if m.get("type") == "event" and m.get("kind") == "line_crossing" and
                m.get("camera") == CAMERA)
            return series, dict(events)

        def agree():
            series, events = counts()
            return series == events

        wait_for(agree, 10 * SCRAPE_S)
        series, events = counts()
        frames = sum(1 for m in list(messages) if m.get("type") == "frame" and
                     m.get("camera") == CAMERA)
        log("vehicle counts: prometheus %s, itsd's line_crossing events %s (%d frames)" %
            (series, events, frames))
        if series != events:
            fail("its_vehicle_count_total %s != itsd's line crossings %s" % (series, events))
        if not o.sanitized and sum(events.values()) < 2:
            fail("itsd counted %d crossings in %d frames: too few to compare" %
                 (sum(events.values()), frames))

        # ---- 5. RedisDown: inactive with Redis, firing without it, cleared when it is back ---
        if not wait_for(lambda: prom.query("its_redis_up == 1"), 20):
            fail("its_redis_up never 1 while Redis runs: %s" % prom.query("its_redis_up"))
        time.sleep(FOR_S + 2 * SCRAPE_S)
        state = prom.alert_state("RedisDown")
        if state != "inactive":
            fail("RedisDown is %s while Redis runs (its_redis_up %s)" %
                 (state, prom.query("its_redis_up")))
        procs["redis"].kill()
        procs["redis"].wait()
        log("redis-server killed")
        if not wait_for(lambda: prom.alert_state("RedisDown") == "firing",
                        FOR_S + 20):
            fail("RedisDown not firing %d s after redis-server was killed (its_redis_up %s)" %
                 (FOR_S + 20, prom.query("its_redis_up")))
        else:
            log("RedisDown firing")
        start("redis-2", redis_cmd)
        if not wait_for(lambda: redis_ping(rport), 10):
            fail("redis-server did not restart")
        log("redis-server back")
        if not wait_for(lambda: prom.alert_state("RedisDown") == "inactive",
                        40):
            fail("RedisDown still %s 40 s after redis-server came back (its_redis_up %s)" %
                 (prom.alert_state("RedisDown"), prom.query("its_redis_up")))
        else:
            log("RedisDown cleared")

        # ---- itsd stops cleanly ----------------------------------------------------------------
        itsd.send_signal(signal.SIGTERM)
        try:
            rc = itsd.wait(60)
        except subprocess.TimeoutExpired:
            itsd.kill()
            rc = "killed"
        reader.join(5)
        if rc != 0:
            fail("itsd exited %s (itsd.err)" % rc)
        err = open(os.path.join(work, "itsd.err"), encoding="utf-8", errors="replace").read()
        print("\n".join(l for l in err.split("\n") if l.startswith("itsd:")))
    finally:
        for name, p in procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in procs.items():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    log("done")
    if fail.items:
        print("%d failures" % len(fail.items))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
