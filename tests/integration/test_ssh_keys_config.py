"""``chaton ssh-keys`` started as sshd starts it: in ``/``, with an empty environment.

The data directory (where the managed slapd's ldapi socket lives) must come
from the configuration file, never from the working directory: from ``/`` a
relative ``var`` would be ``/var`` and every login refused. Each test runs the
real console script as a child process in ``/`` against the session's real
slapd, reached through a data directory beside the configuration file.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import chaton
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock, runner

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

#: The folder that holds the ``chaton`` package under test: the child gets it and nothing else.
SOURCE = str(Path(chaton.__file__).resolve().parent.parent)


#: Every wait in this file is bounded by this many seconds.
TIMEOUT = 20


def _console_script() -> Path:
    """Return the ``chaton`` console script installed beside this Python (the production path)."""
    script = Path(sys.executable).parent / "chaton"
    assert script.exists(), f"{script}: no chaton console script (pip install -e .)"
    return script


def make_public_key(folder: Path, name: str) -> str:
    """Create an ed25519 key pair in ``folder`` and return its public line."""
    private = folder / name
    runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test",
                "-f", str(private)], timeout=TIMEOUT)
    return private.with_suffix(".pub").read_text(encoding="ascii").strip()


def project_tech_member(uid: str, public_key: str) -> None:
    """Create an account with a key in the tech group, then reconcile the real directory."""
    from chaton.directory import actions, reconcile

    account = actions.do_create_account(uid, acting_user=None, display_name=f"Test {uid}",
                                        email=f"{uid}@example.org")
    actions.do_add_ssh_key(account, public_key, acting_user=None)
    group = actions.do_create_group("tech", acting_user=None)
    actions.do_add_to_group(group, account, acting_user=None,
                            expires_at=clock.now() + dt.timedelta(days=2))
    _plan, outcome = reconcile.sync_all()
    assert outcome is not None and outcome.ok, outcome


@pytest.fixture
def config_folder() -> Iterator[Path]:
    """A fresh, short folder (a Unix socket path under it must fit in 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="ck-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def ssh_keys_from_root(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``chaton ssh-keys ARGUMENTS`` as sshd would: working directory /, no environment
    (but the path to the code under test)."""
    return subprocess.run([str(_console_script()), "ssh-keys", *arguments], cwd="/",
                          env={"PYTHONPATH": SOURCE}, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def write_config(folder: Path, slapd: ManagedSlapd, data_dir_line: str) -> Path:
    """Write ``folder/ssh-keys.toml`` for the managed slapd (its socket in the data directory)
    and return its path."""
    path = folder / "ssh-keys.toml"
    path.write_text(f"{data_dir_line}\n[ldap]\nmanaged = true\nurl = \"{slapd.url}\"\n"
                    "base_dn = \"dc=chaton,dc=test\"\n[directory]\nssh_group = \"tech\"\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("data_dir_line", "data_dir_name"),
                         [('data_dir = "data"', "data"), ("", "var")],
                         ids=["relative-data-dir", "default-data-dir"])
def test_ssh_keys_from_root_reads_the_data_dir_beside_its_config(
        ldap_directory: LdapDirectory, slapd: ManagedSlapd, config_folder: Path,
        tmp_path: Path, data_dir_line: str, data_dir_name: str) -> None:
    public_key = make_public_key(tmp_path, "rooted")
    project_tech_member("sk-rooted", public_key)
    # The data directory beside the file holds the session's slapd (its socket).
    (config_folder / data_dir_name).mkdir()
    (config_folder / data_dir_name / "slapd").symlink_to(slapd.directory)
    config = write_config(config_folder, slapd, data_dir_line)

    result = ssh_keys_from_root("--config", str(config), "sk-rooted")
    assert result.returncode == 0, result.stderr
    assert result.stdout == public_key + "\n"
    assert result.stderr == ""


def test_ssh_keys_from_root_without_a_config_refuses_to_use_slash_var(
        ldap_directory: LdapDirectory) -> None:
    result = ssh_keys_from_root("sk-rooted")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # Without a configuration, the message is in the default language of chaton.toml (French).
    assert len(lines) == 1 and "dossier de travail" in lines[0] and "--config" in lines[0], lines
    assert result.stdout == ""
