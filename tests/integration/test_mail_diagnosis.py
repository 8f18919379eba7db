"""The diagnosis against real servers: Knot serving the zones (and their reverse zone),
Postfix with STARTTLS and implicit TLS announcing its EHLO name, OpenDKIM holding keys, an
HTTPS server with the MTA-STS policies.

``diag.test`` is published exactly as Chaton wants it: no finding. ``wrong.test`` has a
deliberately wrong SPF (too many lookups, the sending address not authorised), a stale
DKIM key in the signer (it holds another key than the one in DNS), a retired selector
still published, its DMARC reports sent to a domain that does not accept them, an MTA-STS
policy that does not name its MX and a reverse DNS that is not its EHLO name: each is a
finding with its fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.dns import Record
from chaton.adapters.opendkim import SigningKey, public_key_of
from chaton.adapters.opendkim.client import OpenDkimSigner
from chaton.core.servers import free_port
from chaton.mail import records
from chaton.mail.diagnosis import (
    KeyCheck,
    MtaStsSource,
    Target,
    TlsEndpoint,
    diagnose,
    from_expected,
)
from chaton.testing.dns import KnotServer
from chaton.testing.mailservers import (  # noqa: F401 - the fixtures
    OpenDkimServer,
    PolicyServer,
    PostfixServer,
    opendkim_server,
    rsa_key_pem,
    self_signed_certificate,
    zone_text,
)
from chaton.testing.pytest_plugin import hold_closed_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("english")]

NOW = dt.datetime.now(dt.UTC)


def facts(domain: str, address: str, key_pem: str) -> records.DomainFacts:
    return records.DomainFacts(
        name=domain, zone=f"{domain}.", mx_hosts=(f"mail.{domain}",),
        sending_addresses=(address,), dmarc_policy="quarantine",
        dmarc_report_address="dmarc@reports.test", report_zone="reports.test.",
        tls_rpt_address=f"tls@{domain}",
        advertised=(records.KeyFacts("k1", "rsa", public_key_of(key_pem)),))


def rows(items: list[records.Expected], zone: str) -> list[Record]:
    return [Record(item.record.name, item.record.type, item.record.ttl, item.record.values)
            for item in items if item.zone == zone and not item.absent]


@dataclasses.dataclass
class World:
    knot: KnotServer
    postfix: PostfixServer
    policies: PolicyServer
    ca_file: str
    signer: OpenDkimSigner
    good: records.DomainFacts
    bad: records.DomainFacts

    def target(self, facts: records.DomainFacts, keys: list[KeyCheck]) -> Target:
        wanted, absent = from_expected(records.expected(facts))
        knot = ("127.0.0.1", self.knot.port)
        return Target(
            domain=facts.name, expected=[record for record in wanted
                                         if record.name.endswith(f"{facts.name}.")],
            absent=absent, authoritative=[knot], resolver=knot, mx_hosts=facts.mx_hosts,
            sending_addresses=facts.sending_addresses, keys=keys,
            mta_sts=MtaStsSource(("127.0.0.1", self.policies.port)),
            tls=[TlsEndpoint("127.0.0.1", self.postfix.port, "smtp-starttls"),
                 TlsEndpoint("127.0.0.1", self.postfix.implicit_tls_port or 0, "smtp-tls")],
            ehlo_endpoint=("127.0.0.1", self.postfix.port))


def key_check(facts: records.DomainFacts, selector: str, pem: str, state: str = "active",
              since: dt.datetime | None = None) -> KeyCheck:
    return KeyCheck(selector, public_key_of(pem), state,
                    f"{selector}._domainkey.{facts.name}.", since or NOW - dt.timedelta(days=1))


@pytest.fixture(scope="module")
def world(opendkim_server: OpenDkimServer) -> Iterator[World]:  # noqa: F811
    folder = Path(tempfile.mkdtemp(prefix="chaton-diagnosis-"))
    good = facts("diag.test", "127.0.0.2", rsa_key_pem(1))
    bad = facts("wrong.test", "127.0.0.3", rsa_key_pem(1))
    good_items, bad_items = records.expected(good), records.expected(bad)
    good_zone = [*rows(good_items, "diag.test."),
                 Record("mail.diag.test.", "A", 300, ("127.0.0.2",))]
    # wrong.test: the SPF walks eleven includes and does not name 127.0.0.3; the retired
    # selector k0 is still there.
    bad_zone = [record for record in rows(bad_items, "wrong.test.")
                if not (record.type == "TXT" and record.name == "wrong.test.")] + [
        Record("wrong.test.", "TXT", 300, (
            "v=spf1 " + " ".join(f"include:s{index}.wrong.test" for index in range(11))
            + " ~all",)),
        Record("mail.wrong.test.", "A", 300, ("127.0.0.3",)),
        Record("k0._domainkey.wrong.test.", "TXT", 300,
               (f"v=DKIM1; k=rsa; p={public_key_of(rsa_key_pem(3))}",)),
        *[Record(f"s{index}.wrong.test.", "TXT", 300, ("v=spf1 a -all",))
          for index in range(11)]]
    # reports.test accepts diag.test's reports only.
    report_zone = rows(good_items, "reports.test.")
    zones = {
        "diag.test": zone_text("diag.test", good_zone),
        "wrong.test": zone_text("wrong.test", bad_zone),
        "reports.test": zone_text("reports.test", report_zone),
        "0.0.127.in-addr.arpa": zone_text("0.0.127.in-addr.arpa", [])
        + "2 300 PTR mail.diag.test.\n3 300 PTR host-3.provider.example.\n",
    }
    knot = KnotServer(folder / "knot", free_port(), zones)
    certificate, key = self_signed_certificate(
        folder / "tls", ["127.0.0.1", "localhost", "mail.diag.test", "mta-sts.diag.test",
                         "mta-sts.wrong.test"])
    postfix = PostfixServer(folder / "postfix", free_port(), relay_port=free_port(),
                            milter=None, certificate=certificate, key=key,
                            hostname="mail.diag.test", implicit_tls_port=free_port())
    policies = PolicyServer(certificate, key, {
        "mta-sts.diag.test": records.mta_sts_policy(good),
        "mta-sts.wrong.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.other.example\r\n"
                              "max_age: 99999999\r\n"})
    signer = OpenDkimSigner(opendkim_server.config_dir)
    signer.install([SigningKey("diag.test", "k1", rsa_key_pem(1)),
                    # The stale key: the signer holds key 2 where DNS publishes key 1.
                    SigningKey("wrong.test", "k1", rsa_key_pem(2))])
    knot.start()
    postfix.start()
    policies.start()
    try:
        yield World(knot, postfix, policies, str(certificate), signer, good, bad)
    finally:
        policies.stop()
        postfix.stop()
        knot.stop()
        signer.install([])
        shutil.rmtree(folder, ignore_errors=True)


def test_a_domain_published_as_wanted_has_no_finding(world: World) -> None:
    target = world.target(world.good, [key_check(world.good, "k1", rsa_key_pem(1))])
    found = diagnose([target], signer=world.signer, ca_file=world.ca_file, timeout=3)
    assert [finding.as_dict() for finding in found["diag.test"]] == []


def test_a_wrong_spf_and_a_stale_key_are_found_with_their_fix(world: World) -> None:
    keys = [key_check(world.bad, "k1", rsa_key_pem(1)),
            key_check(world.bad, "k0", rsa_key_pem(3), state="retired")]
    target = world.target(world.bad, keys)
    found = diagnose([target], signer=world.signer, ca_file=world.ca_file, timeout=3)
    by_code = {finding.code: finding for finding in found["wrong.test"]}

    spf = by_code["spf_differs"]
    assert spf.expected == "v=spf1 mx ip4:127.0.0.3 -all"
    assert "mx ip4:127.0.0.3 -all" in spf.fix and "~all" in spf.fix
    assert {finding.server for finding in found["wrong.test"]
            if finding.code == "spf_differs"} == {f"127.0.0.1:{world.knot.port}",
                                                 f"resolver 127.0.0.1:{world.knot.port}"}
    lookups = by_code["spf_too_many_lookups"]
    # Eleven includes of one lookup each: over 10 (the walk stops soon after, bounded).
    assert int(lookups.found) > 10 and "ip4/ip6" in lookups.fix
    unauthorised = by_code["spf_address_not_authorised"]
    assert unauthorised.found == "127.0.0.3: softfail"
    assert "ip4:127.0.0.3" in unauthorised.fix

    stale = by_code["dkim_signer_differs"]
    assert stale.severity == "error"
    assert stale.found.startswith(public_key_of(rsa_key_pem(2))[:10])
    assert stale.expected.startswith(public_key_of(rsa_key_pem(1))[:10])
    assert "Restart OpenDKIM" in stale.fix
    assert "k0" in by_code["dkim_retired_present"].fix
    assert "wrong.test._report._dmarc.reports.test" in by_code["dmarc_report_unauthorised"].fix
    assert by_code["mta_sts_mx_uncovered"].expected == "mail.wrong.test"
    assert "max_age" in by_code["mta_sts_policy"].found
    ptr = by_code["ptr_mismatch"]
    assert (ptr.expected, ptr.found) == ("mail.diag.test.", "host-3.provider.example.")
    # What is right is not reported.
    assert "record_missing" not in by_code and "tls_failed" not in by_code
    assert "dkim_dns_differs" not in by_code


def test_expiring_certificates_and_old_keys_are_warnings(world: World) -> None:
    later = NOW + dt.timedelta(days=80)
    target = world.target(world.good, [key_check(world.good, "k1", rsa_key_pem(1))])
    found = diagnose([target], signer=world.signer, ca_file=world.ca_file, timeout=3,
                     now=later)["diag.test"]
    assert {(finding.code, finding.severity) for finding in found} == {
        ("tls_expiring", "warning"), ("dkim_key_old", "warning")}
    assert {finding.subject for finding in found if finding.code == "tls_expiring"} == {
        f"127.0.0.1:{world.postfix.port} (smtp-starttls)",
        f"127.0.0.1:{world.postfix.implicit_tls_port} (smtp-tls)"}


def test_a_short_key_and_a_key_missing_from_dns_are_found(world: World) -> None:
    short = rsa_key_pem(9, 1024)
    keys = [key_check(world.good, "k1", rsa_key_pem(1)),
            key_check(world.good, "k9", short, state="pending")]
    target = world.target(world.good, keys)
    found = diagnose([target], signer=world.signer, ca_file=world.ca_file, timeout=3)
    codes = {finding.code for finding in found["diag.test"]}
    assert codes == {"dkim_dns_differs", "dkim_key_short"}


def test_servers_that_do_not_answer_are_findings_not_failures(world: World) -> None:
    closed = hold_closed_port()
    try:
        port = closed.getsockname()[1]
        target = dataclasses.replace(
            world.target(world.good, [key_check(world.good, "k1", rsa_key_pem(1))]),
            authoritative=[("127.0.0.1", port)], resolver=None,
            tls=[TlsEndpoint("127.0.0.1", port, "smtp-starttls")],
            mta_sts=MtaStsSource(("127.0.0.1", port)), ehlo_endpoint=("127.0.0.1", port))
        found = diagnose([target], signer=None, ca_file=world.ca_file, timeout=1)
    finally:
        closed.close()
    codes = {finding.code for finding in found["diag.test"]}
    assert {"dns_unreachable", "tls_failed", "mta_sts_unreachable",
            "signer_unavailable"} <= codes
