#!/usr/bin/env python3
"""its-infer for people: progress on a terminal, --draw on a video and on images.

- Progress: with stderr on a terminal (a pseudo-terminal here) a video shows
  "NAME: frame n/N, F fps, m:ss left", redrawn in place, ending with "frame N/N"; with stderr
  on a pipe, none of it.
- --draw on a video writes DIR/NAME.mp4: ffprobe finds H.264 at the source's size and rate
  with as many frames as were analysed, and its frames are the source's (close in value) with
  the boxes of the JSON detections drawn on them (the pixels under a box's top edge change,
  the source's elsewhere stay).
- --draw on an image keeps its name and format (bus.jpg -> DIR/bus.jpg as JPEG, a PNG as
  PNG), and never writes over its input.

    test_infer_human.py INFER SHARED WORK

Exit status: 0 pass, 1 fail, 77 the shared data is missing (1 under CI=true).
"""
import json
import os
import pty
import select
import shutil
import subprocess
import sys

FRAMES = 12
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def probe(path, entries):
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", entries, "-of", "json", path],
                       capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def frame_rgb(path, n, w, h):
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"select=eq(n\\,{n})",
                        "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                       capture_output=True)
    return p.stdout if len(p.stdout) == w * h * 3 else None


def run_on_pty(cmd):
    """Run cmd with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait()
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace")


def main():
    infer, shared, work = sys.argv[1:4]
    model = os.path.join(shared, "models", "yolox-nano", "yolox_nano.onnx")
    video = os.path.join(shared, "media", "traffic_road_cctv_360p.mp4")
    image = os.path.join(shared, "media", "bus.jpg")
    if not all(os.path.exists(x) for x in (model, video, image)):
        print("missing shared data")
        return 1 if os.environ.get("CI") == "true" else 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    os.environ.update(env)
    name = os.path.basename(video)

    # ---- progress -----------------------------------------------------------------------
    rc, text = run_on_pty([infer, "-m", model, "-t", "1", "--max-frames", str(FRAMES), video])
    check(rc == 0, f"its-infer on a terminal exits 0 ({rc})")
    shown = [s.replace("\x1b[K", "").strip() for s in text.replace("\r\n", "\r").split("\r")]
    shown = [s for s in shown if s]
    print("  terminal: %r" % shown[-3:])
    check(any(s.startswith(f"{name}: frame ") and s.endswith(" left") and
              f"/{FRAMES}, " in s and " fps, " in s for s in shown),
          "progress lines 'NAME: frame n/N, F fps, m:ss left' while it runs")
    check(shown and shown[-1].startswith(f"{name}: frame {FRAMES}/{FRAMES}, ") and
          shown[-1].endswith(" fps"), f"the last progress line says frame {FRAMES}/{FRAMES}")
    p = subprocess.run([infer, "-m", model, "-t", "1", "--max-frames", "3", video],
                       capture_output=True, text=True)
    check(p.returncode == 0 and "frame " not in p.stderr and "\r" not in p.stderr,
          "no progress when stderr is a pipe (%r)" % p.stderr[-200:])

    # ---- --draw on a video --------------------------------------------------------------
    draw = os.path.join(work, "draw")
    p = subprocess.run([infer, "-m", model, "-t", "1", "--max-frames", str(FRAMES), "--track",
                        "-s", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                           "deploy", "scenes", "traffic_road_cctv_360p.yaml"),
                        "--draw", draw, video], capture_output=True, text=True)
    check(p.returncode == 0, f"--draw on a video exits 0 ({p.returncode}: {p.stderr[-300:]})")
    out = os.path.join(draw, "traffic_road_cctv_360p.mp4")
    check(os.path.exists(out), "--draw writes DIR/NAME.mp4")
    src = probe(video, "stream=width,height,r_frame_rate")["streams"][0]
    got = probe(out, "stream=codec_name,width,height,r_frame_rate,nb_read_frames")
    s = got.get("streams", [{}])[0]
    check(s.get("codec_name") == "h264", f"codec {s.get('codec_name')} is H.264")
    check((s.get("width"), s.get("height")) == (src["width"], src["height"]),
          f"size {s.get('width')}x{s.get('height')} is the source's")
    check(s.get("r_frame_rate") == src["r_frame_rate"],
          f"rate {s.get('r_frame_rate')} is the source's {src['r_frame_rate']}")
    check(s.get("nb_read_frames") == str(FRAMES), f"{s.get('nb_read_frames')} frames == {FRAMES}")
    # frame 6: the drawn boxes of the JSON's detections, the source's pixels elsewhere
    w, h = src["width"], src["height"]
    msgs = [json.loads(x) for x in p.stdout.splitlines()]
    f6 = [m for m in msgs if m.get("type") == "infer" and m["frame"] == 6][0]
    a, b = frame_rgb(video, 6, w, h), frame_rgb(out, 6, w, h)
    check(a is not None and b is not None, "frame 6 of both decodes")
    if a and b:
        def px(buf, x, y):
            i = 3 * (y * w + x)
            return buf[i:i + 3]

        on_edge, changed = 0, 0
        for d in f6["detections"]:
            x1, y1, x2 = (int(d["box"][0] * w), int(d["box"][1] * h), int(d["box"][2] * w))
            for x in range(x1 + 3, x2 - 3, 4):
                on_edge += 1
                changed += sum(abs(u - v) for u, v in zip(px(a, x, y1), px(b, x, y1))) > 60
        check(on_edge > 0 and changed >= 0.8 * on_edge,
              f"box top edges drawn: {changed} of {on_edge} edge pixels changed")
        inside = [d["box"] for d in f6["detections"]]

        def covered(x, y):
            return any(bx[0] * w - 40 <= x <= bx[2] * w + 40 and bx[1] * h - 40 <= y <=
                       bx[3] * h + 40 for bx in inside)

        diff = n = 0
        for y in range(0, h, 7):
            for x in range(0, w, 7):
                if not covered(x, y):
                    diff += sum(abs(u - v) for u, v in zip(px(a, x, y), px(b, x, y)))
                    n += 3
        check(n > 0 and diff / n < 6, f"away from the boxes, the source's pixels (mean |diff| "
              f"{diff / max(n, 1):.2f})")

    # ---- --draw on images: the name and the format are kept -----------------------------
    png = os.path.join(work, "bus_small.png")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", image, "-vf", "scale=405:540", png],
                   check=True)
    p = subprocess.run([infer, "-m", model, "-t", "1", "--draw", draw, image, png],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"--draw on images exits 0 ({p.returncode}: {p.stderr[-300:]})")
    jpg_out, png_out = os.path.join(draw, "bus.jpg"), os.path.join(draw, "bus_small.png")
    head = open(jpg_out, "rb").read(3) if os.path.exists(jpg_out) else b""
    check(head == b"\xff\xd8\xff", "bus.jpg -> DIR/bus.jpg, a JPEG")
    head = open(png_out, "rb").read(8) if os.path.exists(png_out) else b""
    check(head == b"\x89PNG\r\n\x1a\n", "bus_small.png -> DIR/bus_small.png, a PNG")
    dims = probe(png_out, "stream=width,height").get("streams", [{}])[0]
    check((dims.get("width"), dims.get("height")) == (405, 540), f"the PNG keeps its size {dims}")
    before = open(png, "rb").read()
    p = subprocess.run([infer, "-m", model, "-t", "1", "--draw", work, png],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "the input itself" in p.stderr and open(png, "rb").read() == before,
          f"--draw into the input's own folder is refused ({p.returncode}: {p.stderr.strip()})")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
