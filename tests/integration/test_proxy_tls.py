"""The reverse proxy for real: Caddy configured by sync_proxy, certificates issued by pebble.

Each test gets its own Caddy (the ``caddy`` fixture, ACME CA = the session's
pebble, HTTP-01 validated for real) and stdlib HTTP backends on loopback. A
client connects to 127.0.0.1 with the domain as SNI and Host, and trusts only
pebble's issuing root. Nothing here skips: a server that does not start is a
failure.
"""

from __future__ import annotations

import http.client
import http.server
import json
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from django.conf import settings

from chaton.adapters.caddy import CaddyStartError
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.servers import free_port
from chaton.services.proxy import ProxyRejected, ProxyUnavailable, Route, sync_proxy
from chaton.testing.acme import Pebble, https_get, wait_for_https
from chaton.testing.serve import serve_environment, start_serve

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("english")]

CHATON = [str(Path(sys.executable).with_name("chaton"))]


@dataclass
class Backend:
    """A stdlib HTTP server on loopback that answers ``page`` to every GET."""

    port: int
    page: bytes

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    """Yield two running backends, each with its own page."""
    servers: list[http.server.ThreadingHTTPServer] = []
    found: list[Backend] = []
    for index in range(2):
        page = f"backend {index} {secrets.token_hex(4)}".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            body = page

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(self.body)))
                self.end_headers()
                self.wfile.write(self.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        found.append(Backend(server.server_address[1], page))
    try:
        yield found
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _domain(name: str) -> str:
    """Return a domain no other test used: each test sees its own certificate issued."""
    return f"{name}-{secrets.token_hex(3)}.chaton.test"


def _https_port() -> int:
    return settings.CHATON.proxy.https_port


def _wait(domain: str, backend: Backend, roots: Path, timeout: float = 30.0):
    return wait_for_https(domain, _https_port(), roots=roots, expect=backend.page,
                          timeout=timeout)


def _wait_until_not_served(domain: str, backend: Backend, roots: Path,
                           timeout: float = 10.0) -> None:
    """Wait until ``domain`` no longer gives the backend's page (handshake refused, or 404)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = https_get(domain, _https_port(), roots=roots, timeout=2)
        except ssl.SSLError:
            return
        if backend.page not in answer.body and answer.status == 404:
            return
        assert time.monotonic() < deadline, f"{domain} still answers {answer.status}"
        time.sleep(0.05)


def test_a_route_answers_over_https_with_a_certificate_pebble_issued(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend],
        capsys: pytest.CaptureFixture[str]) -> None:
    domain, backend = _domain("pad"), backends[0]
    roots = pebble.roots_path()
    started = time.monotonic()
    lines = sync_proxy([Route(domain, backend.upstream)])
    answer = _wait(domain, backend, roots)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nBENCH proxy_sync_to_first_https_answer_s {elapsed:.3f} s "
              "(new certificate issued by pebble)")
    # The route, then the settings of a fresh Caddy (ports, ACME, storage …).
    assert domain in lines[0] and not any(domain in line for line in lines[1:])
    assert answer.status == 200 and answer.body == backend.page
    assert answer.issuer == pebble.intermediate().subject
    names = answer.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert domain in [name.value for name in names]
    # The same routes again: nothing to change, nothing loaded.
    assert sync_proxy([Route(domain, backend.upstream)]) == []
    assert sync_proxy([Route(domain, backend.upstream)], dry_run=True) == []


def test_plain_http_redirects_to_https(caddy: ManagedCaddy, pebble: Pebble,
                                       backends: list[Backend]) -> None:
    domain = _domain("redirect")
    sync_proxy([Route(domain, backends[0].upstream)])
    _wait(domain, backends[0], pebble.roots_path())
    connection = http.client.HTTPConnection("127.0.0.1", settings.CHATON.proxy.http_port,
                                            timeout=5)
    try:
        connection.request("GET", "/page", headers={"Host": domain})
        response = connection.getresponse()
    finally:
        connection.close()
    assert response.status in {301, 308}
    # Caddy leaves out the port when it is the configured https_port: what the world sees
    # as 443 (a forwarded port) in production.
    assert response.getheader("Location") == f"https://{domain}/page"


def test_dry_run_shows_the_plan_and_changes_nothing(caddy: ManagedCaddy, pebble: Pebble,
                                                    backends: list[Backend]) -> None:
    domain = _domain("dry")
    routes = [Route(domain, backends[0].upstream)]
    planned = sync_proxy(routes, dry_run=True)
    assert planned and domain in planned[0]
    assert "apps" not in caddy.client().read_config()
    with pytest.raises(OSError):
        https_get(domain, _https_port(), roots=pebble.roots_path(), timeout=2)
    assert sync_proxy(routes) == planned


def test_removed_route_stops_answering_and_others_keep_serving(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend]) -> None:
    pad, team = _domain("pad"), _domain("team")
    roots = pebble.roots_path()
    sync_proxy([Route(pad, backends[0].upstream), Route(team, backends[1].upstream)])
    _wait(pad, backends[0], roots)
    _wait(team, backends[1], roots)
    lines = sync_proxy([Route(team, backends[1].upstream)])
    assert len(lines) == 1 and pad in lines[0]
    _wait_until_not_served(pad, backends[0], roots)
    assert https_get(team, _https_port(), roots=roots).body == backends[1].page


def test_changed_upstream_is_reported_and_served(caddy: ManagedCaddy, pebble: Pebble,
                                                 backends: list[Backend]) -> None:
    domain = _domain("moved")
    roots = pebble.roots_path()
    sync_proxy([Route(domain, backends[0].upstream)])
    _wait(domain, backends[0], roots)
    [line] = sync_proxy([Route(domain, backends[1].upstream)])
    assert backends[0].upstream in line and backends[1].upstream in line
    _wait(domain, backends[1], roots, timeout=5)


def test_a_route_changed_by_hand_shows_in_the_plan_before_the_sync_puts_it_back(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend]) -> None:
    from chaton.services.proxy import describe, plan_proxy

    domain, roots = _domain("hand"), pebble.roots_path()
    routes = [Route(domain, backends[0].upstream)]
    sync_proxy(routes)
    _wait(domain, backends[0], roots)
    # Someone points the route at the other backend through Caddy's own admin API.
    body = json.dumps([{"dial": backends[1].upstream}]).encode()
    connection = http.client.HTTPConnection("127.0.0.1", caddy.port, timeout=10)
    connection.request("PATCH", f"/id/chaton-route-{domain}/handle/0/upstreams", body=body,
                       headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 200
    connection.close()
    _wait(domain, backends[1], roots, timeout=5)
    [line] = describe(plan_proxy(routes))
    assert domain in line and backends[0].upstream in line and backends[1].upstream in line
    # The plan changed nothing; the sync does, and then the plan is empty.
    _wait(domain, backends[1], roots, timeout=5)
    assert sync_proxy(routes) == [line]
    _wait(domain, backends[0], roots, timeout=5)
    assert describe(plan_proxy(routes)) == []


def test_an_admin_api_that_is_down_is_a_clear_error_and_the_next_sync_completes(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend]) -> None:
    first, second = _domain("first"), _domain("second")
    roots = pebble.roots_path()
    sync_proxy([Route(first, backends[0].upstream)])
    _wait(first, backends[0], roots)
    caddy.stop()
    wanted = [Route(first, backends[0].upstream), Route(second, backends[1].upstream)]
    with pytest.raises(ProxyUnavailable) as raised:
        sync_proxy(wanted)
    assert caddy.admin_url in str(raised.value)
    assert raised.value.status == 503
    caddy.start()
    # Caddy took back its saved configuration: the first domain answers before any sync.
    _wait(first, backends[0], roots, timeout=5)
    lines = sync_proxy(wanted)
    assert len(lines) == 1 and second in lines[0]
    _wait(second, backends[1], roots)


def test_nothing_listening_at_the_admin_url_is_a_clear_error(
        caddy: ManagedCaddy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings.CHATON.proxy, "admin_url", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(ProxyUnavailable, match="cannot be reached"):
        sync_proxy([Route("pad.chaton.test", "127.0.0.1:1")])
    assert time.monotonic() - started < 5


def test_a_restarted_caddy_loses_nothing_after_the_next_sync(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend],
        capsys: pytest.CaptureFixture[str]) -> None:
    domain = _domain("restart")
    roots = pebble.roots_path()
    routes = [Route(domain, backends[0].upstream)]
    sync_proxy(routes)
    issued = _wait(domain, backends[0], roots).certificate
    # A plain restart: Caddy resumes its saved configuration, the next sync has nothing to do.
    caddy.stop()
    caddy.start()
    assert sync_proxy(routes) == []
    _wait(domain, backends[0], roots, timeout=5)
    # A Caddy that forgot its configuration: the next sync restores it, and the certificate
    # comes back from Chaton's storage instead of being issued again.
    caddy.stop()
    caddy.autosave_path.unlink()
    caddy.start()
    assert "apps" not in caddy.client().read_config()
    started = time.monotonic()
    assert domain in sync_proxy(routes)[0]
    again = _wait(domain, backends[0], roots, timeout=10).certificate
    with capsys.disabled():
        print(f"\nBENCH proxy_sync_to_first_https_answer_stored_certificate_s "
              f"{time.monotonic() - started:.3f} s")
    assert again.serial_number == issued.serial_number


def test_a_refused_configuration_leaves_the_previous_one_serving(
        caddy: ManagedCaddy, pebble: Pebble, backends: list[Backend]) -> None:
    domain = _domain("kept")
    roots = pebble.roots_path()
    routes = [Route(domain, backends[0].upstream)]
    sync_proxy(routes)
    _wait(domain, backends[0], roots)
    before = caddy.client().read_config()
    serving_port = _https_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.CHATON.proxy.https_port = taken.getsockname()[1]
        try:
            with pytest.raises(ProxyRejected, match="address already in use"):
                sync_proxy([*routes, Route(_domain("new"), backends[1].upstream)])
        finally:
            settings.CHATON.proxy.https_port = serving_port
    assert caddy.client().read_config() == before
    assert https_get(domain, serving_port, roots=roots).body == backends[0].page


# -- the managed Caddy itself --------------------------------------------------------------------


@pytest.fixture
def caddy_directory(tmp_path: Path) -> Path:
    return tmp_path / "caddy"


def test_managed_caddy_keeps_its_state_in_its_folder_and_stops_by_pid(
        caddy_directory: Path) -> None:
    server = ManagedCaddy(caddy_directory, admin_port=free_port())
    server.start()
    try:
        pid = server.pid
        assert pid is not None
        assert int(server.pid_path.read_text().split()[0]) == pid
        assert server.client().read_config() == {"admin": {"listen": server.admin_url[7:]}}
        assert server.autosave_path.is_file()
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"XDG_DATA_HOME={server.data_directory}".encode() in environment
    finally:
        server.stop()
    assert not Path(f"/proc/{pid}").exists() or server.pid is None
    assert not server.pid_path.exists()
    assert not server.client().answers()


def test_a_caddy_left_by_a_killed_run_is_stopped_at_the_next_start(
        caddy_directory: Path) -> None:
    port = free_port()
    left_behind = ManagedCaddy(caddy_directory, admin_port=port)
    left_behind.start()
    try:
        successor = ManagedCaddy(caddy_directory, admin_port=port)
        successor.start()  # stops the stale one (same folder), then takes the port
        try:
            assert left_behind._process is not None
            assert left_behind._process.wait(timeout=10) is not None
            assert successor.running and successor.client().answers()
        finally:
            successor.stop()
    finally:
        left_behind.stop()


def test_a_taken_admin_port_or_a_missing_caddy_is_an_error(caddy_directory: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ManagedCaddy(caddy_directory, admin_port=taken.getsockname()[1])
        with pytest.raises(CaddyStartError, match="cannot start caddy"):
            server.start()
    missing = ManagedCaddy(caddy_directory, admin_port=free_port(),
                           caddy="/nonexistent/caddy")
    with pytest.raises(CaddyStartError, match="not installed"):
        missing.start()


def test_a_saved_configuration_that_no_longer_starts_is_set_aside(
        caddy_directory: Path) -> None:
    server = ManagedCaddy(caddy_directory, admin_port=free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server.config_directory.joinpath("caddy").mkdir(parents=True)
        server.autosave_path.write_text(json.dumps(
            {"apps": {"http": {"servers": {"x": {"listen": [
                f"127.0.0.1:{taken.getsockname()[1]}"]}}}}}))
        server.start()
        try:
            assert server.resume_failure is not None
            assert "address already in use" in server.resume_failure
            assert server.client().answers()
        finally:
            server.stop()


# -- chaton serve --------------------------------------------------------------------------------


def _serve(tmp_path: Path, admin_port: int) -> tuple[int, str, Path, bool]:
    """Run ``chaton serve`` with a managed Caddy on ``admin_port`` until its pages answer, then
    stop it with SIGTERM. Return its exit status, its output, its data directory, and whether
    its Caddy answered while the pages did."""
    data = tmp_path / "data"
    configuration = tmp_path / "chaton.toml"
    configuration.write_text("")
    environment = serve_environment(data, configuration, CHATON_PROXY_MANAGED="true",
                                    CHATON_PROXY_ADMIN_URL=f"http://127.0.0.1:{admin_port}")
    server = start_serve(environment, timeout=30, poll_seconds=0.1)
    try:
        caddy_answered = ((data / "caddy" / "caddy.pid").exists() and
                          ManagedCaddy(data / "caddy", admin_port=admin_port).client().answers())
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return server.returncode, output, data, caddy_answered


def test_serve_runs_the_managed_caddy_and_stops_it(tmp_path: Path) -> None:
    admin_port = free_port()
    returncode, output, data, caddy_answered = _serve(tmp_path, admin_port)
    assert returncode == 0, output
    assert caddy_answered
    assert f"Proxy: Caddy, admin API on http://127.0.0.1:{admin_port}." in output
    assert (data / "caddy" / "config" / "caddy" / "autosave.json").is_file()
    assert not (data / "caddy" / "caddy.pid").exists()  # stopped, by its pid
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", admin_port), timeout=1).close()


def test_serve_without_its_caddy_still_serves_the_pages(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        returncode, output, _data, caddy_answered = _serve(tmp_path, taken.getsockname()[1])
    assert returncode == 0, output
    assert not caddy_answered
    assert "the reverse proxy (Caddy) did not start" in output
    assert "Stopped." in output


# -- certificates without ACME, and a failed ACME issuance --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_internal_tls_serves_a_certificate_that_verifies_against_the_downloaded_root(
        caddy: ManagedCaddy, backends: list[Backend], client, directory,
        tmp_path: Path) -> None:
    """No ACME server at all: Caddy's own authority issues the certificate, and a client
    that trusts only the root downloaded from /services/ gets the page."""
    from django.urls import reverse

    from chaton.directory.actions import do_create_account
    from chaton.services.proxy import wait_for_certificate
    from chaton.testing.second_factor import login_with_second_factor

    settings.CHATON.proxy.tls = "internal"
    settings.CHATON.proxy.acme_ca = "https://127.0.0.1:1/never-asked"
    domain, backend = _domain("intranet"), backends[0]
    sync_proxy([Route(domain, backend.upstream)])
    assert wait_for_certificate(domain, timeout=30) == (True, None)
    login_with_second_factor(client, do_create_account(
        "camille", acting_user=None, display_name="Camille", email="camille@example.org",
        is_admin=True))
    response = client.get(reverse("service-root-certificate"))
    assert response.status_code == 200
    root = tmp_path / "chaton-root.crt"
    root.write_bytes(response.content)
    answer = _wait(domain, backend, root)
    assert answer.status == 200 and answer.body == backend.page
    names = answer.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert domain in [name.value for name in names]
    # A client that does not trust that root refuses the site: nothing is accepted blindly.
    with pytest.raises(ssl.SSLError):
        https_get(domain, _https_port(), roots=Path("/etc/ssl/certs/ca-certificates.crt"))


def test_a_failed_acme_issuance_says_caddys_reason(caddy: ManagedCaddy,
                                                  backends: list[Backend]) -> None:
    """An ACME server nobody answers at: the handshake fails, and the reason Caddy logged is
    what Chaton shows (instance page, CLI) instead of claiming https:// works."""
    from chaton.services.proxy import certificate_failure, wait_for_certificate

    settings.CHATON.proxy.acme_ca = f"https://127.0.0.1:{free_port()}/directory"
    domain = _domain("offline")
    sync_proxy([Route(domain, backends[0].upstream)])
    served, reason = wait_for_certificate(domain, timeout=60)
    assert not served
    assert reason is not None and "connection refused" in reason.lower(), reason
    assert certificate_failure(domain) == reason
