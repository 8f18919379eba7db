"""The ``chaton`` command: what it prints, what it changes, how it fails.

Most tests run the Typer application in-process (CliRunner) against the fake
directory; a few start the real console script, for what only a real process
shows: the exit status, stderr, and the cheap ``ssh-keys`` path.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaton.adapters.ldap import Change, normalize_dn
from chaton.cli import runtime
from chaton.cli.app import app
from chaton.cli.entry import split_command
from chaton.core import clock, worker
from chaton.core.errors import InvalidInput
from chaton.core.models import AuditLog
from chaton.directory import actions
from chaton.directory.models import Account, AccountState, Group, GroupMembership, SyncState
from chaton.members.models import Membership, Organization, Person
from chaton.testing.pytest_plugin import free_port

BASE = "dc=chaton,dc=test"
CHATON = [str(Path(sys.executable).with_name("chaton"))]
PASSWORD = "plume de hibou 42"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("english")]


@pytest.fixture
def cli():
    """Return a function that runs ``chaton ARGS`` in-process and returns the result."""
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None):
        return runner.invoke(app, list(arguments), input=input)

    return invoke


def _one_error_line(result) -> str:
    """Assert the command failed the documented way and return its only stderr line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    assert "Traceback" not in result.output
    return lines[0]


# -- init and demo -------------------------------------------------------------------


def test_init_creates_one_admin_and_is_idempotent(cli, directory, tmp_path):
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    first = cli("init", "--admin-uid", "admin", "--admin-email", "root@example.org",
                "--admin-password-file", str(password_file))
    assert first.exit_code == 0, first.output
    assert "Administrator admin created." in first.stdout
    admin = Account.objects.get(uid="admin")
    assert admin.is_admin and admin.check_password(PASSWORD)
    # Synced at once: the directory holds the units and the admin.
    assert normalize_dn(f"uid=admin,ou=people,{BASE}") in directory.entries
    entries, audit_rows = dict(directory.entries), AuditLog.objects.count()

    second = cli("init", "--admin-uid", "someone-else")
    assert second.exit_code == 0, second.output
    assert "An administrator exists already: admin." in second.stdout
    assert Account.objects.count() == 1
    assert AuditLog.objects.count() == audit_rows
    assert directory.entries == entries


def test_init_without_input_prints_a_generated_password_once(cli, directory):
    result = cli("init", "--admin-uid", "admin", "--no-input")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "shown once" in line)
    password = line.rsplit(" ", 1)[-1]
    assert Account.objects.get(uid="admin").check_password(password)
    assert Account.objects.get(uid="admin").email == "admin@localhost"


def test_init_asks_for_what_is_missing(cli, directory):
    result = cli("init", input=f"camille\ncamille@example.org\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    account = Account.objects.get(uid="camille")
    assert account.is_admin and account.email == "camille@example.org"
    assert account.check_password(PASSWORD)


def test_only_inits_administrator_owns_a_password_given_on_the_command_line(
        cli, directory, tmp_path):
    """init's administrator types their own password; a password the operator gives an
    account (``account add --password-file``, ``account passwd``) is theirs too, not
    the member's: it is marked, and votes only once the member set their own."""
    result = cli("init", input=f"camille\ncamille@example.org\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert Account.objects.get(uid="camille").password_set_by_other_at is None
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    made = cli("--as", "camille", "account", "add", "dominique", "--email",
               "dominique@example.org", "--name", "Dominique", "--password-file",
               str(password_file))
    assert made.exit_code == 0, made.output
    assert Account.objects.get(uid="dominique").password_set_by_other_at is not None
    Account.objects.filter(uid="dominique").update(password_set_by_other_at=None)
    changed = cli("account", "passwd", "dominique", "--password-file", str(password_file))
    assert changed.exit_code == 0, changed.output
    assert Account.objects.get(uid="dominique").password_set_by_other_at is not None


def test_init_refuses_a_weak_password_in_one_line(cli, directory, tmp_path):
    password_file = tmp_path / "password"
    password_file.write_text("short\n")
    result = cli("init", "--admin-uid", "admin", "--no-input", "--admin-password-file",
                 str(password_file))
    _one_error_line(result)
    assert not Account.objects.exists()


def test_demo_loads_an_invented_collective_once(cli, directory):
    first = cli("demo")
    assert first.exit_code == 0, first.output
    assert "password shown once" in first.stdout

    assert Person.objects.count() == 12
    assert Organization.objects.count() == 2
    kinds = set(Membership.objects.values_list("kind", flat=True))
    assert kinds == {"regular", "support"}
    assert Membership.objects.filter(ends_on__isnull=False).exists()  # a past member
    oldest = Membership.objects.order_by("starts_on").first().starts_on
    assert clock.today() - oldest <= dt.timedelta(days=366)
    assert all(membership.dues.exists() for membership in Membership.objects.all())
    assert Account.objects.filter(person__isnull=False).count() >= 8
    assert Account.objects.filter(organization__isnull=False).count() == 2
    tech = GroupMembership.objects.filter(group__name="tech")
    assert tech.count() == 2
    expiring = tech.get(expires_at__isnull=False).expires_at - clock.now()
    assert dt.timedelta(days=19) < expiring <= dt.timedelta(days=20)
    assert set(Group.objects.values_list("name", flat=True)) == {"tech", "core", "members",
                                                               "passwords"}
    keys = tech.get(expires_at__isnull=True).account.ssh_keys.all()
    assert [key.key.split()[0] for key in keys] == ["ssh-ed25519"]
    assert Account.objects.get(uid="admin").is_admin
    assert normalize_dn(f"cn=tech,ou=groups,{BASE}") in directory.entries

    entries, audit_rows = dict(directory.entries), AuditLog.objects.count()
    second = cli("demo")
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.stdout
    assert "password" not in second.stdout
    assert AuditLog.objects.count() == audit_rows
    assert directory.entries == entries


def test_demo_after_init_keeps_the_existing_admin(cli, directory):
    cli("init", "--admin-uid", "admin", "--no-input")
    admin = Account.objects.get(uid="admin")
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "password shown once" not in result.stdout
    assert Account.objects.get(uid="admin").password == admin.password


def test_demo_refuses_a_collective_with_members_of_its_own(cli, directory):
    """On a real collective the demo would add voters recorded long ago, cast their votes
    and execute what they adopt: refused, nothing written."""
    from chaton.governance.models import Decision, Vote
    from chaton.members import actions as member_actions

    person = member_actions.do_create_person("Real Member", "real@example.org",
                                             acting_user=None)
    member_actions.do_start_membership(person, acting_user=None, starts_on=clock.today())
    audit_rows = AuditLog.objects.count()
    line = _one_error_line(cli("demo"))
    assert "members of its own" in line
    assert list(Person.objects.values_list("email", flat=True)) == ["real@example.org"]
    assert not Decision.objects.exists() and not Vote.objects.exists()
    assert not Group.objects.exists()
    assert AuditLog.objects.count() == audit_rows


# -- errors ------------------------------------------------------------------------


def test_duplicate_uid_is_one_line_on_stderr_and_exit_2(cli, directory):
    assert cli("account", "add", "alix", "--name", "Alix", "--email", "alix@example.org"
               ).exit_code == 0
    result = cli("account", "add", "alix", "--name", "Alix Bis", "--email", "bis@example.org")
    line = _one_error_line(result)
    assert "alix" in line
    assert Account.objects.count() == 1


def test_invalid_date_is_one_line_on_stderr_and_exit_2(cli, directory):
    actions.do_create_account("alix", acting_user=None, display_name="Alix",
                              email="alix@example.org")
    actions.do_create_group("tech", acting_user=None)
    result = cli("group", "add-member", "tech", "alix", "--until", "31/12/2031")
    line = _one_error_line(result)
    assert "31/12/2031" in line and "YYYY-MM-DD" in line
    assert not GroupMembership.objects.exists()
    _one_error_line(cli("member", "add", "Basile", "--email", "b@example.org",
                        "--since", "2025-02-30"))
    assert not Person.objects.exists()  # nothing half-done


def test_unknown_names_are_one_line_errors(cli, directory):
    assert "nobody" in _one_error_line(cli("account", "disable", "nobody"))
    assert "ghosts" in _one_error_line(cli("group", "members", "ghosts"))
    assert "unknown-org" in _one_error_line(cli("member", "end", "unknown-org"))
    assert "nobody" in _one_error_line(cli("--as", "nobody", "group", "add", "tech"))
    assert not Group.objects.exists()


def test_an_unreachable_directory_is_one_line_for_diff(cli, directory):
    directory.available = False
    line = _one_error_line(cli("directory", "diff"))
    assert "directory" in line


@pytest.mark.parametrize("text", ["2031-12-31", "2031-12-31T18:30"])
def test_parse_until_accepts_a_day_or_a_moment(text):
    moment = runtime.parse_until(text, field="until")
    assert moment.tzinfo is not None
    if "T" in text:
        assert (moment.hour, moment.minute) == (18, 30)
    else:  # through the whole day
        assert moment.date() == dt.date(2032, 1, 1) and moment.hour == 0


@pytest.mark.parametrize("text", ["", "tomorrow", "2031-1-1", "2031W011", "2031-12-31T25:00"])
def test_parse_until_refuses_the_rest(text):
    with pytest.raises(InvalidInput):
        runtime.parse_until(text, field="until")


# -- the directory -----------------------------------------------------------------


def test_directory_diff_shows_the_plan_and_changes_nothing(cli, directory):
    directory.available = False  # the changes wait: the diff has something to show
    actions.do_create_account("alix", acting_user=None, display_name="Alix",
                              email="alix@example.org")
    directory.available = True
    foreign = f"uid=stranger,ou=people,{BASE}"
    directory.apply([Change("add", f"ou=people,{BASE}", {"objectclass": [b"organizationalUnit"],
                                                        "ou": [b"people"]}),
                     Change("add", foreign, {"objectclass": [b"account"]})])
    before = dict(directory.entries)

    result = cli("directory", "diff")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"+ uid=alix,ou=people,{BASE}" in lines
    assert f"+ ou=groups,{BASE}" in lines
    assert f"? {foreign} (not Chaton's: kept)" in lines
    assert lines[-1].startswith("3 to add, 1 to modify, 0 to delete, 1 not Chaton's")
    assert directory.entries == before

    dry = cli("directory", "sync", "--dry-run")
    assert dry.exit_code == 0 and "Dry run" in dry.stdout
    assert directory.entries == before

    applied = cli("directory", "sync")
    assert applied.exit_code == 0, applied.output
    assert "4 change(s) applied" in applied.stdout
    assert normalize_dn(f"uid=alix,ou=people,{BASE}") in directory.entries
    assert normalize_dn(foreign) in directory.entries
    assert SyncState.get().pending_since is None

    again = cli("directory", "diff")
    assert again.stdout.splitlines() == [f"? {foreign} (not Chaton's: kept)",
                                         "0 to add, 0 to modify, 0 to delete, 1 not Chaton's "
                                         "(kept)."]
    cli("directory", "sync", "--delete-foreign")
    assert normalize_dn(foreign) not in directory.entries
    assert cli("directory", "diff").stdout.strip() == "The directory is up to date."


# -- the other commands, one tour ----------------------------------------------------


def test_members_accounts_groups_keys_tokens_and_audit(cli, directory, tmp_path):
    def ok(*arguments: str, input: str | None = None) -> str:
        result = cli(*arguments, input=input)
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("org", "add", "Les Jardiniers Lunaires", "--email", "bureau@jardins.example.org",
       "--slug", "jardiniers-lunaires")
    assert "jardiniers-lunaires" in ok("org", "list")
    ok("member", "add", "--org", "jardiniers-lunaires", "--kind", "support", "--dues", "40")
    ok("member", "add", "Alix Tournesol", "--email", "alix@example.org", "--since",
       "2025-01-15", "--dues", "20")
    listing = ok("member", "list", "--all")
    assert "Alix Tournesol" in listing and "20.00 €" in listing
    assert "2 membership(s)." in listing
    # Ending a membership is an ordinary action of an administrator, never the system's.
    assert "--as UID" in cli("member", "end", "alix@example.org", "--on", "2025-12-31").stderr
    ok("account", "add", "gerance", "--name", "Gérance", "--email", "gerance@example.org",
       "--admin")
    ended = ok("--as", "gerance", "member", "end", "alix@example.org", "--on", "2025-12-31")
    assert "ordinary action #" in ended
    assert Membership.objects.get(person__email="alix@example.org").ends_on == dt.date(2025, 12,
                                                                                        31)

    ok("account", "add", "alix", "--person", "alix@example.org", "--expires", "2031-06-30")
    account = Account.objects.get(uid="alix")
    assert account.display_name == "Alix Tournesol" and account.person is not None
    ok("account", "add", "jardins", "--org", "jardiniers-lunaires")
    assert "alix" in ok("account", "list")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    ok("account", "passwd", "alix", "--password-file", str(password_file))
    assert Account.objects.get(uid="alix").check_password(PASSWORD)
    ok("account", "passwd", "jardins", input=f"{PASSWORD}\n{PASSWORD}\n")
    ok("account", "disable", "jardins")
    assert Account.objects.get(uid="jardins").state == AccountState.DISABLED
    ok("account", "enable", "jardins")
    ok("account", "expire", "alix", "never")
    assert Account.objects.get(uid="alix").expires_at is None

    ok("--as", "alix", "group", "add", "tech", "--description", "Tech team")
    assert AuditLog.objects.filter(action="group.create").get().actor_label == "alix"
    ok("group", "add-member", "tech", "alix", "--until", "2031-01-31")
    ok("group", "add-member", "tech", "jardins")
    assert "(of" not in ok("group", "list")
    assert "2031-02-01 00:00" in ok("group", "members", "tech")
    ok("group", "remove-member", "tech", "jardins")
    assert GroupMembership.objects.filter(group__name="tech").count() == 1

    key = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
           "alix@laptop")
    assert "SHA256:" in ok("ssh-key", "add", "alix", "-", input=key + "\n")
    assert normalize_dn(f"uid=alix,ou=people,{BASE}") in directory.entries

    token_output = ok("token", "create", "alix", "deploy script")
    assert token_output.strip().splitlines()[-1].startswith("chaton_")

    audit = ok("audit", "--limit", "3")
    assert "api_token.create" in audit and "account.create" not in audit
    assert "group.create" in ok("audit", "--action", "group.create")


# -- the worker ----------------------------------------------------------------------


@pytest.fixture
def directory_jobs_only(monkeypatch):
    """The worker asks only the directory's job module: these tests count its jobs, and
    every other app's jobs have tests of their own."""
    monkeypatch.setattr(worker, "job_modules", lambda: ["chaton.directory.jobs"])


@pytest.mark.usefixtures("directory_jobs_only")
def test_worker_retries_a_pending_change_at_the_next_tick(directory):
    schedule = worker.Schedule()
    first = worker.run_once(schedule)  # a new schedule: every periodic job is due
    assert [line.split(":")[0] for line in first] == ["directory.sync", "directory.expiry"]
    assert worker.run_once(schedule) == []  # nothing due, nothing pending

    directory.available = False
    actions.do_create_account("alix", acting_user=None, display_name="Alix",
                              email="alix@example.org")
    assert SyncState.get().pending_since is not None
    directory.available = True

    done = worker.run_once(schedule)
    assert len(done) == 1 and done[0].startswith("directory.sync: retry of changes pending")
    assert normalize_dn(f"uid=alix,ou=people,{BASE}") in directory.entries
    assert SyncState.get().pending_since is None
    assert worker.run_once(schedule) == []


@pytest.mark.usefixtures("directory_jobs_only")
def test_worker_periodic_jobs_come_back_after_their_interval(directory, settings):
    now = [1000.0]
    schedule = worker.Schedule(monotonic=lambda: now[0])
    assert len(worker.run_once(schedule)) == 2
    now[0] += settings.CHATON.directory.reconcile_interval_seconds - 1
    assert worker.run_once(schedule) == []
    now[0] += 1
    assert len(worker.run_once(schedule)) == 2


@pytest.mark.usefixtures("directory_jobs_only")
def test_an_access_ends_at_its_date_not_at_the_next_period(directory):
    schedule = worker.Schedule()
    alix = actions.do_create_account("alix", acting_user=None, display_name="Alix",
                                     email="alix@example.org")
    tech = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(tech, alix, acting_user=None,
                            expires_at=clock.now() + dt.timedelta(minutes=1))
    worker.run_once(schedule)
    group = directory.entries[normalize_dn(f"cn=tech,ou=groups,{BASE}")]
    assert group["member"] == [f"uid=alix,ou=people,{BASE}".encode()]
    assert worker.run_once(schedule) == []
    clock.travel(dt.timedelta(minutes=2))
    try:
        done = worker.run_once(schedule)  # the next tick, well before the periodic run
    finally:
        clock.travel(dt.timedelta(0))
    assert [line.split(":")[0] for line in done] == ["directory.expiry"]
    group = directory.entries[normalize_dn(f"cn=tech,ou=groups,{BASE}")]
    assert b"uid=alix" not in b"".join(group["member"])


@pytest.mark.usefixtures("directory_jobs_only")
def test_worker_reconciles_the_whole_directory_when_a_day_begins(directory):
    schedule = worker.Schedule()
    worker.run_once(schedule)
    assert worker.run_once(schedule) == []
    clock.travel(dt.timedelta(days=1))
    try:
        done = worker.run_once(schedule)
    finally:
        clock.travel(dt.timedelta(0))
    assert [line.split(":")[0] for line in done][:1] == ["directory.sync"]


@pytest.mark.usefixtures("directory_jobs_only")
def test_a_failing_job_is_reported_and_the_others_run(directory):
    directory.available = False
    results = worker.run_jobs()
    assert [(result.job, result.ok) for result in results] == [("directory.sync", False),
                                                              ("directory.expiry", True)]
    assert "failed" in results[0].summary


def test_run_forever_catches_up_then_stops(directory):
    directory.available = False
    actions.do_create_account("alix", acting_user=None, display_name="Alix",
                              email="alix@example.org")
    directory.available = True
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,),
                              kwargs={"tick_seconds": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        dn = normalize_dn(f"uid=alix,ou=people,{BASE}")
        while dn not in directory.entries and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dn in directory.entries
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_worker_once_command_prints_the_jobs(cli, directory):
    result = cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "directory.sync: periodic reconcile" in result.stdout
    directory.available = False
    assert cli("worker", "--once").exit_code == 1


# -- the real console script -----------------------------------------------------------


def test_entry_splits_global_options_from_the_command():
    assert split_command(["--config", "a.toml", "ssh-keys", "alix"]) == (
        ["--config", "a.toml"], "ssh-keys", ["alix"])
    assert split_command(["--as=alix", "member", "list"]) == (["--as=alix"], "member", ["list"])
    assert split_command(["--help"]) == (["--help"], None, [])


def test_ssh_keys_is_dispatched_without_typer_rich_or_django():
    script = textwrap.dedent("""
        import sys, types
        received = []
        fake = types.ModuleType("chaton.cli.sshkeys")
        fake.main = lambda argv: received.append(argv) or 0
        sys.modules["chaton.cli.sshkeys"] = fake
        from chaton.cli import entry
        try:
            entry.main(["--config", "/etc/chaton/ssh.toml", "ssh-keys", "alix"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        assert received == [["--config", "/etc/chaton/ssh.toml", "alix"]], received
        heavy = sorted(name for name in sys.modules
                       if name.split(".")[0] in {"typer", "rich", "django", "click"})
        assert not heavy, heavy
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr


@pytest.fixture
def process_environment(tmp_path):
    """Environment for a real ``chaton`` process: its own data directory, an absent directory."""
    data = tmp_path / "data"
    configuration = tmp_path / "chaton.toml"
    configuration.write_text("")
    environment = {**os.environ, "CHATON_DATA_DIR": str(data), "CHATON_LDAP_MANAGED": "false",
                   "CHATON_LDAP_URL": f"ldap://127.0.0.1:{free_port()}",
                   "CHATON_LANGUAGE": "en", "CHATON_CONFIG": str(configuration)}
    environment.pop("CHATON_DATABASE_URL", None)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return environment


def _chaton(environment, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHATON, *arguments], env=environment, capture_output=True,
                          text=True, timeout=120, check=False)


def test_real_process_errors_are_one_stderr_line_with_status_2(process_environment, tmp_path):
    assert _chaton(process_environment, "init", "--admin-uid", "admin", "--no-input"
                   ).returncode == 0
    assert _chaton(process_environment, "account", "add", "alix", "--name", "Alix",
                   "--email", "alix@example.org").returncode == 0
    for arguments in (["account", "add", "alix", "--name", "Alix", "--email", "x@example.org"],
                      ["account", "expire", "alix", "2031-02-31"],
                      ["--config", str(tmp_path / "missing.toml"), "account", "list"]):
        completed = _chaton(process_environment, *arguments)
        assert completed.returncode == 2, (arguments, completed.stderr)
        assert completed.stderr.count("\n") == 1, completed.stderr
        assert completed.stderr.startswith("chaton: error: ")
        assert completed.stdout == ""


def test_serve_answers_then_stops_on_sigterm(process_environment):
    assert _chaton(process_environment, "init", "--admin-uid", "admin", "--no-input"
                   ).returncode == 0
    port = free_port()
    server = subprocess.Popen([*CHATON, "serve", "--no-worker", "--listen", f"127.0.0.1:{port}"],
                              env=process_environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.monotonic() + 30, None
        while status is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/i18n/setlang/",
                                            timeout=2) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.1)
        assert status is not None and status < 500
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    assert "Stopped." in output
