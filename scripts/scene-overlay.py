#!/usr/bin/env python3
"""Draw a scene file over a frame of its video, to check the geometry by eye.

    scripts/scene-overlay.py deploy/scenes/X.yaml VIDEO OUT.png [SECONDS]

Counting lines red (with a tick on the positive side), lanes green (with the travel
direction), zones blue, the calibration quadrilateral yellow. Needs ffmpeg and PyYAML.
"""
import subprocess
import sys

import yaml


def main():
    scene_path, video, out = sys.argv[1:4]
    at = sys.argv[4] if len(sys.argv) > 4 else "2"
    sc = yaml.safe_load(open(scene_path))
    w, h = sc["frame"]
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-ss", at, "-i", video, "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-"],
                         check=True, capture_output=True).stdout
    img = bytearray(raw)

    def dot(x, y, c):
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                xi, yi = int(round(x)) + dx, int(round(y)) + dy
                if 0 <= xi < w and 0 <= yi < h:
                    img[(yi * w + xi) * 3:(yi * w + xi) * 3 + 3] = bytes(c)

    def line(a, b, c):
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
        for i in range(n + 1):
            t = i / n
            dot(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, c)

    def poly(p, c):
        for i in range(len(p)):
            line(p[i], p[(i + 1) % len(p)], c)

    def arrow(o, d, c, length=40):
        n = (d[0] ** 2 + d[1] ** 2) ** 0.5
        e = (o[0] + d[0] / n * length, o[1] + d[1] / n * length)
        line(o, e, c)
        dot(e[0], e[1], (255, 255, 255))

    if "calibration" in sc:
        poly(sc["calibration"]["image"], (255, 255, 0))
    for z in sc.get("zones", []):
        poly(z["polygon"], (60, 120, 255))
    for ln in sc.get("lanes", []):
        poly(ln["polygon"], (0, 230, 0))
        p = ln["polygon"]
        c = (sum(q[0] for q in p) / len(p), sum(q[1] for q in p) / len(p))
        arrow(c, ln["direction"], (0, 230, 0))
    for ln in sc.get("lines", []):
        a, b = ln["points"]
        line(a, b, (255, 0, 0))
        arrow(((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), ln["positive"], (255, 0, 0), 25)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{w}x{h}", "-i", "-", out], input=bytes(img), check=True)


if __name__ == "__main__":
    main()
