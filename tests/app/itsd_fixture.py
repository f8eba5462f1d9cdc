"""itsd with two cameras of real video and the real detector, for the tests of the snapshot,
scene and console endpoints (test_snapshot_scene.py, test_console.py).

    with Itsd(itsd_bin, source, shared, work) as d:
        status, headers, body = d.get("/v1/cameras/road/snapshot.jpg")
        d.windows("road")          # the window messages itsd wrote so far, oldest first

Camera "road" plays the urban road video (640x360, a counting line "main" that cars cross
every few seconds) with a copy of its scene file in the work directory; camera "junction"
plays the intersection video without a scene file (analytics.scene_dir is <work>/scenes).
Both loop, 8 frames a second of media time analysed by YOLOX-Nano, a window message every
second of stream time on the file sink.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testutil import free_port, skip  # noqa: E402

MODEL = "models/yolox-nano/yolox_nano.onnx"
LABELS = "media/coco.names"
ROAD = "media/traffic_road_cctv_360p.mp4"
JUNCTION = "media/traffic_intersection_cctv_480p.mp4"
ROAD_SCENE = "deploy/scenes/traffic_road_cctv_360p.yaml"


class Itsd:
    def __init__(self, itsd, source, shared, work, api_threads=4, evidence=None):
        """evidence: None, or the evidence section's settings ({"events": ..., "pre_s": ...});
        its folder is <work>/evidence."""
        self.work = work
        paths = [os.path.join(shared, p) for p in (MODEL, LABELS, ROAD, JUNCTION)]
        for p in paths:
            if not os.path.exists(p):
                skip(p + " is missing")
        model, labels, road, junction = paths
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(os.path.join(work, "scenes"))
        self.road_scene = os.path.join(work, "road.yaml")
        shutil.copyfile(os.path.join(source, ROAD_SCENE), self.road_scene)
        self.port = free_port()
        self.out = os.path.join(work, "itsd.jsonl")
        cfg = os.path.join(work, "itsd.yaml")
        cam = "  - {id: %s, url: %s, loop: true, sample_fps: 8%s}\n"
        with open(cfg, "w", encoding="utf-8") as f:
            f.write("engine:\n  backend: cpu\n  model: %s\n  labels: %s\n  threads: 1\n"
                    "  conf: 0.25\nanalytics:\n  window_s: 1\n  scene_dir: %s\n"
                    "sink:\n  type: file\n  path: %s\nstatus:\n  interval_s: 0\n"
                    "api:\n  port: %d\n  threads: %d\n" %
                    (json.dumps(model), json.dumps(labels),
                     json.dumps(os.path.join(work, "scenes")), json.dumps(self.out), self.port,
                     api_threads))
            if evidence:
                f.write("evidence:\n  dir: %s\n" % json.dumps(os.path.join(work, "evidence")))
                for k, v in evidence.items():
                    f.write("  %s: %s\n" % (k, json.dumps(v)))
            f.write("cameras:\n")
            f.write(cam % ("road", json.dumps(road), ", scene: " + json.dumps(self.road_scene)))
            f.write(cam % ("junction", json.dumps(junction), ""))
        env = dict(os.environ, OMP_WAIT_POLICY="passive")
        self.proc = subprocess.Popen([itsd, "-c", cfg], env=env,
                                     stdout=open(os.path.join(work, "itsd.out"), "wb"),
                                     stderr=open(os.path.join(work, "itsd.err"), "wb"))
        self.base = "http://127.0.0.1:%d" % self.port
        self.started = time.time()

    def __enter__(self):
        end = time.time() + 30
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("itsd exited: " + self.log()[-2000:])
            try:
                if self.get("/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("itsd not ready in 30 s: " + self.log()[-2000:])

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        with open(os.path.join(self.work, "itsd.err"), encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, ctype=None):
        """(status, headers, body bytes); HTTP errors are answers too."""
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path):
        return self.request("GET", path)

    def get_ready(self, path, seconds=20):
        """GET path, again while it answers 503 (no frame or analytics yet: a loaded machine
        may take more than the second the API waits for a camera's next frame)."""
        end = time.time() + seconds
        while True:
            r = self.get(path)
            if r[0] != 503 or time.time() > end:
                return r
            time.sleep(0.2)

    def json(self, path):
        status, _, body = self.get(path)
        if status != 200:
            raise AssertionError("GET %s: %d %s" % (path, status, body[:300]))
        return json.loads(body)

    def wait_json(self, path, seconds=20):
        """GET path until it answers 200 (a camera's analytics open with its first frame)."""
        end = time.time() + seconds
        while True:
            status, _, body = self.get(path)
            if status == 200 or time.time() > end:
                if status != 200:
                    raise AssertionError("GET %s: %d %s" % (path, status, body[:300]))
                return json.loads(body)
            time.sleep(0.2)

    def messages(self, kind):
        """Every message of a type ("event", "window", ...) written so far."""
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8") as f:
            text = f.read()
        tag = '"type":"%s"' % kind
        return [json.loads(line) for line in text.split("\n")[:-1] if tag in line]

    def windows(self, camera):
        """Every window message of the camera written so far (complete lines only)."""
        out = []
        if not os.path.exists(self.out):
            return out
        with open(self.out, encoding="utf-8") as f:
            text = f.read()
        for line in text.split("\n")[:-1]:
            if '"type":"window"' not in line:
                continue
            m = json.loads(line)
            if m.get("camera") == camera:
                out.append(m)
        return out


def line_total(window, name):
    """Crossings of a line in a window message since its counting began, both directions."""
    for l in window["report"]["lines"]:
        if l["name"] == name:
            return sum(a + b for a, b in l["total"].values())
    return None


def decode_jpeg(data):
    """(width, height, RGB bytes) of a JPEG, decoded by ffmpeg (an independent decoder)."""
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        skip("ffmpeg is not installed")
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "json", "-i", "-"], input=data,
                           capture_output=True, check=True)
    st = json.loads(probe.stdout)["streams"][0]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], input=data, capture_output=True, check=True).stdout
    return st["width"], st["height"], raw
