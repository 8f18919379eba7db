"""A zone Chaton updates, on a real Knot taking RFC 2136 updates signed with TSIG: the mail
domain's records published; a DKIM rotation with the clock moved (the new key signs only once
Knot serves its record and after the minimum time; the old one stays served while retiring,
then its record goes); the server down during a rotation (the key stays pending, the signer
keeps the old key); a record changed by hand put back; a wrong TSIG key a clear error."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from chaton.adapters.dns import resolve
from chaton.adapters.opendkim import use_signer
from chaton.adapters.opendkim.fake import FakeSigner
from chaton.core import clock
from chaton.core.errors import ServerFailure
from chaton.mail import actions, dnsplan
from chaton.mail.models import DkimKey, KeyState
from chaton.testing.dns import KnotServer, TsigKey, knot_updates  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signer():
    fake = FakeSigner()
    with use_signer(fake):
        yield fake
    clock.travel(dt.timedelta(0))


def make_domain(knot: KnotServer, tsig: TsigKey | None = None):
    key = tsig or knot.tsig
    zone = actions.do_create_zone("example.org", acting_user=None, mode="rfc2136",
                                  server_host="127.0.0.1", server_port=knot.port,
                                  tsig_name=key.name, tsig_algorithm=key.algorithm,
                                  tsig_secret=key.secret)
    return actions.do_add_domain("example.org", acting_user=None, zone=zone,
                                 mx_hosts=["mail.example.org"],
                                 sending_addresses=[f"198.51.100.{n}" for n in range(1, 30)])


def served(knot: KnotServer, key: DkimKey):
    return resolve(f"{key.selector}._domainkey.example.org.", "TXT",
                   server=("127.0.0.1", knot.port))


def at(hours: float) -> None:
    clock.travel(dt.timedelta(hours=hours))


def test_a_rotation_on_a_real_server(knot_updates, signer, settings,  # noqa: F811
                                     monkeypatch):
    monkeypatch.setattr(settings.CHATON.mail_identity, "selectors", ["sel-a", "sel-b", "sel-c"])
    domain = make_domain(knot_updates)
    result = actions.do_reconcile_keys(domain)
    assert not result.errors, result.errors
    first = DkimKey.objects.get()
    assert first.selector == "sel-a"
    assert served(knot_updates, first).values == (f"v=DKIM1; k=rsa; p={first.public_key}",)
    spf = resolve("example.org.", "TXT", server=("127.0.0.1", knot_updates.port))
    assert any(value.startswith("v=spf1 mx ip4:198.51.100.1 ") and len(value) > 255
               for value in spf.values)
    assert not dnsplan.plan(domain).changes
    assert signer.held() == {}
    at(4.1)
    actions.do_reconcile_keys(domain)
    first.refresh_from_db()
    assert first.state == KeyState.ACTIVE
    assert signer.held() == {("example.org", "sel-a"): first.public_key}

    # The server goes down during the rotation: the new key stays pending.
    actions.do_rotate(domain, acting_user=None)
    second = DkimKey.objects.get(state=KeyState.PENDING)
    knot_updates.stop()
    try:
        at(30)
        result = actions.do_reconcile_keys(domain)
        assert result.errors
        second.refresh_from_db()
        assert second.state == KeyState.PENDING and second.advertised_at is None
        assert signer.held() == {("example.org", "sel-a"): first.public_key}
    finally:
        knot_updates.start()
    actions.do_reconcile_keys(domain)  # published now, and seen
    assert served(knot_updates, second) is not None
    at(33)
    actions.do_reconcile_keys(domain)
    at(34.5)
    actions.do_reconcile_keys(domain)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (KeyState.RETIRING, KeyState.ACTIVE)
    assert signer.held() == {("example.org", "sel-b"): second.public_key}
    assert served(knot_updates, first) is not None  # mail in transit still verifies
    at(34.5 + 88.1)
    actions.do_reconcile_keys(domain)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRED
    assert served(knot_updates, first) is None


def test_a_record_changed_by_hand_is_shown_and_put_back(knot_updates, signer):  # noqa: F811
    domain = make_domain(knot_updates)
    actions.do_apply_dns(domain, acting_user=None)
    knot_updates.change_by_hand("example.org.", "_dmarc.example.org.", "TXT", 3600,
                                ['"v=DMARC1; p=reject"'])
    changes = dnsplan.plan(domain).changes
    assert [(step.action, step.item.purpose, step.current.values) for step in changes] == [
        ("change", "DMARC", ("v=DMARC1; p=reject",))]
    assert actions.do_apply_dns(domain, acting_user=None) == 1
    assert resolve("_dmarc.example.org.", "TXT",
                   server=("127.0.0.1", knot_updates.port)).values == ("v=DMARC1; p=none",)


def test_a_wrong_tsig_key_is_a_clear_error_and_nothing_changes(knot_updates, signer):  # noqa: F811
    wrong = dataclasses.replace(TsigKey.random(), name=knot_updates.tsig.name)
    domain = make_domain(knot_updates, wrong)
    with pytest.raises(ServerFailure) as refused:
        actions.do_apply_dns(domain, acting_user=None)
    assert refused.value.code == "dns_refused"
    result = actions.do_reconcile_keys(domain)
    assert result.errors
    key = DkimKey.objects.get()
    assert key.state == KeyState.PENDING and served(knot_updates, key) is None
