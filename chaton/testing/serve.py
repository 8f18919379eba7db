"""Run ``chaton serve`` as a child process of a test, on free loopback ports, until it answers.

The tests of what ``chaton serve`` starts and stops (its Caddy, its dockerd)
share this: the environment of a throwaway data directory and the wait for
the pages to answer.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

from chaton.core.servers import free_port

#: The console script of the running interpreter's environment.
CHATON = [str(Path(sys.executable).with_name("chaton"))]


def serve_environment(data: Path, configuration: Path, **variables: str) -> dict[str, str]:
    """Given a data directory, a configuration file and ``CHATON_*`` variables, return the
    environment of a ``chaton serve`` that touches nothing of the test session's: its own
    data, no managed slapd (an LDAP address nothing listens on), English messages."""
    environment = {**os.environ, "CHATON_DATA_DIR": str(data), "CHATON_LDAP_MANAGED": "false",
                   "CHATON_LDAP_URL": f"ldap://127.0.0.1:{free_port()}",
                   "CHATON_LANGUAGE": "en", "CHATON_CONFIG": str(configuration), **variables}
    environment.pop("CHATON_DATABASE_URL", None)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return environment


def start_serve(environment: dict[str, str], *, timeout: float,
                poll_seconds: float = 0.2) -> subprocess.Popen[str]:
    """Start ``chaton serve --no-worker`` on a free port and return it once its pages answer
    (below 500). Raise AssertionError, with its output, when it exits or does not answer
    within ``timeout`` seconds; it is stopped then."""
    port = free_port()
    server = subprocess.Popen([*CHATON, "serve", "--no-worker", "--listen", f"127.0.0.1:{port}"],
                              env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.monotonic() + timeout, None
        while status is None and time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/i18n/setlang/")
                status = connection.getresponse().status
                connection.close()
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(poll_seconds)
        assert status is not None and status < 500
    except BaseException:
        if server.poll() is None:
            server.kill()
        server.wait()
        raise
    return server
