"""The real slapd stopped: every interface shows a coded error, never a traceback.

The API answers 503 ``directory_unavailable``; the directory's page says the
directory cannot be reached; a page's write is kept and left for the worker;
the CLI prints one line and exits 2. All read the one table of
``chaton.core.errors`` (``ADAPTER_ERRORS``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from typer.testing import CliRunner

from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.cli.app import app
from chaton.core.actions import do_create_api_token
from chaton.directory import actions
from chaton.directory.models import Account, SyncState
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]

UNREACHABLE = "The directory server cannot be reached"


@pytest.fixture
def admin(ldap_directory: LdapDirectory) -> Any:
    return actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                     email="wren@example.org", is_admin=True)


@pytest.fixture
def slapd_down(slapd: ManagedSlapd, admin: Any) -> Iterator[ManagedSlapd]:
    """Stop the session's slapd by its pid for the test; start it again after."""
    slapd.stop()
    try:
        yield slapd
    finally:
        slapd.start()


def test_the_api_answers_503_with_its_code(admin: Any, slapd_down: ManagedSlapd) -> None:
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    headers = {"Authorization": f"Bearer {key}"}
    client = Client(raise_request_exception=False)
    for response in (client.get("/api/v1/directory/plan", headers=headers),
                     client.post("/api/v1/directory/sync", "{}", content_type="application/json",
                                 headers=headers)):
        assert response.status_code == 503, response.content
        body = json.loads(response.content)
        assert body["code"] == "directory_unavailable"
        assert body["message"].startswith(UNREACHABLE)


def test_the_pages_say_so_and_keep_the_write(admin: Any, slapd_down: ManagedSlapd) -> None:
    client = Client(raise_request_exception=False)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, admin)
    page = client.get("/directory/")
    assert page.status_code == 200
    assert "Traceback" not in page.content.decode()
    synced = client.post("/directory/", {})
    assert synced.status_code == 302
    shown = client.get(synced["Location"]).content.decode()
    assert "The directory could not be reached" in shown
    # A write from a page: kept, and left for the worker.
    created = client.post("/accounts/new/", {"uid": "yael", "display_name": "Yaël",
                                             "email": "yael@example.org"})
    assert created.status_code in (200, 302) and created.status_code != 500
    assert Account.objects.filter(uid="yael").exists()
    assert SyncState.get().pending_since is not None


def test_the_cli_prints_one_line_and_exits_2(admin: Any, slapd_down: ManagedSlapd) -> None:
    for command in (["directory", "diff"], ["directory", "sync"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"chaton: error: {UNREACHABLE}")
        assert "Traceback" not in result.output
