"""A restore from nothing: the demo collective backed up, its server lost, rebuilt from the kit.

Everything runs as a person would: ``chaton`` commands in child processes, on
a data directory of their own with a managed slapd on a free port, a real
restic repository kept apart from the data directory (the "off-site" copy),
and the recovery kit as the only thing that survives the data directory.
The restore runs the kit's own shell lines, in a new data directory.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

import chaton
from chaton.adapters.ldap import normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core.servers import free_port

pytestmark = [pytest.mark.integration]

BASE_DN = "dc=recovery,dc=test"
#: The tables whose rows must come back exactly: members, accounts, groups, decisions, votes.
COMPARED_TABLES = ("members_person", "members_organization", "members_membership",
                   "directory_account", "directory_group", "directory_groupmembership",
                   "directory_sshkey", "governance_decision", "governance_operation",
                   "governance_ballot", "governance_vote")
SOURCE_ROOT = Path(chaton.__file__).resolve().parent.parent


class Site:
    """A place where ``chaton`` commands run: a data directory and the environment they see."""

    def __init__(self, base: Path, data_dir: Path, ldap_port: int, repository: Path) -> None:
        self.data_dir = data_dir
        configuration = base / "chaton.toml"
        configuration.touch()
        self.environment = {name: value for name, value in os.environ.items()
                            if not name.startswith(("CHATON_", "RESTIC_", "DJANGO_"))}
        self.environment.update({
            "PYTHONPATH": str(SOURCE_ROOT),
            "CHATON_CONFIG": str(configuration),
            "CHATON_DATA_DIR": str(data_dir),
            "CHATON_LANGUAGE": "en",
            "CHATON_LDAP_MANAGED": "true",
            "CHATON_LDAP_URL": f"ldap://127.0.0.1:{ldap_port}",
            "CHATON_LDAP_BASE_DN": BASE_DN,
            "CHATON_PROXY_MANAGED": "false",
            # No engine answers there: the demo records its home page for later.
            "CHATON_SERVICES_DOCKER_URL": f"unix://{base}/no-docker.sock",
            "CHATON_SERVICES_DOCKER_MANAGED": "no",
            "CHATON_BACKUPS_DEFAULT_REPOSITORY": str(repository),
            "CHATON_BACKUPS_SCRATCH_DIR": str(base / "scratch"),
        })
        (base / "scratch").mkdir(exist_ok=True, mode=0o711)
        self.ldap_port = ldap_port
        self.base = base

    def chaton(self, *arguments: str, check: bool = True, **extra: str
               ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [sys.executable, "-m", "chaton", *arguments], env={**self.environment, **extra},
            cwd=self.base, capture_output=True, text=True, timeout=300, check=False)
        if check:
            assert completed.returncode == 0, (arguments, completed.stdout, completed.stderr)
        return completed

    def rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Return every row of the compared tables, by table, in id order."""
        connection = sqlite3.connect(self.data_dir / "chaton.sqlite3")
        try:
            return {table: connection.execute(
                f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608
                for table in COMPARED_TABLES}
        finally:
            connection.close()

    def ldap_entries(self) -> dict[str, dict[str, list[bytes]]]:
        """Start this site's slapd, read every entry from it over LDAP, stop it."""
        key = (self.data_dir / "secrets.key").read_text(encoding="ascii").strip()
        admin_password = Fernet(key.encode()).decrypt(
            (self.data_dir / "slapd" / "admin-password.enc").read_bytes()).decode()
        server = ManagedSlapd(self.data_dir / "slapd", port=self.ldap_port, base_dn=BASE_DN,
                              admin_password=admin_password)
        server.start()
        try:
            directory = LdapDirectory(server.url, server.admin_dn, admin_password, timeout=30)
            try:
                entries = {**directory.read([BASE_DN], ["*"]),
                           **directory.read_subtree(BASE_DN, ["*"])}
            finally:
                directory.close()
        finally:
            server.stop()
        return {normalize_dn(dn): {name: sorted(values) for name, values in attributes.items()}
                for dn, attributes in entries.items()}


@pytest.fixture
def base() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="chaton-recovery-"))
    # slapd drops to the openldap user, who must reach the data directories.
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _kit_restore_lines(kit: str) -> list[str]:
    """Return the kit's "rebuild Chaton" shell lines (exports, then ``chaton restore``)."""
    lines = kit.splitlines()
    start = next(index for index, line in enumerate(lines) if "Rebuild Chaton" in line)
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    assert block[-1].startswith("chaton restore --from-repository "), block
    return block


def test_the_demo_collective_is_rebuilt_from_the_recovery_kit_alone(base: Path) -> None:
    repository = base / "offsite" / "repository"
    old = Site(base, base / "old", free_port(), repository)
    old.chaton("init", "--admin-uid", "admin", "--no-input")
    old.chaton("demo")
    # Some service data besides Chaton's own, for the list of what else can be restored.
    files = base / "files"
    (files / "minutes").mkdir(parents=True)
    (files / "minutes" / "assembly.txt").write_text("the assembly adopted the budget\n")
    old.chaton("backup", "plan", "add", "files", "--repository", "local")
    old.chaton("backup", "source", "add", "files", "documents", "--kind", "paths",
               "--param", f"paths={files}")
    old.chaton("directory", "sync")
    old.chaton("backup", "run", "files")
    old.chaton("backup", "run", "chaton")
    kit = old.chaton("backup", "recovery-kit").stdout
    before_rows = old.rows()
    before_entries = old.ldap_entries()
    assert len(before_rows["members_person"]) >= 3 and before_rows["governance_decision"]
    assert len(before_entries) > 10
    key = (old.data_dir / "secrets.key").read_text().strip()
    assert key in kit and str(repository) in kit
    restore_lines = _kit_restore_lines(kit)

    # The server is lost: its data directory (database, key, slapd) is gone.
    shutil.rmtree(old.data_dir)

    new = Site(base, base / "new", free_port(), repository)
    # A wrong repository password: one line, exit 2, nothing written.
    wrong = base / "wrong-password"
    wrong.write_text("not the password\n")
    refused = new.chaton("restore", "--from-repository", str(repository), "--password-file",
                         str(wrong), "--no-input", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("chaton: error: ") and refused.stderr.count("\n") == 1
    assert "password does not open the repository" in refused.stderr
    assert not (new.data_dir / "chaton.sqlite3").exists()
    # Another installation's key: refused before anything is written.
    password = next(line for line in restore_lines if "CHATON_RESTORE_PASSWORD=" in line)
    password = password.split("=", 1)[1].strip("'")
    refused = new.chaton("restore", "--from-repository", str(repository), "--no-input",
                         check=False, CHATON_RESTORE_PASSWORD=password,
                         CHATON_SECRETS_KEY=Fernet.generate_key().decode())
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("chaton: error: ") and refused.stderr.count("\n") == 1
    assert "does not open this backup's secrets" in refused.stderr
    assert not (new.data_dir / "chaton.sqlite3").exists()
    assert not (new.data_dir / "secrets.key").exists()

    # The kit's own lines, in a new data directory.
    script = "\n".join(["chaton() { \"$PYTHON\" -m chaton \"$@\"; }", "set -e",
                        *[line for line in restore_lines
                          if not line.startswith("export CHATON_DATA_DIR=")],
                        ""])
    restored = subprocess.run(["bash", "-c", script], env={**new.environment,
                                                           "PYTHON": sys.executable},
                              cwd=base, capture_output=True, text=True, timeout=600,
                              check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "Database and secrets key restored" in restored.stdout
    assert re.search(r"Directory: \d+ entries loaded", restored.stdout)
    # What else the repository holds, and how to restore it.
    assert "chaton backup restore files documents --snapshot" in restored.stdout

    assert (new.data_dir / "secrets.key").read_text().strip() == key
    assert (new.data_dir / "secrets.key").stat().st_mode & 0o777 == 0o600
    assert new.rows() == before_rows
    assert new.ldap_entries() == before_entries
    # The restored Chaton works: it opens its own repository and lists the plan's runs.
    runs = new.chaton("backup", "runs", "chaton")
    assert "backup" in runs.stdout and "running" not in runs.stdout
    audit = new.chaton("audit", "--action", "backups.rebuild")
    assert "backups.rebuild" in audit.stdout


def test_a_data_directory_in_use_is_never_overwritten(base: Path) -> None:
    repository = base / "offsite" / "repository"
    site = Site(base, base / "site", free_port(), repository)
    site.chaton("init", "--admin-uid", "admin", "--no-input")
    before = (site.data_dir / "chaton.sqlite3").read_bytes()
    refused = site.chaton("restore", "--from-repository", str(repository), "--no-input",
                          check=False, CHATON_RESTORE_PASSWORD="whatever")
    assert refused.returncode == 2
    assert refused.stderr.startswith("chaton: error: ") and "is not new" in refused.stderr
    assert (site.data_dir / "chaton.sqlite3").read_bytes() == before
