"""Images without a registry: an archive made by ``docker save`` loaded onto a host, recorded
pinned by its id, used by instances of that host only; the page that loads one and the
catalogue that says which images are where."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chaton.adapters.docker.fake import FakeEngine
from chaton.core.errors import InvalidInput
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.services import actions, catalog
from chaton.services.models import Host, HostImage
from chaton.services.tests.conftest import FakeEngines, saved_archive
from chaton.testing.second_factor import login_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, directory):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, directory_actions.do_create_account(
        "camille", acting_user=None, display_name="Camille", email="camille@example.org",
        is_admin=True))
    return client


def test_a_catalogue_application_runs_a_loaded_image_only_by_its_id(
        host: Host, engine: FakeEngine) -> None:
    privatebin = catalog.get("privatebin")
    name = privatebin.image.split("@")[0].rsplit(":", 1)[0] + ":offline"
    # Not loaded: a tag is no pin, whatever the engine holds.
    engine.images.add(name)
    with pytest.raises(InvalidInput, match="pinned by digest"):
        actions.resolve_image(host, privatebin, name)
    data, image_id = saved_archive([name])
    records = actions.do_import_image(host, io.BytesIO(data), acting_user=None)
    assert [(record.reference, record.image_id) for record in records] == [(name, image_id)]
    assert actions.resolve_image(host, privatebin, name) == image_id
    assert actions.resolve_image(host, privatebin, image_id) == image_id
    assert actions.resolve_image(host, privatebin, privatebin.image) == privatebin.image
    assert AuditLog.objects.filter(action="host.image_import").count() == 1
    # The same name loaded again from a newer build: the newest one is used.
    data, newer = saved_archive([name], seed="newer")
    actions.do_import_image(host, io.BytesIO(data), acting_user=None)
    assert actions.resolve_image(host, privatebin, name) == newer
    assert HostImage.objects.count() == 2


def test_the_images_page_loads_an_archive_and_lists_it(admin_client, host: Host,
                                                       engine: FakeEngine) -> None:
    url = reverse("service-images")
    assert "No image loaded yet." in admin_client.get(url).content.decode()
    data, image_id = saved_archive(["chaton-test/web:offline"])
    response = admin_client.post(url, {"host": "box", "archive": SimpleUploadedFile(
        "web.tar", data, content_type="application/x-tar")}, follow=True)
    content = response.content.decode()
    assert "1 image was loaded: chaton-test/web:offline." in content
    assert image_id in content and "chaton-test/web:offline" in content
    # Not an archive: the error beside the field, nothing recorded.
    response = admin_client.post(url, {"host": "box", "archive": SimpleUploadedFile(
        "notes.txt", b"hello", content_type="text/plain")})
    assert "refused the image archive" in str(response.context["form"].errors)
    assert HostImage.objects.count() == 1


def test_the_images_page_is_for_administrators(client, directory, host: Host) -> None:
    url = reverse("service-images")
    assert client.get(url).status_code == 302
    client.force_login(directory_actions.do_create_account(
        "noa", acting_user=None, display_name="Noa", email="noa@example.org"))
    assert client.get(url).status_code == 403
    data, _image_id = saved_archive(["chaton-test/web:evil"])
    response = client.post(url, {"host": "box", "archive": SimpleUploadedFile(
        "web.tar", data, content_type="application/x-tar")})
    assert response.status_code == 403 and not HostImage.objects.exists()


def test_the_catalogue_says_which_images_are_on_which_host(
        admin_client, host: Host, engines: FakeEngines) -> None:
    privatebin = catalog.get("privatebin")
    engines(host).images.add(privatebin.image)
    other = actions.do_create_host("box2", "unix:///run/fake/two.sock", acting_user=None,
                                   address="192.0.2.11")
    name = privatebin.image.split("@")[0]
    data, image_id = saved_archive([name])
    actions.do_import_image(other, io.BytesIO(data), acting_user=None)
    content = admin_client.get(reverse("service-catalog")).content.decode()
    section = content.split('id="privatebin"')[1].split('class="card"')[0]
    assert "box</code>:" in section and "present" in section
    assert "box2</code>:" in section and "loaded from an archive" in section
    assert image_id in section
    engines(other).available = False
    content = admin_client.get(reverse("service-catalog")).content.decode()
    assert "unknown: the engine does not answer" in content
