"""The one runner for every subprocess Chaton starts.

It sets a timeout, masks secrets in what it logs, and turns failures into
typed exceptions::

    CommandError(RuntimeError)
    ├── CommandNotFound(FileNotFoundError)   the program is not installed
    ├── CommandTimeout(TimeoutError)         it ran past its timeout and was killed
    └── CommandFailed                        it exited non-zero (``returncode``, ``stderr``)

:func:`run` waits for a short command; :func:`stream` runs a long one and
hands its output over line by line; :func:`pipeline` runs ``producer |
consumer`` (a dump streamed into restic) and reports both exit codes.

Nothing here imports Django.
"""

from __future__ import annotations

import collections
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

logger = logging.getLogger("chaton.runner")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember ``value`` so that no log line of this process ever shows it."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def mask(text: str, extra: Sequence[str] = ()) -> str:
    """Return ``text`` with every registered secret (and ``extra`` ones) replaced by ``***``."""
    for secret in (*_secrets, *extra):
        if secret:
            text = text.replace(secret, "***")
    return text


class SecretMaskingFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = mask(record.getMessage())
            record.args = None
        return True


class CommandError(RuntimeError):
    def __init__(self, message: str, *, command: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.command = list(command)


class CommandNotFound(CommandError, FileNotFoundError):
    pass


class CommandTimeout(CommandError, TimeoutError):
    pass


class CommandStalled(CommandTimeout):
    """The command printed nothing for longer than its idle timeout and was killed.

    ``stderr`` holds the last lines it wrote there, masked.
    """

    def __init__(self, message: str, *, command: Sequence[str] = (), stderr: str = "") -> None:
        super().__init__(message, command=command)
        self.stderr = stderr


class CommandFailed(CommandError):
    def __init__(self, message: str, *, command: Sequence[str], returncode: int,
                 stdout: str, stderr: str) -> None:
        super().__init__(message, command=command)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def run(
    command: Sequence[str],
    *,
    timeout: float = 60,
    input: str | bytes | None = None,
    secrets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a list, never a shell string) and return its completed process.

    ``secrets`` are masked in logs and in the messages of the exceptions raised.
    Raise CommandNotFound, CommandTimeout, or CommandFailed when ``check`` is
    true and the exit code is not zero.
    """
    shown = mask(" ".join(command), secrets)
    logger.debug("run: %s", shown)
    data = input.decode() if isinstance(input, bytes) else input
    try:
        completed = subprocess.run(
            list(command), input=data, capture_output=True, text=True,
            timeout=timeout, env=dict(env) if env is not None else None, check=False,
        )
    except FileNotFoundError:
        raise CommandNotFound(f"{command[0]}: not installed", command=command) from None
    except subprocess.TimeoutExpired:
        raise CommandTimeout(f"{shown}: no answer after {timeout:g} s", command=command) from None
    if check and completed.returncode != 0:
        stderr = mask(completed.stderr.strip(), secrets)
        raise CommandFailed(
            f"{shown}: exit {completed.returncode}: {stderr.splitlines()[-1] if stderr else ''}",
            command=command, returncode=completed.returncode,
            stdout=mask(completed.stdout, secrets), stderr=stderr,
        )
    return completed


def start(command: Sequence[str], *, log_path: str | None = None,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running server process and return it; the caller stops it by its pid."""
    logger.debug("start: %s", mask(" ".join(command)))
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None)
    except FileNotFoundError:
        raise CommandNotFound(f"{command[0]}: not installed", command=command) from None
    finally:
        # The child has its own copy of the descriptor; ours would leak.
        if not isinstance(output, int):
            output.close()


# -- long commands and two-process pipelines -------------------------------------------------
#
# ``run`` above waits for a short command and keeps its whole output. Backups need
# more: a command that runs for minutes and reports progress line by line, data
# fed to a command's standard input, and a producer (pg_dump, slapcat …) whose
# output flows straight into a consumer (restic) without ever touching the disk.

#: The last lines of standard error kept per process: enough for the error, bounded in memory.
STDERR_TAIL_LINES = 200
_PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _load_prctl() -> Any:
    """Return libc's ``prctl``, loaded once in the parent so the child only calls it."""
    global _prctl
    if _prctl is None:
        import ctypes
        import ctypes.util

        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    return _prctl


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel to SIGKILL it when its parent dies.

    A backup whose process is killed must not leave a pg_dump or a restic running
    on its own, holding the repository's lock for an hour.
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _spawn(command: Sequence[str], *, stdin: Any, stdout: Any, env: Mapping[str, str] | None,
           die_with_parent: bool) -> subprocess.Popen[bytes]:
    """Start ``command`` with standard error piped. Raise CommandNotFound."""
    logger.debug("start: %s", mask(" ".join(command)))
    preexec = None
    if die_with_parent and sys.platform == "linux":
        _load_prctl()
        preexec = _die_with_parent
    try:
        return subprocess.Popen(list(command), stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE,
                                env=dict(env) if env is not None else None,
                                # preexec only calls prctl: it takes no lock a thread could hold.
                                preexec_fn=preexec)
    except FileNotFoundError:
        raise CommandNotFound(f"{command[0]}: not installed", command=command) from None


class _StderrTail(threading.Thread):
    """Read a process's standard error to its end, keeping the last lines."""

    def __init__(self, stream: IO[bytes], on_line: Callable[[], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.on_line = on_line
        self.lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def run(self) -> None:
        for raw in self.stream:
            self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
            if self.on_line is not None:
                self.on_line()
        self.stream.close()

    def text(self, secrets: Sequence[str]) -> str:
        self.join()
        return mask("\n".join(self.lines).strip(), secrets)


def _feed(stream: IO[bytes], data: bytes) -> None:
    """Write ``data`` to a child's standard input and close it; a child that exits early is fine."""
    try:
        stream.write(data)
    except (BrokenPipeError, ValueError):
        pass  # the child stopped reading: its exit code tells why
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            pass


def _read_lines(stream: IO[bytes], on_line: Callable[[str], None] | None) -> str:
    """Read ``stream`` to its end; hand each line to ``on_line``, or return them all joined."""
    kept: list[str] = []
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if on_line is not None:
            on_line(line)
        else:
            kept.append(line)
    stream.close()
    return "\n".join(kept) + ("\n" if kept else "")


class _Deadline:
    """Kill the given processes once ``timeout`` seconds have passed, unless cancelled first."""

    def __init__(self, processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
        self.expired = False
        self._processes = processes
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        for process in self._processes:
            if process.poll() is None:
                process.kill()

    def cancel(self) -> None:
        self._timer.cancel()


class _IdleWatch:
    """Kill a process that makes no progress for ``idle_timeout`` seconds: it writes no line
    on either stream, or (with a ``progress_mark``) only lines that say it went no further.

    Some programs deadlock rather than exit on an error (restic 0.14 can, on a
    full disk): a program told to report progress regularly that falls silent,
    or that keeps repeating the same figures, has stopped working.
    """

    def __init__(self, process: subprocess.Popen[bytes], idle_timeout: float) -> None:
        self.stalled = False
        self._process = process
        self._idle_timeout = idle_timeout
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def touch(self) -> None:
        self._last = time.monotonic()

    def _watch(self) -> None:
        while not self._done.wait(min(1.0, self._idle_timeout)):
            if time.monotonic() - self._last > self._idle_timeout:
                if self._process.poll() is None:
                    self.stalled = True
                    self._process.kill()
                return

    def cancel(self) -> None:
        self._done.set()


def _kill_and_reap(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill whichever of ``processes`` still run and wait for all of them."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()


def stream(
    command: Sequence[str],
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    input: bytes | None = None,
    secrets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
    die_with_parent: bool = True,
    idle_timeout: float | None = None,
    progress_mark: Callable[[str], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a long ``command``, handing each line of its standard output to ``on_line`` as it comes.

    With ``idle_timeout``, a command that makes no progress for that long is
    killed and CommandStalled raised. Progress is a line on either stream; with
    ``progress_mark``, a line of standard output counts only when its mark (the
    figures a status line reports, say) differs from the last status line's,
    or when the mark is None (a line that is not a status line).

    Without ``on_line`` the output is kept and returned as ``stdout``; standard
    error keeps its last :data:`STDERR_TAIL_LINES` lines, masked. ``input`` is
    written to its standard input from a thread, so a large input never
    deadlocks against a large output. With ``die_with_parent`` the child is
    killed by the kernel if this process dies. Raise CommandNotFound,
    CommandTimeout (the process is killed), or CommandFailed when ``check`` is
    true and the exit code is not zero.
    """
    shown = mask(" ".join(command), secrets)
    process = _spawn(command, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                     stdout=subprocess.PIPE, env=env, die_with_parent=die_with_parent)
    assert process.stdout is not None and process.stderr is not None
    watch = _IdleWatch(process, idle_timeout) if idle_timeout is not None else None
    stderr = _StderrTail(process.stderr, watch.touch if watch is not None else None)
    stderr.start()
    feeder = None
    if input is not None:
        assert process.stdin is not None
        feeder = threading.Thread(target=_feed, args=(process.stdin, input), daemon=True)
        feeder.start()
    deadline = _Deadline([process], timeout)
    reader = on_line
    kept: list[str] = []
    if watch is not None:
        last_mark: list[object] = []

        def reader(line: str) -> None:
            mark = progress_mark(line) if progress_mark is not None else None
            if mark is None or not last_mark or mark != last_mark[0]:
                watch.touch()
            if mark is not None:
                last_mark[:] = [mark]
            if on_line is not None:
                on_line(line)
            else:
                kept.append(line)
    try:
        stdout = _read_lines(process.stdout, reader)
        if watch is not None and on_line is None:
            stdout = "\n".join(kept) + ("\n" if kept else "")
        returncode = process.wait()
    except BaseException:
        _kill_and_reap([process])
        raise
    finally:
        deadline.cancel()
        if watch is not None:
            watch.cancel()
    if feeder is not None:
        feeder.join()
    error_text = stderr.text(secrets)
    if watch is not None and watch.stalled:
        raise CommandStalled(f"{shown}: no progress for {idle_timeout:g} s, stopped",
                             command=command, stderr=error_text)
    if deadline.expired:
        raise CommandTimeout(f"{shown}: no answer after {timeout:g} s", command=command)
    if check and returncode != 0:
        raise CommandFailed(
            f"{shown}: exit {returncode}: {error_text.splitlines()[-1] if error_text else ''}",
            command=command, returncode=returncode, stdout=mask(stdout, secrets),
            stderr=error_text,
        )
    return subprocess.CompletedProcess(list(command), returncode, mask(stdout, secrets),
                                       error_text)


@dataclass(frozen=True)
class PipelineResult:
    """How both ends of a pipeline ended: exit codes, the consumer's output, standard errors."""

    producer: subprocess.CompletedProcess[str]
    consumer: subprocess.CompletedProcess[str]

    @property
    def ok(self) -> bool:
        return self.producer.returncode == 0 and self.consumer.returncode == 0


def pipeline(
    producer: Sequence[str],
    consumer: Sequence[str],
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    producer_env: Mapping[str, str] | None = None,
    consumer_env: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    die_with_parent: bool = True,
) -> PipelineResult:
    """Run ``producer | consumer``: the producer's standard output is the consumer's input.

    The data flows from one process to the other through a kernel pipe, never
    through Python nor the disk. The consumer's standard output goes to
    ``on_line`` line by line (or is kept, without it). Both standard errors keep
    their last lines, masked. Both processes are killed after ``timeout``
    seconds. Nothing is raised for exit codes: the caller reads both of them
    in the result (a producer that failed half way still leaves the consumer
    with a clean end of file). Raise CommandNotFound for either program, and
    CommandTimeout.
    """
    shown = mask(" ".join(producer) + " | " + " ".join(consumer), secrets)
    first = _spawn(producer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=producer_env,
                   die_with_parent=die_with_parent)
    assert first.stdout is not None and first.stderr is not None
    try:
        second = _spawn(consumer, stdin=first.stdout, stdout=subprocess.PIPE, env=consumer_env,
                        die_with_parent=die_with_parent)
    except BaseException:
        _kill_and_reap([first])
        first.stdout.close()
        first.stderr.close()
        raise
    # Only the consumer may hold the read end: the producer must get SIGPIPE if it dies.
    first.stdout.close()
    assert second.stdout is not None and second.stderr is not None
    producer_errors, consumer_errors = _StderrTail(first.stderr), _StderrTail(second.stderr)
    producer_errors.start()
    consumer_errors.start()
    deadline = _Deadline([first, second], timeout)
    try:
        stdout = _read_lines(second.stdout, on_line)
        consumer_code = second.wait()
        producer_code = first.wait()
    except BaseException:
        _kill_and_reap([first, second])
        raise
    finally:
        deadline.cancel()
    producer_text, consumer_text = producer_errors.text(secrets), consumer_errors.text(secrets)
    if deadline.expired:
        raise CommandTimeout(f"{shown}: no answer after {timeout:g} s",
                             command=[*producer, "|", *consumer])
    return PipelineResult(
        producer=subprocess.CompletedProcess(list(producer), producer_code, "", producer_text),
        consumer=subprocess.CompletedProcess(list(consumer), consumer_code,
                                             mask(stdout, secrets), consumer_text),
    )


def run_binary(
    command: Sequence[str],
    *,
    timeout: float,
    input: bytes | None = None,
    secrets: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
    die_with_parent: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` and return its standard output as bytes, exactly (a dump, a database).

    Standard error comes back as masked text in ``stderr``'s bytes. Raise
    CommandNotFound, CommandTimeout (the process is killed), or CommandFailed
    when ``check`` is true and the exit code is not zero.
    """
    shown = mask(" ".join(command), secrets)
    process = _spawn(command, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                     stdout=subprocess.PIPE, env=env, die_with_parent=die_with_parent)
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_and_reap([process])
        raise CommandTimeout(f"{shown}: no answer after {timeout:g} s", command=command) from None
    except BaseException:
        _kill_and_reap([process])
        raise
    error_text = mask(stderr.decode("utf-8", errors="replace").strip(), secrets)
    if check and process.returncode != 0:
        raise CommandFailed(
            f"{shown}: exit {process.returncode}: "
            f"{error_text.splitlines()[-1] if error_text else ''}",
            command=command, returncode=process.returncode, stdout="", stderr=error_text)
    return subprocess.CompletedProcess(list(command), process.returncode, stdout,
                                       error_text.encode())
