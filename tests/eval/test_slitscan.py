#!/usr/bin/env python3
"""its-slitscan on a real video: the image's size follows the line and the frames, the rows
hold the line's pixels (the white coach on the bridge's left lane, the grey road elsewhere),
and bad usage or a bad scene exit with status 2 and one message.

    test_slitscan.py TOOL SOURCE_ROOT SHARED_DIR WORK_DIR
"""
import os
import struct
import subprocess
import sys
import zlib

SCENE = "deploy/scenes/traffic_bridge_720p.yaml"   # line deck: (330, 450)-(880, 450)
VIDEO = "media/traffic_bridge_720p.mp4"            # 1280x720, 30 fps


def read_png(path):
    """(width, height, rows of RGB bytes) of an 8-bit RGB PNG written with filter 0."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert (depth, ctype) == (8, 2), "not 8-bit RGB"
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = 1 + 3 * w
    rows = [raw[y * stride + 1:(y + 1) * stride] for y in range(h)]
    assert all(raw[y * stride] == 0 for y in range(h)), "unexpected PNG filter"
    return w, h, rows


def mean(row, x0, x1):
    px = row[3 * x0:3 * x1]
    return sum(px) / len(px)


def main():
    tool, root, shared, work = sys.argv[1:5]
    video = os.path.join(shared, VIDEO)
    if not os.path.isfile(video):
        print(f"{video} missing: " + ("failing (CI=true)" if os.environ.get("CI") in ("true", "1")
                                       else "skipped"))
        return 1 if os.environ.get("CI") in ("true", "1") else 77
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "slit.png")
    scene = os.path.join(root, SCENE)
    # frames 60..89 (2 s to 3 s), 2 rows a frame, slits 12 px apart
    p = subprocess.run([tool, "-s", scene, "--start", "2", "--end", "3", video, out],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "frames 60..89" in p.stdout, p.stdout
    w, h, rows = read_png(out)
    length = 880 - 330 + 1                       # one pixel per column of the line
    assert w == 44 + 3 * length + 2 * 6 + 40, w  # margins, three panels, two gaps
    assert h == 14 + 30 * 2, h                   # title row, 30 frames of 2 rows
    panel0 = 44 + length + 6                     # the line itself
    for f in (0, 15, 29):
        row = rows[14 + 2 * f]
        # the coach covers the left lane's part of the line from frame 0 to about 97: bright
        # white roof and front; the middle lane between the cars is grey asphalt
        coach = mean(row, panel0 + 40, panel0 + 140)
        assert coach > 150, (f, coach)
    # the seconds on the right margin: a cyan tick at 2 s (the first row) and at 3 s (just
    # past the last frame: not drawn)
    right = 44 + 3 * length + 2 * 6
    assert rows[14][3 * right:3 * right + 3] == b"\x00\xff\xff"
    # the side slits sample other pixels than the line itself: the three panels differ
    panels = [44 + k * (length + 6) for k in range(3)]
    row = rows[14 + 2 * 10]
    cuts = [row[3 * x:3 * (x + length)] for x in panels]
    assert cuts[0] != cuts[1] and cuts[1] != cuts[2]

    def fails(args, text):
        q = subprocess.run([tool] + args, capture_output=True, text=True)
        assert q.returncode == 2, (args, q.returncode, q.stderr)
        assert text in q.stderr, (args, q.stderr)

    fails(["-s", scene, video], "the following arguments are required")
    fails(["-s", scene, "-l", "nowhere", video, out], "no line named 'nowhere'")
    fails(["-s", os.path.join(root, "deploy/scenes/traffic_road_cctv_360p.yaml"), video, out],
          "scene is for 640x360, the video is 1280x720")
    fails(["-s", scene, os.path.join(work, "missing.mp4"), out], "cannot probe")
    print("its-slitscan: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
