#!/usr/bin/env python3
"""Snapshots and live scenes through itsd's API, on real video with the real detector
(itsd_fixture.py: cameras "road", with a scene file, and "junction", without).

    test_snapshot_scene.py --itsd BIN --source DIR --shared DIR --work DIR

The event stream (GET /v1/cameras/{id}/events) is one Server-Sent Event whose data is a
"live" message valid against docs/schema/. Snapshots (GET /v1/cameras/{id}/snapshot.jpg): a JPEG of the video's size, decoded by ffmpeg;
two taken a second apart differ (the video moves); ?annotate=1 paints the scene's counting
line "main" from the scene file's coordinates in the documented yellow, which the plain
picture does not have there; width=320 gives half the size with the line at half its
coordinates. Scenes (GET/PUT /v1/cameras/{id}/scene): GET gives the scene
file's lines; an invalid scene is refused with the key that is wrong and changes nothing; a
valid one is saved to the camera's scene file and applies without a restart: the unchanged
line "main" keeps counting from where it was, an added line starts from zero, and a moved
"main" starts again from zero. A camera without a scene file saves to analytics.scene_dir,
and the camera added again reads it from there. Exit status 0 pass, 1 fail, 77 skipped
(outside CI).
"""
import argparse
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itsd_fixture import Itsd, decode_jpeg, line_total, skip  # noqa: E402

try:
    import yaml  # python3-yaml: the scene files as written, an independent reader
except ImportError:
    yaml = None

YELLOW = (255, 230, 0)  # counting lines in annotated snapshots (docs/service.md)


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        if not ok:
            self.failures += 1
            print("FAIL: " + what)
        else:
            print("ok: " + what)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, "%s: %r, expected %r" % (what, got, want))


def pixel(img, x, y):
    w, _, raw = img
    i = (y * w + x) * 3
    return tuple(raw[i:i + 3])


def near_colour(img, x, y, colour, tol=60, r=2):
    """Some pixel within r of (x, y) is within tol of colour on every channel (JPEG blurs)."""
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            p = pixel(img, x + dx, y + dy)
            if all(abs(a - b) <= tol for a, b in zip(p, colour)):
                return True
    return False


def wait_window(d, camera, pred, seconds, what):
    end = time.time() + seconds
    while time.time() < end:
        for w in d.windows(camera):
            if pred(w):
                return w
        time.sleep(0.25)
    raise AssertionError("no %s window within %d s" % (what, seconds))


def snapshots(d, ck, scene):
    st, hdr, body = d.get_ready("/v1/cameras/road/snapshot.jpg")
    ck.equal(st, 200, "snapshot status")
    ck.equal(hdr.get("Content-Type"), "image/jpeg", "snapshot Content-Type")
    ck.check(body[:3] == b"\xff\xd8\xff", "snapshot is a JPEG (SOI marker)")
    a = decode_jpeg(body)
    ck.equal((a[0], a[1]), (640, 360), "snapshot size (the video's)")
    time.sleep(1.0)
    b = decode_jpeg(d.get_ready("/v1/cameras/road/snapshot.jpg")[2])
    diff = sum(abs(x - y) for x, y in zip(a[2], b[2])) / len(a[2])
    ck.check(diff > 0.5, "two snapshots a second apart differ: mean abs diff %.3f" % diff)
    plain = b
    st, _, body = d.get_ready("/v1/cameras/road/snapshot.jpg?annotate=1")
    ck.equal(st, 200, "annotated snapshot status")
    ann = decode_jpeg(body)
    main = next(l for l in scene["lines"] if l["name"] == "main")
    (x0, y0), (x1, y1) = main["points"]
    # nine points along the line; boxes and labels of the vehicles on it are drawn over the
    # line and may cover a few of them, so two thirds must be yellow
    on_line = [(int(x0 + (x1 - x0) * f / 10), int(y0 + (y1 - y0) * f / 10)) for f in range(1, 10)]
    ck.check(sum(near_colour(ann, x, y, YELLOW) for x, y in on_line) >= 6,
             "annotated: line 'main' drawn yellow at %s: %s" %
             (on_line, [pixel(ann, x, y) for x, y in on_line]))
    ck.check(not all(near_colour(plain, x, y, YELLOW, tol=40, r=0) for x, y in on_line),
             "plain snapshot has no yellow line there: %s" % [pixel(plain, x, y) for x, y in on_line])
    # scaled down for a tile: half the size, the line drawn at half its coordinates
    st, _, body = d.get_ready("/v1/cameras/road/snapshot.jpg?annotate=1&width=320")
    half = decode_jpeg(body)
    ck.equal((st, half[0], half[1]), (200, 320, 180), "width=320: status and size")
    on_half = [(x // 2, y // 2) for x, y in on_line]
    ck.check(sum(near_colour(half, x, y, YELLOW) for x, y in on_half) >= 6,
             "width=320: line 'main' drawn yellow at %s: %s" %
             (on_half, [pixel(half, x, y) for x, y in on_half]))
    ck.equal(d.get("/v1/cameras/road/snapshot.jpg?width=8")[0], 400, "width=8")
    ck.equal(decode_jpeg(d.get_ready("/v1/cameras/road/snapshot.jpg?width=2000")[2])[:2],
             (640, 360), "width wider than the frame: the frame's size")
    ck.equal(d.get("/v1/cameras/nosuch/snapshot.jpg")[0], 404, "snapshot of an unknown camera")
    ck.equal(d.get("/v1/cameras/road/snapshot.jpg?annotate=maybe")[0], 400, "annotate=maybe")
    ck.equal(d.request("POST", "/v1/cameras/road/snapshot.jpg", b"x", "image/jpeg")[0], 405,
             "POST snapshot")


def events(d, ck, source):
    """GET /v1/cameras/{id}/events: one Server-Sent Event holding a valid "live" message."""
    sys.path.insert(0, os.path.join(source, "scripts"))
    import validate_messages  # noqa: E402
    try:
        val = validate_messages.Validator(os.path.join(source, "docs", "schema"))
    except ImportError:
        skip("python3-jsonschema is not installed")
    st, hdr, body = d.get_ready("/v1/cameras/road/events")
    ck.equal((st, hdr.get("Content-Type")), (200, "text/event-stream"), "events: status, type")
    fields = [l.split(": ", 1) for l in body.decode().split("\n") if l]
    ck.equal([k for k, _ in fields], ["retry", "event", "data"], "events: the fields of the event")
    ck.check(body.endswith(b"\n\n"), "events: the event ends with a blank line")
    msg = json.loads(dict(fields)["data"])
    errs = val.errors(msg)
    ck.check(not errs and msg["type"] == "live" and msg["camera"] == "road",
             "events: a valid live message of road: %s" % errs[:3])
    ck.equal(d.get("/v1/cameras/nosuch/events")[0], 404, "events of an unknown camera")


def scenes(d, ck, file_scene):
    got = d.wait_json("/v1/cameras/road/scene")
    ck.equal([(l["name"], l["points"], l["positive"]) for l in got["lines"]],
             [(l["name"], l["points"], l["positive"]) for l in file_scene["lines"]],
             "GET scene: the scene file's lines")
    before_file = open(d.road_scene, encoding="utf-8").read()

    st, _, body = d.request("PUT", "/v1/cameras/road/scene",
                            json.dumps({"lines": [{"name": "x", "points": [[1, 1]],
                                                   "positive": [0, 1]}]}), "application/json")
    err = json.loads(body).get("error", {})
    ck.check(st == 400 and err.get("code") == "bad_scene" and
             "lines[0].points" in err.get("message", ""),
             "invalid scene refused naming the key: %d %s" % (st, body[:200]))
    ck.check(open(d.road_scene, encoding="utf-8").read() == before_file,
             "the scene file unchanged after a refused PUT")
    ck.equal(d.json("/v1/cameras/road/scene")["lines"], got["lines"],
             "the scene after a refused PUT")

    # "main" has counted a few vehicles: keep it, move "opposite", add "extra"
    w0 = wait_window(d, "road", lambda w: (line_total(w, "main") or 0) >= 3, 60,
                     "a 'main' total of 3")
    new = copy.deepcopy(got)
    for l in new["lines"]:
        if l["name"] == "opposite":
            l["points"] = [[0, 250], [200, 250]]
    new["lines"].append({"name": "extra", "points": [[150, 300], [505, 300]],
                         "positive": [0, -1], "lanes": 2})
    st, _, body = d.request("PUT", "/v1/cameras/road/scene", json.dumps(new), "application/json")
    res = json.loads(body)
    ck.check(st == 200 and res.get("saved_to") == d.road_scene,
             "PUT scene saved to the camera's scene file: %d %s" % (st, body[:300]))
    t_put = time.time()
    saved = yaml.safe_load(open(d.road_scene, encoding="utf-8"))
    ck.equal([(l["name"], l["points"]) for l in saved["lines"]],
             [(l["name"], l["points"]) for l in new["lines"]], "the saved scene file's lines")
    ck.equal([l["name"] for l in d.json("/v1/cameras/road/scene")["lines"]],
             ["main", "opposite", "extra"], "GET scene after PUT")
    before = max(line_total(w, "main") for w in d.windows("road")
                 if line_total(w, "extra") is None)
    w1 = wait_window(d, "road", lambda w: line_total(w, "extra") is not None, 15,
                     "a window with the new line")
    ck.check(line_total(w1, "main") >= before >= line_total(w0, "main"),
             "unchanged line 'main' continues: %d before, %d in the first window after" %
             (before, line_total(w1, "main")))
    ck.check(line_total(w1, "extra") <= 1,
             "the added line starts from zero: %d" % line_total(w1, "extra"))
    print("applied %.2f s after the PUT returned" % (time.time() - t_put))

    # moving "main" by a pixel makes it another line: its count starts again
    w2 = wait_window(d, "road", lambda w: (line_total(w, "main") or 0) >= before + 1, 60,
                     "one more crossing of 'main'")
    moved = copy.deepcopy(new)
    moved["lines"][0]["points"][0][1] += 1
    moved["lines"] = moved["lines"][:1] + [l for l in moved["lines"][1:] if l["name"] != "extra"]
    ck.equal(d.request("PUT", "/v1/cameras/road/scene", json.dumps(moved),
                       "application/json")[0], 200, "PUT scene with 'main' moved")
    pre = line_total(d.windows("road")[-1], "main")
    w3 = wait_window(d, "road", lambda w: line_total(w, "extra") is None and w is not None and
                     w["ts_us"] > w2["ts_us"] and line_total(w, "main") is not None and
                     len(w["report"]["lines"]) == 2, 15, "a window without the added line")
    ck.check(line_total(w3, "main") < pre and line_total(w3, "main") <= 1,
             "moved line 'main' starts again: %d before, %d after" % (pre, line_total(w3, "main")))

    # a camera without a scene file: saved to analytics.scene_dir, read when it starts again
    d.wait_json("/v1/cameras/junction/scene")
    text = ("camera: junction\nlines:\n  - name: stop\n    points: [[100, 300], [500, 300]]\n"
            "    positive: [0, 1]\n")
    st, _, body = d.request("PUT", "/v1/cameras/junction/scene", text, "application/yaml")
    want = os.path.join(d.work, "scenes", "junction.yaml")
    ck.check(st == 200 and json.loads(body).get("saved_to") == want,
             "YAML scene for a camera without a scene file saved to scene_dir: %d %s" %
             (st, body[:300]))
    url = json.loads(d.get("/v1/cameras/junction")[2])["url"]
    ck.equal(d.request("DELETE", "/v1/cameras/junction")[0], 200, "DELETE junction")
    st, _, body = d.request("POST", "/v1/cameras", json.dumps(
        {"id": "junction", "url": url, "loop": True}), "application/json")
    ck.equal(st, 201, "POST junction again (no scene file): %s" % body[:200])
    again = d.wait_json("/v1/cameras/junction/scene")
    ck.equal([(l["name"], l["points"]) for l in again["lines"]], [("stop", [[100, 300], [500, 300]])],
             "junction's scene read back from scene_dir")
    ck.equal(d.get("/v1/cameras/nosuch/scene")[0], 404, "scene of an unknown camera")
    ck.equal(d.request("PUT", "/v1/cameras/road/scene", "x", "text/plain")[0], 415,
             "PUT scene as text/plain")


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    if yaml is None:
        skip("python3-yaml is not installed")
    ck = Checker()
    t0 = time.time()
    with Itsd(o.itsd, o.source, o.shared, o.work) as d:
        file_scene = yaml.safe_load(open(d.road_scene, encoding="utf-8"))
        d.wait_json("/v1/cameras/road/scene")
        try:
            snapshots(d, ck, file_scene)
            events(d, ck, o.source)
            scenes(d, ck, file_scene)
        except AssertionError as e:
            ck.check(False, str(e))
        if ck.failures:
            print(d.log()[-3000:])
    ck.check(d.proc.returncode == 0, "itsd exit status after SIGTERM: %s" % d.proc.returncode)
    print("%s in %.1f s" % ("FAIL" if ck.failures else "PASS", time.time() - t0))
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
