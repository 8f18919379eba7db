"""``chaton`` at the edges: refusals as one line on stderr (exit 2) that change nothing,
``ssh-key list|remove``, and the help of ``ssh-keys`` and ``decision propose|act``.

The API's and the pages' side of the same rules is in
``chaton/directory/tests/test_edges.py``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaton.cli import entry
from chaton.cli.app import app
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions
from chaton.directory.models import Account, Group, GroupMembership, SSHKey

PASSWORD = "plume de hibou 42"
#: Two well-formed public keys (their key bytes are made up).
KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
       "alix@laptop")
OTHER_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f "
             "basile@desk")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None):
        return runner.invoke(app, list(arguments), input=input)

    return invoke


@pytest.fixture
def alix(directory) -> Account:
    return actions.do_create_account("alix", acting_user=None, display_name="Alix",
                                     email="alix@example.org", password=PASSWORD)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def one_error_line(result) -> str:
    """Assert the command failed the documented way and return its only stderr line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def snapshot(directory) -> tuple[object, ...]:
    return (list(Account.objects.order_by("uid").values()),
            list(Group.objects.order_by("name").values()),
            list(GroupMembership.objects.order_by("pk").values()),
            list(SSHKey.objects.order_by("pk").values()),
            AuditLog.objects.count(), dict(directory.entries))


# -- refusals ----------------------------------------------------------------------------------


def test_spaces_around_values_are_refused_not_trimmed(cli, alix, directory):
    before = snapshot(directory)
    assert "Spaces" in one_error_line(cli("account", "add", " trailing ", "--name", "T",
                                          "--email", "t@example.org"))
    assert "Spaces" in one_error_line(cli("account", "add", "kim", "--name", "Kim ",
                                          "--email", "kim@example.org"))
    assert "Spaces" in one_error_line(cli("group", "add", " team"))
    assert "Spaces" in one_error_line(cli("group", "add", "team", "--description", "x "))
    assert snapshot(directory) == before
    assert not Account.objects.filter(uid__in=["trailing", "kim"]).exists()


@pytest.mark.parametrize("password", ["good\tpass phrase", "\x1b[31mgood pass phrase",
                                      "good pass\x00phrase", "good pass\x85phrase"])
def test_passwords_with_control_characters_are_refused(cli, alix, directory, tmp_path,
                                                       password):
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n", encoding="utf-8")
    before = snapshot(directory)
    assert "control characters" in one_error_line(
        cli("account", "passwd", "alix", "--password-file", str(password_file)))
    assert "control characters" in one_error_line(
        cli("account", "add", "kim", "--name", "Kim", "--email", "kim@example.org",
            "--password-file", str(password_file)))
    assert snapshot(directory) == before
    alix.refresh_from_db()
    assert alix.check_password(PASSWORD)


def test_a_past_expiry_is_refused_as_for_groups(cli, alix, directory):
    actions.do_create_group("team", acting_user=None)
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    before = snapshot(directory)
    assert "already past" in one_error_line(cli("account", "expire", "alix", yesterday))
    assert "already past" in one_error_line(cli("account", "expire", "alix", "2001-01-01T10:00"))
    assert "already past" in one_error_line(cli("account", "add", "kim", "--name", "Kim",
                                                "--email", "kim@example.org",
                                                "--expires", yesterday))
    assert "already past" in one_error_line(cli("group", "add-member", "team", "alix",
                                                "--until", yesterday))
    assert snapshot(directory) == before
    # Today is still to come (the access ends at midnight after it), and "never" clears it.
    ok(cli("account", "expire", "alix", clock.today().isoformat()))
    alix.refresh_from_db()
    assert alix.expires_at is not None and alix.expires_at > clock.now()
    ok(cli("account", "expire", "alix", "never"))
    alix.refresh_from_db()
    assert alix.expires_at is None


# -- SSH keys: add, list, remove -----------------------------------------------------------


def test_ssh_key_list_and_remove(cli, alix, directory):
    basile = actions.do_create_account("basile", acting_user=None, display_name="Basile",
                                       email="basile@example.org")
    ok(cli("ssh-key", "add", "alix", "-", input=KEY + "\n" + OTHER_KEY + "\n"))
    theirs = actions.do_add_ssh_key(basile, OTHER_KEY, acting_user=None)
    keys = list(alix.ssh_keys.order_by("pk"))
    listing = ok(cli("ssh-key", "list", "alix"))
    for key in keys:
        assert key.fingerprint in listing and str(key.pk) in listing
    assert "alix@laptop" in listing and "basile@desk" in listing and "2 key(s)." in listing

    # By fingerprint, then by id; the directory follows.
    removed = ok(cli("ssh-key", "remove", "alix", keys[0].fingerprint))
    assert keys[0].fingerprint in removed
    ok(cli("ssh-key", "remove", "alix", str(keys[1].pk)))
    assert not alix.ssh_keys.exists()
    assert "0 key(s)." in ok(cli("ssh-key", "list", "alix"))
    assert AuditLog.objects.filter(action="ssh_key.remove").count() == 2

    # Someone else's key is not reachable through another account, by id or fingerprint.
    before = snapshot(directory)
    for key in (str(theirs.pk), theirs.fingerprint, "SHA256:nothing", "99999999999999999999",
                "\u0661"):
        line = one_error_line(cli("ssh-key", "remove", "alix", key))
        assert "has no SSH key" in line
    assert "No account" in one_error_line(cli("ssh-key", "list", "nobody"))
    assert snapshot(directory) == before
    assert SSHKey.objects.filter(pk=theirs.pk).exists()


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_ssh_keys_help(option, capsys):
    with pytest.raises(SystemExit) as exit_status:
        entry.main(["ssh-keys", option])
    assert exit_status.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chaton ssh-keys [--config PATH] USER")
    assert "--config PATH" in out and "AuthorizedKeysCommand" in out
    with pytest.raises(SystemExit) as exit_status:
        entry.main(["--config", "/nonexistent.toml", "ssh-keys", option])
    assert exit_status.value.code == 0


def test_ssh_keys_help_from_the_console_script():
    script = Path(sys.executable).with_name("chaton")
    completed = subprocess.run([str(script), "ssh-keys", "--help"], capture_output=True,
                               text=True, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "unknown option" not in completed.stderr
    assert "--config PATH" in completed.stdout


def test_the_main_help_points_to_ssh_keys(cli):
    words = " ".join(ok(cli("--help")).split())
    assert "AuthorizedKeysCommand (see chaton ssh-keys --help)" in words


@pytest.mark.parametrize("command", ["propose", "act"])
def test_decision_help_lists_op(cli, command):
    out = ok(cli("decision", command, "--help"))
    assert "--op" in out and "TYPE key=value" in out and "group.grant" in out


@pytest.mark.parametrize(("arguments", "message"), [
    (["group", "members", "nope"], "No group is named nope."),
    (["group", "add-member", "nope", "alix"], "No group is named nope."),
    (["account", "disable", "nobody"], "No account has the user name “nobody”."),
    (["--as", "nobody", "account", "disable", "alix"],
     "No account has the user name “nobody”."),
    (["member", "end", "who@example.org"], "No person has the email “who@example.org”."),
    (["member", "end", "nobody"], "No organization has the short name “nobody”."),
    (["account", "add", "sam", "--org", "nobody"],
     "No organization has the short name “nobody”."),
    (["decision", "show", "999999"], "No decision has the number 999999."),
    (["decision", "show", str(2**64)], f"No decision has the number {2**64}."),
    (["job", "show", "0"], "No job has this id."),
    (["backup", "plan", "show", "nowhere"], "No backup plan is named nowhere."),
    (["service", "instance", "show", "nothing"], "No instance has the short name “nothing”."),
])
def test_what_a_command_names_and_does_not_exist_is_the_lookups_one_line(
        cli, alix, directory, arguments, message):
    """Every command finds what it names through the apps' lookups: the same message as
    the API's and the pages', one line on stderr, exit 2, nothing changed."""
    before = snapshot(directory)
    assert one_error_line(cli(*arguments)) == f"chaton: error: {message}"
    assert snapshot(directory) == before
