"""The proxy's configuration builder, its route diff and sync_proxy, against the in-memory Caddy.

The real Caddy and pebble are in tests/integration/test_proxy_tls.py.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from chaton.adapters import caddy
from chaton.adapters.caddy import (
    ProxyInvalid,
    ProxyRefused,
    ProxySettings,
    ProxyUnreachable,
    Route,
    RouteChange,
    build_config,
    plan,
)
from chaton.adapters.caddy.client import CaddyAdmin
from chaton.adapters.caddy.fake import FakeCaddyAdmin
from chaton.core.errors import Conflict, InvalidInput
from chaton.core.servers import free_port
from chaton.project.config import ConfigError, ProxyConfig
from chaton.services import proxy
from chaton.services.proxy import ProxyRejected, ProxyUnavailable, sync_proxy

SETTINGS = ProxySettings(admin_listen="127.0.0.1:2019", http_port=8080, https_port=8443,
                         acme_ca="https://acme.chaton.test/dir", acme_ca_root="/srv/ca.pem",
                         acme_email="admin@chaton.test", storage_root="/srv/caddy/storage")
PAD = Route("pad.chaton.test", "127.0.0.1:9001")
TEAM = Route("team.chaton.test", "chaton-team:8065")


def _routes(config: dict) -> list[dict]:
    return config["apps"]["http"]["servers"]["chaton"]["routes"]


# -- the configuration ---------------------------------------------------------------------------


def test_config_serves_each_domain_over_https_with_acme_certificates() -> None:
    config = build_config([TEAM, PAD], SETTINGS)
    assert config["admin"] == {"listen": "127.0.0.1:2019"}
    assert config["storage"] == {"module": "file_system", "root": "/srv/caddy/storage"}
    http = config["apps"]["http"]
    assert (http["http_port"], http["https_port"]) == (8080, 8443)
    server = http["servers"]["chaton"]
    assert server["listen"] == ["127.0.0.1:8443"]
    assert server["tls_connection_policies"] == [{}]
    pad, team, fallback = server["routes"]
    assert pad == {"@id": "chaton-route-pad.chaton.test",
                   "match": [{"host": ["pad.chaton.test"]}],
                   "handle": [{"handler": "reverse_proxy",
                               "upstreams": [{"dial": "127.0.0.1:9001"}]}],
                   "terminal": True}
    assert team["handle"][0]["upstreams"] == [{"dial": "chaton-team:8065"}]
    assert fallback == {"handle": [{"handler": "static_response", "status_code": 404}]}
    [policy] = config["apps"]["tls"]["automation"]["policies"]
    assert policy == {"issuers": [{
        "module": "acme", "ca": "https://acme.chaton.test/dir", "email": "admin@chaton.test",
        "trusted_roots_pem_files": ["/srv/ca.pem"],
        "challenges": {"tls-alpn": {"disabled": True}}}]}


def test_config_is_the_same_whatever_the_order_and_repetitions_of_routes() -> None:
    assert build_config([TEAM, PAD, TEAM], SETTINGS) == build_config([PAD, TEAM], SETTINGS)


def test_config_without_routes_keeps_a_tls_only_server_and_without_optional_settings() -> None:
    bare = ProxySettings(admin_listen="127.0.0.1:2019", http_port=80, https_port=443,
                         acme_ca="https://acme-v02.api.letsencrypt.org/directory",
                         listen_host="")
    config = build_config([], bare)
    assert "storage" not in config
    server = config["apps"]["http"]["servers"]["chaton"]
    assert server["listen"] == [":443"]
    assert len(server["routes"]) == 1 and server["tls_connection_policies"] == [{}]
    [issuer] = config["apps"]["tls"]["automation"]["policies"][0]["issuers"]
    assert "email" not in issuer and "trusted_roots_pem_files" not in issuer


@pytest.mark.parametrize("domain", ["", "Pad.chaton.test", "pad.chaton.test.", " pad.test",
                                    "pad_1.test", "-pad.test", "pad..test", "*.chaton.test",
                                    "127.0.0.1", "a" * 64 + ".test", "pad.test/x"])
def test_a_domain_that_cannot_be_served_is_refused(domain: str) -> None:
    with pytest.raises(ProxyInvalid):
        build_config([Route(domain, "127.0.0.1:80")], SETTINGS)


@pytest.mark.parametrize("upstream", ["", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                                      ":80", "host name:80", "[::1:80", "[zz]:80",
                                      "http://x:80"])
def test_an_upstream_that_is_not_host_and_port_is_refused(upstream: str) -> None:
    with pytest.raises(ProxyInvalid):
        build_config([Route("pad.chaton.test", upstream)], SETTINGS)


@pytest.mark.parametrize("upstream", ["127.0.0.1:1", "[::1]:8080", "chaton-pad:9001",
                                      "localhost:65535"])
def test_upstreams_by_address_or_container_name_are_accepted(upstream: str) -> None:
    assert _routes(build_config([Route("pad.chaton.test", upstream)], SETTINGS))


def test_one_domain_routed_to_two_upstreams_is_refused() -> None:
    with pytest.raises(ProxyInvalid, match="both"):
        build_config([PAD, Route(PAD.domain, "127.0.0.1:9002")], SETTINGS)


@pytest.mark.parametrize("changes", [{"http_port": 0}, {"https_port": 70000},
                                     {"https_port": 8080}, {"acme_ca": "http://acme/dir"}])
def test_bad_ports_or_a_plain_http_acme_server_are_refused(changes: dict) -> None:
    values = {**SETTINGS.__dict__, **changes}
    with pytest.raises(ProxyInvalid):
        build_config([PAD], ProxySettings(**values))


# -- the plan ------------------------------------------------------------------------------------


def test_plan_from_an_empty_caddy_adds_every_route_and_every_setting() -> None:
    result = plan({}, [PAD, TEAM], SETTINGS)
    assert result.changes == (RouteChange("add", "pad.chaton.test", "127.0.0.1:9001"),
                              RouteChange("add", "team.chaton.test", "chaton-team:8065"))
    assert set(result.settings_changed) == {"admin", "ports", "tls", "storage", "other"}
    assert result.config == build_config([PAD, TEAM], SETTINGS)


def test_plan_against_the_same_config_is_empty() -> None:
    result = plan(build_config([PAD, TEAM], SETTINGS), [TEAM, PAD], SETTINGS)
    assert result.empty and result.changes == () and result.settings_changed == ()


def test_plan_reports_removed_and_changed_routes() -> None:
    current = build_config([PAD, TEAM], SETTINGS)
    moved = Route(TEAM.domain, "chaton-team-2:8065")
    result = plan(current, [moved], SETTINGS)
    assert result.changes == (
        RouteChange("remove", "pad.chaton.test", None, "127.0.0.1:9001"),
        RouteChange("change", "team.chaton.test", "chaton-team-2:8065", "chaton-team:8065"))
    assert result.settings_changed == ()


def test_plan_reports_settings_apart_from_routes() -> None:
    current = build_config([PAD], SETTINGS)
    other_ca = ProxySettings(**{**SETTINGS.__dict__, "acme_ca": "https://other.test/dir",
                                "https_port": 9443})
    result = plan(current, [PAD], other_ca)
    assert result.changes == ()
    assert result.settings_changed == ("ports", "tls")


def test_plan_reports_routes_made_by_hand_and_restores_edited_ones() -> None:
    current = build_config([PAD], SETTINGS)
    # Someone added a route for a domain Chaton does not know, and edited Chaton's route.
    _routes(current).insert(0, {"match": [{"host": ["manual.chaton.test"]}],
                                "handle": [{"handler": "static_response", "body": "hi"}]})
    _routes(current)[1]["handle"].insert(0, {"handler": "headers"})
    result = plan(current, [PAD], SETTINGS)
    assert result.changes == (RouteChange("remove", "manual.chaton.test", None, ""),)
    current_without_manual = build_config([PAD], SETTINGS)
    _routes(current_without_manual)[0]["terminal"] = False
    assert plan(current_without_manual, [PAD], SETTINGS).settings_changed == ("other",)


def test_served_routes_reads_odd_configs_without_failing() -> None:
    for config in ({}, {"apps": None}, {"apps": {"http": {"servers": []}}},
                   {"apps": {"http": {"servers": {"x": {"routes": [None, {"match": [1]}]}}}}}):
        assert caddy.served_routes(config) == {}


# -- sync against the in-memory Caddy ------------------------------------------------------------


def test_sync_loads_once_then_changes_nothing() -> None:
    fake = FakeCaddyAdmin()
    first = caddy.sync(fake, [PAD], SETTINGS)
    assert [change.action for change in first.changes] == ["add"] and fake.loads == 1
    assert fake.config == build_config([PAD], SETTINGS)
    again = caddy.sync(fake, [PAD], SETTINGS)
    assert again.empty and fake.loads == 1


def test_dry_run_plans_the_same_without_loading() -> None:
    fake = FakeCaddyAdmin()
    dry = caddy.sync(fake, [PAD, TEAM], SETTINGS, dry_run=True)
    assert fake.loads == 0 and fake.config == {}
    assert caddy.sync(fake, [PAD, TEAM], SETTINGS) == dry


@pytest.fixture
def proxy_config(monkeypatch: pytest.MonkeyPatch) -> ProxyConfig:
    """Point settings.CHATON.proxy at test values (an admin API nothing calls: fake_proxy)."""
    config = ProxyConfig()
    config.admin_url = "http://127.0.0.1:2019"
    config.http_port, config.https_port = 8080, 8443
    config.acme_ca = "https://acme.chaton.test/dir"
    config.acme_email = "admin@chaton.test"
    monkeypatch.setattr(settings.CHATON, "proxy", config)
    return config


def test_sync_proxy_returns_translated_lines_and_nothing_the_second_time(
        fake_proxy: FakeCaddyAdmin, proxy_config: ProxyConfig) -> None:
    assert sync_proxy([PAD], dry_run=True) == sync_proxy([PAD])
    assert fake_proxy.loads == 1
    moved = Route(PAD.domain, "127.0.0.1:9002")
    lines = sync_proxy([moved, TEAM])
    assert len(lines) == 2
    assert "pad.chaton.test" in lines[0] and "127.0.0.1:9002" in lines[0]
    assert "127.0.0.1:9001" in lines[0]
    assert "team.chaton.test" in lines[1]
    assert sync_proxy([TEAM, moved]) == []
    assert len(sync_proxy([])) == 2


def test_sync_proxy_stores_certificates_in_the_data_directory(
        fake_proxy: FakeCaddyAdmin, proxy_config: ProxyConfig) -> None:
    sync_proxy([PAD])
    root = Path(fake_proxy.config["storage"]["root"])
    assert root == (Path(settings.DATA_DIR) / "caddy" / "storage").absolute()
    issuer = fake_proxy.config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert issuer["ca"] == "https://acme.chaton.test/dir"
    assert fake_proxy.config["admin"] == {"listen": "127.0.0.1:2019"}


def test_a_proxy_that_is_down_is_a_clear_error_and_nothing_changes(
        fake_proxy: FakeCaddyAdmin, proxy_config: ProxyConfig) -> None:
    sync_proxy([PAD])
    before = fake_proxy.read_config()
    fake_proxy.down = True
    with pytest.raises(ProxyUnavailable) as raised:
        sync_proxy([PAD, TEAM])
    assert raised.value.status == 503 and raised.value.code == "proxy_unavailable"
    assert "Caddy" in str(raised.value)
    fake_proxy.down = False
    assert fake_proxy.read_config() == before


def test_a_refused_config_keeps_the_previous_one(fake_proxy: FakeCaddyAdmin,
                                                 proxy_config: ProxyConfig) -> None:
    sync_proxy([PAD])
    before = fake_proxy.read_config()
    fake_proxy.refuse = "listening on 127.0.0.1:8443: address already in use"
    with pytest.raises(ProxyRejected, match="address already in use"):
        sync_proxy([PAD, TEAM])
    assert fake_proxy.read_config() == before


def test_bad_routes_are_input_errors_before_anything_is_sent(fake_proxy: FakeCaddyAdmin,
                                                             proxy_config: ProxyConfig) -> None:
    fake_proxy.down = True  # were anything sent, the error would be ProxyUnavailable
    with pytest.raises(InvalidInput) as raised:
        sync_proxy([Route("not a domain", "127.0.0.1:1")])
    assert raised.value.field == "domain"
    with pytest.raises(InvalidInput) as raised:
        sync_proxy([Route("pad.chaton.test", "nowhere")])
    assert raised.value.field == "upstream"
    with pytest.raises(Conflict):
        sync_proxy([PAD, Route(PAD.domain, "127.0.0.1:1")])


def test_bad_proxy_settings_are_input_errors(fake_proxy: FakeCaddyAdmin,
                                             proxy_config: ProxyConfig) -> None:
    proxy_config.https_port = proxy_config.http_port
    with pytest.raises(InvalidInput):
        sync_proxy([PAD])
    proxy_config.admin_url = "unix:///run/caddy.sock"
    with pytest.raises(InvalidInput) as raised:
        sync_proxy([PAD])
    assert raised.value.field == "admin_url"


def test_managed_caddy_needs_a_loopback_admin_url(proxy_config: ProxyConfig) -> None:
    server = proxy.managed_caddy()
    assert server.port == 2019
    assert server.directory == (Path(settings.DATA_DIR) / "caddy").absolute()
    for url in ("http://192.0.2.1:2019", "https://127.0.0.1:2019", "http://127.0.0.1"):
        proxy_config.admin_url = url
        with pytest.raises(ConfigError):
            proxy.managed_caddy()


# -- the admin API client against what is not Caddy ----------------------------------------------


def test_admin_api_where_nothing_listens_is_unreachable() -> None:
    client = CaddyAdmin(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ProxyUnreachable, match="does not answer"):
        client.read_config()
    with pytest.raises(ConnectionError):
        client.load({})
    assert not client.answers()


@pytest.fixture
def not_caddy() -> Iterator[str]:
    """Yield the URL of an HTTP server that answers HTML, as a wrong admin_url would."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def do_POST(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_admin_api_that_is_not_caddy_is_refused(not_caddy: str) -> None:
    client = CaddyAdmin(not_caddy, timeout=2)
    with pytest.raises(ProxyRefused, match="not JSON"):
        client.read_config()
    with pytest.raises(ProxyRefused, match="refused"):
        client.load({})


@pytest.mark.parametrize("url", ["https://127.0.0.1:2019", "unix//run/caddy.sock",
                                 "http://127.0.0.1", "http://127.0.0.1:x"])
def test_admin_url_must_be_plain_http_with_a_port(url: str) -> None:
    with pytest.raises(ProxyInvalid):
        CaddyAdmin(url)


def test_the_tests_never_reach_a_caddy_on_the_default_admin_address() -> None:
    # A test that deploys without starting its own Caddy must not change the routes of a
    # Chaton that runs on this machine: the session's proxy address refuses every call.
    assert settings.CHATON.proxy.admin_url != ProxyConfig().admin_url
    with pytest.raises(ProxyUnavailable):
        sync_proxy([PAD])


# -- certificates without ACME, and why one is missing ------------------------------------------


def test_internal_tls_uses_caddys_own_authority_and_never_the_system_trust_store() -> None:
    internal = ProxySettings(**{**SETTINGS.__dict__, "tls": "internal", "acme_ca": ""})
    config = build_config([PAD], internal)
    issuers = config["apps"]["tls"]["automation"]["policies"][0]["issuers"]
    assert issuers == [{"module": "internal", "ca": "local"}]
    assert config["apps"]["pki"] == {"certificate_authorities": {
        "local": {"name": "Chaton", "install_trust": False}}}
    # Switching between ACME and the internal authority is a settings change in the plan.
    switched = plan(build_config([PAD], SETTINGS), [PAD], internal)
    assert switched.settings_changed == ("tls",) and not switched.changes
    with pytest.raises(ProxyInvalid, match="tls 'selfsigned'"):
        build_config([PAD], ProxySettings(**{**SETTINGS.__dict__, "tls": "selfsigned"}))


def test_an_unknown_tls_setting_is_an_input_error(fake_proxy: FakeCaddyAdmin,
                                                  proxy_config: ProxyConfig) -> None:
    proxy_config.tls = "self-signed"
    with pytest.raises(InvalidInput) as raised:
        sync_proxy([PAD])
    assert raised.value.field == "tls"
    proxy_config.tls = "internal"
    sync_proxy([PAD])
    issuer = fake_proxy.config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert issuer["module"] == "internal"


def _log(path: Path, *records: dict) -> None:
    import json

    with path.open("a", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")


def test_the_reason_of_a_failed_certificate_is_read_from_caddys_log(tmp_path: Path) -> None:
    log = tmp_path / "caddy.log"
    assert caddy.certificate_failure_in_log(log, "pad.chaton.test") is None  # no log yet
    reason = ("[pad.chaton.test] solving challenges: dial tcp: lookup acme-v02.api."
              "letsencrypt.org: no such host")
    _log(log,
         {"level": "info", "logger": "tls.obtain", "msg": "acquiring lock",
          "identifier": "pad.chaton.test"},
         {"level": "error", "logger": "tls.obtain", "msg": "could not get certificate from "
          "issuer", "identifier": "pad.chaton.test", "error": reason},
         {"level": "error", "logger": "tls.obtain", "msg": "will retry",
          "error": f"[pad.chaton.test] Obtain: {reason}", "attempt": 1},
         {"level": "error", "logger": "tls.obtain", "msg": "could not get certificate from "
          "issuer", "identifier": "team.chaton.test", "error": "another domain's reason"},
         {"level": "error", "logger": "http.log.error", "msg": "not about certificates",
          "error": "[pad.chaton.test] upstream down"})
    failure = caddy.certificate_failure_in_log(log, "pad.chaton.test")
    assert failure is not None and "no such host" in failure
    assert caddy.certificate_failure_in_log(log, "other.chaton.test") is None
    # Obtained at a later attempt: no failure any more.
    _log(log, {"level": "info", "logger": "tls.obtain", "msg": "certificate obtained "
               "successfully", "identifier": "pad.chaton.test"})
    assert caddy.certificate_failure_in_log(log, "pad.chaton.test") is None
    client = CaddyAdmin("http://127.0.0.1:2019", log_path=log)
    assert client.certificate_failure("team.chaton.test") == "another domain's reason"
    assert CaddyAdmin("http://127.0.0.1:2019").certificate_failure("team.chaton.test") is None


def test_the_log_of_a_managed_caddy_is_read_unless_another_is_configured(
        proxy_config: ProxyConfig) -> None:
    proxy_config.managed = True
    assert proxy.log_path() == Path(settings.DATA_DIR) / "caddy" / "caddy.log"
    proxy_config.log_file = "/var/log/caddy/caddy.log"
    assert proxy.log_path() == Path("/var/log/caddy/caddy.log")
    proxy_config.managed, proxy_config.log_file = False, ""
    assert proxy.log_path() is None
