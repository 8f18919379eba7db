"""``mail.publish_retired_keys``: only an adopted decision turns publication on; every other
way in (the API, the CLI, the pages, the action itself, the admin site, re-creating the
domain) is refused and changes nothing. Once decided, each retired key is published under the
sha256 of its ``p=`` value; a later decision revokes it."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.governance import actions as governance
from chaton.governance.gate import DecisionRequired
from chaton.governance.models import Status
from chaton.governance.tests.test_api import api_for, assert_error, make_account, make_member
from chaton.mail import actions, keys
from chaton.mail.models import DkimKey, KeyState, MailDomain
from chaton.testing.second_factor import login_with_second_factor
from chaton.testing.voters import own_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]

PUBLISH = {"type": "mail.publish_retired_keys",
           "params": {"domain": "example.org", "publish": True}}


@pytest.fixture
def people(directory):
    people = {"wren": make_account("wren", is_admin=True)}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    return people


def adopt(people, specs) -> None:
    decision = governance.do_propose("Mail keys", specs, acting_user=people["aubin"])
    for voter in ("aubin", "brune"):
        governance.do_vote(decision, "for", acting_user=people[voter],
                           credential=own_session(people[voter]))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    governance.execute_decisions()


def publishing() -> bool:
    return MailDomain.objects.get(name="example.org").publish_retired_keys


def retire_first_key(mail) -> DkimKey:
    actions.do_reconcile_keys(mail.domain)
    clock.travel(dt.timedelta(hours=5))
    actions.do_reconcile_keys(mail.domain)
    first = DkimKey.objects.get()
    actions.do_rotate(mail.domain, acting_user=None)
    clock.travel(dt.timedelta(hours=10))
    actions.do_reconcile_keys(mail.domain)
    clock.travel(dt.timedelta(hours=15))
    actions.do_reconcile_keys(mail.domain)
    clock.travel(dt.timedelta(hours=110))
    actions.do_reconcile_keys(mail.domain)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRED
    return first


def test_the_direct_action_is_refused(mail, people):
    with pytest.raises(DecisionRequired) as refused:
        actions.do_set_publish_retired_keys(mail.domain, True, acting_user=people["wren"])
    assert "operation=mail.publish_retired_keys" in refused.value.params["link"]
    with pytest.raises(DecisionRequired):
        actions.do_update_domain(mail.domain, acting_user=people["wren"],
                                 publish_retired_keys=True)
    assert not publishing()


def test_the_api_refuses_it(mail, people, client):
    api = api_for(client, people["wren"])
    body = assert_error(api.call("patch", "/mail/domains/example.org",
                                 {"publish_retired_keys": True}), 403, "decision_required")
    assert "mail.publish_retired_keys" in str(body)
    assert_error(api.post("/mail/domains", {"name": "lists.example.org", "zone": "example.org",
                                            "publish_retired_keys": True}),
                 403, "decision_required")
    assert not publishing() and not MailDomain.objects.filter(name="lists.example.org").exists()


def test_the_cli_refuses_it(mail, people):
    runner = CliRunner()
    result = runner.invoke(app, ["mail", "domain", "set", "example.org",
                                 "--publish-retired-keys"])
    assert result.exit_code == 2 and "decision" in result.stderr.lower()
    result = runner.invoke(app, ["mail", "domain", "add", "lists.example.org", "--zone",
                                 "example.org", "--publish-retired-keys"])
    assert result.exit_code == 2
    assert not publishing() and not MailDomain.objects.filter(name="lists.example.org").exists()


def test_the_pages_and_the_admin_site_offer_no_way(mail, people, client):
    login_with_second_factor(client, people["wren"])
    response = client.post("/mail/new-domain/", {
        "name": "lists.example.org", "zone": "example.org", "dmarc_policy": "none",
        "mta_sts_mode": "testing", "publish_retired_keys": "on"})
    assert response.status_code == 302
    assert not MailDomain.objects.get(name="lists.example.org").publish_retired_keys
    assert client.get("/admin/").status_code == 404


def test_deleting_and_recreating_the_domain_does_not_carry_publication(mail, people):
    adopt(people, [PUBLISH])
    assert publishing()
    actions.do_delete_domain(mail.domain, acting_user=people["wren"])
    domain = actions.do_add_domain("example.org", acting_user=people["wren"], zone=mail.zone,
                                   mx_hosts=["mx.example.org"])
    assert not domain.publish_retired_keys


def test_without_the_decision_no_key_is_revealed(mail, people, client):
    first = retire_first_key(mail)
    clock.travel(dt.timedelta(days=45))
    actions.do_reconcile_keys(mail.domain)
    first.refresh_from_db()
    assert first.state == KeyState.RETIRED
    assert client.get(f"/.well-known/dkim/{first.published_name}.pem").status_code == 404


def test_with_the_decision_retired_keys_are_published_until_revoked(mail, people, client):
    first = retire_first_key(mail)
    adopt(people, [PUBLISH])
    assert publishing()
    actions.do_reconcile_keys(mail.domain)
    first.refresh_from_db()
    assert first.state == KeyState.REVEALED and first.revealed_at is not None
    response = client.get(f"/.well-known/dkim/{first.published_name}.pem")  # no login
    assert response.status_code == 200
    assert keys.public_key_of(response.content.decode()) == first.public_key
    # Active and retiring keys are never published, whatever their hash.
    for key in DkimKey.objects.exclude(pk=first.pk):
        assert client.get(f"/.well-known/dkim/{key.published_name}.pem").status_code == 404
    assert client.get("/.well-known/dkim/" + "0" * 64 + ".pem").status_code == 404
    adopt(people, [{"type": "mail.publish_retired_keys",
                    "params": {"domain": "example.org", "publish": False}}])
    assert not publishing()
    assert client.get(f"/.well-known/dkim/{first.published_name}.pem").status_code == 404


def test_the_worker_checks_each_key_it_reveals(mail, people, settings):
    from chaton.core.servers import free_port
    from chaton.mail import jobs

    first = retire_first_key(mail)
    adopt(people, [PUBLISH])
    settings.CHATON.public_url = f"http://127.0.0.1:{free_port()}"  # nothing answers there
    result = jobs.reconcile_keys()
    first.refresh_from_db()
    assert first.state == KeyState.REVEALED
    assert result is not None and not result.ok
    assert f"{first.published_name}.pem is not reachable" in result.summary
