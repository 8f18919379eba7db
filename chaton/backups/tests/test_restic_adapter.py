"""The restic client and the runner's pipeline, against a stand-in restic program.

The stand-in is a shell script that records its arguments and environment and
answers as restic 0.14 does; the real restic runs in the integration tests.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chaton.adapters import restic
from chaton.adapters.restic.client import Restic
from chaton.core import runner

SCRIPT = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD.args"
printf '%s' "$RESTIC_PASSWORD" > "$RECORD.password"
case "$*" in
  *snapshots*) echo '[{"time":"2024-01-01T10:00:00.5+01:00","paths":["/a"],"hostname":"h",
"tags":["chaton"],"id":"aaaabbbbcccc","short_id":"aaaabbbb"}]' ;;
  *forget*) echo "$*" >> "$RECORD.forgotten" ;;
  *--stdin*)
    cat > "$RECORD.stdin"
    echo '{"message_type":"status","percent_done":0,"total_files":1,"bytes_done":5}'
    echo '{"message_type":"summary","files_new":1,"data_added":9,"total_bytes_processed":5,
"total_files_processed":1,"snapshot_id":"12345678"}' | tr -d '\\n'; echo ;;
  *init*) echo "Fatal: create repository at x failed: config file already exists" >&2
          exit 1 ;;
  *check*) echo "Pack ID does not match, want 1, got 2"
           echo "Fatal: repository contains errors" >&2; exit 1 ;;
  *unlock*) echo "Fatal: wrong password or no key found" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Restic:
    program = tmp_path / "restic"
    program.write_text(SCRIPT)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("RECORD", str(tmp_path / "call"))
    monkeypatch.setenv("RESTIC_REPOSITORY", "/somewhere/else")  # must not leak in
    return Restic(location=str(tmp_path / "repo"), password="pa55word-of-the-repo",
                         program=str(program), cache_directory=str(tmp_path / "cache"))


def recorded(tmp_path: Path, suffix: str) -> str:
    return (tmp_path / f"call.{suffix}").read_text()


def test_the_password_goes_through_the_environment_only(client: Restic,
                                                        tmp_path: Path) -> None:
    [snapshot] = client.snapshots(tags=["chaton"])
    assert recorded(tmp_path, "password") == "pa55word-of-the-repo"
    assert "pa55word-of-the-repo" not in recorded(tmp_path, "args")
    assert snapshot.short_id == "aaaabbbb" and snapshot.time.microsecond == 500000
    assert "--no-lock" in recorded(tmp_path, "args").split()
    assert client._environment()["RESTIC_REPOSITORY"] == client.location


def test_a_stream_reports_progress_and_its_summary(client: Restic,
                                                   tmp_path: Path) -> None:
    seen: list[restic.BackupProgress] = []
    summary = client.backup_stream(["printf", "hello"], filename="db.dump", tags=["a", "b"],
                                   host="h", progress=seen.append)
    assert recorded(tmp_path, "stdin") == "hello"
    assert summary.snapshot_id == "12345678" and summary.bytes_added == 9
    assert seen[0].bytes_done == 5 and seen[0].fraction == 0.0
    arguments = recorded(tmp_path, "args").split("\n")
    assert arguments[arguments.index("--stdin-filename") + 1] == "db.dump"
    assert arguments.count("--tag") == 2


def test_a_producer_failing_half_way_leaves_no_snapshot(client: Restic,
                                                        tmp_path: Path) -> None:
    with pytest.raises(restic.SourceFailed, match="connection to server lost"):
        client.backup_stream(["sh", "-c", "printf half; echo 'connection to server lost' >&2;"
                              " exit 1"], filename="db.dump", tags=[], host="h")
    assert "forget 12345678" in recorded(tmp_path, "forgotten")


def test_restics_messages_become_typed_errors(client: Restic) -> None:
    with pytest.raises(restic.RepositoryExists) as exists:
        client.init()
    assert isinstance(exists.value, FileExistsError)
    with pytest.raises(restic.WrongPassword) as wrong:
        client.unlock()
    assert isinstance(wrong.value, PermissionError) and "wrong password" in str(wrong.value)
    result = client.check(read_data_subset="10%")
    assert not result.ok and any("Pack ID does not match" in line for line in result.errors)
    for detail, kind in [
        ("Fatal: unable to save snapshot: write /r/data/x: no space left on device", OSError),
        ("unable to create lock in backend: repository is already locked by PID 1",
         BlockingIOError),
        ("Fatal: unable to open config file: stat /r/config: no such file or directory\n"
         "Is there a repository at the following location?", FileNotFoundError),
        ("ignoring error for /db: ciphertext verification failed", ValueError),
        ("subprocess ssh: ssh: connect to host backup port 22: Connection refused",
         ConnectionError),
    ]:
        assert isinstance(restic.classify(detail, command=[], returncode=1, message="x"), kind)


def test_a_missing_restic_is_named() -> None:
    missing = Restic(location="/r", password="never-used-password",
                            program="/nonexistent/restic")
    with pytest.raises(restic.ResticNotInstalled):
        missing.snapshots()


def test_the_pipeline_streams_between_processes_and_reports_both_ends() -> None:
    lines: list[str] = []
    result = runner.pipeline(["sh", "-c", "seq 1 3; echo oops >&2; exit 4"], ["cat"],
                             timeout=10, on_line=lines.append)
    assert lines == ["1", "2", "3"]
    assert result.producer.returncode == 4 and result.producer.stderr == "oops"
    assert result.consumer.returncode == 0 and not result.ok
    with pytest.raises(runner.CommandTimeout):
        runner.pipeline(["sleep", "5"], ["cat"], timeout=0.3)
    with pytest.raises(runner.CommandNotFound):
        runner.pipeline(["printf", "x"], ["/nonexistent/consumer"], timeout=5)


def test_stream_feeds_input_masks_secrets_and_runs_binary_exactly() -> None:
    completed = runner.stream(["sh", "-c", "cat; echo hunter2-token >&2; exit 3"],
                              timeout=10, input=b"0123456789" * 100_000,
                              secrets=["hunter2-token"],
                              check=False)
    assert len(completed.stdout) == 1_000_001 and completed.returncode == 3
    assert completed.stderr == "***"
    data = bytes(range(256))
    assert runner.run_binary(["cat"], timeout=10, input=data).stdout == data
    with pytest.raises(runner.CommandFailed):
        runner.stream(["false"], timeout=10)
    assert os.environ.get("RESTIC_PASSWORD") is None
