"""The restic adapter's contract: the same assertions on the fake and on the real client.

``FakeRestic`` stands for a repository in every fast test of the backups; here
it must answer as :class:`~chaton.adapters.restic.client.Restic` does with the
real restic on a local repository: a repository made once, snapshots stored,
listed by tag, read back and forgotten; a missing repository, a wrong password,
a missing snapshot or file and a location that does not answer raise the same
errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaton.adapters.restic import (
    RepositoryExists,
    RepositoryMissing,
    RepositoryUnreachable,
    ResticClient,
    ResticError,
    WrongPassword,
)
from chaton.adapters.restic.client import Restic
from chaton.adapters.restic.fake import FakeRestic
from chaton.testing.pytest_plugin import hold_closed_port

SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]
PASSWORD = "correct horse battery staple"


def make(side: str, tmp_path: Path, *, password: str = PASSWORD,
         location: str | None = None) -> ResticClient:
    """Return a client of a repository not yet initialised (the real one in ``tmp_path``)."""
    if side == "fake":
        return FakeRestic(password=password, initialised=False)
    return Restic(location=location or str(tmp_path / "repository"), password=password,
                  cache_directory=str(tmp_path / "cache"), timeout=120)


@pytest.fixture(params=SIDE)
def side(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def repository(side: str, tmp_path: Path) -> ResticClient:
    """Return a client of an initialised, empty repository."""
    client = make(side, tmp_path)
    client.init()
    return client


def test_a_repository_is_made_once(side: str, tmp_path: Path) -> None:
    client = make(side, tmp_path)
    assert not client.exists()
    with pytest.raises(RepositoryMissing) as missing:
        client.snapshots()
    assert isinstance(missing.value, FileNotFoundError)
    client.init()
    assert client.exists()
    with pytest.raises(RepositoryExists):
        client.init()


def test_a_stream_is_stored_listed_by_tag_and_read_back(repository: ResticClient) -> None:
    first = repository.backup_stream(b"first dump\n", filename="db.sql", tags=["plan-a", "db"],
                                     host="chaton-test")
    second = repository.backup_stream(b"other\n", filename="other.sql", tags=["plan-b"],
                                      host="chaton-test")
    assert first.bytes_processed == len(b"first dump\n")
    [listed] = repository.snapshots(tags=["plan-a"])
    assert listed.matches(first.snapshot_id) and set(listed.tags) == {"plan-a", "db"}
    assert listed.hostname == "chaton-test" and listed.paths == ("/db.sql",)
    assert len(repository.snapshots()) == 2
    assert repository.dump(first.snapshot_id, "/db.sql") == b"first dump\n"
    assert repository.dump(second.snapshot_id, "/other.sql") == b"other\n"


def test_forgotten_snapshots_are_gone(repository: ResticClient) -> None:
    kept = repository.backup_stream(b"kept", filename="a", tags=["t"], host="h")
    gone = repository.backup_stream(b"gone", filename="b", tags=["t"], host="h")
    repository.forget_snapshots([gone.snapshot_id])
    assert [snapshot.short_id for snapshot in repository.snapshots(tags=["t"])] == [
        kept.snapshot_id[:8]]


def test_a_missing_snapshot_or_file_is_an_error(repository: ResticClient) -> None:
    summary = repository.backup_stream(b"data", filename="a", tags=["t"], host="h")
    with pytest.raises(ResticError):
        repository.dump("0123abcd", "/a")
    with pytest.raises(ResticError):
        repository.dump(summary.snapshot_id, "/not-there")


def test_a_wrong_password_opens_nothing(side: str, tmp_path: Path) -> None:
    made = make(side, tmp_path)
    made.init()
    if isinstance(made, FakeRestic):
        made.password = "not the password"
        intruder: ResticClient = made
    else:
        intruder = make(side, tmp_path, password="not the password")
    with pytest.raises(WrongPassword) as refused:
        intruder.snapshots()
    assert isinstance(refused.value, PermissionError)


def test_a_location_that_does_not_answer_is_unreachable(side: str, tmp_path: Path) -> None:
    if side == "fake":
        client: ResticClient = FakeRestic(password=PASSWORD, reachable=False)
        held = None
    else:
        held = hold_closed_port()  # ssh is refused at once: nothing listens there
        client = make(side, tmp_path, location=f"sftp://chaton@127.0.0.1:"
                      f"{held.getsockname()[1]}//srv/repository")
    try:
        with pytest.raises(RepositoryUnreachable) as raised:
            client.snapshots()
        assert isinstance(raised.value, ConnectionError)
        with pytest.raises(RepositoryUnreachable):
            client.init()
    finally:
        if held is not None:
            held.close()


def test_a_status_that_repeats_its_figures_is_no_progress() -> None:
    """The real client's stall watch: restic deadlocked on a full disk may keep printing
    the same status; only new figures, or other lines, count as progress."""
    from chaton.adapters.restic.client import Restic

    status = ('{"message_type":"status","seconds_elapsed":%d,"percent_done":0.5,'
              '"total_files":3,"files_done":1,"total_bytes":100,"bytes_done":50}')
    assert Restic._status_mark(status % 1) == Restic._status_mark(status % 2)
    moved = status.replace('"bytes_done":50', '"bytes_done":60') % 3
    assert Restic._status_mark(moved) != Restic._status_mark(status % 1)
    assert Restic._status_mark('{"message_type":"summary","snapshot_id":"ab"}') is None
    assert Restic._status_mark("not json with status in it") is None
