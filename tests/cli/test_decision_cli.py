"""``chaton decision …``: propose, vote, settle (close and execute), contest, the inventory,
and every refusal as one line on stderr with exit status 2 and nothing written.

Like ``test_cli.py``: the Typer application in-process against the fake directory, and one
real process for what only a real process shows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.cli.governance import parse_operation_words
from chaton.core import clock
from chaton.core.errors import InvalidInput
from chaton.directory import actions as directory_actions
from chaton.directory.models import GroupMembership
from chaton.governance.models import Decision, Operation, Vote
from chaton.governance.policy import current
from chaton.governance.tests.test_api import make_account, make_member
from chaton.testing.pytest_plugin import free_port

CHATON = [str(Path(sys.executable).with_name("chaton"))]
PASSWORD = "larch harbour 7714"
#: What a voter types when ``decision vote`` asks for their password.
TYPED = PASSWORD + "\n"
GRANT = ["--op", "group.grant", "group=passwords", "account=kim", "expires_on=2031-06-30"]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english_and_clock_back(english: None):
    """Run every command in English; put the clock back after."""
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None):
        return runner.invoke(app, list(arguments), input=input)

    return invoke


@pytest.fixture
def collective(directory):
    """An administrator (wren), three voters, kim (nobody's account), two groups."""
    people = {"wren": make_account("wren", is_admin=True), "kim": make_account("kim")}
    for uid in ("aubin", "brune", "cyan"):
        people[uid] = make_member(uid)
    for account in people.values():
        # A vote needs the voter's own password (on standard input here), one they chose.
        directory_actions.do_set_password(account, PASSWORD, acting_user=account)
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    directory_actions.do_create_group("tech", acting_user=None)
    return people


def _ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _one_error_line(result) -> str:
    """Assert the command failed the documented way and return its only stderr line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def _number(decision_output: str) -> str:
    """Return the decision number a propose or act command printed (``#12``)."""
    return decision_output.split("#", 1)[1].split()[0].rstrip(":")


# -- the life of a proposal ---------------------------------------------------------------


def test_propose_vote_settle_and_show(cli, collective, directory):
    opened = _ok(cli("decision", "propose", "Kim reads the passwords", "--as", "aubin", *GRANT,
                     "--description", "Kim joins the tech team."))
    number = _number(opened)
    assert f"Proposal #{number} opened: Kim reads the passwords" in opened
    assert "0 for, 0 against, of 3 voters" in opened
    decision = Decision.objects.get(pk=number)
    assert decision.status == "open" and decision.description == "Kim joins the tech team."
    assert Operation.objects.get(decision=decision).params == {
        "group": "passwords", "account": "kim", "expires_on": "2031-06-30"}

    voted = _ok(cli("decision", "vote", number, "for", "--as", "aubin", input=TYPED))
    assert f"aubin votes “for” on #{number}." in voted and "1 for, 0 against" in voted
    # The global --as names the voter too; 2 of 3 adopts at once.
    adopted = _ok(cli("--as", "brune", "decision", "vote", number, "for", input=TYPED))
    assert "adopted with 2 for, 0 against, of 3 voters" in adopted
    assert not GroupMembership.objects.filter(group__name="passwords").exists()

    settled = _ok(cli("decision", "settle"))
    assert f"#{number}, operation 1 (add kim to the group passwords until 2031-06-30): done." \
        in settled
    assert GroupMembership.objects.filter(group__name="passwords", account__uid="kim").exists()
    assert "uid=kim,ou=people,dc=chaton,dc=test" in str(
        directory.entries["cn=passwords,ou=groups,dc=chaton,dc=test"])
    assert "Nothing to settle." in _ok(cli("decision", "settle"))

    shown = _ok(cli("decision", "show", number))
    assert f"#{number} Kim reads the passwords" in shown
    assert "Extraordinary, adopted. Proposed by Aubin" in shown
    assert "Aubin Quillon" in shown and "Brune Quillon" in shown  # the votes are public
    listed = _ok(cli("decision", "list"))
    assert f"#{number}" in listed and "2/3" in listed and "0/3" in listed
    assert "0 decision(s)." in _ok(cli("decision", "list", "--status", "open"))


def test_proposals_from_a_file_are_adopted_at_the_deadline_without_opposition(
        cli, collective, tmp_path):
    operations = tmp_path / "operations.json"
    operations.write_text(json.dumps([
        {"type": "group.grant", "params": {"group": "passwords", "account": "kim"}}]))
    first = _number(_ok(cli("--as", "wren", "decision", "propose", "Kim reads the passwords",
                            "--operations-file", str(operations))))
    # JSON values for objects, the params' own conversion for numbers.
    second = _number(_ok(cli("decision", "propose", "Removals need a vote", "--as", "cyan",
                             "--op", "policy.change", 'classes={"group.revoke": "extraordinary"}',
                             "proposal_days=3")))
    assert Operation.objects.get(decision_id=second).params == {
        "classes": {"group.revoke": "extraordinary"}, "proposal_days": 3}
    _ok(cli("decision", "vote", first, "against", "--as", "aubin", input=TYPED))

    assert "Nothing to settle." in _ok(cli("decision", "settle"))
    clock.travel(dt.timedelta(days=current().proposal_days, minutes=1))
    settled = _ok(cli("decision", "settle"))
    assert f"#{first} Vote on the proposal: rejected with 0 for, 1 against" in settled
    assert f"#{second} Vote on the proposal: adopted with 0 for, 0 against" in settled
    assert not GroupMembership.objects.filter(group__name="passwords").exists()
    policy = current()
    assert policy.classes == {"group.revoke": "extraordinary"} and policy.proposal_days == 3
    assert "group.revoke" in _ok(cli("decision", "policy"))


def test_act_contest_cancel_and_revert(cli, collective):
    acted = _ok(cli("decision", "act", "Kim joins the tech team", "--as", "wren",
                    "--op", "group.grant", "group=tech", "account=kim"))
    number = _number(acted)
    assert "add kim to the group tech: done" in acted
    assert "A counter-vote may be opened until" in acted
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()

    contested = _ok(cli("decision", "contest", number, "--as", "brune"))
    assert f"Counter-vote opened on #{number}." in contested
    assert "0 for, 0 against, of 3 voters" in contested
    line = _one_error_line(cli("decision", "contest", number, "--as", "cyan"))
    assert "already" in line
    _ok(cli("decision", "vote", number, "against", "--as", "aubin", input=TYPED))
    cancelled = _ok(cli("decision", "vote", number, "against", "--as", "cyan",
                        input=TYPED))
    assert "action cancelled with 0 for, 2 against" in cancelled
    settled = _ok(cli("decision", "settle"))
    assert f"#{number}, operation 1 (add kim to the group tech): reverted." in settled
    assert not GroupMembership.objects.filter(group__name="tech").exists()


def test_withdraw(cli, collective):
    number = _number(_ok(cli("decision", "propose", "Kim reads", "--as", "aubin", *GRANT)))
    assert "Only the author" in _one_error_line(cli("decision", "withdraw", number,
                                                    "--as", "brune"))
    assert f"Proposal #{number} withdrawn." in _ok(cli("decision", "withdraw", number,
                                                       "--as", "aubin"))
    assert Decision.objects.get(pk=number).status == "withdrawn"


def test_the_registry_and_the_policy(cli, collective):
    listed = _ok(cli("decision", "operations"))
    for type_name in ("group.grant", "group.revoke", "group.unprotect", "membership.end",
                      "membership.waive_voting_delay", "account.create_for_organization",
                      "policy.change"):
        assert type_name in listed
    assert "depends on the parameters" in listed  # group.grant: on the group
    assert "[expires_on: date]" in listed
    policy = _ok(cli("decision", "policy"))
    assert "proposal_days" in policy and "votes_public" in policy


def test_inventory_to_stdout_and_to_a_file(cli, collective, tmp_path):
    number = _number(_ok(cli("decision", "act", "Kim joins the tech team", "--as", "wren",
                             "--op", "group.grant", "group=tech", "account=kim")))
    today = clock.today().isoformat()
    markdown = _ok(cli("decision", "inventory", "--from", today, "--to", today))
    assert markdown.startswith(f"# Decisions from {today} to {today}")
    assert f"| #{number} | Kim joins the tech team | Wren | {today} | — | — |" in markdown
    output = tmp_path / "inventory.csv"
    written = _ok(cli("decision", "inventory", "--from", today, "--format", "csv",
                      "--output", str(output)))
    assert str(output) in written
    assert f"ordinary,#{number},Kim joins the tech team" in output.read_text()
    assert oct(output.stat().st_mode & 0o777) != oct(0o600)  # the usual mode, not mkstemp's
    html = _ok(cli("decision", "inventory", "--from", today, "--format", "html"))
    assert html.startswith("<!doctype html>") and "Kim joins the tech team" in html


# -- refusals: one line on stderr, exit 2, nothing written ----------------------------------


def test_bad_operations_are_refused_and_nothing_is_written(cli, collective, tmp_path):
    def refused(*words: str) -> str:
        return _one_error_line(cli("decision", "propose", "Kim reads", "--as", "aubin", *words))

    assert "group.teleport" in refused("--op", "group.teleport", "group=passwords")
    assert "expires_on" in refused("--op", "group.grant", "group=passwords", "account=kim",
                                   "expires_on=tomorrow")
    assert "ghosts" in refused("--op", "group.grant", "group=ghosts", "account=kim")
    assert "admin" in refused(*GRANT, "admin=yes")  # a key the operation does not know
    assert "key=value" in refused("--op", "group.grant", "passwords")
    assert "twice" in refused(*GRANT, "account=alix")
    assert "--op TYPE" in refused("group=passwords", *GRANT)
    assert "operation type" in refused("--op")
    assert "--ops" in refused("--ops", "group.grant")
    assert "JSON" in refused("--op", "policy.change", "classes={broken")
    assert "at least one operation" in refused()
    assert "missing.json" in refused("--operations-file", str(tmp_path / "missing.json"))
    not_a_list = tmp_path / "object.json"
    not_a_list.write_text('{"type": "group.grant"}')
    assert "JSON list" in refused("--operations-file", str(not_a_list))
    assert "not both" in refused(*GRANT, "--operations-file", str(not_a_list))
    assert "--as UID" in _one_error_line(cli("decision", "propose", "Kim reads", *GRANT))
    assert "nobody" in _one_error_line(cli("decision", "propose", "Kim reads", "--as", "nobody",
                                           *GRANT))
    assert "title first" in _one_error_line(cli("decision", "propose", "--op", "group.grant",
                                                "Kim reads"))
    assert "Only voting members" in _one_error_line(cli("decision", "propose", "Kim reads",
                                                        "--as", "kim", *GRANT))
    assert "Only administrators" in _one_error_line(cli(
        "decision", "act", "Kim joins", "--as", "aubin", "--op", "group.grant", "group=tech",
        "account=kim"))
    assert not Decision.objects.exists() and not Operation.objects.exists()


def test_votes_refused(cli, collective):
    number = _number(_ok(cli("decision", "propose", "Kim reads", "--as", "aubin", *GRANT)))
    assert "“for” or “against”" in _one_error_line(cli("decision", "vote", number, "maybe",
                                                       "--as", "aubin", input=TYPED))
    assert "belongs to no member" in _one_error_line(cli("decision", "vote", number, "for",
                                                         "--as", "kim", input=TYPED))
    assert "--as UID" in _one_error_line(cli("decision", "vote", number, "for", input=TYPED))
    assert "999" in _one_error_line(cli("decision", "vote", "999", "for", "--as", "aubin",
                                        input=TYPED))
    assert not Vote.objects.exists()
    clock.travel(dt.timedelta(days=current().proposal_days, minutes=1))
    assert "closed" in _one_error_line(cli("decision", "vote", number, "for", "--as", "aubin",
                                           input=TYPED))
    assert not Vote.objects.exists()


def test_other_refusals(cli, collective, tmp_path):
    assert "999" in _one_error_line(cli("decision", "show", "999"))
    assert "Unknown status" in _one_error_line(cli("decision", "list", "--status", "pending"))
    output = tmp_path / "inventory.pdf"
    line = _one_error_line(cli("decision", "inventory", "--from", "2001-01-01", "--format",
                               "pdf", "--output", str(output)))
    assert "pdf" in line
    assert "YYYY-MM-DD" in _one_error_line(cli("decision", "inventory", "--from", "01/01/2031"))
    assert "ends before" in _one_error_line(cli("decision", "inventory", "--from",
                                                "2031-02-01", "--to", "2031-01-01"))
    assert "Cannot write" in _one_error_line(cli(
        "decision", "inventory", "--from", "2001-01-01", "--output",
        str(tmp_path / "no" / "such" / "dir.md")))
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_the_gate_refuses_adding_to_a_protected_group_with_the_link(cli, collective):
    line = _one_error_line(cli("--as", "wren", "group", "add-member", "passwords", "kim"))
    assert "extraordinary" in line
    assert "/decisions/new/?operation=group.grant&group=passwords&account=kim" in line
    assert not GroupMembership.objects.exists()


@pytest.mark.parametrize(("words", "expected"), [
    (["--op", "group.grant", "group=a", "--op=group.revoke", "group=b", "account= c "],
     [{"type": "group.grant", "params": {"group": "a"}},
      {"type": "group.revoke", "params": {"group": "b", "account": " c "}}]),
    (["--op", "policy.change", "votes_public=false", "classes={}", "reminder_hours="],
     [{"type": "policy.change", "params": {"votes_public": "false", "classes": {},
                                           "reminder_hours": None}}]),
    ([], []),
])
def test_operation_words_are_read_in_order(words, expected):
    assert parse_operation_words(words) == expected


@pytest.mark.parametrize("words", [["x=1"], ["--op"], ["--op", "--op", "a"], ["--op", "a", "b"],
                                   ["--op", "a", "=1"], ["--op", "a", "k=1", "k=2"],
                                   ["--op", "a", "--opt"]])
def test_operation_words_out_of_place_are_refused(words):
    with pytest.raises(InvalidInput):
        parse_operation_words(words)


# -- a real process ---------------------------------------------------------------------------


def test_a_real_process_refuses_in_one_stderr_line(tmp_path):
    configuration = tmp_path / "chaton.toml"
    configuration.write_text("")
    environment = {**os.environ, "CHATON_DATA_DIR": str(tmp_path / "data"),
                   "CHATON_LDAP_MANAGED": "false",
                   "CHATON_LDAP_URL": f"ldap://127.0.0.1:{free_port()}",
                   "CHATON_LANGUAGE": "en", "CHATON_CONFIG": str(configuration)}
    environment.pop("CHATON_DATABASE_URL", None)
    environment.pop("DJANGO_SETTINGS_MODULE", None)

    def chaton(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CHATON, *arguments], env=environment, capture_output=True,
                              text=True, timeout=120, check=False)

    assert chaton("init", "--admin-uid", "admin", "--no-input").returncode == 0
    output = tmp_path / "inventory.md"
    for arguments in (["decision", "propose", "Teleport", "--as", "admin",
                       "--op", "group.teleport"],
                      ["decision", "inventory", "--from", "2001-01-01", "--format", "pdf",
                       "--output", str(output)]):
        completed = chaton(*arguments)
        assert completed.returncode == 2, (arguments, completed.stderr)
        assert completed.stderr.count("\n") == 1, completed.stderr
        assert completed.stderr.startswith("chaton: error: ")
        assert completed.stdout == ""
    assert not output.exists()
