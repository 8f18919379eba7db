"""The DKIM lifecycle with the DNS and the signer faked and the clock moved:
pending → active (seen everywhere, and never before the minimum advertisement) → retiring →
retired (after the transit window) → revealed (only with the members' decision); emergency."""

from __future__ import annotations

import datetime as dt

import pytest

from chaton.adapters.dns import Record
from chaton.core import clock
from chaton.core.errors import Conflict
from chaton.mail import actions, keys
from chaton.mail.models import DkimKey, KeyState
from chaton.mail.records import KeyFacts, dkim_value

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = dt.timedelta(hours=1)


def tick(mail, hours: float = 0) -> actions.ReconcileResult:
    if hours:
        clock.travel(clock._offset + dt.timedelta(hours=hours))
    return actions.do_reconcile_keys(mail.domain)


def states(mail) -> list[tuple[str, str]]:
    return [(key.selector, key.state) for key in
            DkimKey.objects.filter(domain=mail.domain).order_by("created_at", "id")]


def txt(mail, key: DkimKey):
    return mail.dns.records.get((f"{key.selector}._domainkey.example.org.", "TXT"))


def held(mail) -> set[tuple[str, str]]:
    return set(mail.signer.held())


def test_first_key_is_published_then_signs_only_after_the_minimum_advertisement(mail):
    tick(mail)
    key = DkimKey.objects.get(domain=mail.domain)
    assert key.state == KeyState.PENDING and key.bits == 2048
    assert txt(mail, key).values == (f"v=DKIM1; k=rsa; p={key.public_key}",)
    assert key.advertised_at is not None  # seen on the (one) server right away
    assert held(mail) == set()  # nothing signs yet
    tick(mail, 3.9)
    assert states(mail) == [(key.selector, "pending")]
    assert held(mail) == set()
    tick(mail, 0.2)
    key.refresh_from_db()
    assert key.state == KeyState.ACTIVE
    assert mail.signer.held() == {("example.org", key.selector): key.public_key}


def test_the_private_key_is_encrypted_at_rest(mail):
    tick(mail)
    key = DkimKey.objects.get(domain=mail.domain)
    assert "PRIVATE KEY" not in key.private_key
    assert keys.public_key_of(key.private_key_pem()) == key.public_key


def test_pending_stays_pending_while_the_dns_is_down(mail):
    mail.dns.down = True
    result = tick(mail)
    assert result.errors
    key = DkimKey.objects.get(domain=mail.domain)
    for _ in range(3):
        tick(mail, 24)
    key.refresh_from_db()
    assert key.state == KeyState.PENDING and key.advertised_at is None
    assert held(mail) == set()
    mail.dns.down = False
    tick(mail)
    tick(mail, 4)
    key.refresh_from_db()
    assert key.state == KeyState.ACTIVE


def test_pending_stays_pending_while_the_dns_shows_another_key(mail, monkeypatch):
    tick(mail)
    key = DkimKey.objects.get(domain=mail.domain)
    # Someone else's record keeps coming back under the selector (a secondary out of date).
    other = Record(f"{key.selector}._domainkey.example.org.", "TXT", 300,
                   ("v=DKIM1; k=rsa; p=OTHER",))
    real_read = mail.dns.read

    def stale_read(wanted):
        answer = real_read(wanted)
        return {k: (other if k[0] == other.name else v) for k, v in answer.items()}

    monkeypatch.setattr(mail.dns, "read", stale_read)
    tick(mail, 10)
    key.refresh_from_db()
    assert key.state == KeyState.PENDING and key.advertised_at is None
    assert held(mail) == set()


def rotate_to_second_key(mail) -> tuple[DkimKey, DkimKey]:
    tick(mail)
    tick(mail, 4)
    first = DkimKey.objects.get(domain=mail.domain)
    clock.travel(clock._offset + dt.timedelta(days=1))
    tick(mail, 24 * 30)  # rotation due: a new pending key
    second = DkimKey.objects.filter(domain=mail.domain).exclude(pk=first.pk).get()
    assert second.state == KeyState.PENDING and second.selector != first.selector
    return first, second


def test_rotation_overlaps_retiring_then_retired_after_transit(mail):
    first, second = rotate_to_second_key(mail)
    assert txt(mail, first) is not None and txt(mail, second) is not None
    assert set(mail.signer.held()) == {("example.org", first.selector)}
    tick(mail, 4)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (KeyState.RETIRING, KeyState.ACTIVE)
    assert set(mail.signer.held()) == {("example.org", second.selector)}
    assert txt(mail, first) is not None  # still advertised: mail in transit verifies
    tick(mail, 87)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRING
    tick(mail, 1)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRED and first.retired_at is not None
    assert txt(mail, first) is None  # the record is removed
    tick(mail, 24 * 10)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRED  # never revealed without the decision


def test_a_rotation_already_under_way_is_a_conflict(mail):
    rotate_to_second_key(mail)
    with pytest.raises(Conflict):
        actions.do_rotate(mail.domain, acting_user=None)


@pytest.mark.usefixtures("english")
def test_emergency_stops_signing_at_once_and_skips_only_the_waits(mail):
    tick(mail)
    tick(mail, 4)
    compromised = DkimKey.objects.get(domain=mail.domain)
    assert held(mail) == {("example.org", compromised.selector)}
    result = actions.do_rotate(mail.domain, acting_user=None, emergency=True)
    compromised.refresh_from_db()
    assert compromised.state == KeyState.RETIRED and compromised.emergency
    assert held(mail) == set()  # nothing signs with the compromised key
    assert result.skipped and any("minimum advertisement" in line for line in result.skipped)
    (new,) = result.new_keys
    # The new key is not signing before its record is seen.
    mail.dns.down = True
    tick(mail)
    new.refresh_from_db()
    assert new.state == KeyState.PENDING and held(mail) == set()
    mail.dns.down = False
    tick(mail)
    new.refresh_from_db()
    assert new.state == KeyState.ACTIVE  # no minimum advertisement
    assert held(mail) == {("example.org", new.selector)}
    assert txt(mail, compromised) is None


def test_selectors_from_a_fixed_cycle(mail, settings, monkeypatch):
    monkeypatch.setattr(settings.CHATON.mail_identity, "selectors", ["a", "b"])
    first, second = rotate_to_second_key(mail)
    assert (first.selector, second.selector) in {("a", "b")}


def test_a_record_changed_by_hand_is_put_back(mail):
    tick(mail)
    key = DkimKey.objects.get(domain=mail.domain)
    mail.dns.records[("example.org.", "TXT")] = Record("example.org.", "TXT", 3600,
                                                       ("v=spf1 +all",))
    from chaton.mail import dnsplan

    plan = dnsplan.plan(mail.domain)
    (changed,) = [step for step in plan.changes]
    assert changed.action == "change" and changed.current.values == ("v=spf1 +all",)
    assert actions.do_apply_dns(mail.domain, acting_user=None) == 1
    assert mail.dns.records[("example.org.", "TXT")].values == ("v=spf1 mx -all",)
    assert txt(mail, key).values == (dkim_value(KeyFacts(key.selector, "rsa", key.public_key)),)
    assert not dnsplan.plan(mail.domain).changes


def test_an_ed25519_key_alongside_signs_with_the_rsa_one(mail, settings, monkeypatch):
    monkeypatch.setattr(settings.CHATON.mail_identity, "ed25519", True)
    tick(mail)
    tick(mail, 4)
    keys = {key.algorithm: key for key in DkimKey.objects.filter(domain=mail.domain)}
    assert set(keys) == {"rsa", "ed25519"}
    assert {key.state for key in keys.values()} == {KeyState.ACTIVE}
    assert txt(mail, keys["ed25519"]).values == (
        f"v=DKIM1; k=ed25519; p={keys['ed25519'].public_key}",)
    assert held(mail) == {("example.org", keys["rsa"].selector),
                          ("example.org", keys["ed25519"].selector)}
