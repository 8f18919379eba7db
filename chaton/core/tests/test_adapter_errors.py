"""One table turns the adapters' errors into coded errors at every edge: API, pages, CLI, jobs.

An adapter's error that no app wrapped must reach a person as a code and a
message, never as a traceback or a bare 500 (the real slapd stopped:
``tests/integration/test_directory_down.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from typer.testing import CliRunner

from chaton.adapters import caddy, docker, ldap, opendkim, restic
from chaton.adapters import dns as dns_adapter
from chaton.cli.app import app
from chaton.core.actions import do_create_api_token
from chaton.core.errors import ADAPTER_ERRORS, Conflict, ServerFailure, coded
from chaton.core.jobs import _error_of
from chaton.directory import actions
from chaton.testing.second_factor import login_with_second_factor

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english", "directory")]

CASES = [
    (ldap.LdapUnavailable("ldap://127.0.0.1:1: Can't contact LDAP server"), 503,
     "directory_unavailable"),
    (ldap.LdapRejected("invalid syntax"), 502, "directory_error"),
    (docker.EngineUnreachable("unix:///run/fake.sock does not answer"), 503,
     "engine_unreachable"),
    (docker.ImageNotFound("image x is not on the engine"), 502, "engine_error"),
    (caddy.ProxyUnreachable("connection refused"), 503, "proxy_unavailable"),
    (caddy.ProxyRefused("address already in use"), 502, "proxy_refused"),
    (restic.RepositoryUnreachable("sftp: connection refused"), 503, "backup_unavailable"),
    (restic.WrongPassword("wrong password or no key found"), 502, "backup_error"),
    (dns_adapter.DnsUnavailable("the DNS server 127.0.0.1:5353 does not answer"), 503,
     "dns_unavailable"),
    (dns_adapter.TsigRefused("the DNS server 127.0.0.1:5353 refused the TSIG key k."), 502,
     "dns_refused"),
    (dns_adapter.UpdateRefused("REFUSED; no TSIG key was given"), 502, "dns_refused"),
    (dns_adapter.NotOurZone("www.example.net. is not in the zone example.org."), 502,
     "dns_not_our_zone"),
    (dns_adapter.BadRecord("a TXT value must be printable ASCII"), 502, "dns_error"),
    (opendkim.SignerUnavailable("OpenDKIM (pid 4242) did not reload within 5 s"), 503,
     "signer_unavailable"),
    (opendkim.SignerError("not a DKIM selector: 'k 1'"), 502, "signer_refused"),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_every_adapter_error_has_a_code_a_status_and_its_own_account(error: Exception,
                                                                     status: int,
                                                                     code: str) -> None:
    failure = coded(error)
    assert isinstance(failure, ServerFailure)
    assert (failure.status, failure.code) == (status, code)
    # What the adapter said, too: always on the CLI, and everywhere but for a directory down.
    assert str(error) in str(coded(error, with_detail=True))
    assert (str(error) in str(failure.message)) == (code != "directory_unavailable")
    assert _error_of(error) == {"code": code, "status": status, "field": None,
                                "message": str(failure.message)}


def test_the_table_knows_every_adapters_base_error() -> None:
    bases = {row.exception for row in ADAPTER_ERRORS}
    assert {ldap.LdapError, docker.DockerError, caddy.CaddyError, restic.ResticError,
            dns_adapter.DnsError, opendkim.SignerError} <= bases


def test_a_refused_dns_key_says_so_and_never_the_secret() -> None:
    secret = "c2VjcmV0LXRoYXQtbXVzdC1ub3Qtc2hvdw=="
    server = dns_adapter.ZoneServer("example.org.", "127.0.0.1", 5353, tsig_name="k.",
                                    tsig_secret=secret)
    failure = coded(dns_adapter.TsigRefused(f"refused the TSIG key for {server!r}"))
    assert failure is not None and str(failure).startswith("The DNS server refused the key")
    assert secret not in str(failure)


def test_a_chaton_error_stays_itself_and_a_bug_stays_a_bug() -> None:
    taken = Conflict("taken")
    assert coded(taken) is taken
    assert coded(KeyError("bug")) is None


# -- the edges --------------------------------------------------------------------------------


@pytest.fixture
def admin() -> Any:
    return actions.do_create_account("camille", acting_user=None, display_name="Camille",
                                     email="camille@example.org", is_admin=True)


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_the_api_answers_the_code(error: Exception, status: int, code: str, admin: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from chaton.directory import reconcile

    def fails(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(reconcile, "plan_all", fails)
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    response = Client().get("/api/v1/directory/plan",
                            headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == status
    body = json.loads(response.content)
    assert body["code"] == code and body["message"] and "Traceback" not in body["message"]
    if code == "directory_unavailable":  # members read it too: not where the server is
        assert "127.0.0.1" not in body["message"]


@pytest.mark.parametrize(("error", "status", "code"),
                         [case for case in CASES if not isinstance(case[0], ldap.LdapError)])
def test_a_page_shows_the_code_not_a_server_error(error: Exception, status: int, code: str,
                                                  admin: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory's page catches LDAP errors itself; any other adapter's error that a view
    lets through becomes the error page."""
    from chaton.directory import views

    def fails(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(views.reconcile, "plan_all", fails)
    client = Client(raise_request_exception=False)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, admin)
    response = client.get("/directory/")
    assert response.status_code == status
    page = response.content.decode()
    assert "A server does not answer" in page and f"<code>{code}</code>" in page
    assert "Traceback" not in page


def test_the_directory_page_keeps_its_own_message(admin: Any, directory: Any) -> None:
    directory.available = False
    client = Client(raise_request_exception=False)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, admin)
    response = client.get("/directory/")
    assert response.status_code == 200
    assert "fake directory is down" in response.content.decode()


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_the_cli_prints_one_line_and_exits_2(error: Exception, status: int, code: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from chaton.directory import reconcile

    def fails(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(reconcile, "plan_all", fails)
    result = CliRunner().invoke(app, ["directory", "diff"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line == f"chaton: error: {coded(error, with_detail=True)}"
    assert "Traceback" not in result.output
