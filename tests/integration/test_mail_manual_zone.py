"""A manual zone checked against a real authoritative server (Knot on a loopback port): the
plan shows what is right, what is missing and a record changed by hand; a DKIM key becomes
active only once the server answers its record, and never before the minimum time."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.opendkim import use_signer
from chaton.adapters.opendkim.fake import FakeSigner
from chaton.core import clock
from chaton.core.servers import free_port
from chaton.mail import actions, dnsplan
from chaton.mail.models import DkimKey, KeyState
from chaton.mail.queries import facts_of
from chaton.mail.records import expected, zone_snippet
from chaton.testing.dns import KnotServer

pytestmark = pytest.mark.django_db(transaction=True)

HEAD = """\
$ORIGIN example.test.
$TTL 300
@     SOA  ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@     NS   ns1
ns1   A    127.0.0.1
"""


@pytest.fixture
def knot_directory() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="chaton-mail-knot-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def signer() -> Iterator[FakeSigner]:
    fake = FakeSigner()
    with use_signer(fake):
        yield fake
    clock.travel(dt.timedelta(0))


def serve(directory: Path, port: int, text: str) -> KnotServer:
    server = KnotServer(directory, port, {"example.test": HEAD + text})
    server.start()
    return server


def test_a_manual_zone_is_checked_against_its_server(knot_directory, signer, settings,
                                                     monkeypatch):
    monkeypatch.setattr(settings.CHATON.mail_identity, "selectors", ["k%Y%m%d"])
    port = free_port()
    zone = actions.do_create_zone("example.test", acting_user=None, mode="manual",
                                  server_host="127.0.0.1", server_port=port)
    addresses = [f"198.51.100.{index}" for index in range(1, 30)]  # SPF over 255 characters
    domain = actions.do_add_domain("example.test", acting_user=None, zone=zone,
                                   mx_hosts=["mx.example.test"], sending_addresses=addresses,
                                   dmarc_report_address="dmarc@example.test")
    server = serve(knot_directory, port, "")
    try:
        result = actions.do_reconcile_keys(domain)  # a first key, pending: not in the zone
        assert not result.errors
        key = DkimKey.objects.get()
        assert key.state == KeyState.PENDING and key.advertised_at is None
        steps = dnsplan.plan(domain).steps
        assert {step.action for step in steps} == {"add"}
    finally:
        server.stop()

    # Someone sets the records at the registrar, but types the SPF wrong.
    snippet = zone_snippet(expected(facts_of(domain)))
    wrong = "\n".join(
        '@ 3600 IN TXT "v=spf1 +all"' if line.startswith('example.test. 3600 IN TXT "v=spf1')
        else line for line in snippet.splitlines())
    server = serve(knot_directory, port, wrong + "\n")
    try:
        steps = dnsplan.plan(domain).steps
        changed = [step for step in steps if step.action != "ok"]
        assert [(step.action, step.item.purpose) for step in changed] == [("change", "SPF")]
        assert changed[0].current.values == ("v=spf1 +all",)
        dkim = next(step for step in steps if step.item.purpose == "DKIM")
        assert dkim.current.values == dkim.item.record.values  # split on the wire, joined back
        assert len(dkim.item.record.values[0]) > 255
        assert actions.do_apply_dns(domain, acting_user=None) == 0  # nothing sent to it

        actions.do_reconcile_keys(domain)
        key.refresh_from_db()
        assert key.state == KeyState.PENDING and key.advertised_at is not None
        assert signer.held() == {}
        clock.travel(dt.timedelta(hours=4, minutes=1))
        actions.do_reconcile_keys(domain)
        key.refresh_from_db()
        assert key.state == KeyState.ACTIVE
        assert signer.held() == {("example.test", key.selector): key.public_key}
    finally:
        server.stop()

    # The server is down: the key in place keeps signing, a new one stays pending.
    actions.do_rotate(domain, acting_user=None)
    clock.travel(dt.timedelta(hours=20))
    result = actions.do_reconcile_keys(domain)
    assert result.errors
    assert DkimKey.objects.filter(state=KeyState.PENDING).count() == 1
    assert signer.held() == {("example.test", key.selector): key.public_key}
