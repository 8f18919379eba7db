"""OpenDKIM as Chaton's signer: its tables and key files in its folder, reloaded on change.

The folder (``[mail_identity] signer_config_dir``) holds what OpenDKIM's configuration names::

    KeyTable       file:   <selector>._domainkey.<domain> <domain>:<selector>:<key file>
    SigningTable   refile: *@<domain> <selector>._domainkey.<domain>
    keys/          one private key file per key (0600), named by the key's own hash
    held.tsv       what the running signer took at its last reload (written by this client)

Key files are named by their content, so a signer that has not reloaded yet still finds the
files its old tables name; files no table names any more go once the signer took the new
tables. A reload is SIGUSR1 to the pid in OpenDKIM's pid file (it re-reads its configuration
and tables), confirmed when the kernel no longer holds the signal pending for it and its
reloader thread waits in sigwait() again (``/proc/<pid>/task/*/wchan``), or a command
(``signer_reload_command``, the ``reload`` argument) whose exit 0 confirms it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from chaton.adapters.opendkim import (
    SignerError,
    SignerUnavailable,
    SigningKey,
    check_keys,
    public_key_of,
)
from chaton.core import runner

#: The bit of SIGUSR1 in /proc/<pid>/status's pending masks.
_USR1_BIT = 1 << (signal.SIGUSR1 - 1)


class OpenDkimSigner:
    """The OpenDKIM whose tables are in ``config_dir``. ``reload``: the command that makes it
    re-read them (``[mail_identity] signer_reload_command``, split as a shell would, never run
    by one); empty: SIGUSR1 to the pid in ``pid_file`` (default ``<config_dir>/opendkim.pid``).
    """

    def __init__(self, config_dir: str | Path, *, reload: str | Sequence[str] = "",
                 pid_file: str | Path | None = None, timeout: float = 5.0) -> None:
        self.config_dir = Path(config_dir)
        self.pid_file = Path(pid_file) if pid_file else self.config_dir / "opendkim.pid"
        self.reload_command = (shlex.split(reload) if isinstance(reload, str)
                               else list(reload))
        self.timeout = timeout

    # -- the folder ------------------------------------------------------------------------

    @property
    def _keys_dir(self) -> Path:
        return self.config_dir / "keys"

    @property
    def _manifest(self) -> Path:
        return self.config_dir / "held.tsv"

    def _key_path(self, domain: str, selector: str, pem: str) -> Path:
        digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
        return self._keys_dir / f"{domain}.{selector}.{digest}.private"

    @staticmethod
    def _write(path: Path, text: str, mode: int = 0o644) -> None:
        """Write ``text`` to ``path`` at once (a reader sees the old file or the new one)."""
        temporary = path.with_name(f".{path.name}.new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)

    def _pid(self) -> int:
        """Return the running OpenDKIM's pid. Raise SignerUnavailable when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            raise SignerUnavailable(f"OpenDKIM is not running (no live pid in "
                                    f"{self.pid_file})") from None
        return pid

    def _reload(self) -> int | None:
        """Make OpenDKIM re-read its tables; return its pid (None when a command did it).

        Raise SignerUnavailable when it is not running or does not take the signal in time.
        """
        if self.reload_command:
            try:
                runner.run(self.reload_command, timeout=self.timeout)
            except runner.CommandError as failure:
                raise SignerUnavailable(f"the signer's reload command failed: {failure}"
                                        ) from None
            return None
        pid = self._pid()
        # OpenDKIM's reloader thread waits in sigwait(); it takes the signal, reads the
        # configuration and tables, and waits again: done when it is back waiting.
        waiting = _threads_in_sigwait(pid)
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + self.timeout
        while _signal_pending(pid, _USR1_BIT) or (
                waiting is not None and not waiting <= (_threads_in_sigwait(pid) or set())):
            if time.monotonic() > deadline:
                raise SignerUnavailable(f"OpenDKIM (pid {pid}) did not reload within "
                                        f"{self.timeout:g} s")
            time.sleep(0.01)
        if waiting is None:
            # No way to see its threads wait (/proc/<pid>/task/*/wchan hidden): let the
            # reloader read the tables.
            time.sleep(0.2)
        return pid

    # -- the protocol ------------------------------------------------------------------------

    def install(self, keys: Sequence[SigningKey]) -> None:
        wanted = check_keys(keys)
        self._keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._keys_dir, 0o700)
        key_lines, signing_lines, manifest_lines = [], [], []
        for key in sorted(keys, key=lambda key: (key.domain.lower(), key.selector)):
            domain = key.domain.lower().rstrip(".")
            path = self._key_path(domain, key.selector, key.private_key_pem)
            if not path.exists():
                self._write(path, key.private_key_pem, 0o600)
            name = f"{key.selector}._domainkey.{domain}"
            key_lines.append(f"{name} {domain}:{key.selector}:{path}\n")
            signing_lines.append(f"*@{domain} {name}\n")
            manifest_lines.append(f"{domain}\t{key.selector}\t{path.name}\n")
        key_table, signing_table = "".join(key_lines), "".join(signing_lines)
        manifest = "".join(manifest_lines)
        try:
            unchanged = (self._manifest.read_text() == self._with_pid(manifest)
                         and (self.config_dir / "KeyTable").read_text() == key_table
                         and (self.config_dir / "SigningTable").read_text() == signing_table)
        except OSError:
            unchanged = False
        if unchanged and len(wanted) == len(manifest_lines):
            return
        self._write(self.config_dir / "KeyTable", key_table)
        self._write(self.config_dir / "SigningTable", signing_table)
        pid = self._reload()
        self._write(self._manifest, (f"pid\t{pid}\n" if pid else "") + manifest)
        referenced = {line.split("\t")[2].strip() for line in manifest_lines}
        for path in self._keys_dir.glob("*.private"):
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def _with_pid(self, manifest: str) -> str:
        if self.reload_command:
            return manifest
        try:
            return f"pid\t{self._pid()}\n{manifest}"
        except SignerUnavailable:
            return ""

    def held(self) -> dict[tuple[str, str], str]:
        pid = None if self.reload_command else self._pid()
        entries: list[tuple[str, str, Path]] = []
        try:
            manifest = self._manifest.read_text().splitlines()
        except FileNotFoundError:
            manifest = []
        recorded_pid = next((line.split("\t")[1] for line in manifest
                             if line.startswith("pid\t")), None)
        if pid is not None and recorded_pid != str(pid):
            # Started (or restarted) since the last reload this client made: it read the
            # tables as they are on disk.
            entries = self._key_table()
        else:
            for line in manifest:
                parts = line.split("\t")
                if len(parts) == 3 and parts[0] != "pid":
                    entries.append((parts[0], parts[1], self._keys_dir / parts[2]))
        held: dict[tuple[str, str], str] = {}
        for domain, selector, path in entries:
            try:
                held[(domain, selector)] = public_key_of(path.read_text())
            except (OSError, SignerError) as failure:
                raise SignerUnavailable(f"cannot read the key of {selector}._domainkey."
                                        f"{domain}: {failure}") from None
        return held

    def _key_table(self) -> list[tuple[str, str, Path]]:
        try:
            lines = (self.config_dir / "KeyTable").read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].count(":") >= 2:
                domain, selector, path = parts[1].split(":", 2)
                entries.append((domain, selector, Path(path)))
        return entries


def _threads_in_sigwait(pid: int) -> set[int] | None:
    """Return the threads of ``pid`` waiting in sigwait(), None when the kernel does not
    show where threads wait."""
    waiting: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            where = (task / "wchan").read_text()
        except OSError:
            continue
        if "sigtimedwait" in where:
            waiting.add(int(task.name))
    return waiting or None


def _signal_pending(pid: int, bit: int) -> bool:
    """Whether ``pid`` still holds the signal of ``bit`` pending (or is stopped, so will not
    take it). Raise SignerUnavailable when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        raise SignerUnavailable(f"OpenDKIM (pid {pid}) exited") from None
    pending = 0
    stopped = False
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            pending |= int(line.split()[1], 16)
        elif line.startswith("State:"):
            stopped = line.split()[1] in ("T", "t")
    if stopped:
        return True
    if pending & bit:
        return True
    # A thread of the process may hold it too.
    for task in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in task.read_text().splitlines():
                if line.startswith("SigPnd:") and int(line.split()[1], 16) & bit:
                    return True
        except OSError:
            continue
    return False
