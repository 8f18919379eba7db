"""The ChatonsInfos files over real HTTP: ``chaton chatonsinfos check --url`` fetches
organization.properties from a running Chaton (pytest-django's ``live_server``), follows its
``subs.*`` links and passes every file through the validator; a site that serves a broken file
makes it exit 1."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chaton.core.servers import free_port
from chaton.services.models import Host, Instance
from chaton.transparency import actions

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_check_over_http_passes_every_served_file(live_server: Any, settings: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from chaton.cli.transparency import chatonsinfos_app

    monkeypatch.setattr(settings.CHATON, "public_url", live_server.url)
    actions.do_update_profile(acting_user=None, name="Chaton Demo", country_code="FR",
                              website="https://chaton-demo.example.org/")
    host = Host.objects.create(name="main", docker_url="unix:///run/docker.sock",
                               is_default=True)
    for index, (slug, application) in enumerate([("pads", "etherpad"), ("chat", "mattermost"),
                                                 ("paste", "privatebin")]):
        Instance.objects.create(slug=slug, application=application,
                                domain=f"{slug}.example.org", host=host, port=20001 + index)
    result = CliRunner().invoke(chatonsinfos_app, ["check", "--url", live_server.url])
    assert result.exit_code == 0, result.output
    checked = [line for line in result.output.splitlines() if line.startswith("ok")]
    assert len(checked) == 4, result.output
    assert f"ok    {live_server.url}/.well-known/chatonsinfos/chat.properties" in result.output


class BrokenFiles(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (b"file.class = organization\nfile.protocol = ChatonsInfos-0.5\n"
                b"organization.name = Elsewhere\norganization.website = elsewhere.example\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broken_site() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", free_port()), BrokenFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_over_http_exits_1_on_a_broken_file(broken_site: str) -> None:
    from chaton.cli.transparency import chatonsinfos_app

    result = CliRunner().invoke(chatonsinfos_app, ["check", "--url", broken_site])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert "organization.website" in result.output and "file.datetime: missing" in result.output
    assert "not text/plain" in result.output
