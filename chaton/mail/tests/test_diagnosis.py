"""The diagnosis's rules over answers given by a table (no server): SPF compared token by
token, walked and evaluated (an include loop ends), DKIM against the signer, DMARC and
MTA-STS syntax. The same checks against real servers: tests/integration/test_mail_diagnosis.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chaton.adapters.dns import DnsUnavailable, Record
from chaton.mail.diagnosis import (
    KeyCheck,
    Target,
    _mx_pattern_covers,
    diagnose,
    dmarc_problems,
    mta_sts_problems,
)

pytestmark = pytest.mark.usefixtures("english")
SERVER = ("127.0.0.1", 53)


class Table:
    """A DNS server as a table: (name, type) → values; ``asked`` counts the queries."""

    def __init__(self, rows: dict[tuple[str, str], tuple[str, ...]]) -> None:
        rows = {("_dmarc.example.org", "TXT"): ("v=DMARC1; p=none",),
                ("example.org", "TXT"): ("v=spf1 -all",), **rows}
        self.rows = {(name.rstrip(".") + ".", type): values for (name, type), values in
                     rows.items()}
        self.asked = 0
        self.down = False

    def __call__(self, name: str, type: str, *, server: tuple[str, int],
                 timeout: float = 5.0) -> Record | None:
        self.asked += 1
        if self.down:
            raise DnsUnavailable(f"{server[0]}:{server[1]} does not answer")
        values = self.rows.get((name.rstrip(".").lower() + ".", type))
        return Record(name, type, 300, values) if values else None


def codes(table: Table, target: Target, **options: object) -> dict[str, object]:
    found = diagnose([target], resolver=table, **options)[target.domain]  # type: ignore[arg-type]
    return {finding.code: finding for finding in found}


def spf_target(spf: str, *addresses: str) -> Target:
    return Target("example.org", expected=[Record("example.org.", "TXT", 300, (spf,))],
                  authoritative=[SERVER], sending_addresses=addresses)


def test_spf_with_the_same_terms_in_another_order_is_equal() -> None:
    table = Table({("example.org", "TXT"): ("v=spf1 ip4:192.0.2.1 mx -all",),
                   ("example.org", "MX"): ("10 mail.example.org.",),
                   ("mail.example.org", "A"): ("192.0.2.1",)})
    assert codes(table, spf_target("v=spf1 mx ip4:192.0.2.1 -all", "192.0.2.1")) == {}


def test_spf_that_differs_says_which_terms_are_missing_and_extra() -> None:
    table = Table({("example.org", "TXT"): ("v=spf1 a ~all", "google-site-verification=x")})
    finding = codes(table, spf_target("v=spf1 mx -all"))["spf_differs"]
    assert finding.fix == ("Set the SPF record of example.org to the expected value "  # type: ignore[attr-defined]
                           "(missing: mx -all; not expected: a ~all).")
    assert finding.found == "v=spf1 a ~all"  # type: ignore[attr-defined]


def test_two_spf_records_are_one_too_many() -> None:
    table = Table({("example.org", "TXT"): ("v=spf1 mx -all", "v=spf1 -all")})
    assert "spf_several" in codes(table, spf_target("v=spf1 mx -all"))


def test_sending_addresses_are_evaluated_through_includes_and_redirects() -> None:
    table = Table({
        ("example.org", "TXT"): ("v=spf1 include:_spf.example.org redirect=_r.example.org",),
        ("_spf.example.org", "TXT"): ("v=spf1 ip4:198.51.100.0/24 a:relay.example.org/30 -all",),
        ("relay.example.org", "A"): ("203.0.113.4",),
        ("_r.example.org", "TXT"): ("v=spf1 ip6:2001:db8::/32 ~all",),
    })
    target = Target("example.org", authoritative=[SERVER],
                    sending_addresses=("198.51.100.7", "203.0.113.6", "2001:db8::1"))
    assert codes(table, target) == {}
    refused = codes(table, Target("example.org", authoritative=[SERVER],
                                  sending_addresses=("192.0.2.9",)))
    assert refused["spf_address_not_authorised"].found == "192.0.2.9: softfail"  # type: ignore[attr-defined]


def test_an_include_loop_ends_and_counts_as_too_many_lookups() -> None:
    """An SPF that includes itself (by mistake, or a partner's record that points back) must
    not hang the diagnosis: the walk is bounded."""
    table = Table({("example.org", "TXT"): ("v=spf1 include:loop.example.org -all",),
                   ("loop.example.org", "TXT"): ("v=spf1 include:example.org -all",)})
    found = codes(table, Target("example.org", authoritative=[SERVER],
                                sending_addresses=("192.0.2.1",)))
    assert int(found["spf_too_many_lookups"].found) > 10  # type: ignore[attr-defined]
    assert found["spf_address_not_authorised"].found == "192.0.2.1: permerror"  # type: ignore[attr-defined]
    assert table.asked < 50


def key(selector: str, public: str, state: str = "active", days: int = 1) -> KeyCheck:
    return KeyCheck(selector, public, state, f"{selector}._domainkey.example.org.",
                    dt.datetime.now(dt.UTC) - dt.timedelta(days=days))


class Held:
    def __init__(self, held: dict[tuple[str, str], str]) -> None:
        self._held = held

    def install(self, keys: object) -> None:
        raise AssertionError("the diagnosis never installs")

    def held(self) -> dict[tuple[str, str], str]:
        return self._held


def test_a_signer_holding_another_key_than_dns_is_found() -> None:
    table = Table({("k2._domainkey.example.org", "TXT"): ("v=DKIM1; k=ed25519; p=NEW",),
                   ("k1._domainkey.example.org", "TXT"): ("v=DKIM1; k=ed25519; p=OLD",)})
    target = Target("example.org", authoritative=[SERVER],
                    keys=[key("k2", "NEW"), key("k1", "OLD", "retiring")])
    assert codes(table, target, signer=Held({("example.org", "k2"): "NEW"})) == {}
    # Not reloaded: it still signs with k1, and does not hold k2.
    stale = diagnose([target], resolver=table, signer=Held({("example.org", "k1"): "OLD"}))
    rows = {(finding.code, finding.subject) for finding in stale["example.org"]}
    assert rows == {("dkim_signer_differs", "signer k2"), ("dkim_signer_differs", "signer k1")}


def test_a_signer_signing_with_a_key_that_is_not_in_dns_says_so() -> None:
    table = Table({("k2._domainkey.example.org", "TXT"): ("v=DKIM1; k=ed25519; p=NEW",)})
    target = Target("example.org", authoritative=[SERVER], keys=[key("k2", "NEW")])
    found = diagnose([target], resolver=table,
                     signer=Held({("example.org", "k2"): "NEW",
                                  ("example.org", "k9"): "UNPUBLISHED"}))["example.org"]
    assert [finding.fix for finding in found] == [
        "The signer signs with selector k9, which is not the active key and not in DNS "
        "(receivers cannot verify it): restart OpenDKIM, then run the DKIM reconcile again."]


def test_a_dns_server_that_does_not_answer_is_a_finding() -> None:
    table = Table({})
    table.down = True
    found = codes(table, spf_target("v=spf1 mx -all"))
    assert found["dns_unreachable"].severity == "error"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "problem"), [
    ("v=DMARC1; p=reject", None),
    ("v=DMARC1; p=quarantine; rua=mailto:d@example.org,mailto:e@example.net; pct=50", None),
    ("p=reject; v=DMARC1", "v=DMARC1 must come first"),
    ("v=DMARC1; p=block", "p=block is not none, quarantine or reject"),
    ("v=DMARC1; p=none; pct=150", "pct=150 is not a number from 0 to 100"),
    ("v=DMARC1; p=none; rua=https://example.org/", "rua: https://example.org/ is not a mailto: "
                                                   "address"),
])
def test_dmarc_syntax(value: str, problem: str | None) -> None:
    assert dmarc_problems(value) == ([problem] if problem else [])


def test_mta_sts_policy_syntax_and_mx_patterns() -> None:
    problems, patterns = mta_sts_problems(
        "version: STSv1\r\nmode: enforce\r\nmx: *.example.org\r\nmax_age: 604800\r\n")
    assert (problems, patterns) == ([], ["*.example.org"])
    assert _mx_pattern_covers("*.example.org", "mail.example.org.")
    assert not _mx_pattern_covers("*.example.org", "a.mail.example.org")
    assert not _mx_pattern_covers("*.example.org", "example.org")
    problems, _ = mta_sts_problems("version: STSv1\nmode: strict\nmax_age: 31557601\n")
    assert problems == ["mode is not testing, enforce or none",
                        "max_age 31557601 is not a number up to 31557600"]


def test_a_recorded_domain_is_diagnosed_through_its_zone_client(mail: Any) -> None:
    """The page's, API's and CLI's diagnosis reads a zone Chaton updates through the DNS
    adapter's slot (here the fake): the fast tier reaches no network."""
    from chaton.mail import actions
    from chaton.mail.diagnosis import diagnose_domain
    from chaton.mail.models import DkimKey

    actions.do_reconcile_keys(mail.domain)
    mail.dns.down = True
    assert {finding.code for finding in diagnose_domain(mail.domain)} == {"dns_unreachable"}
    mail.dns.down = False
    found = {finding.code: finding for finding in diagnose_domain(mail.domain)}
    # The records are published; the key is pending (no signer finding); the MX host has no
    # address in the zone, so its TLS and MTA-STS checks say so instead of reaching out.
    assert set(found) == {"host_unresolved"}
    assert found["host_unresolved"].fix == (
        "Publish an address (A or AAAA) for mx.example.org: without one, the checks of that "
        "host cannot run and senders cannot reach it.")
    key = DkimKey.objects.get()
    DkimKey.objects.filter(pk=key.pk).update(state="active", activated_at=key.created_at)
    mail.signer.keys = {}
    codes = {finding.code for finding in diagnose_domain(mail.domain)}
    assert "dkim_signer_differs" in codes


def test_a_server_that_stalls_costs_the_deadline_not_more() -> None:
    """A DNS server that answers slowly (or a hostile one that never does) must not hold the
    page, the API or the worker: checks run side by side, and what is late is a finding."""
    import time

    class Slow(Table):
        delay = 3.0

        def __call__(self, name: str, type: str, *, server: tuple[str, int],
                     timeout: float = 5.0) -> Record | None:
            time.sleep(self.delay)
            return super().__call__(name, type, server=server, timeout=timeout)

    table = Slow({})
    started = time.monotonic()
    found = diagnose([spf_target("v=spf1 -all")], resolver=table, deadline=0.5)
    assert time.monotonic() - started < 1.5
    assert {finding.code for finding in found["example.org"]} == {"check_timed_out"}
    # Twenty domains of slow answers (0.2 s each) take a few answers' time, not twenty times.
    table = Slow({})
    table.delay = 0.2
    targets = [Target(f"fast{index}.example.org",
                      expected=[Record(f"fast{index}.example.org.", "TXT", 300, ("x",))],
                      authoritative=[SERVER]) for index in range(20)]
    started = time.monotonic()
    found = diagnose(targets, resolver=table, deadline=5, workers=32)
    assert time.monotonic() - started < 2.5
    assert not any(finding.code == "check_timed_out" for rows in found.values()
                   for finding in rows)
