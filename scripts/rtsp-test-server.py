#!/usr/bin/python3
"""A real RTSP server for the liveness tests: Debian's GStreamer RTSP server (gst-rtsp-server)
serving a test pattern at rtsp://127.0.0.1:PORT/test, behind Digest when a user is given.
Usage: rtsp-test-server.py PORT [USER PASSWORD]. Packages: gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-rtsp, gstreamer1.0-plugins-base/-good, python3-gi (scripts/system-packages.sh).
Debian's python3, not a virtualenv's: python3-gi lives there."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
# Raw RGB over RTP (rtpvrawpay): no encoder; DESCRIBE prepares the pipeline to write the SDP.
factory.set_launch("( videotestsrc is-live=true ! video/x-raw,format=RGB,width=160,height=120,framerate=5/1 ! rtpvrawpay name=pay0 pt=96 )")
factory.set_shared(True)
if len(sys.argv) == 4:
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_digest(sys.argv[2], sys.argv[3], token)
    server.set_auth(auth)
    factory.add_role_from_structure(
        Gst.Structure.from_string("viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on 127.0.0.1:{port}")
print(f"rtsp://127.0.0.1:{port}/test", flush=True)
GLib.MainLoop().run()
