"""The probe engine against real servers the tests start on free loopback ports: HTTPS with
certificates made here (one 5 days from expiry), slow and failing endpoints, a port that
accepts and one that refuses, Knot DNS, SMTP with STARTTLS (aiosmtpd), IMAP, slapd."""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.probes import ProbeResult, ProbeSpec
from chaton.adapters.probes.client import AsyncProbeEngine
from chaton.adapters.slapd import ManagedSlapd
from chaton.testing.dns import KnotServer, knot_dns  # noqa: F401 - the fixture
from chaton.testing.probe_targets import UNRESOLVED_NAME, ProbeTargets, probe_targets
from chaton.testing.pytest_plugin import SmtpCatcher, hold_closed_port

pytestmark = pytest.mark.integration

#: How long /slow waits: far past any probe's timeout here.
SLOW_SECONDS = 30.0
BASE_DN = "dc=chaton,dc=test"


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeTargets]:
    with probe_targets(tmp_path_factory.mktemp("probe-targets"),
                       slow_seconds=SLOW_SECONDS) as running:
        yield running


@pytest.fixture(scope="module")
def engine() -> Iterator[AsyncProbeEngine]:
    probe_engine = AsyncProbeEngine(ldap_threads=4)
    yield probe_engine
    probe_engine.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    held = hold_closed_port()
    try:
        yield held.getsockname()[1]
    finally:
        held.close()


def run_one(engine: AsyncProbeEngine, spec: ProbeSpec) -> ProbeResult:
    [result] = engine.run([spec])
    assert result.key == spec.key
    return result


def ca(targets: ProbeTargets) -> dict[str, str]:
    return {"ca_file": str(targets.certificates.ca_file)}


# HTTP(S) ---------------------------------------------------------------------------------


def test_https_up_with_its_certificate_expiry(engine: AsyncProbeEngine,
                                              targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec(
        "instance:pads:https", "http", f"https://localhost:{targets.ports.https}/ok",
        ("[STATUS] == 200", "[BODY] contains pad", "[RESPONSE_TIME] < 5000",
         "[CERTIFICATE_EXPIRATION] > 240h", "[CONNECTED] == true"),
        options=ca(targets)))
    assert result.ok, result.error
    assert result.status == 200 and result.error == ""
    assert result.cert_expires_at == targets.certificates.valid.expires_at
    assert result.cert_expires_at.tzinfo is not None
    assert 0 < result.duration_ms < 5000


def test_a_certificate_five_days_from_expiry_fails_its_condition(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec(
        "expiring", "http", f"https://127.0.0.1:{targets.ports.https_expiring}/ok",
        ("[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 240h"), options=ca(targets)))
    assert not result.ok
    assert result.error in {"[CERTIFICATE_EXPIRATION] (4d23h) > 240h",
                            "[CERTIFICATE_EXPIRATION] (5d) > 240h"}
    assert result.cert_expires_at == targets.certificates.expiring.expires_at
    left = result.cert_expires_at - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=4) < left <= datetime.timedelta(days=5)


def test_without_conditions_https_is_up_below_400_and_reports_the_expiry(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec(
        "plain", "http", f"https://127.0.0.1:{targets.ports.https_expiring}/ok",
        options=ca(targets)))
    assert result.ok and result.cert_expires_at == targets.certificates.expiring.expires_at


def test_an_untrusted_certificate_fails_unless_verification_is_off(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    url = f"https://127.0.0.1:{targets.ports.https}/ok"
    untrusted = run_one(engine, ProbeSpec("untrusted", "http", url))
    assert not untrusted.ok and untrusted.error.startswith("certificate not trusted")
    unverified = run_one(engine, ProbeSpec("unverified", "http", url,
                                           options={"verify": False}))
    assert unverified.ok and unverified.cert_expires_at == targets.certificates.valid.expires_at


def test_a_failing_endpoint_reads_with_its_status(engine: AsyncProbeEngine,
                                                  targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec("failing", "http",
                                       f"http://127.0.0.1:{targets.ports.http}/fail",
                                       ("[STATUS] == 200",)))
    assert not result.ok
    assert result.error == "[STATUS] (503) == 200" and result.status == 503
    default = run_one(engine, ProbeSpec("failing-default", "http",
                                        f"http://127.0.0.1:{targets.ports.http}/fail"))
    assert not default.ok and default.error == "[STATUS] (503) < 400"
    body = run_one(engine, ProbeSpec("body", "http", f"http://127.0.0.1:{targets.ports.http}/ok",
                                     ("[IP] == 127.0.0.1", "[BODY] contains calc")))
    assert body.error.startswith("[BODY] (<html><body>chaton ok") and "contains calc" in body.error


def test_the_probe_really_asks_the_server(engine: AsyncProbeEngine,
                                          targets: ProbeTargets) -> None:
    before = targets.requests
    engine.run([ProbeSpec(f"asked-{index}", "http",
                          f"http://127.0.0.1:{targets.ports.http}/ok") for index in range(5)])
    assert targets.requests == before + 5


def test_a_slow_endpoint_ends_at_the_probe_timeout(engine: AsyncProbeEngine,
                                                   targets: ProbeTargets) -> None:
    started = time.perf_counter()
    result = run_one(engine, ProbeSpec("slow", "http",
                                       f"https://localhost:{targets.ports.https}/slow",
                                       timeout=0.5, options=ca(targets)))
    # Bounds with room for a busy machine; what matters is 0.5 s, not the server's 30 s.
    assert time.perf_counter() - started < 5
    assert not result.ok and result.error == "timed out after 0.5 s"
    assert 450 <= result.duration_ms < 4000


def test_hanging_probes_delay_no_other_and_the_cycle_takes_the_longest_timeout(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    hanging = [ProbeSpec(f"hang-{index}", "http",
                         f"http://127.0.0.1:{targets.ports.http}/slow", timeout=1.0)
               for index in range(30)]
    quick = [ProbeSpec(f"quick-{index}", "http", f"https://localhost:{targets.ports.https}/ok",
                       timeout=1.0, options=ca(targets)) for index in range(30)]
    mixed = [spec for pair in zip(hanging, quick, strict=True) for spec in pair]
    started = time.perf_counter()
    results = engine.run(mixed, concurrency=100)
    elapsed = time.perf_counter() - started
    # 30 probes of 1 s each that all hang: about 1 s for the cycle, never 30.
    assert elapsed < 6, elapsed
    assert [result.key for result in results] == [spec.key for spec in mixed]
    assert all(not result.ok and result.error == "timed out after 1 s"
               for result in results if result.key.startswith("hang-"))
    assert all(result.ok for result in results if result.key.startswith("quick-"))


def test_the_concurrency_limit_still_ends_every_probe(engine: AsyncProbeEngine,
                                                      targets: ProbeTargets) -> None:
    specs = [ProbeSpec(f"one-at-a-time-{index}", "http",
                       f"http://127.0.0.1:{targets.ports.http}/slow", timeout=0.3)
             for index in range(4)]
    started = time.perf_counter()
    results = engine.run(specs, concurrency=2)
    # Two waves of two: about 0.6 s; each probe's clock starts when it gets its turn.
    assert 0.55 < time.perf_counter() - started < 5
    assert all(result.error == "timed out after 0.3 s" for result in results)


def test_a_secret_in_the_url_never_shows_in_the_error(engine: AsyncProbeEngine,
                                                      closed_port: int) -> None:
    result = run_one(engine, ProbeSpec(
        "secret", "http", f"http://admin:hunter2-secret@127.0.0.1:{closed_port}/",
        options={"headers": {"Authorization": "Bearer hunter2-secret"}}))
    assert not result.ok and result.error == "connection refused"
    assert "hunter2" not in repr(result)


# TCP and TLS -----------------------------------------------------------------------------


def test_tcp_accepts_and_refuses(engine: AsyncProbeEngine, targets: ProbeTargets,
                                 closed_port: int) -> None:
    accepting, refusing, expected_down = engine.run([
        ProbeSpec("accepts", "tcp", f"127.0.0.1:{targets.ports.http}", ("[IP] == 127.0.0.1",)),
        ProbeSpec("refuses", "tcp", f"127.0.0.1:{closed_port}"),
        ProbeSpec("expected-down", "tcp", f"127.0.0.1:{closed_port}", ("[CONNECTED] == false",)),
    ])
    assert accepting.ok, accepting.error
    assert not refusing.ok and refusing.error == "connection refused"
    assert expected_down.ok


def test_a_port_that_never_answers_ends_at_its_timeout(engine: AsyncProbeEngine) -> None:
    # A listening socket whose backlog is full: connections hang, never refused.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.perf_counter()
        results = engine.run([ProbeSpec(f"tls-hang-{index}", "tls", address, timeout=0.5)
                              for index in range(3)])
        assert time.perf_counter() - started < 5
    assert all(not result.ok and result.error == "timed out after 0.5 s" for result in results)


def test_tls_reads_the_certificate_and_checks_the_name(engine: AsyncProbeEngine,
                                                       targets: ProbeTargets) -> None:
    address = f"127.0.0.1:{targets.ports.https_expiring}"
    good, wrong_name = engine.run([
        ProbeSpec("tls", "tls", address, ("[CERTIFICATE_EXPIRATION] > 3d",),
                  options={**ca(targets), "server_name": "localhost"}),
        ProbeSpec("tls-name", "tls", address,
                  options={**ca(targets), "server_name": "pads.chaton.test"}),
    ])
    assert good.ok, good.error
    assert good.cert_expires_at == targets.certificates.expiring.expires_at
    assert not wrong_name.ok and "certificate not trusted" in wrong_name.error
    assert "pads.chaton.test" in wrong_name.error


# DNS ---------------------------------------------------------------------------------------


def test_dns_records_and_expected_answers(engine: AsyncProbeEngine,
                                          knot_dns: KnotServer) -> None:  # noqa: F811
    server = {"server": knot_dns.address}
    a, mx, txt, nxdomain, wrong = engine.run([
        ProbeSpec("dns-a", "dns", "www.chaton.test", ("[DNS_RCODE] == NOERROR",
                                                      "[IP] == 127.0.0.1"), options=server),
        ProbeSpec("dns-mx", "dns", "chaton.test",
                  options={**server, "record": "MX", "expected": ["10 mail.chaton.test."]}),
        ProbeSpec("dns-txt", "dns", "chaton.test", ("[BODY] contains spf1",),
                  options={**server, "record": "TXT", "expected": ["v=spf1 mx -all"]}),
        ProbeSpec("dns-nx", "dns", "nowhere.chaton.test", ("[DNS_RCODE] == NOERROR",),
                  options=server),
        ProbeSpec("dns-wrong", "dns", "mail.chaton.test",
                  options={**server, "expected": ["127.0.0.1"]}),
    ])
    assert a.ok and mx.ok and txt.ok, (a, mx, txt)
    assert nxdomain.error == "[DNS_RCODE] (NXDOMAIN) == NOERROR"
    assert wrong.error == "DNS A answer 127.0.0.2; expected 127.0.0.1"


def test_dns_without_a_server_fails_at_its_timeout(engine: AsyncProbeEngine) -> None:
    # A UDP port bound and never read: the question is lost, as with a dead resolver.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        result = run_one(engine, ProbeSpec(
            "dns-silent", "dns", "www.chaton.test", timeout=0.5,
            options={"server": f"127.0.0.1:{silent.getsockname()[1]}"}))
    assert not result.ok and result.error == "timed out after 0.5 s"


# SMTP and IMAP -------------------------------------------------------------------------------


def test_smtp_with_starttls_reads_the_certificate(engine: AsyncProbeEngine,
                                                  targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec(
        "smtp", "smtp", f"127.0.0.1:{targets.ports.smtp}",
        ("[STATUS] == 220", "[CERTIFICATE_EXPIRATION] > 240h"),
        options={**ca(targets), "starttls": True, "server_name": "localhost"}))
    assert result.ok, result.error
    assert result.status == 220
    assert result.cert_expires_at == targets.certificates.valid.expires_at


def test_smtp_without_starttls_offered_fails_when_it_is_asked(
        engine: AsyncProbeEngine, smtp_catcher: SmtpCatcher) -> None:
    address = f"127.0.0.1:{smtp_catcher.port}"
    plain, wanting_tls = engine.run([
        ProbeSpec("smtp-plain", "smtp", address),
        ProbeSpec("smtp-tls", "smtp", address, options={"starttls": True}),
    ])
    assert plain.ok and plain.status == 220 and plain.cert_expires_at is None
    assert not wanting_tls.ok and wanting_tls.error == "the SMTP server does not offer STARTTLS"
    assert smtp_catcher.messages == []


def test_smtp_against_a_web_server_fails(engine: AsyncProbeEngine,
                                         targets: ProbeTargets) -> None:
    result = run_one(engine, ProbeSpec("smtp-web", "smtp", f"127.0.0.1:{targets.ports.http}",
                                       timeout=1))
    assert not result.ok and result.error == "timed out after 1 s"


def test_imap_over_implicit_tls_and_starttls(engine: AsyncProbeEngine,
                                             targets: ProbeTargets) -> None:
    implicit, starttls, clear, wrong = engine.run([
        ProbeSpec("imaps", "imap", f"127.0.0.1:{targets.ports.imap_tls}",
                  ("[BODY] contains IMAP4rev1",), options={**ca(targets),
                                                           "server_name": "localhost"}),
        ProbeSpec("imap-starttls", "imap", f"127.0.0.1:{targets.ports.imap_starttls}",
                  options={**ca(targets), "tls": "starttls"}),
        ProbeSpec("imap-clear", "imap", f"127.0.0.1:{targets.ports.imap_starttls}",
                  options={"tls": "none"}),
        ProbeSpec("imap-wrong", "imap", f"127.0.0.1:{targets.ports.http}", timeout=1,
                  options={"tls": "none"}),
    ])
    assert implicit.ok and starttls.ok and clear.ok, (implicit, starttls, clear)
    assert implicit.cert_expires_at == targets.certificates.valid.expires_at
    assert starttls.cert_expires_at == targets.certificates.valid.expires_at
    assert clear.cert_expires_at is None
    assert not wrong.ok


# LDAP ----------------------------------------------------------------------------------------


def test_ldap_bind_and_base_search(engine: AsyncProbeEngine, slapd: ManagedSlapd,
                                   closed_port: int) -> None:
    good = {"bind_dn": slapd.admin_dn, "password": slapd.admin_password, "base": BASE_DN}
    up, refused, missing, unreachable = engine.run([
        ProbeSpec("ldap", "ldap", slapd.url, ("[RESPONSE_TIME] < 5000",), options=good),
        ProbeSpec("ldap-password", "ldap", slapd.url,
                  options={**good, "password": "wrong-" + slapd.admin_password}),
        ProbeSpec("ldap-base", "ldap", slapd.url,
                  options={**good, "base": "ou=nowhere," + BASE_DN}),
        ProbeSpec("ldap-down", "ldap", f"ldap://127.0.0.1:{closed_port}", timeout=2,
                  options=good),
    ])
    assert up.ok, up.error
    assert refused.error == "LDAP bind refused: invalid credentials"
    assert missing.error == "LDAP base entry not found"
    assert unreachable.error == "LDAP server unreachable"
    for result in (up, refused, missing, unreachable):
        assert slapd.admin_password not in repr(result)


# A cycle -----------------------------------------------------------------------------------


def test_a_mixed_cycle_keeps_order_and_gives_one_result_per_spec(
        engine: AsyncProbeEngine, targets: ProbeTargets, knot_dns: KnotServer,  # noqa: F811
        closed_port: int, tmp_path: Path) -> None:
    specs = [
        ProbeSpec("a", "http", f"https://localhost:{targets.ports.https}/ok", options=ca(targets)),
        ProbeSpec("b", "tcp", f"127.0.0.1:{closed_port}"),
        ProbeSpec("c", "dns", "www.chaton.test", options={"server": knot_dns.address}),
        ProbeSpec("d", "tcp", "127.0.0.1:1", ("[STATUS] == 200",)),  # does not apply: a result
        ProbeSpec("e", "ping", "127.0.0.1"),
        ProbeSpec("a", "http", f"http://127.0.0.1:{targets.ports.http}/fail"),
    ]
    results = engine.run(specs)
    assert [result.key for result in results] == ["a", "b", "c", "d", "e", "a"]
    assert [result.ok for result in results] == [True, False, True, False, False, False]
    assert results[3].error.startswith("bad probe: [STATUS] has no value for a tcp probe")
    assert results[4].error.startswith("bad probe: 'ping' is not a kind of probe")
    assert engine.run([]) == []


# connect_to ------------------------------------------------------------------------------


def test_connect_to_reaches_a_name_that_does_not_resolve_and_verifies_it(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    """As Chaton's probes of instances: the URL's name is the Host, the SNI and the name the
    certificate is checked for; the connection goes to the proxy's address."""
    address = f"127.0.0.1:{targets.ports.https}"
    direct, routed, tls = engine.run([
        ProbeSpec("direct", "http", f"https://{UNRESOLVED_NAME}/ok", timeout=3.0,
                  options=ca(targets)),
        ProbeSpec("routed", "http", f"https://{UNRESOLVED_NAME}/ok",
                  ("[STATUS] == 200", "[BODY] contains pad"),
                  options={**ca(targets), "connect_to": address}),
        ProbeSpec("tls-routed", "tls", f"{UNRESOLVED_NAME}:443",
                  ("[CERTIFICATE_EXPIRATION] > 30d",),
                  options={**ca(targets), "connect_to": address}),
    ])
    assert not direct.ok
    assert routed.ok, routed.error
    assert routed.status == 200
    assert routed.cert_expires_at == targets.certificates.valid.expires_at
    assert tls.ok, tls.error
    assert tls.cert_expires_at == targets.certificates.valid.expires_at


def test_connect_to_never_trusts_a_certificate_for_another_name(
        engine: AsyncProbeEngine, targets: ProbeTargets) -> None:
    """The attacker's side: a server at the connect_to address whose certificate is not for
    the URL's name is refused, for HTTPS and TLS probes, even sharing the address with a
    name it is valid for in the same cycle."""
    address = f"127.0.0.1:{targets.ports.https}"
    good, wrong, wrong_tls = engine.run([
        ProbeSpec("good", "http", f"https://{UNRESOLVED_NAME}/ok",
                  options={**ca(targets), "connect_to": address}),
        ProbeSpec("wrong", "http", "https://pads.chaton.test/ok",
                  options={**ca(targets), "connect_to": address}),
        ProbeSpec("wrong-tls", "tls", "pads.chaton.test:443",
                  options={**ca(targets), "connect_to": address}),
    ])
    assert good.ok, good.error
    assert not wrong.ok and "certificate not trusted" in wrong.error, wrong.error
    assert not wrong_tls.ok and "certificate not trusted" in wrong_tls.error, wrong_tls.error
