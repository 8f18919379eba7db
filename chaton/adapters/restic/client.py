"""The real restic client, over the restic command line: :class:`Restic`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaton.adapters.restic import (
    DEFAULT_STALL_TIMEOUT,
    DEFAULT_TIMEOUT,
    PROGRESS_PER_SECOND,
    SHORT_TIMEOUT,
    WATCHED_PROGRESS_PER_SECOND,
    BackupProgress,
    BackupSummary,
    CheckResult,
    CorruptRepository,
    ForgetGroup,
    KeepPolicy,
    NoSpace,
    RepositoryMissing,
    ResticError,
    ResticNotInstalled,
    ResticTimeout,
    Snapshot,
    SourceFailed,
    classify,
    last_meaningful_line,
)
from chaton.core import runner

_INHERITED_RESTIC_VARIABLES = re.compile(r"^(RESTIC_|AWS_|B2_|AZURE_|GOOGLE_|OS_|ST_|RCLONE_)")


@dataclass
class Restic:
    """The restic command line for one repository.

    ``environment`` adds variables (S3 keys …) whose values are secrets too.
    ``cache_directory`` keeps restic's cache out of the user's home; ``timezone``
    is the zone in which ``--time`` is read and retention days are counted.
    """

    location: str
    password: str
    environment: Mapping[str, str] = field(default_factory=dict)
    program: str = "restic"
    cache_directory: str | None = None
    timezone: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: A backup that prints nothing (not even its progress, asked every few seconds) for
    #: this long is stopped: restic 0.14 can deadlock instead of exiting on a full disk.
    stall_timeout: float = DEFAULT_STALL_TIMEOUT

    def __post_init__(self) -> None:
        for secret in (self.password, *self.environment.values()):
            runner.register_secret(secret)

    # -- plumbing ----------------------------------------------------------

    @property
    def _secrets(self) -> list[str]:
        return [self.password, *self.environment.values()]

    def _environment(self) -> dict[str, str]:
        """Return the environment restic runs in: ours less any restic settings, plus the repo's."""
        environment = {name: value for name, value in os.environ.items()
                       if not _INHERITED_RESTIC_VARIABLES.match(name)}
        environment.update(self.environment)
        environment["RESTIC_PASSWORD"] = self.password
        environment["RESTIC_REPOSITORY"] = self.location
        if self.timezone:
            environment["TZ"] = self.timezone
        return environment

    def _command(self, *arguments: str) -> list[str]:
        command = [self.program]
        if self.cache_directory:
            command += ["--cache-dir", self.cache_directory]
        return [*command, *arguments]

    def _error(self, command: Sequence[str], detail: str, returncode: int | None) -> ResticError:
        """Return the exception for a failed ``command`` with its standard error ``detail``."""
        detail = runner.mask(detail, self._secrets)
        reason = last_meaningful_line(detail) or f"exit {returncode}"
        message = f"restic {command[len(self._command())] if len(command) > 1 else ''}: {reason}"
        return classify(detail, command=command, returncode=returncode, message=message)

    def _run(self, *arguments: str, timeout: float = SHORT_TIMEOUT,
             input: bytes | None = None, on_line: Callable[[str], None] | None = None,
             check: bool = True) -> tuple[int, str, str]:
        """Run restic with ``arguments``; return (exit code, stdout, stderr).

        Raise the ResticError matching its standard error when ``check`` is
        true and it fails; ResticNotInstalled, ResticTimeout.
        """
        command = self._command(*arguments)
        try:
            completed = runner.stream(command, timeout=timeout, on_line=on_line, input=input,
                                      secrets=self._secrets, env=self._environment(),
                                      check=False)
        except runner.CommandNotFound:
            raise ResticNotInstalled(f"{self.program}: not installed (Debian package restic)",
                                     command=command) from None
        except runner.CommandTimeout as error:
            raise ResticTimeout(str(error), command=command) from None
        if check and completed.returncode != 0:
            raise self._error(command, completed.stderr, completed.returncode)
        return completed.returncode, completed.stdout, completed.stderr

    # -- repository --------------------------------------------------------

    def init(self) -> None:
        """Create the repository. Raise RepositoryExists when one is there, other ResticErrors."""
        self._run("init")

    def exists(self) -> bool:
        """Return whether a repository this password opens is at the location.

        Raise WrongPassword when one is there but the password does not open it,
        and the other ResticErrors (unreachable …); a missing one returns False.
        """
        try:
            self._run("cat", "config", "--no-lock")
        except RepositoryMissing:
            return False
        return True

    def unlock(self) -> None:
        """Remove the stale locks (left by a restic that was killed). Raise ResticError."""
        self._run("unlock")

    def check(self, *, read_data_subset: str | None = None,
              timeout: float | None = None) -> CheckResult:
        """Check the repository's structure and, with ``read_data_subset`` (``"10%"``,
        ``"1/5"``, ``"100%"``), read and verify that part of the data.

        Return the result, ``ok`` false when restic found errors (not raised:
        finding them is the point). Raise the other ResticErrors (password,
        missing, locked …).
        """
        arguments = ["check"]
        if read_data_subset:
            arguments += ["--read-data-subset", read_data_subset]
        code, stdout, stderr = self._run(*arguments, timeout=timeout or self.timeout,
                                         check=False)
        output = (stdout + "\n" + stderr).strip()
        if code == 0:
            return CheckResult(ok=True, errors=(), output=output)
        error = self._error(self._command(*arguments), stderr, code)
        if not isinstance(error, CorruptRepository) and "error" not in stdout.lower():
            raise error
        errors = tuple(line.strip() for line in output.splitlines()
                       if re.search(r"error|does not match|not found|damaged|fail", line, re.I)
                       and not line.strip().startswith("check "))
        return CheckResult(ok=False, errors=errors or (last_meaningful_line(stderr),),
                           output=output)

    def stats(self, *, mode: str = "raw-data") -> dict[str, Any]:
        """Return ``restic stats --json`` in ``mode`` (raw-data: the repository's real size)."""
        _code, stdout, _stderr = self._run("stats", "--json", "--mode", mode,
                                           timeout=self.timeout)
        result: dict[str, Any] = json.loads(stdout)
        return result

    # -- backup ------------------------------------------------------------

    def _backup_options(self, *, tags: Iterable[str], host: str,
                        time: dt.datetime | None) -> list[str]:
        options = ["backup", "--json", "--host", host]
        for tag in tags:
            options += ["--tag", tag]
        if time is not None:
            # restic reads the time in its own zone (TZ, set from ``timezone``).
            if time.tzinfo is not None and self.timezone:
                time = time.astimezone(zoneinfo.ZoneInfo(self.timezone))
            options += ["--time", time.strftime("%Y-%m-%d %H:%M:%S")]
        return options

    @staticmethod
    def _progress_reader(progress: Callable[[BackupProgress], None] | None,
                         found: list[BackupSummary], errors: list[str]) -> Callable[[str], None]:
        """Return a line handler that turns ``--json`` lines into progress and a summary."""

        def read(line: str) -> None:
            try:
                data = json.loads(line)
            except ValueError:
                return  # restic prints a few plain lines even with --json
            if not isinstance(data, dict):
                return
            kind = data.get("message_type")
            if kind == "summary":
                found.append(BackupSummary.from_json(data))
            elif kind == "error":
                errors.append(str(data.get("error", {}).get("message", data)))
            elif kind == "status" and progress is not None:
                total = int(data.get("total_bytes", 0))
                progress(BackupProgress(
                    bytes_done=int(data.get("bytes_done", 0)), total_bytes=total,
                    files_done=int(data.get("files_done", 0)),
                    total_files=int(data.get("total_files", 0)),
                    fraction=float(data.get("percent_done", 0.0)) if total else 0.0))

        return read

    @staticmethod
    def _status_mark(line: str) -> object:
        """Given a line of ``restic backup --json``, return the figures of a status line
        (what restic read and found so far), or None for any other line: a status that
        repeats the last one's figures is no progress."""
        if '"status"' not in line:
            return None
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("message_type") != "status":
            return None
        return tuple(data.get(key) for key in ("bytes_done", "files_done", "total_bytes",
                                               "total_files", "error_count"))

    def _progress_environment(self, listening: bool) -> dict[str, str]:
        environment = self._environment()
        if listening:
            environment["RESTIC_PROGRESS_FPS"] = PROGRESS_PER_SECOND
        return environment

    def backup_paths(self, paths: Sequence[str], *, tags: Iterable[str], host: str,
                     exclude: Sequence[str] = (), time: dt.datetime | None = None,
                     progress: Callable[[BackupProgress], None] | None = None,
                     timeout: float | None = None) -> BackupSummary:
        """Back up ``paths`` (absolute) into one snapshot; return its summary.

        Raise SourceFailed when some files could not be read (restic still
        saved a snapshot of the rest: its id is in ``detail``), and the
        ResticErrors.
        """
        options = self._backup_options(tags=tags, host=host, time=time)
        for pattern in exclude:
            options += ["--exclude", pattern]
        command = self._command(*options, "--", *paths)
        found: list[BackupSummary] = []
        errors: list[str] = []
        environment = self._progress_environment(progress is not None)
        # Status lines every few seconds at least: silence then means restic is stuck.
        environment.setdefault("RESTIC_PROGRESS_FPS", WATCHED_PROGRESS_PER_SECOND)
        try:
            completed = runner.stream(command, timeout=timeout or self.timeout,
                                      on_line=self._progress_reader(progress, found, errors),
                                      secrets=self._secrets, env=environment, check=False,
                                      idle_timeout=self.stall_timeout,
                                      progress_mark=self._status_mark)
        except runner.CommandNotFound:
            raise ResticNotInstalled(f"{self.program}: not installed", command=command) from None
        except runner.CommandStalled as error:
            # What it said before falling silent (a full disk, say) is the reason.
            said = self._error(command, error.stderr, None) if error.stderr else None
            if isinstance(said, NoSpace):
                raise said from None
            raise ResticTimeout(f"restic backup stopped answering: {error}",
                                command=command) from None
        except runner.CommandTimeout as error:
            raise ResticTimeout(str(error), command=command) from None
        if completed.returncode == 3 and found:
            # restic 0.14: "snapshot created, but some files could not be read".
            raise SourceFailed(
                f"restic backup: some files could not be read (snapshot {found[0].snapshot_id} "
                f"is incomplete): {'; '.join(errors[:3]) or completed.stderr[-300:]}",
                command=command, detail=found[0].snapshot_id, returncode=3)
        if completed.returncode != 0 or not found:
            raise self._error(command, completed.stderr, completed.returncode)
        return found[0]

    def backup_stream(self, producer: Sequence[str] | bytes, *, filename: str,
                      tags: Iterable[str], host: str, time: dt.datetime | None = None,
                      producer_environment: Mapping[str, str] | None = None,
                      progress: Callable[[BackupProgress], None] | None = None,
                      timeout: float | None = None, secrets: Sequence[str] = ()
                      ) -> BackupSummary:
        """Back up a stream as the file ``/filename`` of a new snapshot; return its summary.

        ``producer`` is either a command whose standard output is the data
        (pg_dump …, piped straight into ``restic backup --stdin``: the data is
        never written in clear to the disk), or the bytes themselves. When the
        producer fails, the snapshot restic made of its partial output is
        forgotten at once and SourceFailed is raised with the producer's
        message. Raise the ResticErrors for restic's own failures.
        """
        options = [*self._backup_options(tags=tags, host=host, time=time), "--stdin",
                   "--stdin-filename", filename]
        command = self._command(*options)
        all_secrets = [*self._secrets, *secrets]
        found: list[BackupSummary] = []
        errors: list[str] = []
        reader = self._progress_reader(progress, found, errors)
        environment = self._progress_environment(progress is not None)
        try:
            if isinstance(producer, bytes):
                completed = runner.stream(command, timeout=timeout or self.timeout,
                                          on_line=reader, input=producer, secrets=all_secrets,
                                          env=environment, check=False)
                producer_code, producer_error = 0, ""
            else:
                result = runner.pipeline(
                    producer, command, timeout=timeout or self.timeout, on_line=reader,
                    producer_env=producer_environment, consumer_env=environment,
                    secrets=all_secrets)
                completed = result.consumer
                producer_code, producer_error = result.producer.returncode, result.producer.stderr
        except runner.CommandNotFound as error:
            if error.command and error.command[0] == self.program:
                raise ResticNotInstalled(f"{self.program}: not installed",
                                         command=command) from None
            raise SourceFailed(str(error), command=error.command, detail=str(error)) from None
        except runner.CommandTimeout as error:
            raise ResticTimeout(str(error), command=command) from None
        if producer_code != 0:
            if found and found[0].snapshot_id:
                # A snapshot of half a dump would look like a good backup: remove it now.
                self.forget_snapshots([found[0].snapshot_id])
            restic_failed = completed.returncode != 0
            if restic_failed and not found:
                # restic failing first (wrong password, full disk) makes the producer fail
                # with a broken pipe: restic's own error is the one that matters.
                raise self._error(command, completed.stderr, completed.returncode)
            shown = runner.mask(" ".join(producer), all_secrets)  # type: ignore[arg-type]
            reason = last_meaningful_line(producer_error) or f"exit {producer_code}"
            raise SourceFailed(f"{shown}: {reason}", command=list(producer),  # type: ignore[arg-type]
                               detail=producer_error, returncode=producer_code)
        if completed.returncode != 0 or not found:
            raise self._error(command, completed.stderr or "; ".join(errors),
                              completed.returncode)
        return found[0]

    # -- reading -----------------------------------------------------------

    def snapshots(self, *, tags: Iterable[str] = (), host: str | None = None
                  ) -> list[Snapshot]:
        """Return the snapshots (those bearing all ``tags``, of ``host``), oldest first."""
        arguments = ["snapshots", "--json", "--no-lock"]
        tag_list = ",".join(tags)
        if tag_list:
            arguments += ["--tag", tag_list]
        if host:
            arguments += ["--host", host]
        _code, stdout, _stderr = self._run(*arguments)
        snapshots = [Snapshot.from_json(item) for item in json.loads(stdout or "[]") or []]
        return sorted(snapshots, key=lambda snapshot: snapshot.time)

    def restore(self, snapshot_id: str, target: str | Path, *, include: Sequence[str] = (),
                verify: bool = True, timeout: float | None = None) -> None:
        """Restore snapshot ``snapshot_id`` (or its ``include`` paths) under ``target``.

        With ``verify``, restic reads every restored file back and checks it
        against the SHA-256 of its chunks recorded at backup time. Raise
        CorruptRepository when data is damaged, and the other ResticErrors.
        """
        arguments = ["restore", snapshot_id, "--target", str(target)]
        for path in include:
            arguments += ["--include", path]
        if verify:
            arguments.append("--verify")
        code, stdout, stderr = self._run(*arguments, timeout=timeout or self.timeout,
                                         check=False)
        # restic 0.14 prints "ignoring error for …" and still exits 1: every error counts.
        if code != 0 or "ignoring error" in stderr:
            raise self._error(self._command(*arguments), stderr or stdout, code)

    def dump(self, snapshot_id: str, path: str, *, timeout: float | None = None) -> bytes:
        """Return the exact bytes of the file ``path`` in snapshot ``snapshot_id``.

        The file is held in memory: for small files (an LDIF, Chaton's SQLite
        database). Raise CorruptRepository when its data is damaged, and the
        other ResticErrors.
        """
        command = self._command("dump", snapshot_id, path)
        try:
            completed = runner.run_binary(command, timeout=timeout or self.timeout,
                                          secrets=self._secrets, env=self._environment(),
                                          check=False)
        except runner.CommandNotFound:
            raise ResticNotInstalled(f"{self.program}: not installed", command=command) from None
        except runner.CommandTimeout as error:
            raise ResticTimeout(str(error), command=command) from None
        if completed.returncode != 0:
            raise self._error(command, completed.stderr.decode(), completed.returncode)
        return completed.stdout

    def dump_into(self, snapshot_id: str, path: str, consumer: Sequence[str], *,
                  consumer_environment: Mapping[str, str] | None = None,
                  timeout: float | None = None, secrets: Sequence[str] = ()
                  ) -> runner.PipelineResult:
        """Stream the file ``path`` of a snapshot into ``consumer``'s standard input.

        ``restic dump | consumer`` (pg_restore …): the data never lands on the
        disk in clear. Return both ends' results when restic succeeded (the
        caller judges the consumer's exit code). Raise CorruptRepository when
        the data is damaged, and the other ResticErrors.
        """
        command = self._command("dump", snapshot_id, path)
        try:
            result = runner.pipeline(command, consumer, timeout=timeout or self.timeout,
                                     producer_env=self._environment(),
                                     consumer_env=consumer_environment,
                                     secrets=[*self._secrets, *secrets])
        except runner.CommandNotFound as error:
            if error.command and error.command[0] == self.program:
                raise ResticNotInstalled(f"{self.program}: not installed",
                                         command=command) from None
            raise
        except runner.CommandTimeout as error:
            raise ResticTimeout(str(error), command=command) from None
        if result.producer.returncode != 0:
            raise self._error(command, result.producer.stderr, result.producer.returncode)
        return result

    # -- retention ---------------------------------------------------------

    def forget(self, policy: KeepPolicy, *, tags: Iterable[str] = (),
               group_by: str = "host,tags", dry_run: bool = False, prune: bool = False,
               timeout: float | None = None) -> list[ForgetGroup]:
        """Apply ``policy`` to the snapshots bearing all ``tags``, grouped by ``group_by``.

        Return, group by group, the snapshots kept and those removed (with
        ``dry_run``: that would be). ``prune`` then removes the data no
        snapshot needs any more. A policy that keeps everything removes
        nothing and calls nothing. Raise the ResticErrors.
        """
        if policy.keeps_everything:
            return [ForgetGroup(tags=tuple(tags), host="", keep=tuple(self.snapshots(tags=tags)),
                                remove=())]
        arguments = ["forget", "--json", "--group-by", group_by, *policy.arguments()]
        tag_list = ",".join(tags)
        if tag_list:
            arguments += ["--tag", tag_list]
        if dry_run:
            arguments.append("--dry-run")
        elif prune:
            arguments.append("--prune")
        _code, stdout, _stderr = self._run(*arguments, timeout=timeout or self.timeout)
        # With --prune, prune's own report follows the JSON line.
        first = next((line for line in stdout.splitlines() if line.startswith("[")), "[]")
        groups = []
        for item in json.loads(first) or []:
            groups.append(ForgetGroup(
                tags=tuple(item.get("tags") or ()), host=item.get("host") or "",
                keep=tuple(Snapshot.from_json(one) for one in item.get("keep") or ()),
                remove=tuple(Snapshot.from_json(one) for one in item.get("remove") or ())))
        return groups

    def forget_snapshots(self, snapshot_ids: Sequence[str], *, prune: bool = False) -> None:
        """Forget the snapshots named (a failed backup's); with ``prune``, drop their data too."""
        if snapshot_ids:
            self._run("forget", *(["--prune"] if prune else []), *snapshot_ids,
                      timeout=self.timeout)


