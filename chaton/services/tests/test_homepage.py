"""The catalogue's home page: an image Chaton builds itself (manifest ``[build]``), loaded
without a registry, and the demo's instance of it, deployed at once when the engine
answers and by the worker's reconcile when it answers only later."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pydantic
import pytest

from chaton.adapters.docker.fake import FakeEngine
from chaton.core.models import AuditLog
from chaton.services import catalog, images, reconcile
from chaton.services.catalog import Manifest, ManifestError
from chaton.services.catalog.homepage import app as homepage_app
from chaton.services.models import Host, HostImage, Instance
from chaton.services.tests.conftest import RecordedProxy

pytestmark = pytest.mark.django_db

_BASE = {"name": "built", "label": "Built", "description": "d", "port": 8080,
         "ldap": {"supported": False, "reason": "none"}}


def test_the_homepage_manifest_validates_and_says_its_image_is_built() -> None:
    manifest = catalog.real_manifests()["homepage"]
    assert manifest.build is not None and manifest.build.recipe == "image.py"
    assert catalog.is_tagged(manifest.image) and not catalog.is_pinned(manifest.image)


@pytest.mark.parametrize(("fields", "message"), [
    ({"image": "chaton-catalog/built:1@sha256:" + "0" * 64, "build": {}}, "without a digest"),
    ({"image": "chaton-catalog/built:1", "build": {}, "local": True}, "not both"),
    ({"image": "chaton-catalog/built:1", "build": {"recipe": "../evil.py"}}, "recipe"),
    ({"image": "chaton-catalog/built:1"}, "pinned by digest"),
])
def test_a_built_image_is_named_by_tag_from_a_recipe_of_its_folder(
        fields: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        Manifest.model_validate({**_BASE, **fields})


def test_a_build_recipe_missing_from_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "built"
    folder.mkdir()
    (folder / "manifest.toml").write_text(
        'name = "built"\nlabel = "B"\ndescription = "d"\nimage = "chaton-catalog/built:1"\n'
        'port = 8080\n[build]\nrecipe = "image.py"\n[ldap]\nsupported = false\n'
        'reason = "none"\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"no file image\.py"):
        catalog._read_folder(tmp_path)


def test_the_image_archive_is_the_same_bytes_each_time_and_names_the_manifests_image() -> None:
    manifest = catalog.get("homepage")
    first, second = images.build_archive(manifest), images.build_archive(manifest)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        entries = json.loads(member.read())
        config_file = archive.extractfile(entries[0]["Config"])
        assert config_file is not None
        config = json.loads(config_file.read())
    assert entries[0]["RepoTags"] == [manifest.image]
    assert config["config"]["User"] == "65534:65534"  # httpd never runs as root
    assert "Healthcheck" in config["config"]


def test_the_page_escapes_what_members_typed_and_refuses_links_that_do_not_read() -> None:
    manifest = catalog.get("homepage")
    values = manifest.validate_settings({
        "title": "<script>alert(1)</script>",
        "links": "Pads = https://pad.example.org; Chat=https://chat.example.org"})
    page = homepage_app.render_page(values, "www.example.org")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="https://pad.example.org">Pads</a>' in page
    for bad in ("Pads = javascript:alert(1)", "no address", "= https://x.example.org"):
        with pytest.raises(pydantic.ValidationError):
            manifest.validate_settings({"links": bad})


@pytest.mark.django_db(transaction=True)
def test_the_demo_builds_the_image_and_deploys_the_home_page_when_the_engine_answers(
        host: Host, engine: FakeEngine, recorded_proxy: RecordedProxy) -> None:
    from chaton.services import demo

    Host.objects.filter(pk=host.pk).update(is_default=True)
    report = demo.load_demo()
    assert report.deployed and report.instance is not None
    assert report.instance.image == "chaton-catalog/homepage:1"
    assert "chaton-catalog/homepage:1" in engine.images
    assert HostImage.objects.filter(host=host, reference="chaton-catalog/homepage:1").exists()
    assert AuditLog.objects.filter(action="host.image_build").count() == 1
    assert demo.DOMAIN in recorded_proxy.last
    # Loaded again: nothing changes.
    assert not demo.load_demo().created
    assert Instance.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_demo_records_the_home_page_when_the_engine_is_down_and_the_worker_deploys_it(
        host: Host, engine: FakeEngine, recorded_proxy: RecordedProxy) -> None:
    from chaton.services import demo

    Host.objects.filter(pk=host.pk).update(is_default=True)
    engine.available = False
    report = demo.load_demo()
    assert report.instance is not None and not report.deployed
    assert not engine.workloads
    engine.available = True
    reconcile.reconcile()
    assert "chaton-catalog/homepage:1" in engine.images
    assert [workload.spec.image for workload in engine.workloads.values()] == [
        "chaton-catalog/homepage:1"]
    assert demo.DOMAIN in recorded_proxy.last


def test_an_unreachable_engine_still_refuses_an_ordinary_new_instance(
        host: Host, engine: FakeEngine) -> None:
    from chaton.services.actions import EngineUnavailable, do_create_instance

    engine.available = False
    with pytest.raises(EngineUnavailable):
        do_create_instance("homepage", "www.other.test", host, acting_user=None)
    assert not Instance.objects.exists()


def test_the_catalogue_page_says_the_home_pages_image_is_built_by_chaton(
        client, directory, host: Host, engine: FakeEngine) -> None:
    from django.conf import settings
    from django.urls import reverse

    from chaton.directory import actions as directory_actions
    from chaton.testing.second_factor import login_with_second_factor

    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, directory_actions.do_create_account(
        "camille", acting_user=None, display_name="Camille", email="camille@example.org",
        is_admin=True))

    def section() -> str:
        content = client.get(reverse("service-catalog")).content.decode()
        return content.split('id="homepage"')[1].split('class="card"')[0]

    assert "built by Chaton at the first instance, no registry needed" in section()
    images.do_build_image(host, engine, catalog.get("homepage"), acting_user=None)
    assert "built by Chaton</span>" in section()


def test_another_application_cannot_borrow_the_built_images_name_without_loading_it(
        host: Host, engine: FakeEngine) -> None:
    """A built image's tag is no pin: only its own entry runs it by that name."""
    from chaton.core.errors import InvalidInput
    from chaton.services.actions import clean_image, do_create_instance

    homepage, privatebin = catalog.get("homepage"), catalog.get("privatebin")
    assert clean_image(homepage, homepage.image) == homepage.image
    with pytest.raises(InvalidInput):
        clean_image(privatebin, homepage.image)
    with pytest.raises(InvalidInput):
        clean_image(homepage, "chaton-catalog/homepage:2")
    with pytest.raises(InvalidInput):
        do_create_instance("privatebin", "paste.example.test", host, acting_user=None,
                           image=homepage.image)
    assert not Instance.objects.exists() and not engine.workloads
