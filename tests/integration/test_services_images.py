"""Images without a registry, on the session's real dockerd: an archive made by
``docker save`` is loaded through the Docker SDK, recorded pinned by its id, and an
instance runs it — nothing is pulled (the test dockerd reaches no registry at all).
Nothing here skips: a server that does not start is a failure.
"""

from __future__ import annotations

import gzip
import http.client
import secrets
import time
from pathlib import Path

import pytest

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.errors import InvalidInput
from chaton.services import actions, catalog, queries
from chaton.services.models import Host, HostImage
from chaton.testing.docker import TemporaryDockerd, WebImages

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]

OFFLINE = "chaton-test/offline"


def wait_for(port: int, expect: bytes, timeout: float = 30) -> None:
    """Poll a published port until / answers 200 with ``expect`` in it."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read()
            if response.status == 200 and expect in body:
                return
            last = (response.status, body[:100])
        except (OSError, http.client.HTTPException) as error:
            last = error
        finally:
            connection.close()
        time.sleep(0.1)
    raise AssertionError(f"127.0.0.1:{port} did not answer {expect!r}: {last}")


@pytest.fixture
def host(docker_engine: TemporaryDockerd, test_catalog: Path, caddy: ManagedCaddy) -> Host:
    return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)


def test_a_saved_image_is_loaded_pinned_by_its_id_and_an_instance_runs_it(
        host: Host, docker_engine: TemporaryDockerd, web_images: WebImages,
        tmp_path: Path) -> None:
    api = docker_engine.api
    expected_id = api.inspect_image(web_images.one)["Id"]
    # An archive as `docker save` makes it, of an image under a name the engine then forgets.
    api.tag(web_images.one, OFFLINE, "1")
    archive = tmp_path / "offline.tar"
    try:
        with archive.open("wb") as file:
            for chunk in api.get_image(f"{OFFLINE}:1"):
                file.write(chunk)
    finally:
        api.remove_image(f"{OFFLINE}:1")  # untagged only: web:1 still names the image
    assert not any(f"{OFFLINE}:1" in (image.get("RepoTags") or []) for image in api.images())
    try:
        with archive.open("rb") as file:
            (record,) = actions.do_import_image(host, file, acting_user=None)
        assert (record.reference, record.image_id) == (f"{OFFLINE}:1", expected_id)
        assert record.size > 0
        assert [item.reference for item in queries.loaded_images(host=host)] == [f"{OFFLINE}:1"]

        instance = actions.do_create_instance(
            "webtest", f"offline-{secrets.token_hex(3)}.chaton.test", host, acting_user=None,
            image=f"{OFFLINE}:1")
        assert instance.image_override == expected_id
        wait_for(instance.port, b"chaton-test web version 1")
        (container,) = [item for item in api.containers(all=True)
                        if item["Labels"].get("org.chaton.instance") == instance.slug]
        assert container["ImageID"] == expected_id

        # The catalogue's applications take it too: a tag alone is no pin, a loaded one is.
        privatebin = catalog.get("privatebin")
        with pytest.raises(InvalidInput):
            actions.resolve_image(host, privatebin, "privatebin/nginx-fpm-alpine:offline")
        assert actions.resolve_image(host, privatebin, f"{OFFLINE}:1") == expected_id
        # Loading it again, compressed as the README shows, changes nothing but the date.
        compressed = tmp_path / "offline.tar.gz"
        compressed.write_bytes(gzip.compress(archive.read_bytes(), compresslevel=1))
        with compressed.open("rb") as file:
            (again,) = actions.do_import_image(host, file, acting_user=None)
        assert again.image_id == expected_id and HostImage.objects.count() == 1
    finally:
        if any(f"{OFFLINE}:1" in (image.get("RepoTags") or []) for image in api.images()):
            api.remove_image(f"{OFFLINE}:1")
