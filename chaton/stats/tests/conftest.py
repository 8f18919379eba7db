"""Fixtures of the statistics tests: a local HTTP server answering as the applications'
documented APIs, instances pointing at it, an administrator."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaton.core import clock
from chaton.stats.collectors import Source, local_files

Answer = tuple[int, Any]


class ApiServer:
    """Answers ``GET``/``POST`` on a free loopback port from ``routes``: path → answer, or
    path → function(request body, headers, query) → answer. Records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer | Callable[..., Answer]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                server.requests.append((self.command, self.path, dict(self.headers)))
                if server.delay:
                    threading.Event().wait(server.delay)
                route = server.routes.get(path)
                if route is None:
                    status, payload = 404, {"error": "not found"}
                elif callable(route):
                    status, payload = route(body, dict(self.headers), query)
                else:
                    status, payload = route
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A client that gave up (a collector past its timeout) is no error of the server's.
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        return self

    def __exit__(self, *args: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture(autouse=True)
def clock_back() -> Iterator[None]:
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


def make_source(url: str, *, secrets: dict[str, str] | None = None,
                folders: dict[str, Path] | None = None, sql: Any = None) -> Callable[..., Source]:
    """Return a source factory (as ``collect_day`` takes) reading every instance at ``url``."""
    def factory(instance: Any, day: dt.date, client: httpx.Client) -> Source:
        usage = [(figure.name, figure.source, figure.query) for figure in instance.manifest.usage]
        return Source(slug=instance.slug, entry=instance.application, day=day, base_url=url,
                      client=client, secrets=secrets if secrets is not None else {
                          "stats_token": "token", "admin_password": "secret"},
                      sql=sql, files=local_files(folders or {}), usage=usage)
    return factory


@pytest.fixture
def host(db: None) -> Any:
    from chaton.services.models import Host

    return Host.objects.create(name="box", docker_url="unix:///run/fake/docker.sock")


@pytest.fixture
def make_instance(host: Any) -> Callable[..., Any]:
    from chaton.services.models import Instance

    ports = iter(range(21000, 22000))

    def make(application: str, slug: str) -> Any:
        return Instance.objects.create(slug=slug, application=application,
                                       domain=f"{slug}.example.org", host=host, port=next(ports))
    return make


@pytest.fixture
def admin(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                     email="wren@example.org", is_admin=True)


@pytest.fixture
def member(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("robin", acting_user=None, display_name="Robin",
                                     email="robin@example.org")
