"""OpenDKIM signs what Chaton installs: mail sent through Postfix is signed with the key the
signer adapter wrote, and verifies with dkimpy against that key's record; a new key signs
the next mail once installed (the reload is real)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest

from chaton.adapters.opendkim import SigningKey, public_key_of
from chaton.adapters.opendkim.client import OpenDkimSigner
from chaton.core.servers import free_port
from chaton.testing.mailservers import (  # noqa: F401 - the fixtures
    OpenDkimServer,
    PostfixServer,
    mail_certificates,
    opendkim_server,
    postfix_relay,
    rsa_key_pem,
    wait_for_mail,
)
from chaton.testing.pytest_plugin import SmtpCatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def signer(opendkim_server: OpenDkimServer) -> Iterator[OpenDkimSigner]:  # noqa: F811
    client = OpenDkimSigner(opendkim_server.config_dir)
    try:
        yield client
    finally:
        client.install([])


def letter(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "bureau@chaton.test"
    message["To"] = "someone@example.org"
    message["Subject"] = subject
    message.set_content("Bonjour,\nthe general assembly is on Thursday.\n")
    return message


def records(*pems: tuple[str, str]) -> dict[bytes, bytes]:
    return {f"{selector}._domainkey.chaton.test.".encode():
            f"v=DKIM1; k=rsa; p={public_key_of(pem)}".encode() for selector, pem in pems}


def verifies(raw: bytes, published: dict[bytes, bytes]) -> bool:
    return bool(dkim.verify(raw, dnsfunc=lambda name, timeout=5: published.get(name)))


def test_mail_through_postfix_is_signed_with_the_installed_key(
        signer: OpenDkimSigner, postfix_relay: PostfixServer,  # noqa: F811
        smtp_catcher: SmtpCatcher) -> None:
    signer.install([SigningKey("chaton.test", "k1", rsa_key_pem(1))])
    postfix_relay.send(letter("first"))
    wait_for_mail(smtp_catcher, 1)
    first = smtp_catcher.messages[0].content
    assert b"DKIM-Signature:" in first and b"s=k1" in first and b"d=chaton.test" in first
    assert verifies(first, records(("k1", rsa_key_pem(1))))
    # Another key under the same selector would not verify it: the check is real.
    assert not verifies(first, records(("k1", rsa_key_pem(2))))

    signer.install([SigningKey("chaton.test", "k2", rsa_key_pem(2))])
    postfix_relay.send(letter("second"))
    wait_for_mail(smtp_catcher, 2)
    second = smtp_catcher.messages[1].content
    assert b"s=k2" in second and b"s=k1" not in second
    assert verifies(second, records(("k2", rsa_key_pem(2))))


def test_mail_of_a_domain_without_a_key_is_not_signed(
        signer: OpenDkimSigner, postfix_relay: PostfixServer,  # noqa: F811
        smtp_catcher: SmtpCatcher) -> None:
    signer.install([SigningKey("partner.example", "k1", rsa_key_pem(1))])
    postfix_relay.send(letter("unsigned"))
    wait_for_mail(smtp_catcher, 1)
    assert b"DKIM-Signature:" not in smtp_catcher.messages[0].content


def test_a_stopped_postfix_leaves_no_process(tmp_path: Path) -> None:
    """The fixture owns what it starts: its master (which ``postfix start-fg`` runs apart)
    and the master's children go with it."""
    server = PostfixServer(tmp_path / "postfix", free_port(), relay_port=free_port(),
                           milter=None)
    server.start()
    master = server._master_pid()
    assert master is not None
    children = [int(pid) for pid in
                Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    assert children  # smtpd's listener, qmgr, pickup …
    server.stop()
    for pid in [master, *children]:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text(), pid
