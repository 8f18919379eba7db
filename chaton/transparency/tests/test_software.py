"""The software list: each instance's image and version, this machine's Debian packages for a
local host, a note for a host whose packages cannot be read; drawn up yearly and on demand."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from chaton.core import clock
from chaton.services.models import Host
from chaton.transparency import actions, jobs
from chaton.transparency.models import SoftwareList
from chaton.transparency.tests.conftest import make_instance

pytestmark = pytest.mark.django_db


def test_the_list_holds_images_and_the_local_hosts_packages(client: Any, host: Any) -> None:
    make_instance(host, "pads")
    Host.objects.create(name="far", docker_url="tcp://192.0.2.10:2376")
    row = actions.do_refresh_software_list(acting_user=None)
    images = [entry for entry in row.entries if entry["kind"] == "image"]
    assert images == [{"host": "main", "kind": "image", "name": "ghcr.io/ether/etherpad",
                       "version": "3.2.0", "instance": "pads"}]
    packages = {entry["name"]: entry["version"] for entry in row.entries
                if entry["kind"] == "package"}
    assert packages.get("dpkg")  # read from this machine, dpkg-query -W
    assert any(note.startswith("far: packages not read") for note in row.notes)

    text = client.get("/transparency/software.txt")
    assert text.status_code == 200 and text["Content-Type"] == "text/plain; charset=UTF-8"
    assert "main\timage\tghcr.io/ether/etherpad\t3.2.0\tpads" in text.content.decode()
    page = client.get("/transparency/software/?lang=en")
    assert page.status_code == 200 and "ghcr.io/ether/etherpad" in page.content.decode()
    public = client.get("/api/v1/transparency/public/software")
    assert public.status_code == 200 and public.json()["year"] == row.year


def test_before_the_first_list(client: Any) -> None:
    assert client.get("/transparency/software.txt").status_code == 404
    assert client.get("/api/v1/transparency/public/software").json()["code"] == "not_found"


def test_the_worker_draws_it_up_once_a_year(host: Any) -> None:
    first = jobs.refresh_if_new_year()
    assert first is not None and first.ok
    assert jobs.refresh_if_new_year() is None
    SoftwareList.objects.update(year=clock.today().year - 1)
    assert jobs.refresh_if_new_year() is not None
    assert SoftwareList.objects.count() == 2


def test_the_cli_refreshes_and_shows(host: Any) -> None:
    from chaton.cli.transparency import app

    make_instance(host, "pads")
    result = CliRunner().invoke(app, ["software", "--refresh"])
    assert result.exit_code == 0, result.output
    assert "pads: ghcr.io/ether/etherpad 3.2.0" in result.output
