"""The second factor, through the pages and the API, from the attacker's side too: a
password alone opens no administration, a code works once, a recovery code works once."""

from __future__ import annotations

import base64
import re
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP

from chaton.core.actions import do_create_api_token
from chaton.core.models import ApiToken, AuditLog
from chaton.directory import actions as directory_actions
from chaton.security.models import RecoveryCode, TotpDevice
from chaton.testing.second_factor import code_for, enroll

pytestmark = pytest.mark.django_db

PASSWORD = "granite orchard 4417"


@pytest.fixture(autouse=True)
def _fake_directory(directory):
    return directory


@pytest.fixture
def admin():
    return directory_actions.do_create_account(
        "sacha", acting_user=None, display_name="Sacha Admin", email="sacha@example.org",
        password=PASSWORD, is_admin=True)


@pytest.fixture
def member():
    return directory_actions.do_create_account(
        "lou", acting_user=None, display_name="Lou Membre", email="lou@example.org",
        password=PASSWORD)


def password_login(uid: str) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": uid, "password": PASSWORD})
    assert response.status_code == 302, "the password step itself must succeed"
    return client


def test_an_administrator_without_a_second_factor_is_sent_to_set_one_up(english, admin) -> None:
    client = password_login("sacha")
    response = client.get(reverse("account-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two-factor"))
    page = client.get(response["Location"]).content.decode()
    assert "Administrators must set up a second factor" in page


def test_enrolment_through_the_pages_then_administration_opens(english, admin) -> None:
    client = password_login("sacha")
    page = client.post(reverse("two-factor"), {"step": "begin"}).content.decode()
    assert "<svg" in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    # A wrong code confirms nothing.
    wrong = client.post(reverse("two-factor"), {"step": "confirm", "code": "000000"})
    assert "not the one your app shows" in wrong.content.decode()
    assert not TotpDevice.objects.filter(user=admin, confirmed=True).exists()

    # After a failure the next try waits a second (then 2, 4 …: django-otp's throttling).
    time.sleep(1.1)
    generator = TOTP(key, step=30, digits=6)
    device = TotpDevice.objects.get(user=admin)
    # The code an authenticator app computes from the shown secret is what the server expects.
    assert f"{generator.token():06d}" == f"{device.totp().token():06d}"
    page = client.post(reverse("two-factor"),
                       {"step": "confirm", "code": code_for(device)}).content.decode()
    codes = re.findall(r"<code>([a-z2-7]{5}-[a-z2-7]{5})</code>", page)
    assert len(codes) == 10
    assert AuditLog.objects.filter(action="second_factor.enroll", actor=admin).exists()
    # The codes are not stored in clear, nor the key.
    stored = list(RecoveryCode.objects.values_list("digest", flat=True))
    assert not set(codes) & set(stored)
    assert secret not in TotpDevice.objects.get(user=admin).encrypted_key
    # This session passed its second factor: administration opens.
    assert client.get(reverse("account-list")).status_code == 200


def test_a_password_alone_opens_nothing_once_a_factor_is_set(english, admin, member) -> None:
    device, _codes = enroll(admin)
    enroll(member)
    for uid, pages in (("sacha", ["account-list", "profile", "two-factor"]),
                       ("lou", ["profile", "two-factor"])):
        client = password_login(uid)
        for name in pages:
            response = client.get(reverse(name))
            assert response.status_code == 302, name
            assert response["Location"].startswith(reverse("two-factor-verify"))
        # Nor can the attacker replace the authenticator with one of their own.
        client.post(reverse("two-factor"), {"step": "begin"})
        assert TotpDevice.objects.filter(confirmed=False).count() == 0
    # A wrong code is refused and opens nothing.
    client = password_login("sacha")
    refused = client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert refused.status_code == 200
    assert "not valid" in refused.content.decode()
    assert client.get(reverse("account-list")).status_code == 302
    # The right code opens it, once: the same code does not open a second session.
    time.sleep(1.1)
    code = code_for(device)
    opened = client.post(reverse("two-factor-verify"),
                         {"code": code, "next": reverse("account-list")})
    assert opened["Location"] == reverse("account-list")
    assert client.get(reverse("account-list")).status_code == 200
    replay = password_login("sacha")
    replay.post(reverse("two-factor-verify"), {"code": code})
    assert replay.get(reverse("account-list")).status_code == 302


def test_a_recovery_code_opens_once(english, admin) -> None:
    _device, codes = enroll(admin)
    first = password_login("sacha")
    first.post(reverse("two-factor-verify"), {"code": codes[3].upper()})
    assert first.get(reverse("account-list")).status_code == 200
    assert AuditLog.objects.filter(action="second_factor.recovery_code_used").count() == 1
    again = password_login("sacha")
    again.post(reverse("two-factor-verify"), {"code": codes[3]})
    assert again.get(reverse("account-list")).status_code == 302
    # The next step to the outside: never to another site.
    time.sleep(1.1)
    other = password_login("sacha")
    response = other.post(reverse("two-factor-verify"),
                          {"code": codes[4], "next": "https://attacker.example/"})
    assert response["Location"] == reverse("home")


def test_the_api_refuses_new_tokens_from_an_administrator_without_a_second_factor(
        english, admin, member) -> None:
    _token, key = do_create_api_token(admin, "cli", acting_user=None)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    before = ApiToken.objects.count()
    response = Client().post("/api/v1/tokens", {"account": "lou", "name": "x"},
                             content_type="application/json", **headers)
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor_required"
    assert ApiToken.objects.count() == before
    enroll(admin)
    response = Client().post("/api/v1/tokens", {"account": "lou", "name": "x"},
                             content_type="application/json", **headers)
    assert response.status_code == 201


def test_an_open_redirect_is_refused_after_enrolment(english, admin) -> None:
    client = password_login("sacha")
    client.post(reverse("two-factor"), {"step": "begin", "next": "//attacker.example/"})
    device = TotpDevice.objects.get(user=admin)
    page = client.post(reverse("two-factor"), {"step": "confirm", "code": code_for(device),
                                               "next": "//attacker.example/"}).content.decode()
    assert "attacker.example" not in page


def test_the_server_holder_can_reset_a_lost_second_factor(english, admin) -> None:
    from typer.testing import CliRunner

    from chaton.cli.app import app

    enroll(admin)
    result = CliRunner().invoke(app, ["account", "reset-second-factor", "sacha"])
    assert result.exit_code == 0, result.output
    assert not TotpDevice.objects.filter(user=admin).exists()
    assert not RecoveryCode.objects.exists()
    assert AuditLog.objects.filter(action="second_factor.remove").exists()
    # Administration asks for a new enrolment, not for the old code.
    response = password_login("sacha").get(reverse("account-list"))
    assert response["Location"].startswith(reverse("two-factor"))
    missing = CliRunner().invoke(app, ["account", "reset-second-factor", "nobody"])
    assert missing.exit_code == 2


@pytest.fixture
def other_admin():
    return directory_actions.do_create_account(
        "noa", acting_user=None, display_name="Noa Admin", email="noa@example.org",
        password=PASSWORD, is_admin=True)


def test_no_admin_token_is_minted_for_an_administrator_without_a_second_factor(
        english, admin, other_admin) -> None:
    """An administrator with a second factor cannot hand another administrator, who has
    none, a token that administers: that token would open administration on a password
    alone (or on whoever reads their mailbox)."""
    enroll(admin)
    _token, key = do_create_api_token(admin, "cli", acting_user=None)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    before = ApiToken.objects.count()
    for body in ({"account": "noa", "name": "x"},  # the default scopes hold admin
                 {"account": "noa", "name": "x", "scopes": ["admin", "read"]}):
        response = Client().post("/api/v1/tokens", body, content_type="application/json",
                                 **headers)
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "second_factor_required"
        assert "noa" in response.json()["message"]
    assert ApiToken.objects.count() == before
    # Without the admin scope it is an ordinary token; once noa has a second factor, it goes.
    response = Client().post("/api/v1/tokens", {"account": "noa", "name": "r",
                                                "scopes": ["read"]},
                             content_type="application/json", **headers)
    assert response.status_code == 201
    enroll(other_admin)
    response = Client().post("/api/v1/tokens", {"account": "noa", "name": "a",
                                                "scopes": ["admin", "read"]},
                             content_type="application/json", **headers)
    assert response.status_code == 201
    assert response.json()["scopes"] == ["read", "admin"]


def test_resetting_a_second_factor_revokes_the_accounts_admin_tokens(english, admin) -> None:
    from typer.testing import CliRunner

    from chaton.cli.app import app

    enroll(admin)
    _admin_token, admin_key = do_create_api_token(admin, "admin", acting_user=admin,
                                                  scopes=["read", "admin"])
    reader, reader_key = do_create_api_token(admin, "reader", acting_user=admin,
                                             scopes=["read"])
    result = CliRunner().invoke(app, ["account", "reset-second-factor", "sacha"])
    assert result.exit_code == 0, result.output
    assert "1 token" in result.output
    assert list(ApiToken.objects.filter(account=admin)) == [reader]
    revoked = AuditLog.objects.get(action="api_token.revoke")
    assert revoked.before["name"] == "admin"
    assert AuditLog.objects.get(action="second_factor.remove").after == {
        "admin_tokens_revoked": 1}
    # The revoked key no longer opens the API; the read-only one still reads.
    assert Client().get("/api/v1/tokens", HTTP_AUTHORIZATION=f"Bearer {admin_key}"
                        ).status_code == 401
    assert Client().get("/api/v1/me/tokens", HTTP_AUTHORIZATION=f"Bearer {reader_key}"
                        ).status_code == 200
