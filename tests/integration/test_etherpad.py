"""Etherpad, end to end: built from its npm package, deployed by Chaton, logged into by LDAP.

The image is ``chaton-test/etherpad`` (:mod:`chaton.testing.etherpad`): Etherpad
with the catalogue's ``ep_chaton_ldap`` plugin. The catalogue's own manifest
drives it — its environment, its settings, its LDAP wiring — with three
changes for a machine that pulls nothing: the local image, no PostgreSQL
companion (Etherpad's file database instead) and so none of the ``DB_``
variables. It is deployed through ``do_create_instance`` on the session's
real dockerd, and a person of the session's slapd, created and put in the
login group through the directory's actions, opens a pad over HTTP with their
password.

How the container reaches slapd, which listens on 127.0.0.1 only: the test
creates a bridge network of its own on its own dockerd and relays one port of
that bridge's gateway address to slapd; the host's ``ldap_url`` names that
address, as a collective's host names the address its containers reach the
directory at.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from chaton.adapters.slapd import ManagedSlapd
from chaton.core.errors import InvalidInput
from chaton.directory import actions as directory_actions
from chaton.services import actions, catalog
from chaton.services.models import Instance
from chaton.testing.catalog_entry import CatalogEntryTests, UpgradeImages, to_toml
from chaton.testing.docker import TemporaryDockerd, WebImages
from chaton.testing.etherpad import IMAGE_REPOSITORY, PORT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APPLICATION = "etherpadtest"
PAD_TEXT = "Texte d'accueil des pads du collectif (test)."
#: Etherpad 1.8 answers a refused login after a one-second delay: keep the deadlines loose.
READY_SECONDS = 120


# -- a TCP relay from the test bridge's gateway to slapd --------------------------------------


class Relay:
    """Accept on ``address:0`` and pipe every connection to ``target``; closed by :meth:`close`."""

    def __init__(self, address: str, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((address, 0))
        self.listener.settimeout(0.5)
        self.port: int = self.listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for source, destination in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, destination),
                                 daemon=True).start()

    def _pipe(self, source: socket.socket, destination: socket.socket) -> None:
        source.settimeout(None)
        try:
            while chunk := source.recv(65536):
                destination.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, destination):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed.set()
        self.listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def directory_relay(dockerd: TemporaryDockerd, slapd: ManagedSlapd) -> Iterator[str]:
    """Yield an LDAP URL that the containers of the test dockerd reach slapd at."""
    name = f"chaton-test-ldap-{secrets.token_hex(3)}"
    network = dockerd.api.create_network(name, driver="bridge")
    try:
        details = dockerd.api.inspect_network(network["Id"])
        gateway = details["IPAM"]["Config"][0]["Gateway"]
        relay = Relay(gateway, ("127.0.0.1", slapd.port))
        try:
            yield f"ldap://{gateway}:{relay.port}"
        finally:
            relay.close()
    finally:
        dockerd.api.remove_network(network["Id"])


# -- a catalogue entry made from the real one -------------------------------------------------


@pytest.fixture
def etherpad_catalog(tmp_path: Path, etherpad_image: str) -> Iterator[str]:
    """Add ``etherpadtest`` to the catalogue: the real Etherpad entry on the local image."""
    data = tomllib.loads((catalog.CATALOG_DIR / "etherpad" / "manifest.toml").read_text())
    data.update(name=APPLICATION, image=etherpad_image, local=True, port=PORT)
    del data["database"]
    data["environment"] = {name: value for name, value in data["environment"].items()
                           if not name.startswith("DB_")}
    # The pads of the test go to Etherpad's file database, in the "var" volume.
    data["environment"]["DB_TYPE"] = "dirty"
    data["usage"] = []
    folder = tmp_path / "catalog" / APPLICATION
    folder.mkdir(parents=True)
    (folder / "manifest.toml").write_text(to_toml(data), encoding="utf-8")
    with catalog.extra_folder(folder.parent):
        yield APPLICATION


# -- the catalogue entry's lifecycle on the real image ----------------------------------------


class TestEtherpadOnItsImage(CatalogEntryTests):
    """Deploy, health, settings, upgrade and rollback, user_data backed up and restored, and
    the manifest's probes answered by Etherpad itself (chaton.testing.catalog_entry)."""

    entry = "etherpad"
    ready_seconds = READY_SECONDS

    @pytest.fixture
    def application(self, etherpad_catalog: str) -> str:
        return etherpad_catalog

    @pytest.fixture
    def images(self, dockerd: TemporaryDockerd, etherpad_image: str,
               web_images: WebImages) -> UpgradeImages:
        """The image built once, under a second tag for the upgrade; the broken test image."""
        dockerd.api.tag(etherpad_image, IMAGE_REPOSITORY, "upgrade")
        return UpgradeImages(etherpad_image, f"{IMAGE_REPOSITORY}:upgrade", web_images.broken)


# -- Etherpad over HTTP -----------------------------------------------------------------------


def wait_until_answering(base: str, timeout: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{base}/stats", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"Etherpad did not answer at {base} within {timeout:g} s")
        time.sleep(0.5)


def _engine_io_packets(body: str) -> list[str]:
    """Given an Engine.IO 3 polling payload (``<length>:<packet>`` …), return its packets."""
    packets = []
    while body:
        length, _, rest = body.partition(":")
        size = int(length)
        packets.append(rest[:size])
        body = rest[size:]
    return packets


def open_pad(base: str, session: requests.Session, pad: str) -> dict[str, Any]:
    """As the session's logged-in person, open (and so create) a pad; return its CLIENT_VARS.

    This is what Etherpad's page does in the browser: socket.io 2 over HTTP
    long polling, then a CLIENT_READY message.
    """
    endpoint = f"{base}/socket.io/"
    handshake = session.get(endpoint, params={"EIO": "3", "transport": "polling", "b64": "1"},
                            timeout=10)
    handshake.raise_for_status()
    opening = next(packet for packet in _engine_io_packets(handshake.text)
                   if packet.startswith("0"))
    sid = json.loads(opening[1:])["sid"]
    query = {"EIO": "3", "transport": "polling", "b64": "1", "sid": sid}
    message = {"component": "pad", "type": "CLIENT_READY", "padId": pad, "sessionID": "null",
               "token": "t." + secrets.token_hex(10), "password": None, "protocolVersion": 2}
    packet = "42" + json.dumps(["message", message])
    sent = session.post(endpoint, params=query, data=f"{len(packet)}:{packet}",
                        headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=10)
    sent.raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        poll = session.get(endpoint, params=query, timeout=30)
        poll.raise_for_status()
        for packet in _engine_io_packets(poll.text):
            if not packet.startswith("42"):
                continue
            event, payload = json.loads(packet[2:])[:2]
            if event == "message" and payload.get("type") == "CLIENT_VARS":
                return dict(payload["data"])
            if event == "message" and payload.get("accessStatus"):
                raise AssertionError(f"Etherpad refused the pad: {payload}")
    raise AssertionError("Etherpad sent no CLIENT_VARS within 30 s")


# -- the test ---------------------------------------------------------------------------------


def test_ldap_member_logs_in_and_creates_a_pad(
        docker_engine: TemporaryDockerd, ldap_directory: Any, directory_relay: str,
        etherpad_catalog: str) -> None:
    member = directory_actions.do_create_account(
        "camille", acting_user=None, display_name="Camille Testeuse",
        email="camille@example.org", password="une phrase de passe 1")
    outsider = directory_actions.do_create_account(
        "dominique", acting_user=None, display_name="Dominique Externe",
        email="dominique@example.org", password="une phrase de passe 2")
    group = directory_actions.do_create_group("pads", acting_user=None)
    directory_actions.do_add_to_group(group, member, acting_user=None)
    assert outsider.uid == "dominique"

    host = actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  ldap_url=directory_relay)
    # A setting out of its schema is refused before anything runs.
    with pytest.raises(InvalidInput):
        actions.do_create_instance(etherpad_catalog, "pad.example.test", host, acting_user=None,
                                   settings={"language": "klingon"})
    assert not Instance.objects.exists()

    started = time.monotonic()
    instance = actions.do_create_instance(
        etherpad_catalog, "pad.example.test", host, acting_user=None, login_group=group,
        settings={"default_pad_text": PAD_TEXT, "require_authentication": True,
                  "title": "Pads du collectif"})
    base = f"http://127.0.0.1:{instance.port}"
    wait_until_answering(base)
    print(f"BENCH etherpad_deploy_ready_s {time.monotonic() - started:.1f} s")

    # Every page asks for a login; a wrong password and a person outside the group are refused.
    assert requests.get(f"{base}/p/minutes", timeout=10).status_code == 401
    wrong = requests.get(f"{base}/p/minutes", auth=("camille", "not the password"), timeout=10)
    assert wrong.status_code == 401
    outside = requests.get(f"{base}/p/minutes", auth=("dominique", "une phrase de passe 2"),
                           timeout=10)
    assert outside.status_code == 401

    # The member logs in with the password Chaton projected into the directory …
    session = requests.Session()
    page = session.get(f"{base}/p/minutes", auth=("camille", "une phrase de passe 1"), timeout=10)
    assert page.status_code == 200, page.text[:300]
    assert "<title>Pads du collectif" in page.text  # the instance's title setting
    # … and opening the pad creates it, with the instance's default text (a setting).
    client_vars = open_pad(base, session, "minutes")
    text = client_vars["collab_client_vars"]["initialAttributedText"]["text"]
    assert text.strip() == PAD_TEXT
    assert client_vars["collab_client_vars"]["padId"] == "minutes"

    # The pad is kept: Etherpad's HTTP API lists it (its key is in the container).
    archive, _ = docker_engine.api.get_archive(_app_container(docker_engine, instance),
                                               "/opt/etherpad/APIKEY.txt")
    api_key = _read_single_file(b"".join(archive))
    pads = requests.get(f"{base}/api/1.2.1/listAllPads", params={"apikey": api_key},
                        timeout=10).json()
    assert "minutes" in pads["data"]["padIDs"], pads


def _app_container(dockerd: TemporaryDockerd, instance: Instance) -> str:
    containers = dockerd.api.containers(filters={"label": ["org.chaton.owned=1"]})
    for container in containers:
        if any(re.fullmatch(rf"/chaton-{instance.slug}-app-.*", name)
               for name in container["Names"]):
            return str(container["Id"])
    raise AssertionError(f"no application container for {instance.slug}: {containers}")


def _read_single_file(tar_bytes: bytes) -> str:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        member = archive.getmembers()[0]
        extracted = archive.extractfile(member)
        assert extracted is not None
        return extracted.read().decode().strip()
