"""A vote is the member's own, and the electorate moves only as the rules say: every way an
administrator could vote for someone or change who votes, tried through the API, the CLI and
forged form posts, refused with nothing recorded.

The collective: wren (administrator, nobody's account), kim (an account of nobody), and
three voters aubin, brune and cyan, each with a password of their own.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.urls import reverse
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.models import ApiToken, AuditLog
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account
from chaton.governance import actions
from chaton.governance.credentials import Credential, NotOwnCredential, PasswordNotOwn
from chaton.governance.models import Decision, Kind, OperationStatus, Status, Vote
from chaton.governance.tests.test_api import (
    GRANT_PASSWORDS,
    Api,
    api_for,
    assert_error,
    make_account,
    make_member,
)
from chaton.members.models import Membership, Person
from chaton.members.queries import voting_members
from chaton.testing.second_factor import enroll, login_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "juniper lantern 3381"
GOVERNANCE = "/governance"


@pytest.fixture(autouse=True)
def _clock_back(english: None):
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def collective(directory):
    people = {"wren": make_account("wren", is_admin=True), "kim": make_account("kim")}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    for account in people.values():
        # Each chose their own password (an administrator's would not vote).
        directory_actions.do_set_password(account, PASSWORD, acting_user=account)
    enroll(people["wren"])  # administrators hold a second factor
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    return people


@pytest.fixture
def proposal(collective) -> Decision:
    return actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                              acting_user=collective["aubin"])


def _vote_path(decision: Decision) -> str:
    return f"{GOVERNANCE}/decisions/{decision.pk}/vote"


def _nothing_voted() -> None:
    assert not Vote.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="vote.").exists()


# --- API tokens -----------------------------------------------------------------------------


def test_an_administrator_cannot_mint_a_token_that_votes_for_a_member(client, collective,
                                                                      proposal):
    admin = api_for(client, collective["wren"])
    assert_error(admin.post("/tokens", {"account": "aubin", "name": "x", "scopes": ["vote"]}),
                 403, "vote_scope_refused", "scopes")
    assert not ApiToken.objects.filter(account__uid="aubin", name="x").exists()

    minted = admin.post("/tokens", {"account": "aubin", "name": "for aubin"})
    assert minted.status_code == 201, minted.content
    body = minted.json()
    assert body["scopes"] == ["read", "write"] and body["minted_by_owner"] is False
    as_aubin = Api(client, body["key"])
    assert_error(as_aubin.post(_vote_path(proposal), {"choice": "against"}), 403,
                 "missing_scope")
    # Nor can that token mint a token that votes, or one with more rights than its own.
    assert_error(as_aubin.post("/me/tokens", {"name": "y", "scopes": ["vote"]}), 403,
                 "vote_scope_refused")
    assert_error(as_aubin.post("/me/tokens", {"name": "y", "scopes": ["read", "admin"]}), 400,
                 "invalid", "scopes")
    child = as_aubin.post("/me/tokens", {"name": "child"}).json()
    assert child["scopes"] == ["read", "write"] and child["minted_by_owner"] is False
    assert_error(Api(client, child["key"]).post(_vote_path(proposal), {"choice": "against"}),
                 403, "missing_scope")
    _nothing_voted()


def test_a_token_minted_for_someone_else_never_votes_even_if_forced_in_the_database(
        client, collective, proposal):
    """Should a row ever carry "vote" on a token its owner did not make, it still cannot."""
    token, key = do_create_api_token(collective["aubin"], "forced", acting_user=None)
    ApiToken.objects.filter(pk=token.pk).update(scopes=["read", "write", "vote"])
    assert_error(Api(client, key).post(_vote_path(proposal), {"choice": "for"}), 403,
                 "missing_scope")
    token.refresh_from_db()
    with pytest.raises(NotOwnCredential):
        actions.do_vote(proposal, "for", acting_user=collective["aubin"],
                        credential=Credential.api_token(token))
    _nothing_voted()


def test_the_members_own_token_votes_and_the_audit_row_names_it(client, collective, proposal):
    token, key = do_create_api_token(collective["aubin"], "laptop",
                                     acting_user=collective["aubin"], owner_proved=True)
    assert token.minted_by_owner and "vote" in token.scopes
    response = Api(client, key).post(_vote_path(proposal), {"choice": "for"})
    assert response.status_code == 200, response.content
    row = AuditLog.objects.get(action="vote.cast")
    assert row.after["credential"] == {"method": "token", "interface": "api", "token": token.pk}
    # A token of the member's own without the vote scope reads but does not vote.
    _read, read_key = do_create_api_token(collective["brune"], "reader", scopes=["read"],
                                          acting_user=collective["brune"], owner_proved=True)
    reader = Api(client, read_key)
    assert reader.get(f"{GOVERNANCE}/decisions/{proposal.pk}").status_code == 200
    assert_error(reader.post(_vote_path(proposal), {"choice": "against"}), 403, "missing_scope")
    assert_error(reader.post(f"{GOVERNANCE}/decisions/{proposal.pk}/withdraw"), 403,
                 "missing_scope")
    assert list(Vote.objects.values_list("person__email", "choice")) == [
        ("aubin@example.org", "for")]


def test_an_admin_endpoint_needs_the_admin_scope(client, collective):
    _token, key = do_create_api_token(collective["wren"], "read only", scopes=["read", "write"],
                                      acting_user=collective["wren"])
    assert_error(Api(client, key).get("/accounts"), 403, "missing_scope")
    assert_error(api_for(client, collective["aubin"]).post(
        "/me/tokens", {"name": "z", "scopes": ["admin"]}), 400, "invalid", "scopes")


# --- re-linking an account ------------------------------------------------------------------


def test_an_account_whose_person_voted_cannot_be_relinked_while_the_ballot_is_open(
        client, collective, proposal):
    aubin, brune = collective["aubin"], collective["brune"]
    actions.do_vote(proposal, "for", acting_user=aubin, credential=Credential.session(aubin))
    admin = api_for(client, collective["wren"])
    before = AuditLog.objects.count()
    assert_error(admin.call("patch", "/accounts/aubin", {"person_id": brune.person_id}), 409,
                 "voted_on_open_ballot", "person_id")
    assert_error(admin.call("patch", "/accounts/aubin", {"person_id": None}), 409,
                 "voted_on_open_ballot")
    # Nor can another account be given to the person who voted, to replace their vote.
    assert_error(admin.call("patch", "/accounts/kim", {"person_id": aubin.person_id}), 409,
                 "voted_on_open_ballot")
    assert Account.objects.get(uid="aubin").person_id == aubin.person_id
    assert Account.objects.get(uid="kim").person_id is None
    assert AuditLog.objects.count() == before
    # Once the ballot is closed, the account may change hands.
    clock.travel(dt.timedelta(days=8))
    actions.settle_ballots()
    assert admin.call("patch", "/accounts/kim",
                      {"person_id": aubin.person_id}).status_code == 200


def test_an_account_linked_after_the_ballot_opened_does_not_vote_for_its_new_person(
        client, collective, proposal):
    """wren gives the spare account kim to cyan, who has not voted, and signs in as kim:
    refused, and cyan's own vote still counts."""
    cyan, kim = collective["cyan"], collective["kim"]
    admin = api_for(client, collective["wren"])
    assert admin.call("patch", "/accounts/kim", {"person_id": cyan.person_id}).status_code == 200
    kim.refresh_from_db()
    with pytest.raises(actions.NotAVoter):
        actions.do_vote(proposal, "against", acting_user=kim,
                        credential=Credential.session(kim))
    _nothing_voted()
    actions.do_vote(proposal, "for", acting_user=cyan, credential=Credential.session(cyan))
    assert list(Vote.objects.values_list("account__uid", "choice")) == [("cyan", "for")]


def test_the_account_page_refuses_a_relink_after_a_vote(client, collective, proposal):
    aubin, brune = collective["aubin"], collective["brune"]
    actions.do_vote(proposal, "for", acting_user=aubin, credential=Credential.session(aubin))
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, collective["wren"])
    response = client.post(reverse("account-edit", args=["aubin"]), {
        "display_name": "Aubin", "email": "aubin@example.org", "person": brune.person_id,
        "organization": "", "expires_on": "", "is_admin": ""})
    assert response.status_code == 200
    assert "a vote of its member is on a ballot still open" in response.content.decode()
    assert Account.objects.get(uid="aubin").person_id == aubin.person_id


# --- the web: only the signed-in account's own vote -----------------------------------------


def test_a_forged_vote_form_counts_only_for_the_signed_in_account(client, collective,
                                                                  proposal):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, collective["wren"])
    forged = {"choice": "against", "account": "brune", "person": collective["brune"].person_id,
              "uid": "brune", "as": "brune"}
    response = client.post(reverse("decision-vote", args=[proposal.pk]), forged, follow=True)
    assert "belongs to no member" in response.content.decode()
    _nothing_voted()
    client.force_login(collective["aubin"])
    client.post(reverse("decision-vote", args=[proposal.pk]), forged)
    assert list(Vote.objects.values_list("account__uid", "choice")) == [("aubin", "against")]
    row = AuditLog.objects.get(action="vote.cast")
    assert row.actor.uid == "aubin"
    assert row.after["credential"] == {"method": "session", "interface": "web"}


# --- the CLI: --as is not a credential ------------------------------------------------------


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(app, list(arguments), input=input, env=env)

    return invoke


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaton: error: "), result.stderr
    return lines[0]


def test_cli_as_alone_never_votes(cli, collective, proposal):
    number = str(proposal.pk)
    # --as names someone; without their password (or with the administrator's), no vote.
    assert "own password" in _error_line(cli("decision", "vote", number, "against",
                                             "--as", "brune", input=""))
    assert "not correct" in _error_line(cli("--as", "brune", "decision", "vote", number,
                                            "against", input="not her password\n"))
    directory_actions.do_set_password(collective["wren"], "wren only 9921", acting_user=None)
    assert "not correct" in _error_line(cli("decision", "vote", number, "against",
                                            "--as", "brune", input="wren only 9921\n"))
    # A token an administrator minted for brune, in $CHATON_TOKEN, cannot vote either.
    _token, minted = do_create_api_token(collective["brune"], "minted",
                                         acting_user=collective["wren"])
    assert "may not vote" in _error_line(cli("decision", "vote", number, "against",
                                             env={"CHATON_TOKEN": minted}))
    # Nor does aubin's own token vote as brune.
    _token, own = do_create_api_token(collective["aubin"], "own",
                                      acting_user=collective["aubin"], owner_proved=True)
    assert "belongs to aubin" in _error_line(cli("decision", "vote", number, "against",
                                                 "--as", "brune", env={"CHATON_TOKEN": own}))
    _nothing_voted()


def test_cli_votes_with_the_members_password_or_own_token_and_says_how(cli, collective,
                                                                      proposal):
    number = str(proposal.pk)
    voted = cli("decision", "vote", number, "for", "--as", "aubin", input=PASSWORD + "\n")
    assert voted.exit_code == 0, voted.output
    token, key = do_create_api_token(collective["cyan"], "cyan's", acting_user=collective["cyan"],
                                     owner_proved=True)
    voted = cli("decision", "vote", number, "against", env={"CHATON_TOKEN": key})
    assert voted.exit_code == 0, voted.output
    credentials = {row.actor_label: row.after["credential"]
                   for row in AuditLog.objects.filter(action="vote.cast")}
    assert credentials == {"aubin": {"method": "password", "interface": "cli"},
                           "cyan": {"method": "token", "interface": "cli", "token": token.pk}}


def test_cli_token_that_votes_needs_the_members_password(cli, collective):
    refused = cli("--as", "wren", "token", "create", "brune", "phone", "--scope", "vote",
                  input="wrong\n")
    assert "not correct" in _error_line(refused)
    made = cli("--as", "wren", "token", "create", "brune", "phone", "--scope", "read",
               "--scope", "vote", input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    token = ApiToken.objects.get(account__uid="brune")
    assert token.minted_by_owner and token.scopes == ["read", "vote"]
    # Without the vote scope, the operator's token never votes, --as the owner or not.
    assert cli("--as", "brune", "token", "create", "brune", "script").exit_code == 0
    assert not ApiToken.objects.get(name="script").allows("vote")


def test_cli_password_of_a_member_with_a_second_factor_needs_its_code(cli, collective,
                                                                       proposal):
    """cyan enrolled a second factor: whoever learnt cyan's password (over a shoulder, from
    a reused one) still cannot vote as cyan on the command line, nor make cyan a token that
    votes; the password then the code, as cyan would type them, can."""
    from chaton.testing.second_factor import code_for

    device, recovery = enroll(collective["cyan"])
    number = str(proposal.pk)
    assert "second factor" in _error_line(cli("decision", "vote", number, "for",
                                              "--as", "cyan", input=PASSWORD + "\n"))
    assert "code of cyan is not correct" in _error_line(cli(
        "decision", "vote", number, "for", "--as", "cyan", input=PASSWORD + "\n000000\n"))
    # The code never stands in for the password.
    assert "password of cyan is not correct" in _error_line(cli(
        "decision", "vote", number, "for", "--as", "cyan",
        input="wrong\n" + code_for(device) + "\n"))
    refused = cli("token", "create", "cyan", "phone", "--scope", "vote",
                  input=PASSWORD + "\n")
    assert "second factor" in _error_line(refused)
    assert "code of cyan is not correct" in _error_line(cli(
        "token", "create", "cyan", "phone", "--scope", "vote", input=PASSWORD + "\nabc\n"))
    assert not ApiToken.objects.filter(account__uid="cyan").exists()
    _nothing_voted()

    # The wrong "000000" above earned a second's wait on the authenticator (throttling).
    time.sleep(1.1)
    voted = cli("decision", "vote", number, "for", "--as", "cyan",
                input=f"{PASSWORD}\n{code_for(device)}\n")
    assert voted.exit_code == 0, voted.output
    assert AuditLog.objects.get(action="vote.cast").after["credential"] == {
        "method": "password", "interface": "cli"}
    # A recovery code works once, here as at the login page (after the wait that the wrong
    # "abc" above earned: wrong codes slow down whoever tries them).
    time.sleep(1.1)
    made = cli("token", "create", "cyan", "phone", "--scope", "vote",
               input=f"{PASSWORD}\n{recovery[0]}\n")
    assert made.exit_code == 0, made.output
    assert ApiToken.objects.get(account__uid="cyan").minted_by_owner
    assert "not correct" in _error_line(cli("token", "create", "cyan", "again", "--scope",
                                            "vote", input=f"{PASSWORD}\n{recovery[0]}\n"))
    # A member without a second factor is asked for none (aubin's password alone votes).
    assert cli("decision", "vote", number, "against", "--as", "aubin",
               input=PASSWORD + "\n").exit_code == 0


# --- the electorate -------------------------------------------------------------------------


def test_a_back_dated_membership_does_not_join_the_electorate(client, collective):
    admin = api_for(client, collective["wren"])
    person = admin.post("/members/persons", {"full_name": "Rétro Datée",
                                             "email": "retro@example.org"}).json()
    long_ago = (clock.today() - dt.timedelta(days=180)).isoformat()
    started = admin.post(f"/members/persons/{person['id']}/memberships",
                         {"starts_on": long_ago})
    assert started.status_code == 201, started.content
    assert admin.get("/members/counts").json()["natural"]["total"] == 4  # counted as a member
    voters = {item["id"] for item in admin.get("/members/voting").json()["items"]}
    assert person["id"] not in voters and len(voters) == 3
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=collective["aubin"])
    assert decision.ballots.get().electorate_size == 3
    clock.travel(dt.timedelta(days=10))
    assert Person.objects.get(pk=person["id"]) in voting_members(clock.today())


def test_ending_a_membership_directly_is_an_announced_ordinary_action_a_counter_vote_undoes(
        client, collective, mailoutbox):
    aubin, brune, cyan = collective["aubin"], collective["brune"], collective["cyan"]
    membership = Membership.objects.get(person=cyan.person)
    admin = api_for(client, collective["wren"])
    ended = admin.post(f"/members/memberships/{membership.pk}/end",
                       {"ends_on": clock.today().isoformat()})
    assert ended.status_code == 200, ended.content
    assert ended.json()["ends_on"] == clock.today().isoformat()
    decision = Decision.objects.get()
    assert decision.kind == Kind.ORDINARY and decision.status == Status.ADOPTED
    operation = decision.operations.get()
    assert operation.type == "membership.end" and operation.status == OperationStatus.DONE
    assert any(f"#{decision.pk}" in message.subject for message in mailoutbox)  # announced

    actions.do_open_counter_vote(decision, acting_user=aubin)
    actions.do_vote(decision, "against", acting_user=aubin, credential=Credential.session(aubin))
    actions.do_vote(decision, "against", acting_user=brune, credential=Credential.session(brune))
    decision.refresh_from_db()
    assert decision.status == Status.CANCELLED
    actions.execute_decisions()
    membership.refresh_from_db()
    assert membership.ends_on is None
    assert cyan.person in voting_members(clock.today() + dt.timedelta(days=1))


def test_the_membership_page_and_the_cli_end_through_an_ordinary_action(client, cli,
                                                                        collective):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, collective["wren"])
    first = Membership.objects.get(person=collective["cyan"].person)
    response = client.post(reverse("membership-end", args=[first.pk]),
                           {f"end-{first.pk}-ends_on": clock.today().isoformat()}, follow=True)
    assert "ordinary action #" in response.content.decode()
    second = Membership.objects.get(person=collective["brune"].person)
    assert _error_line(cli("member", "end", "brune@example.org"))
    assert Membership.objects.get(pk=second.pk).ends_on is None
    assert cli("--as", "wren", "member", "end", "brune@example.org").exit_code == 0
    assert list(Decision.objects.order_by("pk").values_list("kind", "status")) == [
        (Kind.ORDINARY, Status.ADOPTED), (Kind.ORDINARY, Status.ADOPTED)]
    assert Membership.objects.get(pk=second.pk).ends_on == clock.today()


# --- the web: tokens of one's own -----------------------------------------------------------


def test_my_tokens_page_makes_a_token_that_votes_only_for_the_signed_in_account(
        client, collective, proposal):
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    login_with_second_factor(client, collective["wren"])
    # A forged field naming someone else is ignored: the token is the signed-in account's.
    forged = client.post(reverse("my-tokens"), {"name": "for brune", "scopes": ["read", "vote"],
                                                "account": "brune", "uid": "brune"})
    assert forged.status_code == 200
    token = ApiToken.objects.get(name="for brune")
    assert token.account.uid == "wren" and token.minted_by_owner
    assert not ApiToken.objects.filter(account__uid="brune").exists()
    # wren has no person: the token votes nothing for anybody.
    key = forged.context["key"]
    assert_error(Api(client, key).post(_vote_path(proposal), {"choice": "for"}), 403,
                 "not_a_voter")
    _nothing_voted()
    # Nor can wren revoke someone else's token from the page.
    brunes, _key = do_create_api_token(collective["brune"], "phone", acting_user=None)
    assert client.post(reverse("my-token-revoke", args=[brunes.pk])).status_code == 404
    assert ApiToken.objects.filter(pk=brunes.pk).exists()

    client.force_login(collective["brune"])
    page = client.post(reverse("my-tokens"), {"name": "laptop", "scopes": ["vote"]})
    assert page.context["key"] in page.content.decode()
    voted = Api(client, page.context["key"]).post(_vote_path(proposal), {"choice": "against"})
    assert voted.status_code == 200, voted.content
    assert list(Vote.objects.values_list("account__uid", "choice")) == [("brune", "against")]
    refused = client.post(reverse("my-tokens"), {"name": "root", "scopes": ["admin"]})
    assert "admin" in refused.content.decode() and not ApiToken.objects.filter(
        name="root").exists()


def test_a_password_an_administrator_set_after_the_vote_opened_does_not_vote(
        client, cli, collective, proposal):
    """wren resets brune's password through the API, then tries it on the CLI and signs in
    with it: refused. Changing it "as brune" with the known one changes nothing (wren could
    do that too), on this ballot or on one opened afterwards."""
    admin = api_for(client, collective["wren"])
    known = "wren knows this 4417"
    assert admin.post("/accounts/brune/password", {"password": known}).status_code == 204
    assert "set by someone else" in _error_line(cli("decision", "vote", str(proposal.pk),
                                                    "against", "--as", "brune",
                                                    input=known + "\n"))
    brune = Account.objects.get(uid="brune")
    with pytest.raises(PasswordNotOwn):
        actions.do_vote(proposal, "against", acting_user=brune,
                        credential=Credential.session(brune))
    _nothing_voted()
    directory_actions.do_set_password(brune, "brune's own 5530", acting_user=brune)
    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(proposal.pk), "against", "--as", "brune",
        input="brune's own 5530\n"))
    clock.travel(dt.timedelta(seconds=5))
    later = actions.do_propose("Kim reads the passwords, again", [GRANT_PASSWORDS],
                               acting_user=collective["aubin"])
    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(later.pk), "against", "--as", "brune",
        input="brune's own 5530\n"))
    _nothing_voted()


def _follow_reset_mail(client, mailoutbox, password: str) -> None:
    """Open the one reset link in ``mailoutbox`` and choose ``password`` with it."""
    [mail] = mailoutbox
    link = next(word for word in mail.body.split() if "/password-reset/" in word)
    form = client.get(link[link.index("/password-reset/"):], follow=True)
    assert form.status_code == 200
    done = client.post(form.redirect_chain[-1][0], {"new_password1": password,
                                                    "new_password2": password})
    assert done.status_code == 302, done.content


def test_a_password_an_administrator_set_before_the_vote_opened_does_not_vote(
        client, cli, collective, mailoutbox):
    """The hole of a mark that protected only the ballots already open: wren sets brune's
    password, waits for a vote to open, then votes with it through the CLI, the web page
    and a token made with it. All refused, the page says why and mails brune the link;
    once brune chose a password there, brune votes, and wren's token is gone."""
    admin = api_for(client, collective["wren"])
    brune = collective["brune"]
    # A token brune made, alone, before wren touched the account, keeps voting.
    own_token, own_key = do_create_api_token(brune, "brune's laptop", acting_user=brune,
                                             owner_proved=True)
    time.sleep(0.01)  # tokens are dated by the real clock: no travel before the mark
    assert admin.post("/accounts/brune/password", {"password": KNOWN}).status_code == 204
    made = cli("token", "create", "brune", "made by wren", "--scope", "vote",
               input=KNOWN + "\n")
    assert made.exit_code == 0, made.output
    wren_key = made.output.strip().splitlines()[-1]
    clock.travel(dt.timedelta(days=3))
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=collective["aubin"])
    vote_path = _vote_path(decision)

    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(decision.pk), "for", "--as", "brune", input=KNOWN + "\n"))
    assert_error(Api(client, wren_key).post(vote_path, {"choice": "for"}), 403,
                 "password_not_own")
    assert client.login(username="brune", password=KNOWN)
    page = client.get(reverse("decision-detail", args=[decision.pk])).content.decode()
    assert "You cannot vote with this password" in page
    assert 'name="choice"' not in page and reverse("password-own-link") in page
    forged = client.post(reverse("decision-vote", args=[decision.pk]), {"choice": "for"},
                         follow=True)
    assert "Set your own password from the link we mail you" in forged.content.decode()
    _nothing_voted()

    # The way out: the link, mailed to brune's own address, sets a password of brune's own.
    mailoutbox.clear()
    sent = client.post(reverse("password-own-link"),
                       {"next": reverse("decision-detail", args=[decision.pk])})
    assert sent["Location"] == reverse("decision-detail", args=[decision.pk])
    assert [mail.to for mail in mailoutbox] == [["brune@example.org"]]
    client.logout()
    _follow_reset_mail(client, mailoutbox, NEW)
    brune.refresh_from_db()
    assert brune.password_set_by_other_at is None
    assert AuditLog.objects.filter(action="account.password").latest("id").after == {
        "owned": True}
    # wren's token, made with the password wren knew, was revoked; brune's own stays.
    assert list(ApiToken.objects.filter(account=brune)) == [own_token]
    assert Api(client, wren_key).post(vote_path, {"choice": "for"}).status_code == 401
    assert client.login(username="brune", password=NEW)
    page = client.get(reverse("decision-detail", args=[decision.pk])).content.decode()
    assert 'name="choice" value="against"' in page
    voted = client.post(reverse("decision-vote", args=[decision.pk]), {"choice": "against"})
    assert voted.status_code == 302
    assert Api(client, own_key).post(vote_path, {"choice": "for"}).status_code == 200
    assert list(Vote.objects.values_list("person__email", "choice")) == [
        ("brune@example.org", "for")]


def test_a_voting_token_made_before_the_mark_still_votes(client, collective, proposal):
    """brune's own token, made before wren set brune's password, is brune's: it votes,
    where a password-based vote does not."""
    brune = collective["brune"]
    _token, key = do_create_api_token(brune, "own", acting_user=brune, owner_proved=True)
    clock.travel(dt.timedelta(seconds=2))
    directory_actions.do_set_password(brune, KNOWN, acting_user=collective["wren"])
    brune.refresh_from_db()
    with pytest.raises(PasswordNotOwn):
        actions.do_vote(proposal, "for", acting_user=brune, credential=Credential.session(brune))
    assert Api(client, key).post(_vote_path(proposal), {"choice": "for"}).status_code == 200


def test_an_account_made_with_a_password_by_an_administrator_votes_once_its_owner_set_one(
        client, cli, collective, mailoutbox):
    """wren creates dara's account with a password of wren's choosing (API, web, CLI alike
    mark it): it never votes, on ballots opened later too, until dara sets one from the
    link mailed to dara's own address. wren changing dara's address first, or dara's
    account changing it while signed in with wren's password, keeps the mark."""
    from chaton.members import actions as member_actions
    from chaton.testing.voters import recorded_at_start

    person = member_actions.do_create_person("Dara Quillon", "dara@example.org",
                                             acting_user=None)
    recorded_at_start(member_actions.do_start_membership(
        person, acting_user=None, starts_on=clock.today() - dt.timedelta(days=60)))
    admin = api_for(client, collective["wren"])
    created = admin.post("/accounts", {"uid": "dara", "display_name": "Dara",
                                       "email": "dara.box@example.org",
                                       "person_id": person.pk, "password": KNOWN})
    assert created.status_code == 201, created.content
    dara = Account.objects.get(uid="dara")
    assert dara.password_set_by_other_at is not None
    clock.travel(dt.timedelta(seconds=5))
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=collective["aubin"])
    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(decision.pk), "for", "--as", "dara", input=KNOWN + "\n"))
    # Signed in with the password wren knows, "dara" points the address to wren's mailbox:
    # the reset mailed there does not lift the mark.
    assert client.login(username="dara", password=KNOWN)
    directory_actions.do_update_account(dara, acting_user=dara, email="wren2@example.org")
    mailoutbox.clear()
    refused = client.post(reverse("password-own-link"), follow=True)
    assert "set by someone else" in refused.content.decode() and not mailoutbox
    client.logout()
    client.post(reverse("password-reset"), {"identifier": "dara"})
    _follow_reset_mail(client, mailoutbox, NEW)
    dara.refresh_from_db()
    assert dara.password_set_by_other_at is not None
    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(decision.pk), "for", "--as", "dara", input=NEW + "\n"))
    _nothing_voted()
    # The collective puts back the address dara joined with; dara's reset makes it dara's.
    assert admin.call("patch", "/accounts/dara",
                      {"email": "dara.box@example.org"}).status_code == 200
    mailoutbox.clear()
    client.post(reverse("password-reset"), {"identifier": "dara"})
    assert [mail.to for mail in mailoutbox] == [["dara.box@example.org"]]
    _follow_reset_mail(client, mailoutbox, "dara alone 6612")
    voted = cli("decision", "vote", str(decision.pk), "for", "--as", "dara",
                input="dara alone 6612\n")
    assert voted.exit_code == 0, voted.output


def test_an_account_created_for_a_member_after_the_vote_opened_does_not_vote(
        cli, collective, proposal):
    """On the command line, wren makes a second account for aubin with a password of
    wren's choosing and votes with it: refused."""
    made = cli("account", "add", "aubin2", "--name", "Aubin bis", "--email",
               "aubin2@example.org", "--person", "aubin@example.org")
    assert made.exit_code == 0, made.output
    second = Account.objects.get(uid="aubin2")
    directory_actions.do_set_password(second, PASSWORD, acting_user=None)
    assert "set by someone else" in _error_line(cli(
        "decision", "vote", str(proposal.pk), "for", "--as", "aubin2", input=PASSWORD + "\n"))
    # Even were its password the account's own, it came to aubin after the vote opened.
    Account.objects.filter(pk=second.pk).update(password_set_by_other_at=None)
    assert "linked to its member after" in _error_line(cli(
        "decision", "vote", str(proposal.pk), "for", "--as", "aubin2", input=PASSWORD + "\n"))
    _nothing_voted()


def test_forged_posts_of_a_member_to_the_administrators_pages_change_nothing(client,
                                                                            collective,
                                                                            proposal):
    client.force_login(collective["aubin"])
    membership = Membership.objects.get(person=collective["brune"].person)
    ended = client.post(reverse("membership-end", args=[membership.pk]),
                        {f"end-{membership.pk}-ends_on": clock.today().isoformat()})
    relinked = client.post(reverse("account-edit", args=["kim"]), {
        "display_name": "Kim", "email": "kim@example.org",
        "person": collective["aubin"].person_id})
    assert ended.status_code == relinked.status_code == 403
    assert Membership.objects.get(pk=membership.pk).ends_on is None
    assert Account.objects.get(uid="kim").person_id is None
    assert not Decision.objects.exclude(pk=proposal.pk).exists()


# --- a password an administrator knows ------------------------------------------------------
# It never votes on the ballots open when they learnt it: not by changing it "as the member",
# not through a token made with it, not through a reset mailed to an address they set.

KNOWN = "wren knows this 4417"
NEW = "now mine 7781 x"


def test_a_voting_token_made_with_a_password_the_administrator_set_does_not_vote(
        client, cli, collective, proposal):
    admin = api_for(client, collective["wren"])
    assert admin.post("/accounts/brune/password", {"password": KNOWN}).status_code == 204
    made = cli("token", "create", "brune", "mine", "--scope", "vote", "--scope", "read",
               input=KNOWN + "\n")
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert_error(Api(client, key).post(_vote_path(proposal), {"choice": "against"}), 403,
                 "password_not_own")
    assert not Vote.objects.exists()


def test_a_password_the_administrator_changes_as_the_member_does_not_vote(
        client, collective, proposal):
    admin = api_for(client, collective["wren"])
    assert admin.post("/accounts/brune/password", {"password": KNOWN}).status_code == 204
    brune = Account.objects.get(uid="brune")
    _token, key = do_create_api_token(brune, "helper", acting_user=collective["wren"])
    changed = Api(client, key).post("/me/password", {"current_password": KNOWN,
                                                     "password": NEW})
    assert changed.status_code == 204, changed.content
    brune.refresh_from_db()
    assert brune.password_set_by_other_at is not None
    for credential in (Credential.session(brune), Credential.password(brune, NEW)):
        with pytest.raises(NotOwnCredential):
            actions.do_vote(proposal, "against", acting_user=brune, credential=credential)
    assert not Vote.objects.exists()


def test_a_reset_sent_to_an_address_the_administrator_set_does_not_vote(
        client, collective, proposal, mailoutbox):
    admin = api_for(client, collective["wren"])
    changed = admin.call("patch", "/accounts/brune", {"email": "wren-box@example.org"})
    assert changed.status_code == 200, changed.content
    mailoutbox.clear()
    client.post(reverse("password-reset"), {"identifier": "brune"})
    assert [mail.to for mail in mailoutbox] == [["wren-box@example.org"]]
    # Whatever the link then sets, it is set "by brune" through wren's mailbox.
    brune = Account.objects.get(uid="brune")
    assert brune.password_set_by_other_at is not None
    directory_actions.do_set_password(brune, NEW, acting_user=brune)
    with pytest.raises(NotOwnCredential):
        actions.do_vote(proposal, "against", acting_user=brune,
                        credential=Credential.session(brune))
    assert not Vote.objects.exists()


def test_the_members_own_email_change_leaves_the_vote_alone(client, collective, proposal):
    brune = Account.objects.get(uid="brune")
    marked = brune.password_set_by_other_at  # the fixture's, before the vote opened
    directory_actions.do_update_account(brune, acting_user=brune, email="brune2@example.org")
    brune.refresh_from_db()
    assert brune.password_set_by_other_at == marked
    actions.do_vote(proposal, "against", acting_user=brune,
                    credential=Credential.session(brune))
    assert Vote.objects.count() == 1


def test_a_reset_mailed_to_an_address_changed_before_the_vote_does_not_vote(
        client, collective, mailoutbox):
    """wren gives brune an address of wren's own, then a vote opens, then wren follows the
    reset link mailed there: the password it sets is wren's as much as brune's."""
    admin = api_for(client, collective["wren"])
    changed = admin.call("patch", "/accounts/brune", {"email": "wren-box@example.org"})
    assert changed.status_code == 200, changed.content
    clock.travel(dt.timedelta(seconds=5))
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=collective["aubin"])
    clock.travel(dt.timedelta(seconds=10))
    mailoutbox.clear()
    client.logout()
    client.post(reverse("password-reset"), {"identifier": "brune"})
    [mail] = mailoutbox
    assert mail.to == ["wren-box@example.org"]
    link = next(word for word in mail.body.split() if "/password-reset/" in word)
    path = link[link.index("/password-reset/"):]
    form = client.get(path, follow=True)
    assert form.status_code == 200
    set_path = form.redirect_chain[-1][0]
    done = client.post(set_path, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302, done.content
    brune = Account.objects.get(uid="brune")
    assert brune.check_password(NEW)
    with pytest.raises(NotOwnCredential):
        actions.do_vote(decision, "against", acting_user=brune,
                        credential=Credential.session(brune))
    assert not Vote.objects.exists()


def test_a_reset_mailed_to_the_members_own_address_votes(client, collective, proposal,
                                                          mailoutbox):
    clock.travel(dt.timedelta(seconds=10))
    mailoutbox.clear()
    client.post(reverse("password-reset"), {"identifier": "cyan"})
    [mail] = mailoutbox
    link = next(word for word in mail.body.split() if "/password-reset/" in word)
    form = client.get(link[link.index("/password-reset/"):], follow=True)
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW,
                                                    "new_password2": NEW})
    assert done.status_code == 302, done.content
    cyan = Account.objects.get(uid="cyan")
    actions.do_vote(proposal, "against", acting_user=cyan, credential=Credential.session(cyan))
    assert Vote.objects.count() == 1


def test_an_address_set_through_a_token_the_administrator_made_is_not_the_members(
        client, collective, mailoutbox):
    """wren makes brune a token (it cannot vote), sets brune's address to wren's through
    /me with it, then follows the reset mailed there once a vote opened: refused."""
    _token, key = do_create_api_token(collective["brune"], "helper",
                                      acting_user=collective["wren"])
    changed = Api(client, key).call("patch", "/me", {"email": "wren-box@example.org"})
    assert changed.status_code == 200, changed.content
    assert AuditLog.objects.filter(action="account.update", actor=collective["wren"]).exists()
    clock.travel(dt.timedelta(seconds=5))
    decision = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=collective["aubin"])
    clock.travel(dt.timedelta(seconds=10))
    mailoutbox.clear()
    client.post(reverse("password-reset"), {"identifier": "brune"})
    [mail] = mailoutbox
    link = next(word for word in mail.body.split() if "/password-reset/" in word)
    form = client.get(link[link.index("/password-reset/"):], follow=True)
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW,
                                                    "new_password2": NEW})
    assert done.status_code == 302, done.content
    brune = Account.objects.get(uid="brune")
    with pytest.raises(NotOwnCredential):
        actions.do_vote(decision, "against", acting_user=brune,
                        credential=Credential.session(brune))
    assert not Vote.objects.exists()


def test_members_ended_one_action_after_another_still_contest_each(directory):
    """wren ends three memberships, each back-dated to yesterday, as ordinary actions: the
    counter-vote on the first still counts the three, who may open it and cancel it, and a
    proposal opened meanwhile counts them too."""
    wren = make_account("wren", is_admin=True)
    people = {uid: make_member(uid) for uid in ("ally1", "ally2", "cyan", "dora", "emil")}
    yesterday = clock.today() - dt.timedelta(days=1)
    ended = [actions.do_end_membership_ordinarily(
        Membership.objects.get(person=people[uid].person), yesterday, acting_user=wren)
        for uid in ("cyan", "dora", "emil")]
    assert not voting_members(clock.today()).filter(
        pk__in=[people[uid].person_id for uid in ("cyan", "dora", "emil")]).exists()
    # Nor does anything proposed meanwhile leave them out.
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    directory_actions.do_create_account("kim", acting_user=None, display_name="Kim",
                                        email="kim@example.org")
    proposal = actions.do_propose("Kim reads the passwords", [GRANT_PASSWORDS],
                                  acting_user=people["ally1"])
    for uid in ("ally1", "ally2"):
        actions.do_vote(proposal, "for", acting_user=people[uid],
                        credential=Credential.session(people[uid]))
    proposal.refresh_from_db()
    assert proposal.status == Status.OPEN and proposal.ballots.get().electorate_size == 5
    ballot = actions.do_open_counter_vote(ended[0], acting_user=people["cyan"])
    assert ballot.electorate_size == 5
    for uid in ("cyan", "dora", "emil"):
        actions.do_vote(ended[0], "against", acting_user=people[uid],
                        credential=Credential.session(people[uid]))
    ended[0].refresh_from_db()
    assert ended[0].status == Status.CANCELLED
    # A member ended before an action was taken does not join its counter-vote.
    later = actions.do_end_membership_ordinarily(
        Membership.objects.get(person=people["ally2"].person), yesterday, acting_user=wren)
    # dora's ending may still be contested: she is still in the electorate.
    assert actions.do_open_counter_vote(later, acting_user=people["dora"]).electorate_size == 5


def test_the_own_link_button_mails_only_the_signed_in_account_and_stays_on_this_site(
        client, collective, mailoutbox):
    """The "Mail me the link" form names nobody: it mails the signed-in account's own
    address, needs a signed-in POST, and never sends the browser to another site."""
    directory_actions.do_set_password(collective["brune"], KNOWN, acting_user=collective["wren"])
    assert client.get(reverse("password-own-link")).status_code in (302, 405)
    anonymous = client.post(reverse("password-own-link"))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert not mailoutbox
    assert client.login(username="brune", password=KNOWN)
    sent = client.post(reverse("password-own-link"), {"next": "https://attacker.example/",
                                                     "uid": "aubin",
                                                     "email": "wren@example.org"})
    assert sent["Location"] == reverse("profile")
    assert [mail.to for mail in mailoutbox] == [["brune@example.org"]]
