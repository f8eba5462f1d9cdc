#!/usr/bin/python3
"""A real RTSP server for the ingest tests: GStreamer's gst-rtsp-server (Debian packages
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-{base,good,bad}) serving one
H.264 video file (MP4) at rtsp://127.0.0.1:PORT/cam, in real time, over RTP/UDP or RTP
interleaved in the RTSP TCP connection, as the client asks. Prints "ready" on stdout once it
listens; runs until killed.

    rtsp_server.py --port 8554 --media /path/to/video.mp4
    rtsp_server.py --check     # exit 0 if GStreamer and its RTSP server are usable
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--media")
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    Gst.init(None)
    need = ["filesrc", "qtdemux", "h264parse", "rtph264pay"]
    missing = [e for e in need if Gst.ElementFactory.find(e) is None]
    if missing:
        print("missing GStreamer elements: " + ", ".join(missing), file=sys.stderr)
        return 1
    if a.check:
        return 0
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        '( filesrc location="%s" ! qtdemux name=d d.video_0 ! queue ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )" % a.media
    )
    server.get_mount_points().add_factory(a.mount, factory)
    if server.attach(None) == 0:
        print("cannot listen on 127.0.0.1:%d" % a.port, file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
