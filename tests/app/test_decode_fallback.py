#!/usr/bin/env python3
"""itsd's choice of decoder per camera on a machine without a GPU (CI), end to end.

itsd runs with engine.backend cuda and engine.fallback cpu (the cpu engine stands in: there is
no GPU), so cameras with decode auto try NVDEC first. Five cameras loop real H.264 files:
- cam-a1, cam-a2 (decode auto): decode on the CPU; the fallback is logged once and counted
  once per camera, its_decode_fallback_total{reason="no_device"} == 2, and stays 2 after the
  files have looped (rewinds) several times;
- cam-c (decode cpu): decodes on the CPU without a fallback to count;
- cam-n (decode nvdec): never decodes on the CPU: opening fails with the reason in the log
  and the camera is down (open failures counted, retried with backoff);
- /v1/cameras names the decoder ("cpu") of every camera, its_camera_nvdec is 0 for each.
"""
import argparse
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testutil import free_port, skip  # noqa: E402

VIDEO = "media/traffic_highway_curve_720p.mp4"  # 161 frames (SOURCES.md): loops every 6.7 s


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.read().decode()


def samples(text, name):
    """{labels-string: value} of one metric."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--itsd", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    o = ap.parse_args()
    try:
        ctypes.CDLL("libcuda.so.1")
        skip("a CUDA driver is present: this test is of a machine without one")
    except OSError:
        pass
    video = os.path.join(o.shared, VIDEO)
    model = os.path.join(o.shared, "models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx")
    if not os.path.exists(video) or not os.path.exists(model):
        skip("shared media or model missing")
    os.makedirs(o.work, exist_ok=True)
    port = free_port()
    cfg = os.path.join(o.work, "itsd.yaml")
    cams = [("cam-a1", "auto"), ("cam-a2", None), ("cam-c", "cpu"), ("cam-n", "nvdec")]
    with open(cfg, "w") as f:
        f.write("engine:\n  backend: cuda\n  fallback: cpu\n  threads: 1\n  workers: 1\n"
                "  model: %s\n" % json.dumps(model))
        f.write("sink:\n  type: \"null\"\nstatus:\n  interval_s: 0\n"
                "api:\n  port: %d\nanalytics:\n  enabled: false\ncameras:\n" % port)
        for cid, dec in cams:  # cam-a2: decode left out, auto by default
            f.write("  - {id: %s, url: %s, kind: file, loop: true, fps: 24, max_width: 640, "
                    "max_height: 360%s}\n" % (cid, json.dumps(video),
                                             ", decode: " + dec if dec else ""))
    err_path = os.path.join(o.work, "itsd.err")
    p = subprocess.Popen([o.itsd, "-c", cfg], stdout=subprocess.DEVNULL,
                         stderr=open(err_path, "wb"))
    ok = False
    try:
        deadline = time.monotonic() + 120
        first = None
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(1)
            try:
                text = get(port, "/metrics")
            except OSError:
                continue
            fb = samples(text, "its_decode_fallback_total")
            if fb.get('{reason="no_device"}') == 2:
                first = time.monotonic()
                break
        assert first is not None, "no fallback counted within 120 s (itsd exited: %s)" % p.poll()
        # the files loop (each rewinds every 6.7 s of pacing) and cam-n retries: still 2
        loops = 0
        while loops < 2 and time.monotonic() < deadline:
            time.sleep(1)
            cams_doc = json.loads(get(port, "/v1/cameras"))
            text = get(port, "/metrics")
            # frames captured = processed + dropped (the cpu engine keeps few of them)
            loops = min(int(c["frames"]) + int(c["drops"]) for c in cams_doc["cameras"]
                        if c["id"] != "cam-n") // 161
        fb = samples(text, "its_decode_fallback_total")
        assert fb == {'{reason="no_device"}': 2.0}, fb
        nv = samples(text, "its_camera_nvdec")
        for cid, _ in cams:
            assert nv.get('{camera="%s"}' % cid) == 0.0, (cid, nv)
        opens = samples(text, "its_camera_open_failures_total")
        assert opens.get('{camera="cam-n"}', 0) >= 1, opens
        assert opens.get('{camera="cam-a1"}', 0) == 0, opens
        by_id = {c["id"]: c for c in cams_doc["cameras"]}
        for cid, _ in cams:
            assert by_id[cid]["decoder"] == "cpu", by_id[cid]
        assert by_id["cam-n"]["state"] != "running", by_id["cam-n"]
        assert by_id["cam-n"]["frames"] == 0, by_id["cam-n"]
        assert by_id["cam-a1"]["state"] == "running", by_id["cam-a1"]
        assert loops >= 2, "the auto cameras did not loop twice (frames %s)" % by_id
        ok = True
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
        log = open(err_path, encoding="utf-8", errors="replace").read()
        if not ok:
            print(log[-6000:])
    assert rc == 0, "itsd exited %d" % rc
    for cid in ("cam-a1", "cam-a2"):
        said = [l for l in log.splitlines() if cid in l and "decoding on the CPU, not NVDEC" in l]
        assert len(said) == 1, (cid, said)
        assert "(no_device)" in said[0], said[0]
    assert not [l for l in log.splitlines() if "cam-c" in l and "NVDEC" in l]
    said = [l for l in log.splitlines() if "cam-n" in l and "decode nvdec: no CUDA device" in l]
    assert len(said) >= 1, log[-4000:]
    print("ok: 2 auto cameras counted once each (no_device), cpu and nvdec cameras not counted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
