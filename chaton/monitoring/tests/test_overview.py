"""The administrators' overview, their landing page after login: what needs attention, each
item linking to where it is fixed; members never see it and keep landing on their account."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.urls import reverse

from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, SyncState
from chaton.members.models import Person
from chaton.monitoring.models import Incident, Probe
from chaton.testing.second_factor import enroll, login_with_second_factor

pytestmark = pytest.mark.django_db

PASSWORD = "violet lantern 2048"


@pytest.fixture
def client(client):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture
def admin(directory) -> Account:
    person = Person.objects.create(full_name="Camille Admin", email="camille@example.org")
    return directory_actions.do_create_account("camille", acting_user=None,
                                               display_name="Camille Admin",
                                               email="camille@example.org", is_admin=True,
                                               password=PASSWORD, person=person)


@pytest.fixture
def member(directory) -> Account:
    return directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                               email="noa@example.org", password=PASSWORD)


def section(page: str, key: str) -> str:
    return page.split(f'id="overview-{key}"', 1)[1].split("</section>", 1)[0]


def test_an_administrator_with_nothing_to_do_is_told_all_is_well(client, admin) -> None:
    login_with_second_factor(client, admin)
    response = client.get(reverse("overview"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "All is well: nothing needs your attention." in page
    for key, text in (("incidents", "No incident"), ("backups", "Every plan"),
                      ("operations", "Every decided operation"), ("votes", "No vote waits"),
                      ("accounts", "No account expires"), ("accesses", "No access"),
                      ("directory", "up to date"), ("hosts", "Every host")):
        assert text in section(page, key)


def test_the_overview_lists_what_needs_attention_with_links(client, admin, directory) -> None:
    from chaton.backups import actions as backup_actions
    from chaton.backups.models import Drill
    from chaton.governance.models import Ballot, Decision, Elector, Operation

    now = clock.now()
    probe = Probe.objects.create(key="instance-pads-https", name="Pads over HTTPS",
                                 kind="http", target="https://pads.example.org/",
                                 service="Pads", state="down")
    incident = Incident.objects.create(probe=probe, opened_at=now - dt.timedelta(minutes=9),
                                       first_error="[STATUS] (503) == 200",
                                       last_error="[STATUS] (503) == 200")
    Probe.objects.create(key="host-box-docker", name="Docker on box", kind="docker",
                         target="unix:///run/docker.sock", service="box", state="down",
                         last_error="connection refused")
    repository = backup_actions.do_create_repository(
        "offsite", kind="local", location="/srv/backups/repo", password="correct horse",
        acting_user=None)
    plan = backup_actions.do_create_plan("nightly", repository, acting_user=None)
    Drill.objects.create(plan=plan, source_name="db", source_kind="postgres",
                         started_at=now - dt.timedelta(days=1), outcome="failed")
    decision = Decision.objects.create(kind="extraordinary", title="Open the cloud",
                                       proposed_by_label="camille", created_at=now,
                                       status="adopted")
    Operation.objects.create(decision=decision, position=1, type="group.grant", params={},
                             summary="Grant cloud to noa", status="failed",
                             message="the directory did not answer")
    vote = Decision.objects.create(kind="extraordinary", title="Buy a second server",
                                   proposed_by_label="lou", created_at=now, status="open")
    ballot = Ballot.objects.create(decision=vote, kind="proposal", opened_at=now,
                                   closes_at=now + dt.timedelta(days=5), electorate_size=1)
    Elector.objects.create(ballot=ballot, person=admin.person)
    leaving = directory_actions.do_create_account(
        "sam", acting_user=None, display_name="Sam", email="sam@example.org",
        expires_at=now + dt.timedelta(days=3))
    directory_actions.do_create_account(
        "later", acting_user=None, display_name="Later", email="later@example.org",
        expires_at=now + dt.timedelta(days=40))
    group = directory_actions.do_create_group("tech", acting_user=None, description="Tech")
    directory_actions.do_add_to_group(group, leaving, acting_user=None,
                                      expires_at=now + dt.timedelta(days=10))
    SyncState.objects.update_or_create(pk=1, defaults={"pending_since": now,
                                                       "last_error": "slapd unreachable"})

    login_with_second_factor(client, admin)
    page = client.get(reverse("overview")).content.decode()
    assert "All is well" not in page
    incidents = section(page, "incidents")
    assert "Pads — Pads over HTTPS" in incidents and "(503)" in incidents
    assert re.search(r'href="/monitoring/[^"]*"', incidents)
    assert incident.pk  # linked to the monitoring pages
    assert "box is unreachable" in section(page, "hosts")
    backups = section(page, "backups")
    assert "Plan nightly is stale" in backups and "no good backup yet" in backups
    assert "The last drill of plan nightly failed" in backups
    assert 'href="/backups/plans/nightly/"' in backups
    operations = section(page, "operations")
    assert "Open the cloud" in operations and f'href="/decisions/{decision.pk}/"' in operations
    votes = section(page, "votes")
    assert "Buy a second server" in votes and f'href="/decisions/{vote.pk}/"' in votes
    accounts = section(page, "accounts")
    assert 'href="/accounts/sam/"' in accounts and "later" not in accounts
    accesses = section(page, "accesses")
    assert "sam → tech" in accesses and 'href="/groups/tech/"' in accesses
    assert "slapd unreachable" in section(page, "directory")


def test_a_vote_already_cast_no_longer_waits(client, admin) -> None:
    from chaton.governance.models import Ballot, Decision, Elector, Vote

    now = clock.now()
    decision = Decision.objects.create(kind="extraordinary", title="Buy a second server",
                                       proposed_by_label="lou", created_at=now, status="open")
    ballot = Ballot.objects.create(decision=decision, kind="proposal", opened_at=now,
                                   closes_at=now + dt.timedelta(days=5), electorate_size=1)
    Elector.objects.create(ballot=ballot, person=admin.person)
    Vote.objects.create(ballot=ballot, person=admin.person, account=admin, choice="for",
                        cast_at=now)
    login_with_second_factor(client, admin)
    assert "No vote waits for you." in section(client.get(reverse("overview")).content.decode(),
                                               "votes")


def test_the_overview_costs_one_query_per_section(client, admin,
                                                  django_assert_max_num_queries) -> None:
    for index in range(15):
        probe = Probe.objects.create(key=f"probe-{index}", name=f"probe {index}", kind="http",
                                     target="https://x.example.org/", service=f"S{index}",
                                     state="down")
        Incident.objects.create(probe=probe, opened_at=clock.now())
    login_with_second_factor(client, admin)
    # The session, the account, its device, then the eight sections.
    with django_assert_max_num_queries(16):
        assert client.get(reverse("overview")).status_code == 200


def test_a_member_never_sees_the_overview(client, member) -> None:
    client.force_login(member)
    response = client.get(reverse("overview"))
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    assert client.get("/")["Location"] == reverse("profile")


def test_an_anonymous_visitor_is_sent_to_log_in(client) -> None:
    response = client.get(reverse("overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_administrator_without_a_second_factor_cannot_read_it(client, admin) -> None:
    client.force_login(admin)
    response = client.get(reverse("overview"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("two-factor"))
    # Their landing stays their account until a second factor is passed.
    assert client.get("/")["Location"] == reverse("profile")


def test_administrators_land_on_the_overview_members_on_their_account(client, admin,
                                                                      member) -> None:
    response = client.post(reverse("login"), {"username": "noa", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    client.logout()
    login_with_second_factor(client, admin)
    assert client.get("/")["Location"] == reverse("overview")


def test_an_administrator_lands_on_the_overview_after_both_login_steps(client, admin) -> None:
    from chaton.testing.second_factor import code_for

    device, _codes = enroll(admin)
    response = client.post(reverse("login"), {"username": "camille", "password": PASSWORD})
    assert response.status_code == 302
    second = client.get(response["Location"], follow=True)
    form_url = second.redirect_chain[-1][0] if second.redirect_chain else response["Location"]
    done = client.post(form_url, {"code": code_for(device)}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("overview")
    assert b"overview-incidents" in done.content
