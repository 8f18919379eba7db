"""The recipe of the home page's image: Debian's static busybox and an empty web root.

:mod:`chaton.services.images` turns :func:`rootfs` and :data:`CONFIG` into an
image archive. The page itself is written by ``app.py`` from the instance's
settings; ``/www/health`` answers the health check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaton.services.images import RootFs

#: Debian's ``busybox-static`` (scripts/install-debian.sh): it runs in an empty root.
BUSYBOX = Path("/bin/busybox")
PORT = 8080
#: busybox httpd as pid 1 would ignore SIGTERM: a shell waits for it and exits on TERM.
_PROGRAM = f'trap "exit 0" TERM; /bin/busybox httpd -f -p {PORT} -h /www & wait'

CONFIG: dict[str, Any] = {
    "Cmd": ["/bin/busybox", "sh", "-c", _PROGRAM],
    "ExposedPorts": {f"{PORT}/tcp": {}},
    "User": "65534:65534",
    "Healthcheck": {
        "Test": ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null",
                 f"http://127.0.0.1:{PORT}/health"],
        "Interval": 5_000_000_000, "Timeout": 2_000_000_000, "Retries": 3,
        "StartPeriod": 0,
    },
}


def rootfs() -> bytes:
    """Return the image's root file system as a tar. Raise OSError without busybox."""
    root = RootFs()
    root.directory("bin")
    root.file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
    root.directory("www")
    root.file("www/health", b"ok\n")
    root.file("www/index.html", b"<!doctype html><title>\xe2\x80\xa6</title>\n")
    root.directory("tmp", mode=0o1777)
    root.directory("etc")
    root.file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    return root.tar()

