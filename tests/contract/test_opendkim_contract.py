"""The signer adapter's contract: the same assertions on the fake and on OpenDKIM.

``FakeSigner`` stands for the signer in every fast test of the mail app; here it must answer
as :class:`~chaton.adapters.opendkim.client.OpenDkimSigner` does with a real ``opendkim``
started in a folder of its own: the keys installed are the keys held, installing them again
changes nothing, a name that could forge a table line is refused with nothing changed, a
signer that is down or does not reload raises SignerUnavailable and keeps the keys it held.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from chaton.adapters.opendkim import (
    Signer,
    SignerError,
    SignerUnavailable,
    SigningKey,
    public_key_of,
)
from chaton.adapters.opendkim.client import OpenDkimSigner
from chaton.adapters.opendkim.fake import FakeSigner
from chaton.core.servers import free_port
from chaton.testing.mailservers import OpenDkimServer, rsa_key_pem

SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]


def ed25519_pem() -> str:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


class Side:
    """A signer and the switches that break it, the same for both sides."""

    def __init__(self, signer: Signer, server: OpenDkimServer | None, fake: FakeSigner | None
                 ) -> None:
        self.signer = signer
        self.server = server
        self.fake = fake

    def freeze(self) -> None:
        if self.server is not None:
            self.server.pause()
        else:
            assert self.fake is not None
            self.fake.frozen = True

    def thaw(self) -> None:
        if self.server is not None:
            self.server.resume()
        elif self.fake is not None:
            self.fake.frozen = False

    def take_down(self) -> None:
        if self.server is not None:
            self.server.stop()
        else:
            assert self.fake is not None
            self.fake.down = True


@pytest.fixture(params=SIDE)
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeSigner()
        yield Side(fake, None, fake)
        return
    server = OpenDkimServer(tmp_path / "opendkim", free_port())
    server.start()
    try:
        yield Side(OpenDkimSigner(server.config_dir, timeout=1.0), server, None)
    finally:
        server.resume()
        server.stop()


def test_the_keys_installed_are_the_keys_held(side: Side) -> None:
    assert side.signer.held() == {}
    keys = [SigningKey("Example.org", "k1", rsa_key_pem(1)),
            SigningKey("partner.example", "k1", rsa_key_pem(2))]
    side.signer.install(keys)
    assert side.signer.held() == {("example.org", "k1"): public_key_of(rsa_key_pem(1)),
                                  ("partner.example", "k1"): public_key_of(rsa_key_pem(2))}


def test_two_keys_of_one_domain_are_both_held(side: Side) -> None:
    ed = ed25519_pem()
    side.signer.install([SigningKey("example.org", "k2", rsa_key_pem(1)),
                         SigningKey("example.org", "e2", ed)])
    held = side.signer.held()
    assert held[("example.org", "e2")] == public_key_of(ed)
    assert len(public_key_of(ed)) == 44  # the raw 32 bytes, RFC 8463
    assert held[("example.org", "k2")] == public_key_of(rsa_key_pem(1))


def test_installing_again_changes_nothing_and_a_new_set_replaces_the_old(side: Side) -> None:
    side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])
    side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])
    assert side.signer.held() == {("example.org", "k1"): public_key_of(rsa_key_pem(1))}
    side.signer.install([SigningKey("example.org", "k2", rsa_key_pem(2))])
    assert side.signer.held() == {("example.org", "k2"): public_key_of(rsa_key_pem(2))}
    side.signer.install([])
    assert side.signer.held() == {}


@pytest.mark.parametrize(("domain", "selector"), [
    ("example.org", "k1 *@evil.example k1._domainkey.example.org"),
    ("example.org", "k1\n*@evil.example"),
    ("example.org", "../../etc"),
    ("example.org", ""),
    ("example.org\n*@evil.example", "k1"),
    ("not a domain", "k1"),
    ("example", "k1"),
])
def test_a_name_that_could_forge_a_table_line_is_refused(side: Side, domain: str,
                                                         selector: str) -> None:
    side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])
    with pytest.raises(SignerError):
        side.signer.install([SigningKey(domain, selector, rsa_key_pem(2))])
    assert side.signer.held() == {("example.org", "k1"): public_key_of(rsa_key_pem(1))}


def test_a_key_that_is_no_key_is_refused(side: Side) -> None:
    with pytest.raises(SignerError):
        side.signer.install([SigningKey("example.org", "k1", "-----BEGIN NOTHING-----")])
    with pytest.raises(SignerError):
        side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1)),
                             SigningKey("EXAMPLE.org", "k1", rsa_key_pem(2))])
    assert side.signer.held() == {}


def test_a_signer_that_does_not_reload_keeps_the_key_it_held(side: Side) -> None:
    side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])
    side.freeze()
    try:
        with pytest.raises(SignerUnavailable):
            side.signer.install([SigningKey("example.org", "k2", rsa_key_pem(2))])
        assert side.signer.held() == {("example.org", "k1"): public_key_of(rsa_key_pem(1))}
    finally:
        side.thaw()
    # Once it answers again, installing finishes the change.
    side.signer.install([SigningKey("example.org", "k2", rsa_key_pem(2))])
    assert side.signer.held() == {("example.org", "k2"): public_key_of(rsa_key_pem(2))}


def test_a_signer_that_is_down_says_so(side: Side) -> None:
    side.take_down()
    with pytest.raises(SignerUnavailable) as down:
        side.signer.held()
    assert isinstance(down.value, ConnectionError)
    with pytest.raises(SignerUnavailable):
        side.signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])


@pytest.mark.integration
def test_key_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    with OpenDkimServer(tmp_path / "opendkim", free_port()) as server:
        signer = OpenDkimSigner(server.config_dir)
        signer.install([SigningKey("example.org", "k1", rsa_key_pem(1))])
        files = list((server.config_dir / "keys").iterdir())
        assert len(files) == 1
        assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(server.config_dir / "keys").st_mode) == 0o700
        assert rsa_key_pem(1) not in (server.config_dir / "KeyTable").read_text()
        signer.install([SigningKey("example.org", "k2", rsa_key_pem(2))])
        # The old key file goes once the signer took the new tables.
        assert len(list((server.config_dir / "keys").iterdir())) == 1
