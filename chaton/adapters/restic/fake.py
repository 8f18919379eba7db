"""An in-memory restic repository for unit tests: same methods, same errors."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaton.adapters.restic import (
    BackupProgress,
    BackupSummary,
    CheckResult,
    ForgetGroup,
    KeepPolicy,
    RepositoryExists,
    RepositoryMissing,
    RepositoryUnreachable,
    ResticError,
    Snapshot,
    SourceFailed,
    WrongPassword,
)
from chaton.core import runner


@dataclass
class FakeRestic:
    """An in-memory repository with the same methods as :class:`Restic`, for unit tests.

    Streams and paths are stored as bytes; ``password`` must match
    ``repository_password`` or WrongPassword is raised, as restic would. Set
    ``reachable`` false to make the repository's location unreachable
    (RepositoryUnreachable, as an sftp host that is down).
    """

    location: str = "memory"
    #: What the caller gives, and what the repository was made with: they must match.
    password: str = ""
    repository_password: str = ""
    initialised: bool = True
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    listed: list[Snapshot] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    #: The ``--read-data-subset`` of each check, in order.
    checked_subsets: list[str | None] = field(default_factory=list)
    #: Subsets (``"2/4"``) whose check finds damaged data, as a damaged pack would.
    damaged_subsets: set[str] = field(default_factory=set)
    reachable: bool = True

    def _open(self) -> None:
        if not self.reachable:
            raise RepositoryUnreachable("restic: the repository's location does not answer",
                                        detail="connection refused")
        if not self.initialised:
            raise RepositoryMissing("restic: no repository", detail="Is there a repository")
        if self.password != self.repository_password:
            raise WrongPassword("restic: wrong password or no key found")

    def init(self) -> None:
        self.calls.append("init")
        if not self.reachable:
            self._open()
        if self.initialised:
            raise RepositoryExists("restic init: config file already exists")
        self.initialised = True
        self.repository_password = self.password

    def exists(self) -> bool:
        if not self.reachable:
            self._open()
        if not self.initialised:
            return False
        self._open()
        return True

    def unlock(self) -> None:
        self.calls.append("unlock")
        self._open()

    def check(self, *, read_data_subset: str | None = None,
              timeout: float | None = None) -> CheckResult:
        self.calls.append("check")
        self.checked_subsets.append(read_data_subset)
        self._open()
        if read_data_subset in self.damaged_subsets:
            error = "Pack 0123abcd: ciphertext verification failed"
            return CheckResult(ok=False, errors=(error,), output=error)
        return CheckResult(ok=True, errors=(), output="no errors were found")

    def _save(self, content: dict[str, bytes], tags: Iterable[str], host: str,
              time: dt.datetime | None) -> BackupSummary:
        self._open()
        number = len(self.listed) + 1
        snapshot_id = f"{number:08x}" + "0" * 56
        moment = time or dt.datetime.now(dt.UTC)
        self.listed.append(Snapshot(id=snapshot_id, short_id=snapshot_id[:8], time=moment,
                                    paths=tuple(content), tags=tuple(tags), hostname=host))
        self.files[snapshot_id] = content
        size = sum(len(data) for data in content.values())
        return BackupSummary(snapshot_id=snapshot_id[:8], files_new=len(content),
                             files_changed=0, files_unmodified=0, bytes_added=size,
                             bytes_processed=size, files_processed=len(content),
                             duration_seconds=0.0)

    def backup_stream(self, producer: Sequence[str] | bytes, *, filename: str,
                      tags: Iterable[str], host: str, time: dt.datetime | None = None,
                      producer_environment: Mapping[str, str] | None = None,
                      progress: Callable[[BackupProgress], None] | None = None,
                      timeout: float | None = None, secrets: Sequence[str] = ()
                      ) -> BackupSummary:
        self.calls.append("backup_stream")
        if not isinstance(producer, bytes):
            completed = runner.run(producer, env=producer_environment, check=False)
            if completed.returncode != 0:
                raise SourceFailed(f"{producer[0]}: {completed.stderr.strip()}",
                                   detail=completed.stderr)
            producer = completed.stdout.encode()
        if progress is not None:
            progress(BackupProgress(len(producer), 0, 0, 1, 0.0))
        return self._save({"/" + filename: producer}, tags, host, time)

    def backup_paths(self, paths: Sequence[str], *, tags: Iterable[str], host: str,
                     exclude: Sequence[str] = (), time: dt.datetime | None = None,
                     progress: Callable[[BackupProgress], None] | None = None,
                     timeout: float | None = None) -> BackupSummary:
        self.calls.append("backup_paths")
        content: dict[str, bytes] = {}
        for root in paths:
            for directory, _subdirectories, names in os.walk(root):
                for name in names:
                    full = os.path.join(directory, name)
                    content[full] = Path(full).read_bytes()
        if progress is not None:
            size = sum(len(data) for data in content.values())
            progress(BackupProgress(size, size, len(content), len(content), 1.0))
        return self._save(content, tags, host, time)

    def snapshots(self, *, tags: Iterable[str] = (), host: str | None = None
                  ) -> list[Snapshot]:
        self._open()
        wanted = set(tags)
        return [snapshot for snapshot in self.listed
                if wanted <= set(snapshot.tags) and (host is None or snapshot.hostname == host)]

    def _find(self, snapshot_id: str) -> str:
        for snapshot in self.listed:
            if snapshot.matches(snapshot_id):
                return snapshot.id
        raise ResticError(f"restic: no matching ID found for prefix {snapshot_id!r}")

    def restore(self, snapshot_id: str, target: str | Path, *, include: Sequence[str] = (),
                verify: bool = True, timeout: float | None = None) -> None:
        self.calls.append("restore")
        self._open()
        for path, data in self.files[self._find(snapshot_id)].items():
            destination = Path(target) / path.lstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(data)

    def dump(self, snapshot_id: str, path: str, *, timeout: float | None = None) -> bytes:
        self.calls.append("dump")
        self._open()
        content = self.files[self._find(snapshot_id)]
        if path not in content:
            raise ResticError(f"restic dump: cannot dump file: path {path!r} not found in "
                              "snapshot")
        return content[path]

    def dump_into(self, snapshot_id: str, path: str, consumer: Sequence[str], *,
                  consumer_environment: Mapping[str, str] | None = None,
                  timeout: float | None = None, secrets: Sequence[str] = ()
                  ) -> runner.PipelineResult:
        import subprocess

        data = self.dump(snapshot_id, path)
        completed = runner.run(consumer, input=data, env=consumer_environment, check=False)
        return runner.PipelineResult(
            producer=subprocess.CompletedProcess(["restic", "dump"], 0, "", ""),
            consumer=completed)

    def forget(self, policy: KeepPolicy, *, tags: Iterable[str] = (),
               group_by: str = "host,tags", dry_run: bool = False, prune: bool = False,
               timeout: float | None = None) -> list[ForgetGroup]:
        self.calls.append("forget")
        chosen = self.snapshots(tags=tags)
        keep = chosen[-policy.last:] if policy.last else chosen
        remove = [snapshot for snapshot in chosen if snapshot not in keep]
        if not dry_run:
            self.listed = [snapshot for snapshot in self.listed if snapshot not in remove]
        return [ForgetGroup(tags=tuple(tags), host="", keep=tuple(keep), remove=tuple(remove))]

    def forget_snapshots(self, snapshot_ids: Sequence[str], *, prune: bool = False) -> None:
        self.calls.append("forget_snapshots")
        self.listed = [snapshot for snapshot in self.listed
                       if not any(snapshot.matches(one) for one in snapshot_ids)]
