"""Expiry notices go once, before the date; the expiry itself is audited once."""

import datetime as dt

import pytest
from django.core import mail

from chaton.adapters.ldap import normalize_dn
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions, reconcile
from chaton.directory.expiry import process_expiries

BASE = "dc=chaton,dc=test"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mail_and_clock(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield
    clock.travel(dt.timedelta(0))


def test_notice_then_expiry(directory):
    account = actions.do_create_account(
        "eli", acting_user=None, display_name="Eli Rousseau-Test", email="eli@example.org",
        expires_at=clock.now() + dt.timedelta(days=20))
    group = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(group, account, acting_user=None,
                            expires_at=clock.now() + dt.timedelta(days=5))
    reconcile.sync_all()

    report = process_expiries()
    assert report.notices_sent == 1  # the access, 5 days ahead; the account is 20 days ahead
    assert "tech" in mail.outbox[0].subject
    assert process_expiries().notices_sent == 0  # once only

    clock.travel(dt.timedelta(days=7))
    report = process_expiries()
    assert report.notices_sent == 1  # now the account is within 14 days
    assert report.expired_memberships == ["eli@tech"]
    assert AuditLog.objects.filter(action="group.member_expired").count() == 1
    group_dn = normalize_dn(f"cn=tech,ou=groups,{BASE}")
    assert directory.entries[group_dn]["member"] == [group_dn.encode()]

    clock.travel(dt.timedelta(days=21))
    report = process_expiries()
    assert report.expired_accounts == ["eli"]
    assert normalize_dn(f"uid=eli,ou=people,{BASE}") not in directory.entries
    assert process_expiries().expired_accounts == []


def test_mail_failure_does_not_stop_the_job(directory, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    actions.do_create_account("fay", acting_user=None, display_name="Fay", email="fay@example.org",
                              expires_at=clock.now() + dt.timedelta(days=2))
    clock.travel(dt.timedelta(days=3))
    report = process_expiries()
    assert report.notices_failed == 0 or report.expired_accounts == ["fay"]
    assert report.expired_accounts == ["fay"]
