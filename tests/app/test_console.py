#!/usr/bin/env python3
"""The operator console at / in headless Chromium (Debian's chromium, driven through the
DevTools protocol by a small client on python3-websocket), against itsd with two cameras of
real video and the real detector (itsd_fixture.py).

    test_console.py --itsd BIN --source DIR --shared DIR --work DIR

- The tile grid: both cameras' tiles show the video: in two screenshots 1.5 s apart, each
  tile's pixels are not blank (they vary) and they changed.
- The camera page: the live counts of line "main" (from the events stream) go up as vehicles
  cross; the latency budget table lists the stages from /v1/status.
- The scene editor: a line drawn with the mouse on the picture and saved through the page is
  in the scene the API returns (at the pixels clicked), and the window messages that follow
  count at it; a zone painted and four calibration points clicked likewise.
- Events (evidence kept for line crossings, pre_s 1 and post_s 1.5): the camera page lists an
  event of /v1/events with its kind, class and line as its event message says, and a
  thumbnail that loaded; a click on it opens the annotated snapshot (loaded, 640 px across)
  and plays the clip in a <video>: its duration within 0.5 s of pre_s + post_s (and within
  0.1 s of ffprobe's), and it plays (its time advances, frames are decoded). The clip's own
  URL plays in a <video> as well (Chromium reads it in byte ranges). The events view lists
  it, with its camera.
Screenshots: <work>/grid-1.png, grid-2.png, camera.png, events-camera.png, event-open.png,
events.png. Exit status 0 pass, 1 fail, 77 skipped (no chromium or python3-websocket; under
CI=true these are failures).
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itsd_fixture import Itsd, decode_jpeg, free_port, skip  # noqa: E402

PRE, POST = 1.0, 1.5  # evidence.pre_s, evidence.post_s

try:
    import websocket  # python3-websocket
except ImportError:
    # the Debian interpreter has Debian's python3-websocket where another python3 runs this
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3") and \
            not os.environ.get("ITS_TEST_REEXEC"):
        os.environ["ITS_TEST_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    websocket = None


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        self.failures += not ok
        return ok


class Browser:
    """Headless Chromium and one page, through the DevTools protocol."""

    def __init__(self, work):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [shutil.which("chromium"), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % self.port,
             "--user-data-dir=" + os.path.join(work, "profile"), "--window-size=1280,900",
             "about:blank"],
            stdout=open(os.path.join(work, "chromium.log"), "wb"), stderr=subprocess.STDOUT)
        end = time.time() + 30
        target = None
        while time.time() < end and not target:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port,
                                            timeout=2) as r:
                    target = next((t for t in json.load(r) if t.get("type") == "page"), None)
            except OSError:
                time.sleep(0.2)
        if not target:
            raise AssertionError("chromium's DevTools endpoint did not come up")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, seconds, what):
        end = time.time() + seconds
        while time.time() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError("%s: not within %d s" % (what, seconds))

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as f:
            f.write(data)
        return decode_jpeg(data)  # ffmpeg decodes PNG as well

    def click(self, x, y):
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=t, x=x, y=y, button="left", clickCount=1)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def region(img, rect, dpr):
    """The RGB bytes of a CSS-pixel rectangle of a screenshot, as rows."""
    w, h, raw = img
    x0, y0 = int(rect["x"] * dpr) + 2, int(rect["y"] * dpr) + 2
    x1, y1 = min(w, int((rect["x"] + rect["w"]) * dpr) - 2), min(h, int((rect["y"] + rect["h"]) * dpr) - 2)
    return [raw[(y * w + x0) * 3:(y * w + x1) * 3] for y in range(y0, y1, 2)]


def stats(rows):
    vals = [b for r in rows for b in r[::7]]
    mean = sum(vals) / len(vals)
    return mean, (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5


def diff(a, b):
    n = s = 0
    for ra, rb in zip(a, b):
        for x, y in zip(ra[::7], rb[::7]):
            s += abs(x - y)
            n += 1
    return s / max(n, 1)


TILES = """JSON.stringify([...document.querySelectorAll('.tile')].map(t => {
  const r = t.querySelector('img').getBoundingClientRect();
  return {id: t.dataset.camera, frames: Number(t.querySelector('img').dataset.frames || 0),
          x: r.x, y: r.y, w: r.width, h: r.height};
}))"""

MAIN_COUNT = """(() => { let n = 0;
  for (const tr of document.querySelectorAll('#counts tbody tr'))
    if (tr.dataset.line === 'main')
      n += Number(tr.children[2].textContent) + Number(tr.children[3].textContent);
  return document.querySelectorAll('#counts tbody tr').length ? n : -1; })()"""


def run(o, ck):
    evidence = {"events": "line_crossing", "pre_s": PRE, "post_s": POST}
    with Itsd(o.itsd, o.source, o.shared, o.work, evidence=evidence) as d:
        b = Browser(o.work)
        try:
            b.call("Page.enable")
            b.call("Page.navigate", url=d.base + "/")
            dpr = b.eval("window.devicePixelRatio") or 1
            # the grid: both tiles have shown a few pictures
            b.wait("(() => { const t = JSON.parse(%s); return t.length == 2 && "
                   "t.every(x => x.frames >= 3); })()" % TILES, 40, "both tiles showing pictures")
            tiles = json.loads(b.eval(TILES))
            ck.check(sorted(t["id"] for t in tiles) == ["junction", "road"],
                     "the grid has a tile per camera: %s" % [t["id"] for t in tiles])
            s1 = b.screenshot(os.path.join(o.work, "grid-1.png"))
            time.sleep(1.5)
            s2 = b.screenshot(os.path.join(o.work, "grid-2.png"))
            for t in tiles:
                r1, r2 = region(s1, t, dpr), region(s2, t, dpr)
                mean, sd = stats(r1)
                ck.check(sd > 20, "tile %s is not blank: mean %.1f, sd %.1f" % (t["id"], mean, sd))
                dd = diff(r1, r2)
                ck.check(dd > 1.0, "tile %s changed between the screenshots: mean abs diff %.2f"
                         % (t["id"], dd))

            # the camera page: live counts go up, the budget table is there
            b.call("Page.navigate", url=d.base + "/#camera=road")
            first = b.wait("(() => { const n = %s; return n >= 0 ? String(n) : ''; })()" %
                           MAIN_COUNT, 30, "counts on the camera page")
            later = b.wait("(() => { const n = %s; return n > %s ? String(n) : ''; })()" %
                           (MAIN_COUNT, first), 40, "the count of 'main' going up")
            ck.check(int(later) > int(first),
                     "live count of 'main' went up on the page: %s -> %s" % (first, later))
            stages = b.wait("document.querySelectorAll('#stages tbody tr').length", 10,
                            "the latency budget table")
            ck.check(stages >= 5, "latency budget table: %d stages" % stages)

            # the editor: draw a line with the mouse, save it
            b.wait("document.getElementById('picture').width == 640 && "
                   "document.querySelector('#editor-msg').textContent == ''", 20,
                   "the picture and the scene loaded")
            b.eval("document.getElementById('shape-name').value = 'drawn'")
            b.eval("document.getElementById('add-line').click()")
            rect = json.loads(b.eval(
                "JSON.stringify((r => ({x: r.x, y: r.y, w: r.width, h: r.height}))"
                "(document.getElementById('picture').getBoundingClientRect()))"))
            want = [[120, 290], [520, 290]]  # image pixels
            for px, py in want:
                b.click(rect["x"] + px * rect["w"] / 640, rect["y"] + py * rect["h"] / 360)
            b.click(*[v for v in json.loads(b.eval(
                "JSON.stringify((r => [r.x + r.width / 2, r.y + r.height / 2])"
                "(document.getElementById('save').getBoundingClientRect()))"))])
            b.wait("document.getElementById('save').dataset.saved == '1'", 15,
                   "the page saved the scene")
            # a zone (three corners, Close) and the calibration (four points), saved again
            b.eval("document.getElementById('shape-name').value = 'painted'")
            b.eval("document.getElementById('add-zone').click()")
            zone = [[60, 330], [250, 330], [200, 250]]
            for px, py in zone:
                b.click(rect["x"] + px * rect["w"] / 640, rect["y"] + py * rect["h"] / 360)
            b.eval("document.getElementById('close-zone').click()")
            b.eval("document.getElementById('road-points').value = '0,0 3.5,0 3.5,12 0,12'")
            b.eval("document.getElementById('calibrate').click()")
            calib = [[300, 310], [440, 310], [386, 160], [305, 160]]
            for px, py in calib:
                b.click(rect["x"] + px * rect["w"] / 640, rect["y"] + py * rect["h"] / 360)
            b.eval("document.getElementById('save').click()")
            b.wait("document.getElementById('save').dataset.saved == '2'", 15,
                   "the page saved the scene again: " + str(b.eval(
                       "document.getElementById('editor-msg').textContent")))
            b.screenshot(os.path.join(o.work, "camera.png"))
            scene = d.json("/v1/cameras/road/scene")
            drawn = [l for l in scene["lines"] if l["name"] == "drawn"]
            ck.check(len(drawn) == 1 and all(
                abs(p - q) <= 2 for got, w in zip(drawn[0]["points"], want) for p, q in zip(got, w)),
                "the line drawn on the page is in the API's scene at %s: %s" %
                (want, drawn[0]["points"] if drawn else scene["lines"]))
            close = lambda a, b: all(abs(p - q) <= 2 for u, v in zip(a, b)  # noqa: E731
                                     for p, q in zip(u, v)) and len(a) == len(b)
            painted = [z for z in scene["zones"] if z["name"] == "painted"]
            ck.check(len(painted) == 1 and close(painted[0]["polygon"], zone),
                     "the zone painted on the page is in the API's scene at %s: %s" %
                     (zone, painted[0]["polygon"] if painted else scene["zones"]))
            cal = scene.get("calibration", {})
            ck.check(close(cal.get("image", []), calib) and
                     cal.get("road") == [[0, 0], [3.5, 0], [3.5, 12], [0, 12]],
                     "the calibration set on the page: %s" % cal)
            ck.check([l["name"] for l in scene["lines"]][:2] == ["main", "opposite"],
                     "the scene's other lines are kept: %s" % [l["name"] for l in scene["lines"]])
            end = time.time() + 15
            while time.time() < end and not any(
                    any(l["name"] == "drawn" for l in w["report"]["lines"])
                    for w in d.windows("road")):
                time.sleep(0.25)
            ck.check(any(any(l["name"] == "drawn" for l in w["report"]["lines"])
                         for w in d.windows("road")),
                     "the windows that follow count at the drawn line")
            events(o, ck, d, b)
        finally:
            b.close()
        if ck.failures:
            print(d.log()[-3000:])
    ck.check(d.proc.returncode == 0, "itsd exit status after SIGTERM: %s" % d.proc.returncode)


def ffprobe_duration(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                        "default=noprint_wrappers=1:nokey=1", path], capture_output=True, text=True)
    try:
        return float(p.stdout.strip())
    except ValueError:
        return -1.0


ROW = """(() => { const li = document.querySelector('#cam-events li[data-id="%s"]');
  if (!li) return null;
  li.scrollIntoView({block: 'nearest'});
  const img = li.querySelector('img'), r = li.getBoundingClientRect();
  return JSON.stringify({text: li.textContent, clip: li.dataset.clip,
    thumb: img.complete ? img.naturalWidth : 0, x: r.x + r.width / 2, y: r.y + r.height / 2});
})()"""

VIDEO = """JSON.stringify((v => ({ready: v.readyState, duration: v.duration, t: v.currentTime,
  frames: v.getVideoPlaybackQuality().totalVideoFrames, error: v.error && v.error.code,
  snapshot: (i => i.complete ? i.naturalWidth : 0)(document.getElementById('viewer-snapshot')),
  open: !document.getElementById('viewer').hidden}))(document.getElementById('viewer-clip')))"""

DIRECT = """new Promise(res => { const v = document.createElement('video'); v.muted = true;
  v.preload = 'auto'; v.onloadedmetadata = () => res(v.duration);
  v.onerror = () => res(-1); setTimeout(() => res(-2), 15000); v.src = '%s'; })"""


def events(o, ck, d, b):
    """The camera page's event list, the viewer (snapshot and clip), the events view."""
    # an event whose clip is written, with pre_s of video before it (the stream's start is
    # within 1.5 s of itsd's), among the newest the page lists
    ev, listed, end = None, [], time.time() + 40
    while time.time() < end and ev is None:
        listed = d.json("/v1/events?camera=road&limit=30")["events"]
        ev = next((e for e in listed
                   if e["clip"] and e["ts_us"] / 1e6 > d.started + PRE + 1.5), None)
        if ev is None:
            time.sleep(0.5)
    if not ck.check(ev is not None, "an event of road with its clip written: %s" % listed[:3]):
        return
    msg = next((m for m in d.messages("event") if m.get("id") == ev["id"]), {})
    ck.check(msg.get("kind") == ev["kind"] == "line_crossing" and
             msg.get("class") == ev.get("class") and msg.get("line") == ev.get("line") and
             msg.get("direction") == ev.get("direction"),
             "/v1/events says what the event message says: %s / %s" % (
                 {k: ev.get(k) for k in ("kind", "class", "line", "direction")},
                 {k: msg.get(k) for k in ("kind", "class", "line", "direction")}))
    row_ready = ("(() => { const r = JSON.parse(%s || 'null');"
                 " return r && r.thumb > 0 && r.clip == 'clip' ? JSON.stringify(r) : ''; })()"
                 % (ROW % ev["id"]))
    row = json.loads(b.wait(row_ready, 20, "event %s listed on the camera page with its "
                            "thumbnail" % ev["id"]))
    ck.check(row["thumb"] == 640, "the event's thumbnail loaded: naturalWidth %d" % row["thumb"])
    want = ["line crossing", str(msg.get("class")), "line %s" % msg.get("line")]
    ck.check(all(w in row["text"] for w in want),
             "the event's row says %s: %r" % (want, row["text"]))
    b.screenshot(os.path.join(o.work, "events-camera.png"))

    # open it with a click on its row (the list may have moved by a row since it was read:
    # the viewer says which event it shows), the snapshot large, the clip playing
    for _ in range(3):
        row = json.loads(b.eval(row_ready) or "null") or row
        b.click(row["x"], row["y"])
        shown = b.wait("document.getElementById('viewer').hidden ? '' :"
                       " document.getElementById('viewer').dataset.id", 5, "the viewer opening")
        if shown == ev["id"]:
            break
        b.eval("document.getElementById('viewer-close').click()")
    ck.check(shown == ev["id"], "a click on the row opens event %s: %s" % (ev["id"], shown))
    v = json.loads(b.wait("(() => { const v = JSON.parse(%s); return v.open && v.snapshot > 0"
                          " && v.ready >= 1 && isFinite(v.duration) ? JSON.stringify(v) : ''; })()"
                          % VIDEO, 20, "the event's snapshot and clip in the viewer"))
    ck.check(v["snapshot"] == 640, "the large snapshot loaded: naturalWidth %d" % v["snapshot"])
    ck.check(abs(v["duration"] - (PRE + POST)) <= 0.5,
             "the clip's duration in Chromium %.3f s within 0.5 s of pre_s + post_s = %.1f s" %
             (v["duration"], PRE + POST))
    t1 = v["t"]
    try:
        v2 = json.loads(b.wait("(() => { const v = JSON.parse(%s); return v.t > %f && v.frames > 0"
                               " ? JSON.stringify(v) : ''; })()" % (VIDEO, t1), 15,
                               "the clip playing"))
        ck.check(True, "the clip plays: currentTime %.2f -> %.2f s, %d frames decoded" %
                 (t1, v2["t"], v2["frames"]))
    except AssertionError as e:
        ck.check(False, "%s: %s" % (e, b.eval(VIDEO)))
    b.screenshot(os.path.join(o.work, "event-open.png"))
    clip_path = os.path.join(o.work, "event-clip.mp4")
    status, headers, body = d.get(ev["clip"])
    with open(clip_path, "wb") as f:
        f.write(body)
    probe = ffprobe_duration(clip_path)
    ck.check(status == 200 and headers.get("Content-Type") == "video/mp4" and
             abs(probe - v["duration"]) <= 0.1,
             "ffprobe's duration of the clip %.3f s, Chromium's %.3f s" % (probe, v["duration"]))
    direct = b.eval(DIRECT % (d.base + ev["clip"]))
    ck.check(abs(direct - (PRE + POST)) <= 0.5,
             "the clip's URL itself in a <video>: duration %.3f s" % direct)
    b.call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape",
           windowsVirtualKeyCode=27)
    b.wait("document.getElementById('viewer').hidden", 5, "Escape closes the viewer")

    # the events view: every camera's events, newest first, with the camera named
    b.call("Page.navigate", url=d.base + "/#events")
    first = json.loads(b.wait(
        "(() => { const li = document.querySelector('#all-events li');"
        " if (!li) return ''; const img = li.querySelector('img');"
        " return img.complete && img.naturalWidth > 0 ? JSON.stringify({id: li.dataset.id,"
        " text: li.textContent, n: document.querySelectorAll('#all-events li').length}) : '';"
        " })()", 20, "the events view's newest event with its thumbnail"))
    api_ids = [e["id"] for e in d.json("/v1/events?limit=30")["events"]]
    ck.check(first["id"] in api_ids[:5] and "camera road" in first["text"] and first["n"] >= 2,
             "the events view lists %d events, the newest %s (camera road) of /v1/events's %s" %
             (first["n"], first["id"], api_ids[:3]))
    b.screenshot(os.path.join(o.work, "events.png"))


def main():
    ap = argparse.ArgumentParser()
    for a in ("itsd", "source", "shared", "work"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    if not shutil.which("chromium"):
        skip("chromium is not installed (Debian package chromium)")
    if websocket is None:
        skip("python3-websocket is not installed")
    ck = Checker()
    t0 = time.time()
    try:
        run(o, ck)
    except AssertionError as e:
        ck.check(False, str(e))
    print("%s in %.1f s; screenshots in %s" % ("FAIL" if ck.failures else "PASS",
                                               time.time() - t0, o.work))
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
