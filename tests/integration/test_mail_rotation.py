"""A DKIM rotation end to end, with real servers and a clock the test moves.

Knot serves ``example.org.`` and takes Chaton's signed updates (RFC 2136, TSIG); OpenDKIM
signs as a milter of a Postfix that relays to the test's SMTP catcher; dkimpy verifies the
caught mail against the records Knot serves. The worker's reconcile moves the keys
(:func:`chaton.mail.actions.do_reconcile_keys`), then the active keys go to the signer as its
after-commit hook does (:func:`chaton.mail.actions.install_signer_keys`, driven here with the
real OpenDKIM client).

The rotation: a mail signed before it verifies while its key is retiring; the new key signs
only once its record was seen (and advertised long enough); the retired key's record goes
from the zone; the revealed private key is the one that signed the old mail (a new mail
signed with it verifies against the old record captured earlier). Faults: Knot down during
a rotation (the new key stays pending and nothing signs with it), OpenDKIM not reloading
(the diagnosis says the signer's key differs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage

import dkim
import pytest

from chaton.adapters.dns import resolve
from chaton.adapters.opendkim import SignerUnavailable
from chaton.adapters.opendkim.client import OpenDkimSigner
from chaton.core import clock
from chaton.mail import actions
from chaton.mail.diagnosis import KeyCheck, Target, diagnose
from chaton.mail.models import DkimKey, KeyState, MailDomain
from chaton.testing.dns import KnotServer, knot_updates  # noqa: F401 - the fixture
from chaton.testing.mailservers import (  # noqa: F401 - the fixtures
    OpenDkimServer,
    PostfixServer,
    mail_certificates,
    opendkim_server,
    postfix_relay,
    wait_for_mail,
)
from chaton.testing.pytest_plugin import SmtpCatcher

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


class Rotation:
    """The test's hands: the clock, the worker's reconcile, the signer, mail and DNS."""

    def __init__(self, knot: KnotServer, postfix: PostfixServer, catcher: SmtpCatcher,
                 signer: OpenDkimSigner, domain: MailDomain) -> None:
        self.knot = knot
        self.postfix = postfix
        self.catcher = catcher
        self.signer = signer
        self.domain = domain
        self.offset = dt.timedelta(0)

    def travel(self, by: dt.timedelta) -> None:
        self.offset += by
        clock.travel(self.offset)

    def reconcile(self) -> actions.ReconcileResult:
        """The worker's pass: move the keys, then give the signer the active ones."""
        result = actions.do_reconcile_keys(self.domain)
        self.signer.install([_real(key) for key in actions.active_signing_keys()])
        return result

    def key(self, state: str) -> DkimKey:
        return DkimKey.objects.get(domain=self.domain, state=state)

    def record(self, selector: str) -> bytes | None:
        """The DKIM record Knot serves for ``selector`` now."""
        found = resolve(f"{selector}._domainkey.example.org.", "TXT",
                        server=("127.0.0.1", self.knot.port))
        return found.values[0].encode() if found else None

    def send(self, subject: str) -> bytes:
        """Send a mail from example.org through Postfix; return it as the catcher got it."""
        count = len(self.catcher.messages)
        message = EmailMessage()
        message["From"] = "bureau@example.org"
        message["To"] = "member@example.net"
        message["Subject"] = subject
        message.set_content(f"{subject}: the minutes of the general assembly.\n")
        self.postfix.send(message)
        wait_for_mail(self.catcher, count + 1)
        return bytes(self.catcher.messages[count].content)

    def verifies(self, mail: bytes) -> bool:
        """Whether dkimpy verifies ``mail`` against the records Knot serves now."""
        def from_knot(name: bytes, timeout: int = 5) -> bytes | None:
            selector = name.decode().split("._domainkey.")[0]
            return self.record(selector)
        return bool(dkim.verify(mail, dnsfunc=from_knot))


def _real(key: object) -> object:
    from chaton.adapters.opendkim import SigningKey

    return SigningKey(key.domain, key.selector, key.private_key_pem)  # type: ignore[attr-defined]


def selector_of(mail: bytes) -> str | None:
    for line in mail.split(b"\r\n"):
        if line.startswith(b"DKIM-Signature:"):
            header = mail[mail.index(line):].split(b"\r\n\r\n")[0]
            tags = dict(part.strip().split(b"=", 1) for part in
                        b"".join(header.split(b"\r\n")).split(b":", 1)[1].split(b";")
                        if b"=" in part)
            return tags[b"s"].decode()
    return None


@pytest.fixture
def rotation(knot_updates: KnotServer, opendkim_server: OpenDkimServer,  # noqa: F811
             postfix_relay: PostfixServer, smtp_catcher: SmtpCatcher,  # noqa: F811
             settings: object) -> Iterator[Rotation]:
    config = settings.CHATON.mail_identity  # type: ignore[attr-defined]
    # The section is one object the whole session shares: set what this test relies on
    # (one RSA key per rotation, a fixed cycle), and put it back after.
    wanted = {"selectors": ["s1", "s2", "s3"], "min_advertise_hours": 4.0,
              "transit_hours": 88.0, "ed25519": False, "signer_config_dir": ""}
    before = {name: getattr(config, name) for name in wanted}
    for name, value in wanted.items():
        setattr(config, name, value)
    assert knot_updates.tsig is not None
    zone = actions.do_create_zone(
        "example.org", acting_user=None, mode="rfc2136", server_host="127.0.0.1",
        server_port=knot_updates.port, tsig_name=knot_updates.tsig.name,
        tsig_algorithm=knot_updates.tsig.algorithm, tsig_secret=knot_updates.tsig.secret)
    domain = actions.do_add_domain("example.org", acting_user=None, zone=zone,
                                   mx_hosts=["mail.example.org"],
                                   sending_addresses=["127.0.0.2"], rotation_days=30)
    signer = OpenDkimSigner(opendkim_server.config_dir, timeout=1.0)
    try:
        yield Rotation(knot_updates, postfix_relay, smtp_catcher, signer, domain)
    finally:
        clock.travel(dt.timedelta(0))
        opendkim_server.resume()
        signer.install([])
        for name, value in before.items():
            setattr(config, name, value)


def first_key_signs(rotation: Rotation) -> DkimKey:
    """Bring the domain to one active key, seen in DNS; return it."""
    result = rotation.reconcile()
    assert not result.errors, result.errors
    pending = rotation.key(KeyState.PENDING)
    assert pending.advertised_at is not None  # published and seen at once …
    assert rotation.signer.held() == {}        # … but not advertised long enough to sign
    assert selector_of(rotation.send("too early")) is None
    rotation.travel(5 * HOUR)
    rotation.reconcile()
    active = rotation.key(KeyState.ACTIVE)
    assert active.pk == pending.pk
    return active


def test_a_rotation_end_to_end(rotation: Rotation) -> None:
    first = first_key_signs(rotation)
    old_mail = rotation.send("before the rotation")
    assert selector_of(old_mail) == first.selector
    assert rotation.verifies(old_mail)
    old_record = rotation.record(first.selector)
    assert old_record is not None and first.public_key.encode() in old_record

    # The rotation is due: a new key is published and seen, but does not sign yet.
    rotation.travel(31 * DAY)
    assert not rotation.reconcile().errors
    second = rotation.key(KeyState.PENDING)
    assert second.selector != first.selector and second.advertised_at is not None
    assert rotation.record(second.selector) is not None
    assert selector_of(rotation.send("during the advertisement")) == first.selector

    # Advertised long enough: the new key signs, the old one retires (still published).
    rotation.travel(5 * HOUR)
    rotation.reconcile()
    assert rotation.key(KeyState.ACTIVE).pk == second.pk
    assert rotation.key(KeyState.RETIRING).pk == first.pk
    new_mail = rotation.send("after the rotation")
    assert selector_of(new_mail) == second.selector
    assert rotation.verifies(new_mail)
    assert rotation.verifies(old_mail)  # mail in transit still verifies
    found = diagnose([Target("example.org", authoritative=[("127.0.0.1", rotation.knot.port)],
                             keys=[KeyCheck(second.selector, second.public_key, "active",
                                            f"{second.selector}._domainkey.example.org."),
                                   KeyCheck(first.selector, first.public_key, "retiring",
                                            f"{first.selector}._domainkey.example.org.")])],
                     signer=rotation.signer, timeout=3)["example.org"]
    assert [row.code for row in found if row.code.startswith("dkim")] == []

    # After the transit window the old key is retired and its record goes.
    rotation.travel(89 * HOUR)
    # The members decided to publish retired keys (the gate itself is the mail app's test).
    MailDomain.objects.filter(pk=rotation.domain.pk).update(publish_retired_keys=True)
    rotation.reconcile()
    rotation.reconcile()  # the record is gone: the key is revealed
    retired = DkimKey.objects.get(pk=first.pk)
    assert retired.state == KeyState.REVEALED
    assert rotation.record(first.selector) is None
    assert not rotation.verifies(old_mail)  # its record is gone from DNS …

    # … but the revealed private key is the one that signed it: a mail signed with it now
    # verifies against the record captured before the rotation.
    revealed = retired.private_key_pem().encode()
    forged = dkim.sign(b"From: bureau@example.org\r\nTo: anyone@example.net\r\n"
                       b"Subject: anyone can sign this now\r\n\r\nHello.\r\n",
                       first.selector.encode(), b"example.org", revealed,
                       include_headers=[b"from", b"to", b"subject"])
    message = forged + b"From: bureau@example.org\r\nTo: anyone@example.net\r\n" \
        b"Subject: anyone can sign this now\r\n\r\nHello.\r\n"

    def captured(name: bytes, timeout: int = 5) -> bytes | None:
        return old_record if name.startswith(first.selector.encode() + b".") else None

    assert dkim.verify(message, dnsfunc=captured)
    assert dkim.verify(old_mail, dnsfunc=captured)


def test_dns_down_during_a_rotation_keeps_the_new_key_pending(rotation: Rotation) -> None:
    first = first_key_signs(rotation)
    rotation.travel(31 * DAY)
    rotation.knot.stop()
    try:
        result = rotation.reconcile()
        assert result.errors  # said, not raised
        pending = rotation.key(KeyState.PENDING)
        assert pending.advertised_at is None
        rotation.travel(10 * HOUR)
        assert rotation.reconcile().errors
        assert DkimKey.objects.get(pk=pending.pk).state == KeyState.PENDING
        # Nothing signs with the unpublished key: the old one still does.
        assert set(rotation.signer.held()) == {("example.org", first.selector)}
        assert selector_of(rotation.send("while DNS is down")) == first.selector
    finally:
        rotation.knot.start()
    rotation.reconcile()
    assert DkimKey.objects.get(pk=pending.pk).advertised_at is not None


def test_a_signer_that_does_not_reload_is_found_by_the_diagnosis(
        rotation: Rotation, opendkim_server: OpenDkimServer) -> None:  # noqa: F811
    first = first_key_signs(rotation)
    rotation.travel(31 * DAY)
    rotation.reconcile()
    rotation.travel(5 * HOUR)
    opendkim_server.pause()
    with pytest.raises(SignerUnavailable):
        rotation.reconcile()
    second = rotation.key(KeyState.ACTIVE)
    assert second.pk != first.pk
    found = diagnose([Target("example.org", authoritative=[("127.0.0.1", rotation.knot.port)],
                             keys=[KeyCheck(second.selector, second.public_key, "active",
                                            f"{second.selector}._domainkey.example.org."),
                                   KeyCheck(first.selector, first.public_key, "retiring",
                                            f"{first.selector}._domainkey.example.org.")])],
                     signer=rotation.signer, timeout=3)["example.org"]
    differs = [row for row in found if row.code == "dkim_signer_differs"]
    assert {row.subject for row in differs} == {f"signer {second.selector}",
                                                f"signer {first.selector}"}
    assert any("Restart OpenDKIM" in row.fix for row in differs)
