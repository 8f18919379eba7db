"""A real sshd lets tech members in with their directory keys, and nobody else.

The chain under test is the production one: sshd (``/usr/sbin/sshd``, its own
process on 127.0.0.1) runs ``chaton ssh-keys %u`` as its
``AuthorizedKeysCommand``; that reads the session's real slapd, which the real
reconciler filled from the database through the ``do_*`` actions.

sshd only accepts a login for a Unix account it can look up. In production
nss (nslcd or sssd) provides those accounts from the same directory; here the
fixture creates a local one with ``useradd`` and removes it with ``userdel``.

Nothing here skips: a missing sshd, ssh or ssh-keygen is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap.filter
import pytest

import chaton
from chaton.adapters.ldap import Change
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.cli import sshkeys
from chaton.core import clock, runner
from chaton.testing.pytest_plugin import free_port

SSHD = "/usr/sbin/sshd"
#: Runs a program with the clock set to a given instant (Debian package faketime).
FAKETIME = "/usr/bin/faketime"
BASE = "dc=chaton,dc=test"
#: Every wait in this file is bounded by this many seconds.
TIMEOUT = 20

pytestmark = pytest.mark.integration
with_database = pytest.mark.django_db(transaction=True)


# -- the directory, filled by the real reconciler --------------------------------


@pytest.fixture
def directory(ldap_directory: LdapDirectory) -> LdapDirectory:
    """The session's slapd, emptied, with every directory write of the test routed to it."""
    return ldap_directory


@dataclass
class Keys:
    private: Path
    public: str


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[str], Keys]:
    """Return a function that creates an ed25519 key pair named ``name`` in the test's tmp dir."""

    def make(name: str) -> Keys:
        private = tmp_path / name
        runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test",
                    "-f", str(private)], timeout=TIMEOUT)
        return Keys(private, private.with_suffix(".pub").read_text(encoding="ascii").strip())

    return make


@pytest.fixture
def unix_user() -> Iterator[Callable[[], str]]:
    """Return a function that creates a local Unix account and returns its (random) name.

    ``--password '*'``: no password works, yet the account is not "locked"
    (``!``), which sshd refuses outright when it does not use PAM. Every account
    created is removed at the end.
    """
    created: list[str] = []

    def create() -> str:
        name = f"ck{secrets.token_hex(4)}"
        runner.run(["useradd", "--no-create-home", "--shell", "/bin/sh", "--password", "*",
                    name], timeout=TIMEOUT)
        created.append(name)
        return name

    yield create
    for name in created:
        runner.run(["userdel", name], timeout=TIMEOUT, check=False)


def project_tech_member(uid: str, public_key: str, *, in_tech: bool = True,
                        membership_days: int = 2) -> None:
    """Create an account with a key (and a tech membership), then reconcile the directory."""
    from chaton.directory import actions, reconcile
    from chaton.directory.models import Group

    account = actions.do_create_account(uid, acting_user=None, display_name=f"Test {uid}",
                                        email=f"{uid}@example.org")
    actions.do_add_ssh_key(account, public_key, acting_user=None)
    if in_tech:
        group = (Group.objects.filter(name="tech").first()
                 or actions.do_create_group("tech", acting_user=None))
        actions.do_add_to_group(group, account, acting_user=None,
                                expires_at=clock.now() + dt.timedelta(days=membership_days))
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok, outcome


# -- the configuration ssh-keys reads -------------------------------------------


@pytest.fixture(scope="module")
def ssh_keys_config(slapd: ManagedSlapd) -> Iterator[Path]:
    """Yield a chaton.toml that reaches the slapd on its ldapi socket (SASL EXTERNAL as root).

    sshd runs the command with an empty environment: the file says everything.
    """
    directory = Path(tempfile.mkdtemp(prefix="chaton-sshkeys-"))
    path = directory / "chaton.toml"
    path.write_text(
        f'data_dir = "{directory}"\n'
        "[ldap]\n"
        "managed = false\n"
        f'url = "{slapd.ldapi_url}"\n'
        f'base_dn = "{BASE}"\n'
        "timeout = 5.0\n"
        "[directory]\n"
        'ssh_group = "tech"\n', encoding="utf-8")
    yield path
    shutil.rmtree(directory, ignore_errors=True)


# -- sshd -----------------------------------------------------------------------


@dataclass
class Sshd:
    port: int
    log_path: Path
    #: When this file holds a UTC time (``YYYY-MM-DD HH:MM:SS``), ``chaton ssh-keys`` runs
    #: under faketime from that instant: see the ``ssh_clock`` fixture.
    clock_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]


def _console_script() -> Path:
    """Return the ``chaton`` console script installed beside this Python (the production path)."""
    script = Path(sys.executable).parent / "chaton"
    assert script.exists(), f"{script}: no chaton console script (pip install -e .)"
    return script


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Return once sshd on ``port`` sends its SSH banner; fail with its log otherwise."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}:\n"
                        f"{log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    pytest.fail(f"sshd did not answer within {TIMEOUT} s:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def sshd(ssh_keys_config: Path) -> Iterator[Sshd]:
    """Yield a running sshd whose only source of keys is ``chaton ssh-keys``; stop it by its pid.

    sshd insists that the AuthorizedKeysCommand and each directory above it be
    owned by root and not writable by group or others, which /tmp (1777) is
    not: the wrapper lives in a fresh 0755 directory under /run.
    """
    assert os.path.exists(SSHD), f"{SSHD} is missing (Debian package openssh-server)"
    workspace = Path(tempfile.mkdtemp(prefix="chaton-sshd-"))
    command_directory = Path(tempfile.mkdtemp(prefix="chaton-sshd-", dir="/run"))
    command_directory.chmod(0o755)
    # sshd's privilege separation needs this directory; Debian creates it at boot
    # only when the sshd service runs.
    privilege_directory = Path("/run/sshd")
    created_privilege_directory = not privilege_directory.exists()
    if created_privilege_directory:
        privilege_directory.mkdir(mode=0o755)
    process: subprocess.Popen[bytes] | None = None
    try:
        wrapper = command_directory / "chaton-ssh-keys"
        clock_path = command_directory / "faketime"
        command = f'"{_console_script()}" ssh-keys --config "{ssh_keys_config}" "$1"'
        # The code under test, even when the installed package is another checkout's.
        source = Path(chaton.__file__).resolve().parent.parent
        wrapper.write_text(
            "#!/bin/sh\n"
            f'export PYTHONPATH="{source}"\n'
            f'if [ -s "{clock_path}" ]; then\n'
            f'    exec env TZ=UTC {FAKETIME} "$(cat "{clock_path}")" {command}\n'
            "fi\n"
            f"exec {command}\n",
            encoding="utf-8")
        wrapper.chmod(0o755)
        host_key = workspace / "host_ed25519"
        runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                   timeout=TIMEOUT)
        port = free_port()
        config = workspace / "sshd_config"
        config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workspace / "sshd.pid"}
AuthorizedKeysFile none
AuthorizedKeysCommand {wrapper} %u
AuthorizedKeysCommandUser root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
LogLevel VERBOSE
""", encoding="utf-8")
        runner.run([SSHD, "-t", "-f", str(config)], timeout=TIMEOUT)
        log_path = workspace / "sshd.log"
        process = runner.start([SSHD, "-D", "-e", "-f", str(config)], log_path=str(log_path))
        _wait_for_banner(port, process, log_path)
        yield Sshd(port, log_path, clock_path)
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=TIMEOUT)
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(command_directory, ignore_errors=True)
        if created_privilege_directory:
            shutil.rmtree(privilege_directory, ignore_errors=True)


@pytest.fixture
def ssh_clock(sshd: Sshd) -> Iterator[Callable[[dt.datetime], None]]:
    """Return a function that sets "now", for Chaton and for the ssh-keys sshd runs, to an
    aware instant; both are put back after the test."""
    from django.utils import timezone

    assert os.path.exists(FAKETIME), f"{FAKETIME} is missing (Debian package faketime)"

    def set_clock(moment: dt.datetime) -> None:
        clock.travel(moment - timezone.now())
        sshd.clock_path.write_text(moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                                   encoding="ascii")

    try:
        yield set_clock
    finally:
        sshd.clock_path.unlink(missing_ok=True)
        clock.travel(dt.timedelta(0))


def ssh(server: Sshd, uid: str, key: Keys) -> subprocess.CompletedProcess[str]:
    """Log in as ``uid`` with ``key`` and run ``true``; return the ssh client's result."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key.private), "-p", str(server.port),
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
         "-o", "PreferredAuthentications=publickey", "-o", "LogLevel=ERROR",
         f"{uid}@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], server: Sshd) -> None:
    assert result.returncode == 255, f"{result}\nsshd log:\n{server.log()}"
    assert "Permission denied (publickey)" in result.stderr, result.stderr


# -- logins through sshd --------------------------------------------------------


@with_database
def test_tech_member_logs_in_until_the_membership_expires(
        directory: LdapDirectory, sshd: Sshd, unix_user: Callable[[], str],
        make_key: Callable[[str], Keys]) -> None:
    from chaton.directory import reconcile

    uid = unix_user()
    key = make_key("member")
    project_tech_member(uid, key.public, membership_days=2)

    result = ssh(sshd, uid, key)
    assert result.returncode == 0, f"{result}\nsshd log:\n{sshd.log()}"

    # Three days later the worker's pass takes the member out of the group.
    clock.travel(dt.timedelta(days=3))
    try:
        _plan, outcome = reconcile.sync_all()
        assert outcome is not None and outcome.ok
    finally:
        clock.travel(dt.timedelta(0))
    assert_refused(ssh(sshd, uid, key), sshd)


@with_database
def test_an_account_logs_in_until_midnight_of_its_last_day_in_the_collectives_zone(
        directory: LdapDirectory, sshd: Sshd, unix_user: Callable[[], str],
        make_key: Callable[[str], Keys], ssh_clock: Callable[[dt.datetime], None]) -> None:
    from chaton.directory import actions, reconcile
    from chaton.directory.models import Account

    zone = clock.collective_zone()
    assert dt.datetime(2027, 1, 15, 12, tzinfo=zone).utcoffset() != dt.timedelta(0)
    last_day = dt.date(2027, 1, 15)
    uid = unix_user()
    key = make_key("last-day")
    ssh_clock(dt.datetime(2027, 1, 15, 23, 30, tzinfo=zone))
    project_tech_member(uid, key.public, membership_days=30)
    actions.do_update_account(Account.objects.get(uid=uid), acting_user=None,
                              expires_at=clock.end_of_day(last_day))
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok, outcome
    dn = f"uid={uid},ou=people,{BASE}"
    # shadowExpire is the first day the account no longer covers: the 16th, not the 15th
    # (the UTC date of its end, 2027-01-15 23:00 UTC).
    first_day_refused = (dt.date(2027, 1, 16) - dt.date(1970, 1, 1)).days
    assert directory.read([dn], ["shadowExpire"])[dn]["shadowexpire"] == [
        str(first_day_refused).encode()]

    # 23:30 on its last day, collective's time: still in.
    result = ssh(sshd, uid, key)
    assert result.returncode == 0, f"{result}\nsshd log:\n{sshd.log()}"

    # 00:30 the next day (23:30 UTC, still the 15th there), before the worker has removed
    # the entry: shadowExpire alone refuses it.
    ssh_clock(dt.datetime(2027, 1, 16, 0, 30, tzinfo=zone))
    assert directory.exists(dn)
    assert_refused(ssh(sshd, uid, key), sshd)

    # And once the worker has passed, the entry is gone.
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok, outcome
    assert not directory.exists(dn)
    assert_refused(ssh(sshd, uid, key), sshd)


@with_database
def test_account_outside_the_tech_group_is_refused(
        directory: LdapDirectory, sshd: Sshd, unix_user: Callable[[], str],
        make_key: Callable[[str], Keys]) -> None:
    outsider, member = unix_user(), unix_user()
    outsider_key, member_key = make_key("outsider"), make_key("member")
    project_tech_member(member, member_key.public)
    project_tech_member(outsider, outsider_key.public, in_tech=False)

    assert_refused(ssh(sshd, outsider, outsider_key), sshd)
    # A member's key does not open an outsider's account either.
    assert_refused(ssh(sshd, outsider, member_key), sshd)
    assert ssh(sshd, member, member_key).returncode == 0, sshd.log()


# -- ssh-keys itself, called in-process ---------------------------------------


@with_database
def test_ssh_keys_prints_a_members_keys_only(
        directory: LdapDirectory, ssh_keys_config: Path, make_key: Callable[[str], Keys],
        capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key("printed")
    project_tech_member("sk-member", key.public)
    project_tech_member("sk-outsider", make_key("other").public, in_tech=False)

    assert sshkeys.main(["--config", str(ssh_keys_config), "sk-member"]) == 0
    assert capsys.readouterr().out == key.public + "\n"
    for user in ("sk-outsider", "sk-nobody"):
        assert sshkeys.main(["--config", str(ssh_keys_config), user]) == 0
        assert capsys.readouterr().out == ""


@with_database
def test_ssh_keys_refuses_injection_attempts(
        directory: LdapDirectory, ssh_keys_config: Path, make_key: Callable[[str], Keys],
        capsys: pytest.CaptureFixture[str]) -> None:
    project_tech_member("sk-member", make_key("target").public)

    for user in ["*", "x)(uid=*", "sk-member)(uid=*", "sk-member*", "*)(|(uid=*", "SK-MEMBER",
                 "root", "uid=sk-member,ou=people", "sk\x00member", " sk-member", "sk-member\n"]:
        assert sshkeys.main(["--config", str(ssh_keys_config), user]) == 0, user
        assert capsys.readouterr().out == "", user


@with_database
def test_ssh_keys_refuses_an_account_past_its_shadow_expire(
        directory: LdapDirectory, ssh_keys_config: Path, make_key: Callable[[str], Keys],
        capsys: pytest.CaptureFixture[str]) -> None:
    # The directory may lag behind the database (the worker has not run yet):
    # ssh-keys reads shadowExpire itself.
    project_tech_member("sk-expired", make_key("expired").public)
    yesterday = (dt.date.today() - dt.date(1970, 1, 1)).days - 1
    [error] = directory.apply([Change("modify", f"uid=sk-expired,ou=people,{BASE}",
                                      {"shadowexpire": [str(yesterday).encode()]})])
    assert error is None

    assert sshkeys.main(["--config", str(ssh_keys_config), "sk-expired"]) == 0
    assert capsys.readouterr().out == ""


@with_database
def test_ssh_keys_binds_with_a_password_file(
        directory: LdapDirectory, slapd: ManagedSlapd, tmp_path: Path,
        make_key: Callable[[str], Keys], capsys: pytest.CaptureFixture[str]) -> None:
    key = make_key("simple")
    project_tech_member("sk-simple", key.public)
    password_file = tmp_path / "bind-password"
    password_file.write_text(slapd.admin_password + "\n", encoding="utf-8")
    config = tmp_path / "chaton.toml"
    config.write_text(
        f'[ldap]\nmanaged = false\nurl = "{slapd.url}"\nbase_dn = "{BASE}"\n'
        f'bind_dn = "{slapd.admin_dn}"\nbind_password_file = "{password_file}"\n',
        encoding="utf-8")

    assert sshkeys.main(["--config", str(config), "sk-simple"]) == 0
    assert capsys.readouterr().out == key.public + "\n"


@with_database
def test_ssh_keys_reaches_a_managed_slapd_on_its_socket(
        directory: LdapDirectory, slapd: ManagedSlapd, tmp_path: Path,
        make_key: Callable[[str], Keys], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The one-machine default: no bind DN, the slapd Chaton runs in <data_dir>/slapd.
    key = make_key("managed")
    project_tech_member("sk-managed", key.public)
    data_directory = tmp_path / "data"
    data_directory.mkdir()
    (data_directory / "slapd").symlink_to(slapd.directory)
    monkeypatch.setenv("CHATON_DATA_DIR", str(data_directory))
    monkeypatch.setenv("CHATON_LDAP_MANAGED", "true")
    config = tmp_path / "chaton.toml"
    config.write_text(f'[ldap]\nbase_dn = "{BASE}"\n', encoding="utf-8")

    assert sshkeys.main(["--config", str(config), "sk-managed"]) == 0
    assert capsys.readouterr().out == key.public + "\n"


def test_ssh_keys_with_the_directory_down_gives_no_key_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chaton.toml"
    config.write_text(f'[ldap]\nmanaged = false\nurl = "ldap://127.0.0.1:{free_port()}"\n'
                      "timeout = 2.0\n", encoding="utf-8")

    started = time.monotonic()
    assert sshkeys.main(["--config", str(config), "sk-member"]) == 1
    assert time.monotonic() - started < 10
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [[], ["a", "b"], ["--config"], ["--verbose", "sk-member"],
                                  ["--config=", "sk-member"]])
def test_ssh_keys_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert sshkeys.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


def test_filter_escaping_matches_python_ldap() -> None:
    for value in ["*", "x)(uid=*", "a\\b", "nul\x00", "plain", "uid=a,ou=people,dc=x\\,y"]:
        assert sshkeys.escape_filter_value(value) == ldap.filter.escape_filter_chars(value)


def test_shadow_expire_counts_days_like_pam_unix() -> None:
    day = 20000
    noon = day * 86400 + 43200
    assert not sshkeys.is_expired([], noon)
    assert not sshkeys.is_expired([b"-1"], noon)
    assert not sshkeys.is_expired([str(day + 1).encode()], noon)
    assert sshkeys.is_expired([str(day).encode()], noon)
    assert sshkeys.is_expired([b"garbage"], noon)


def test_shadow_expire_counts_days_in_the_collectives_zone() -> None:
    import zoneinfo

    paris, montreal = zoneinfo.ZoneInfo("Europe/Paris"), zoneinfo.ZoneInfo("America/Montreal")
    day = 20000  # 2024-10-04
    # 23:30 UTC on the day before: already ``day`` in Paris, not yet in Montreal.
    late = day * 86400 - 1800
    assert sshkeys.is_expired([str(day).encode()], late, paris)
    assert not sshkeys.is_expired([str(day).encode()], late, dt.UTC)
    # 02:00 UTC on ``day``: still the day before in Montreal.
    early = day * 86400 + 7200
    assert not sshkeys.is_expired([str(day).encode()], early, montreal)
    assert sshkeys.is_expired([str(day).encode()], early, paris)


def test_only_plain_key_lines_are_printed() -> None:
    assert sshkeys.authorized_lines([
        b"ssh-ed25519 AAAAC3Nza alix@test",
        b'command="/bin/sh" ssh-ed25519 AAAAC3Nza',
        b"ssh-ed25519 AAAA\nssh-rsa BBBB",
        b"\xff\xfe",
        b"",
    ]) == ["ssh-ed25519 AAAAC3Nza alix@test"]


def test_ssh_keys_starts_without_django_or_the_ldap_package(ssh_keys_config: Path) -> None:
    # sshd runs the command at every connection: it must stay light.
    probe = ("import sys\n"
             "from chaton.cli import sshkeys\n"
             f"sshkeys.main(['--config', {str(ssh_keys_config)!r}, 'nobody-here'])\n"
             "heavy = sorted(name for name in sys.modules\n"
             "               if name.split('.')[0] in {'django', 'typer', 'rich', 'ldap'})\n"
             "print(','.join(heavy))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=TIMEOUT, check=True, env={"PATH": os.environ["PATH"]})
    assert result.stdout.strip() == ""
