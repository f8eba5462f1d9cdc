"""Helpers shared by the Python integration tests and benchmarks (the counterpart of
testutil.h): the CI skip rule and a free loopback port.

    sys.path.insert(0, os.path.join(ROOT, "tests", "common"))
    from testutil import free_port, skip
"""
import os
import socket
import sys


def skip(why):
    """Skip the test (exit 77, ctest's SKIP_RETURN_CODE), or fail it under CI=true, where a
    missing reference or service is a failure."""
    if os.environ.get("CI") == "true":
        print("FAIL (CI=true, nothing may be skipped): " + why)
        sys.exit(1)
    print("skipped: " + why)
    sys.exit(77)


def free_port():
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
