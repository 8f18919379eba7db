"""A mail domain in a zone Chaton updates, with the DNS and the signer faked.

The DNS is the DNS adapter's ``FakeZone``, the signer the signer adapter's ``FakeSigner``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chaton.adapters.dns import use_dns
from chaton.adapters.dns.fake import FakeZone
from chaton.adapters.opendkim import use_signer
from chaton.adapters.opendkim.fake import FakeSigner
from chaton.core import clock
from chaton.mail import actions
from chaton.mail.models import DnsZone, MailDomain


@dataclass
class Mail:
    zone: DnsZone
    domain: MailDomain
    dns: FakeZone
    signer: FakeSigner


@pytest.fixture
def fake_dns() -> Iterator[FakeZone]:
    zone = FakeZone("example.org.")
    with use_dns(zone):
        yield zone


@pytest.fixture
def fake_signer() -> Iterator[FakeSigner]:
    signer = FakeSigner()
    with use_signer(signer):
        yield signer


@pytest.fixture
def mail(db, fake_dns: FakeZone, fake_signer: FakeSigner, settings,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Mail]:
    monkeypatch.setattr(settings.CHATON.mail_identity, "selectors", ["k%Y%m%d"])
    monkeypatch.setattr(settings.CHATON.mail_identity, "ed25519", False)
    zone = actions.do_create_zone("example.org", acting_user=None, mode="rfc2136",
                                  server_host="127.0.0.1", server_port=5353,
                                  tsig_name="chaton", tsig_secret="c2VjcmV0")
    domain = actions.do_add_domain("example.org", acting_user=None, zone=zone,
                                   mx_hosts=["mx.example.org"],
                                   dmarc_report_address="dmarc@example.org")
    try:
        yield Mail(zone, domain, fake_dns, fake_signer)
    finally:
        clock.travel(dt.timedelta(0))
