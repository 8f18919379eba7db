"""Fixtures shared by the integration tests (more may be appended by other apps)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.postgres import TemporaryPostgres
from chaton.core.servers import free_port


@pytest.fixture(scope="session")
def source_postgres() -> Iterator[TemporaryPostgres]:
    """Yield a PostgreSQL server for the whole session, standing for a database to back up.

    Not the one Chaton's own tests may run on: backups tests create and drop
    their databases on it. Raise PostgresError (a test error, never a skip)
    when it does not start.
    """
    directory = Path(tempfile.mkdtemp(prefix="chaton-pgsource-"))
    # The postgres user must reach its directory through this one.
    directory.chmod(0o711)
    server = TemporaryPostgres(directory / "server", free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def scratch_path() -> Iterator[Path]:
    """Yield a new directory directly under the system's temporary directory, removed after.

    Searchable by the postgres and openldap users (pytest's own tmp_path is
    not), and short enough for a unix socket path.
    """
    directory = Path(tempfile.mkdtemp(prefix="chaton-scratch-"))
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def backup_repository(scratch_path: Path, db: None) -> object:
    """Return a recorded and initialised local restic repository (real restic) in scratch space."""
    from chaton.backups import actions

    repository = actions.do_create_repository(
        "test-repository", kind="local", location=str(scratch_path / "repository"),
        password="correct horse battery staple", acting_user=None)
    return actions.do_init_repository(repository, acting_user=None)
