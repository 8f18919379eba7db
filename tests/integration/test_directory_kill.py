"""A ``chaton directory sync`` killed with SIGKILL half way is completed by the next one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.testing.pytest_plugin import BASE_DN

pytestmark = [pytest.mark.integration, pytest.mark.directory]
ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = 4000

POPULATE = f"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from bench.population import populate
populate(account_count={ACCOUNTS}, group_count=20)
"""


def people(directory: LdapDirectory) -> int:
    return len(directory.read_subtree(f"ou=people,{BASE_DN}", ["1.1"]))


@pytest.fixture
def data_directory() -> Iterator[Path]:
    """A data directory of its own: the killed process has its own SQLite database."""
    data = Path(tempfile.mkdtemp(prefix="chaton-kill-"))
    yield data
    shutil.rmtree(data, ignore_errors=True)


def test_sigkill_half_way_then_the_next_sync_finishes(slapd: ManagedSlapd,
                                                        ldap_directory: LdapDirectory,
                                                        data_directory: Path) -> None:
    data = data_directory
    (data / "chaton.toml").touch()
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chaton.project.settings",
        "CHATON_DATA_DIR": str(data),
        "CHATON_CONFIG": str(data / "chaton.toml"),
        "CHATON_LDAP_MANAGED": "false",
        "CHATON_LDAP_URL": slapd.url,
        "CHATON_LDAP_BASE_DN": BASE_DN,
        "CHATON_LDAP_BIND_DN": slapd.admin_dn,
        "CHATON_LDAP_BIND_PASSWORD": slapd.admin_password,
    }
    environment.pop("CHATON_DATABASE_URL", None)
    chaton = [sys.executable, "-m", "chaton.cli.entry"]
    subprocess.run([sys.executable, "-c", POPULATE], env=environment, cwd=ROOT, check=True,
                   timeout=300)

    sync = subprocess.Popen([*chaton, "directory", "sync"], env=environment, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while people(ldap_directory) < 200 and time.monotonic() < deadline:
        assert sync.poll() is None, "the sync ended before it could be killed"
        time.sleep(0.05)
    sync.send_signal(signal.SIGKILL)
    sync.wait(timeout=10)
    written = people(ldap_directory)
    assert 0 < written < ACCOUNTS, written

    again = subprocess.run([*chaton, "directory", "sync"], env=environment, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert people(ldap_directory) == ACCOUNTS
    check = subprocess.run([*chaton, "directory", "diff"], env=environment, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "+ " not in check.stdout and "~ " not in check.stdout and "- " not in check.stdout
