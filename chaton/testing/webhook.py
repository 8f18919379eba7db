"""A local incoming webhook for the tests: a real HTTP server on loopback that keeps each POST."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The secret part of the tests' webhook URLs: it must never reach a log line.
HOOK_PATH = "/hooks/s3cr3t-t0ken-of-the-team-channel"


@dataclass
class Received:
    path: str
    content_type: str
    body: dict[str, str]


@dataclass
class WebhookReceiver:
    """Answers ``status`` after ``delay`` seconds and keeps each POST in :attr:`received`."""

    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"


@contextmanager
def webhook_receiver(port: int) -> Iterator[WebhookReceiver]:
    """Run a webhook receiver on 127.0.0.1:``port`` in a thread; stopped after the block."""
    receiver = WebhookReceiver(port=port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            receiver.received.append(Received(self.path, self.headers["Content-Type"], body))
            time.sleep(receiver.delay)
            try:
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what a timeout test wants

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test's output stays readable

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
