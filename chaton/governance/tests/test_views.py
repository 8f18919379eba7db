"""The governance pages through Django's test client, on the fake directory.

The community (conftest): five voters ana, bo, cy, di, ed; fox, a member for
two days (not a voter yet); root, an administrator with no person; svc, an
account with no person; the group "passwords" (members added by decision
only) and the group "team".
"""

import datetime as dt
import html
from typing import Literal
from urllib.parse import urlencode

import pydantic
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory.models import GroupMembership
from chaton.governance import actions, operations
from chaton.governance.forms import ObjectField, OperationForm, operation_fields
from chaton.governance.gate import proposal_link
from chaton.governance.models import (
    Decision,
    Kind,
    Operation,
    OperationStatus,
    Status,
    Vote,
)
from chaton.governance.operations import OperationType, StrictParams
from chaton.governance.policy import current
from chaton.testing.second_factor import login_with_second_factor
from chaton.testing.voters import own_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(client):
    """The test client, reading pages in English (the source language of the messages)."""
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


def as_user(client, account):
    if account.is_admin:
        login_with_second_factor(client, account)
    else:
        client.force_login(account)
    return client


def future(days=400):
    return (clock.today() + dt.timedelta(days=days)).isoformat()


def grant_link(uid="fox", group="passwords", until=None):
    query = {"operation": "group.grant", "group": group, "account": uid}
    if until:
        query["expires_on"] = until
    return f"{reverse('decision-new')}?{urlencode(query)}"


def grant_post(uid="fox", group="passwords", until="", submit="propose",
               title="Passwords for fox"):
    return {"title": title, "description": "Fox joins the tech team.",
            "operation": "group.grant", "op0-group": group, "op0-account": uid,
            "op0-expires_on": until, "submit": submit}


def propose_grant(community, uid="fox", by=0):
    return actions.do_propose(f"Passwords for {uid}", [
        {"type": "group.grant", "params": {"group": "passwords", "account": uid}}],
        acting_user=community.voters[by])


def page_text(response):
    return response.content.decode()


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


# -- the list ---------------------------------------------------------------------------


def test_every_signed_in_account_sees_the_list_and_anonymous_visitors_log_in(client,
                                                                             community):
    response = client.get(reverse("decision-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    as_user(client, community.outsider)
    response = client.get(reverse("decision-list"))
    assert response.status_code == 200
    content = page_text(response)
    assert "Nothing is being voted on." in content
    assert f'href="{reverse("decision-new")}"' in content
    # Neither an administrator nor a voter: no export form, no ordinary action.
    assert "Take an ordinary action" not in content
    assert reverse("decision-export") not in content
    # The navigation marks the page.
    assert f'href="{reverse("decision-list")}" aria-current="page"' in content


def test_list_shows_open_votes_first_with_live_tally_and_my_vote(client, community):
    ana, bo = community.voters[:2]
    proposal = propose_grant(community)
    actions.do_vote(proposal, "for", acting_user=bo, credential=own_session(bo))
    actions.do_vote(proposal, "against", acting_user=community.voters[2],
                    credential=own_session(community.voters[2]))
    ordinary = actions.do_act("Team for ana", [
        {"type": "group.grant", "params": {"group": "team", "account": "ana"}}],
        acting_user=community.admin)
    content = page_text(as_user(client, bo).get(reverse("decision-list")))
    assert "for 1/5, against 1/5" in content
    assert "you voted for" in content
    assert content.index("Passwords for fox") < content.index("History")
    assert content.index("Team for ana") > content.index("History")
    assert f'href="{reverse("decision-detail", args=[ordinary.pk])}"' in content
    assert "<svg" in content  # the bar
    content = page_text(as_user(client, ana).get(reverse("decision-list")))
    assert "not voted yet" in content
    admin_page = page_text(as_user(client, community.admin).get(reverse("decision-list")))
    assert "Take an ordinary action" in admin_page and "not in this electorate" in admin_page


def _make_decisions(community, count, start=0):
    """Make ``count`` decisions: ordinary actions, open proposals with a vote, withdrawn ones."""
    for number in range(start, start + count):
        if number % 3 == 0:
            actions.do_act(f"Team change {number}", [
                {"type": "group.revoke", "params": {"group": "team", "account": "ana"}}],
                acting_user=community.admin)
            continue
        decision = propose_grant(community, uid="fox", by=number % 5)
        actions.do_vote(decision, "for", acting_user=community.voters[(number + 1) % 5],
                        credential=own_session(community.voters[(number + 1) % 5]))
        if number % 3 == 2:
            actions.do_withdraw(decision, acting_user=community.admin)


def test_the_list_costs_a_constant_number_of_queries(client, community,
                                                     django_assert_max_num_queries):
    as_user(client, community.voters[0])
    _make_decisions(community, 3)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("decision-list"))
    _make_decisions(community, 27, start=3)
    assert Decision.objects.count() == 30
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("decision-list"))
    assert response.status_code == 200
    content = page_text(response)
    assert "Team change 27" in content and "you voted for" in content
    assert len(response.context["open_rows"]) == 10
    assert len(few.captured_queries) == len(many.captured_queries)
    with django_assert_max_num_queries(16):
        client.get(reverse("decision-list"))


# -- proposing ----------------------------------------------------------------------------


def test_the_link_of_a_refused_action_opens_a_prefilled_form(client, community):
    as_user(client, community.voters[0])
    until = future()
    response = client.get(grant_link(until=until))
    assert response.status_code == 200
    content = page_text(response)
    assert 'name="op0-group"' in content and 'value="passwords"' in content
    assert 'value="fox"' in content and f'value="{until}"' in content
    assert 'type="date"' in content
    assert "extraordinary: needs a vote of the members" in content
    # The title suggests the operation's own sentence.
    assert response.context["decision_form"].initial["title"].startswith("Add fox to the group")
    # A member who is not an administrator is offered the vote only.
    assert 'value="act"' not in content
    admin_page = page_text(as_user(client, community.admin).get(grant_link(group="team")))
    assert 'value="act"' in admin_page and "ordinary: an administrator may do it" in admin_page


def test_without_an_operation_the_first_step_chooses_one(client, community):
    as_user(client, community.voters[0])
    content = page_text(client.get(reverse("decision-new")))
    assert 'name="operation"' in content and 'method="get"' in content
    for operation in operations.all_types():
        assert f'value="{operation.type}"' in content
    response = client.get(reverse("decision-new"), {"operation": "group.explode"})
    assert response.status_code == 200
    assert any("Unknown operation" in text for text in messages_of(response))


def test_propose_vote_change_vote_adopt_early_and_execute(client, community, directory):
    ana, bo, cy, di = community.voters[:4]
    response = as_user(client, ana).post(reverse("decision-new"),
                                         grant_post(until=future()))
    decision = Decision.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("decision-detail", args=[decision.pk])
    assert decision.status == Status.OPEN and decision.kind == Kind.EXTRAORDINARY
    assert decision.description == "Fox joins the tech team."
    operation = decision.operations.get()
    assert operation.params["expires_on"] == future()
    detail = reverse("decision-detail", args=[decision.pk])
    content = page_text(client.get(detail))
    assert "for 0/5, against 0/5" in content and "Vote for" in content
    assert "Withdraw the proposal" in content

    vote_url = reverse("decision-vote", args=[decision.pk])
    response = as_user(client, bo).post(vote_url, {"choice": "for"}, follow=True)
    assert "Your vote “for” is recorded." in page_text(response)
    assert "for 1/5, against 0/5" in page_text(response)
    assert "You voted for." in page_text(response)
    assert "Change my vote to against" in page_text(response)
    response = client.post(vote_url, {"choice": "against"}, follow=True)
    assert "for 0/5, against 1/5" in page_text(response)
    assert Vote.objects.get(person=bo.person).choice == "against"
    # Votes are public by default: the voter's name shows with the choice.
    assert "Test Bo" in page_text(response)

    as_user(client, ana).post(vote_url, {"choice": "for"})
    as_user(client, cy).post(vote_url, {"choice": "for"})
    response = as_user(client, di).post(vote_url, {"choice": "for"}, follow=True)
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    assert any("The vote is over: adopted" in text for text in messages_of(response))
    assert "Vote for" not in page_text(response)
    assert not GroupMembership.objects.filter(group=community.passwords).exists()

    actions.execute_decisions()
    membership = GroupMembership.objects.get(group=community.passwords)
    assert membership.account.uid == "fox"
    content = page_text(client.get(detail))
    assert "done" in content and "waiting" not in content
    assert "for 3/5, against 1/5" in content
    assert AuditLog.objects.filter(action="operation.apply").exists()


def test_add_and_remove_operations_without_javascript(client, community):
    as_user(client, community.admin)
    data = grant_post(group="team", uid="ana")
    data.update({"submit": "add", "add_operation": "policy.change"})
    response = client.post(reverse("decision-new"), data)
    assert response.status_code == 200
    content = page_text(response)
    assert content.count('name="operation"') == 2
    assert 'name="op1-classes"' in content and "<textarea" in content
    assert 'name="op1-votes_public"' in content
    assert 'value="Passwords for fox"' in content  # what was typed stays
    assert not response.context["decision_form"].errors
    assert not Decision.objects.exists()
    data = {**grant_post(group="team", uid="ana"), "operation": ["group.grant", "policy.change"],
            "op1-proposal_days": "14", "op1-classes": "group.revoke=extraordinary",
            "op1-votes_public": "unknown"}
    data.pop("submit")
    response = client.post(reverse("decision-new"), {**data, "remove_index": "0"})
    entries = response.context["entries"]
    assert [entry.operation.type for entry in entries] == ["policy.change"]
    assert entries[0].form.initial["proposal_days"] == "14"
    response = client.post(reverse("decision-new"), {**data, "submit": "propose"})
    assert response.status_code == 302, response.context["decision_form"].errors
    decision = Decision.objects.get()
    first, second = decision.operations.order_by("position")
    assert first.params == {"group": "team", "account": "ana"}
    assert second.params == {"proposal_days": 14,
                             "classes": {"group.revoke": "extraordinary"}}


def test_an_administrator_does_an_ordinary_action_at_once(client, community, directory):
    as_user(client, community.admin)
    response = client.post(reverse("decision-new"),
                           grant_post(group="team", uid="ana", submit="act"))
    decision = Decision.objects.get()
    assert response["Location"] == reverse("decision-detail", args=[decision.pk])
    assert decision.kind == Kind.ORDINARY and decision.status == Status.ADOPTED
    assert GroupMembership.objects.filter(group=community.team, account__uid="ana").exists()
    assert decision.operations.get().status == OperationStatus.DONE


def test_do_it_now_on_an_extraordinary_operation_shows_the_proposal_link(client, community):
    as_user(client, community.admin)
    response = client.post(reverse("decision-new"), grant_post(submit="act"))
    assert response.status_code == 200
    assert not Decision.objects.exists()
    content = page_text(response)
    link = grant_link()
    assert "needs a decision of the members" in content
    assert f'<a href="{html.escape(link)}">' in content
    # The link opens the same operation, prefilled.
    assert 'value="fox"' in page_text(client.get(link))


def test_a_member_may_not_act_and_a_newcomer_may_not_propose(client, community):
    response = as_user(client, community.voters[0]).post(
        reverse("decision-new"), grant_post(group="team", submit="act"))
    assert "Only administrators take ordinary actions" in page_text(response)
    response = as_user(client, community.newcomer).post(reverse("decision-new"), grant_post())
    assert "Only voting members and administrators may open a proposal." in page_text(response)
    assert not Decision.objects.exists()


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"op0-group": "nope"}, "group", "No group is named nope."),
    ({"op0-account": "nobody"}, "account", "No account has the user name “nobody”."),
    ({"op0-expires_on": "2001-02-03"}, "expires_on", "The expiry date is already past."),
    ({"op0-expires_on": "not a day"}, "expires_on", "Enter a valid date."),
    ({"op0-account": ""}, "account", "This field is required."),
])
def test_an_invalid_operation_field_is_shown_on_it_and_nothing_is_written(
        client, community, changes, field, message):
    as_user(client, community.voters[0])
    audit_rows = AuditLog.objects.count()
    response = client.post(reverse("decision-new"), {**grant_post(), **changes})
    assert response.status_code == 200
    errors = response.context["entries"][0].form.errors
    assert message in " ".join(errors[field])
    assert not Decision.objects.exists() and not Operation.objects.exists()
    assert AuditLog.objects.count() == audit_rows
    # What was typed is still in the form.
    assert 'value="Passwords for fox"' in page_text(response)


def test_a_description_may_have_several_lines(client, community):
    as_user(client, community.voters[0])
    response = client.post(reverse("decision-new"),
                           {**grant_post(), "description": "First line.\r\nSecond line."})
    assert response.status_code == 302
    assert "Second line." in page_text(client.get(response["Location"]))


def test_a_title_is_required_and_an_unknown_posted_type_is_refused(client, community):
    as_user(client, community.voters[0])
    response = client.post(reverse("decision-new"), {**grant_post(), "title": "  "})
    assert "This field is required." in response.context["decision_form"].errors["title"][0]
    response = client.post(reverse("decision-new"), {**grant_post(), "operation": "x.y"})
    assert response.status_code == 200
    assert any("Unknown operation" in text for text in messages_of(response))
    assert not Decision.objects.exists()


def test_html_in_a_title_is_escaped(client, community):
    as_user(client, community.voters[0])
    client.post(reverse("decision-new"),
                grant_post(title="<script>alert('x')</script> & <b>bold</b>"))
    decision = Decision.objects.get()
    for url in (reverse("decision-list"), reverse("decision-detail", args=[decision.pk])):
        content = page_text(client.get(url))
        assert "<script>alert(" not in content and "<b>bold</b>" not in content
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in content


# -- voting errors ------------------------------------------------------------------------


def test_vote_errors_are_messages_never_server_errors(client, community):
    decision = propose_grant(community)
    vote_url = reverse("decision-vote", args=[decision.pk])
    detail = reverse("decision-detail", args=[decision.pk])

    response = as_user(client, community.newcomer).post(vote_url, {"choice": "for"},
                                                        follow=True)
    assert response.redirect_chain[-1][0] == detail
    assert any("You were not a voting member when this vote opened" in text
               for text in messages_of(response))
    assert "You are not in the electorate of this vote" in page_text(response)
    response = as_user(client, community.outsider).post(vote_url, {"choice": "for"},
                                                        follow=True)
    assert any("belongs to no member" in text for text in messages_of(response))
    response = as_user(client, community.voters[1]).post(vote_url, {"choice": "maybe"},
                                                         follow=True)
    assert any("Vote “for” or “against”." in text for text in messages_of(response))
    assert client.get(vote_url).status_code == 405
    assert client.post(reverse("decision-vote", args=[9999]), {"choice": "for"}
                       ).status_code == 404
    assert not Vote.objects.exists()

    clock.travel(dt.timedelta(days=8))
    response = client.post(vote_url, {"choice": "for"}, follow=True)
    assert any(f"Voting on #{decision.pk} is closed." in text
               for text in messages_of(response))
    assert "the result is being counted" in page_text(response)
    actions.settle_ballots()
    response = client.post(vote_url, {"choice": "against"}, follow=True)
    assert any("is closed" in text for text in messages_of(response))
    assert not Vote.objects.exists()
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED  # nobody voted against by the deadline


def test_posts_need_the_csrf_token(community):
    decision = propose_grant(community)
    client = Client(enforce_csrf_checks=True)
    client.force_login(community.voters[1])
    for name in ("decision-vote", "decision-withdraw", "decision-contest"):
        response = client.post(reverse(name, args=[decision.pk]), {"choice": "for"})
        assert response.status_code == 403
    assert client.post(reverse("decision-new"), grant_post()).status_code == 403
    assert not Vote.objects.exists()
    assert Decision.objects.get().status == Status.OPEN


def test_withdraw_by_its_author_or_an_administrator_only(client, community):
    decision = propose_grant(community, by=0)
    url = reverse("decision-withdraw", args=[decision.pk])
    detail = reverse("decision-detail", args=[decision.pk])
    response = as_user(client, community.voters[1]).post(url, follow=True)
    assert any("Only the author of a proposal" in text for text in messages_of(response))
    assert "Withdraw the proposal" not in page_text(response)
    assert Decision.objects.get().status == Status.OPEN
    response = as_user(client, community.voters[0]).post(url, follow=True)
    assert any("is withdrawn" in text for text in messages_of(response))
    assert Decision.objects.get().status == Status.WITHDRAWN
    assert "not run" in page_text(client.get(detail))
    response = client.post(url, follow=True)
    assert any("Only an open proposal can be withdrawn." in text
               for text in messages_of(response))
    other = propose_grant(community, by=1)
    as_user(client, community.admin).post(reverse("decision-withdraw", args=[other.pk]))
    other.refresh_from_db()
    assert other.status == Status.WITHDRAWN


def test_counter_vote_cancels_and_reverts_an_ordinary_action(client, community, directory):
    ana, bo, cy = community.voters[:3]
    as_user(client, community.admin).post(reverse("decision-new"),
                                          grant_post(group="team", uid="fox", submit="act"))
    decision = Decision.objects.get()
    assert GroupMembership.objects.filter(group=community.team, account__uid="fox").exists()
    detail = reverse("decision-detail", args=[decision.pk])
    content = page_text(as_user(client, ana).get(detail))
    assert "Any voting member may contest this ordinary action until" in content
    assert "Open a counter-vote" in content
    # fox is no voter yet: the window shows, the button does not.
    assert "Open a counter-vote" not in page_text(as_user(client, community.newcomer)
                                                  .get(detail))
    response = as_user(client, community.newcomer).post(
        reverse("decision-contest", args=[decision.pk]), follow=True)
    assert any("Only voting members may open a counter-vote." in text
               for text in messages_of(response))

    response = as_user(client, ana).post(reverse("decision-contest", args=[decision.pk]),
                                         follow=True)
    assert any("A counter-vote is open until" in text for text in messages_of(response))
    decision.refresh_from_db()
    assert decision.status == Status.CONTESTED
    vote_url = reverse("decision-vote", args=[decision.pk])
    client.post(vote_url, {"choice": "against"})
    as_user(client, bo).post(vote_url, {"choice": "against"})
    as_user(client, cy).post(vote_url, {"choice": "for"})
    listing = page_text(client.get(reverse("decision-list")))
    assert "counter-vote" in listing and "for 1/5, against 2/5" in listing
    response = client.post(reverse("decision-contest", args=[decision.pk]), follow=True)
    assert any("already held" in text for text in messages_of(response))

    clock.travel(dt.timedelta(days=8))
    actions.settle_ballots()
    actions.execute_decisions()
    decision.refresh_from_db()
    assert decision.status == Status.CANCELLED
    assert not GroupMembership.objects.filter(group=community.team, account__uid="fox").exists()
    content = page_text(client.get(detail))
    assert "cancelled by a counter-vote" in content and "reverted" in content
    assert "action cancelled" in content


def test_the_counter_vote_window_closes(client, community):
    as_user(client, community.admin).post(reverse("decision-new"),
                                          grant_post(group="team", uid="fox", submit="act"))
    decision = Decision.objects.get()
    clock.travel(dt.timedelta(days=current().counter_vote_window_days + 1))
    as_user(client, community.voters[0])
    assert "Open a counter-vote" not in page_text(
        client.get(reverse("decision-detail", args=[decision.pk])))
    response = client.post(reverse("decision-contest", args=[decision.pk]), follow=True)
    assert any("has passed" in text for text in messages_of(response))
    assert Decision.objects.get().status == Status.ADOPTED


def test_secret_votes_show_only_counts(client, community):
    policy = current()
    # Test setup: the policy row as a decision would have left it.
    policy.votes_public = False
    policy.save()
    decision = propose_grant(community)
    actions.do_vote(decision, "against", acting_user=community.voters[1],
                    credential=own_session(community.voters[1]))
    content = page_text(as_user(client, community.voters[2])
                        .get(reverse("decision-detail", args=[decision.pk])))
    assert "for 0/5, against 1/5" in content
    assert "Test Bo" not in content and "only the counts are shown" in content
    content = page_text(as_user(client, community.voters[1])
                        .get(reverse("decision-detail", args=[decision.pk])))
    assert "You voted against." in content


def test_an_unknown_decision_is_not_found(client, community):
    as_user(client, community.voters[0])
    assert client.get(reverse("decision-detail", args=[424242])).status_code == 404


# -- the rules ----------------------------------------------------------------------------


def test_policy_page_shows_the_rules_and_links_to_a_change(client, community):
    content = page_text(as_user(client, community.outsider).get(reverse("decision-policy")))
    assert "Days a proposal stays open" in content
    assert f'href="{reverse("decision-new")}?operation=policy.change"' in content
    assert "Let a new member vote at once" in content
    # group.grant depends on the group; policy.change is extraordinary whatever its fields.
    assert "depending on its fields" in content
    response = as_user(client, community.voters[0]).get(reverse("decision-new"),
                                                        {"operation": "policy.change"})
    form = response.context["entries"][0].form
    assert set(form.fields) == {"voting_delay_days", "proposal_days",
                                "counter_vote_window_days", "counter_vote_days",
                                "reminder_hours", "votes_public", "classes"}
    assert not any(field.required for field in form.fields.values())
    assert "extraordinary: needs a vote" in page_text(response)


def test_a_policy_change_link_with_classes_is_prefilled_as_lines(client, community):
    as_user(client, community.voters[0])
    link = proposal_link("policy.change", {"votes_public": False,
                                           "classes": {"group.revoke": "extraordinary"}})
    # The object travels as JSON, and the form holds it as an object again.
    assert "classes=%7B%22group.revoke%22" in link
    response = client.get(link)
    assert response.context["entries"][0].form.initial["classes"] == {
        "group.revoke": "extraordinary"}
    content = page_text(response)
    assert "group.revoke=extraordinary</textarea>" in content
    assert '<option value="false" selected>' in content
    response = client.post(reverse("decision-new"), {
        "title": "Secret ballots", "operation": "policy.change", "op0-votes_public": "false",
        "op0-classes": '{"group.revoke": "sometimes"}', "submit": "propose"})
    assert response.status_code == 200
    assert "classes" in response.context["entries"][0].form.errors
    assert not Decision.objects.exists()


def test_a_link_carrying_python_text_is_never_evaluated(client, community):
    """Only JSON is read from a link: Python's text of a dict (what links once carried) or an
    expression stays the text it is, shown to be corrected, never evaluated."""
    as_user(client, community.voters[0])
    for text in (str({"group.revoke": "extraordinary"}), "{__import__('os').getpid(): 1}"):
        query = urlencode({"operation": "policy.change", "classes": text})
        response = client.get(f"{reverse('decision-new')}?{query}")
        assert response.status_code == 200
        assert response.context["entries"][0].form.initial["classes"] == text
    assert not Decision.objects.exists()


# -- the inventory export -----------------------------------------------------------------


@pytest.mark.parametrize(("format_name", "media_type", "expected"), [
    ("md", "text/markdown", "| #"),
    ("csv", "text/csv", "extraordinary,#"),
    ("html", "text/html", "<table>"),
])
def test_export_downloads_the_inventory(client, community, format_name, media_type,
                                        expected):
    decision = propose_grant(community)
    actions.do_act("Team for ana", [
        {"type": "group.grant", "params": {"group": "team", "account": "ana"}}],
        acting_user=community.admin)
    today = clock.today().isoformat()
    response = as_user(client, community.voters[0]).get(reverse("decision-export"), {
        "start": today, "end": today, "format": format_name})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(media_type)
    assert response["Content-Disposition"] == (
        f'attachment; filename="decisions-{today}-{today}.{format_name}"')
    content = response.content.decode()
    assert expected in content and "Passwords for fox" in content and "Team for ana" in content
    assert "0/5" in content
    assert reverse("decision-detail", args=[decision.pk]) in content


def test_export_is_for_voters_and_administrators_and_checks_the_period(client, community):
    today = clock.today()
    query = {"start": today.isoformat(), "end": today.isoformat(), "format": "md"}
    response = as_user(client, community.outsider).get(reverse("decision-export"), query,
                                                       follow=True)
    assert any("Only voting members and administrators may export" in text
               for text in messages_of(response))
    as_user(client, community.admin)
    assert client.get(reverse("decision-export"), query).status_code == 200
    response = client.get(reverse("decision-export"), {
        **query, "start": (today + dt.timedelta(days=1)).isoformat()})
    assert response.status_code == 200
    assert "ends before it starts" in response.context["export_form"].errors["end"][0]
    response = client.get(reverse("decision-export"), {**query, "format": "pdf"})
    assert "format" in response.context["export_form"].errors


# -- the directory's group pages ------------------------------------------------------------


def test_adding_to_a_protected_group_on_its_page_links_to_a_proposal(client, community):
    as_user(client, community.admin)
    page = page_text(client.get(reverse("group-detail", args=["passwords"])))
    assert "Members added by decision only" in page and "Propose adding a member" in page
    response = client.post(reverse("group-member-add", args=["passwords"]),
                           {"uid": "ana", "expires_on": ""})
    assert response.status_code == 200
    content = page_text(response)
    assert "needs a decision of the members" in content
    # The message names the prefilled proposal, and that path is a link.
    start = content.index('<a href="', content.index("Open a proposal instead: "))
    link = html.unescape(content[start + 9:content.index('"', start + 9)])
    assert "group=passwords" in link and "account=ana" in link
    assert f'">{html.escape(link)}</a>' in content
    assert not GroupMembership.objects.filter(group=community.passwords).exists()
    followed = client.get(link)
    assert 'value="ana"' in page_text(followed) and 'value="passwords"' in page_text(followed)


def test_decisions_pages_are_marked_in_the_navigation(client, community):
    as_user(client, community.voters[0])
    for url in (reverse("decision-new"), reverse("decision-policy")):
        content = page_text(client.get(url))
        assert f'href="{reverse("decision-list")}" aria-current="page"' in content
    content = page_text(client.get(reverse("profile")))
    assert f'href="{reverse("decision-list")}">' in content


# -- the generic form builder ---------------------------------------------------------------


class SampleParams(StrictParams):
    name: str
    count: int = pydantic.Field(ge=1, le=9)
    ratio: float | None = None
    enabled: bool
    maybe: bool | None = None
    day: dt.date
    last_day: dt.date | None = None
    mode: str = pydantic.Field(default="fast", json_schema_extra={"enum": ["fast", "slow"]})
    level: Literal["low", "high"] = "low"
    labels: dict[str, str] | None = None


class SampleOperation(OperationType):
    type = "sample.try"
    label = "Try the form builder"
    Params = SampleParams


def test_fields_are_built_from_the_params_schema():
    from django import forms

    fields = operation_fields(SampleOperation())
    assert list(fields) == ["name", "count", "ratio", "enabled", "maybe", "day", "last_day",
                            "mode", "level", "labels"]
    assert isinstance(fields["name"], forms.CharField) and fields["name"].required
    assert isinstance(fields["count"], forms.IntegerField)
    assert (fields["count"].min_value, fields["count"].max_value) == (1, 9)
    assert isinstance(fields["ratio"], forms.FloatField) and not fields["ratio"].required
    assert isinstance(fields["enabled"], forms.BooleanField)
    assert isinstance(fields["maybe"], forms.NullBooleanField)
    assert isinstance(fields["day"], forms.DateField) and fields["day"].required
    assert isinstance(fields["last_day"], forms.DateField) and not fields["last_day"].required
    assert [value for value, _label in fields["level"].choices] == ["", "low", "high"]
    assert [value for value, _label in fields["mode"].choices] == ["", "fast", "slow"]
    assert isinstance(fields["labels"], ObjectField)

    form = OperationForm(SampleOperation(), {
        "name": " x ", "count": "3", "ratio": "", "enabled": "on", "maybe": "unknown",
        "day": "2030-01-02", "last_day": "", "mode": "slow", "level": "high",
        "labels": "a=b\nc = d"})
    assert form.is_valid(), form.errors
    assert form.params() == {"name": "x", "count": 3, "enabled": True, "day": "2030-01-02",
                             "mode": "slow", "level": "high", "labels": {"a": "b", "c": "d"}}
    SampleParams.model_validate(form.params())
    bad = OperationForm(SampleOperation(), {"name": "x", "count": "12", "day": "2030-01-02",
                                            "labels": "no equals sign"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"count", "labels"}
