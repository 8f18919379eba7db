"""The benchmarks themselves; :mod:`bench.__main__` sets up Django first, then calls run_all."""

from __future__ import annotations

import math
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.core.management import call_command

from bench.population import Population, populate
from chaton.adapters.ldap import use_ldap
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock, runner
from chaton.core.servers import free_port
from chaton.directory import reconcile
from chaton.directory.projection import Projection

BASE_DN = "dc=chaton,dc=test"
LOOKUP_RUNS = 100
SIMPLE_BIND_RUNS = 30
NOOP_RUNS = 3

Result = TypeVar("Result")


def progress(message: str) -> None:
    """Tell the person waiting what is going on (stderr: stdout holds only figures)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def timed(function: Callable[[], Result]) -> tuple[Result, float]:
    """Call ``function`` and return (its result, the seconds it took)."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples`` (``fraction`` 0.99 for p99)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Report:
    """Prints figures and target checks as they come, and remembers missed targets."""

    def __init__(self) -> None:
        self.missed: list[str] = []

    def figure(self, name: str, value: float, unit: str, digits: int = 3) -> None:
        print(f"BENCH {name} {value:.{digits}f} {unit}", flush=True)

    def target(self, name: str, value: float, limit: float, unit: str) -> None:
        verdict = "met" if value <= limit else "MISSED"
        if verdict == "MISSED":
            self.missed.append(name)
        print(f"TARGET {name} <= {limit:g} {unit} {verdict}", flush=True)


@contextmanager
def slapd_in(workspace: Path, name: str) -> Iterator[ManagedSlapd]:
    """Start an empty ManagedSlapd in ``workspace/name`` and stop it (by its pid) at the end."""
    server = ManagedSlapd(workspace / name, port=free_port(), base_dn=BASE_DN,
                          admin_password=secrets.token_urlsafe(24))
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.stop()


def directory_of(server: ManagedSlapd) -> LdapDirectory:
    return LdapDirectory(server.url, server.admin_dn, server.admin_password, timeout=60)


def write_ldif(path: Path) -> int:
    """Write the whole desired directory as LDIF to ``path``: units first, groups last.

    Return the number of entries. The order is the reconciler's: parents before
    children, accounts before the groups that name them.
    """
    import ldif

    projection = Projection(BASE_DN, at=clock.now(),
                            users_gid_number=settings.CHATON.directory.users_gid_number)
    entries = projection.desired()

    def order(dn: str) -> tuple[int, str]:
        if dn.startswith("ou="):
            return (0, dn)
        return (2 if ",ou=groups," in dn else 1, dn)

    with path.open("w", encoding="ascii") as file:
        writer = ldif.LDIFWriter(file, cols=1_000_000)
        for dn in sorted(entries, key=order):
            writer.unparse(dn, entries[dn])
    return len(entries)


def bench_directory(report: Report, workspace: Path) -> None:
    """Time the first full reconcile against ldapadd, then a reconcile with nothing to do."""
    ldif_path = workspace / "directory.ldif"
    count = write_ldif(ldif_path)
    progress(f"{count} entries to load")

    with slapd_in(workspace, "slapd-ldapadd") as server:
        progress("ldapadd into an empty slapd")
        _, ldapadd_seconds = timed(lambda: runner.run(
            ["ldapadd", "-x", "-H", server.url, "-D", server.admin_dn,
             "-w", server.admin_password, "-f", str(ldif_path)],
            secrets=[server.admin_password], timeout=1800))

    with slapd_in(workspace, "slapd-sync") as server:
        directory = directory_of(server)
        with use_ldap(directory, BASE_DN):
            progress("first reconcile into an empty slapd")
            (plan, outcome), sync_seconds = timed(reconcile.sync_all)
            if outcome is None or not outcome.ok or outcome.applied != count:
                raise RuntimeError(f"the first reconcile did not write the {count} entries: "
                                   f"{outcome}")
            noop_times = []
            for run in range(NOOP_RUNS):
                progress(f"reconcile with nothing to change ({run + 1}/{NOOP_RUNS})")
                (plan, _outcome), seconds = timed(reconcile.sync_all)
                if not plan.is_noop:
                    raise RuntimeError(f"a second reconcile found changes: {plan.counts()}")
                noop_times.append(seconds)
        directory.close()

    report.figure("directory_sync_10k_s", sync_seconds, "s")
    report.figure("ldapadd_10k_s", ldapadd_seconds, "s")
    ratio = sync_seconds / ldapadd_seconds
    report.figure("directory_sync_10k_ratio", ratio, "x", digits=2)
    report.target("directory_sync_10k_ratio", ratio, 1.5, "x")
    noop = statistics.median(noop_times)
    report.figure("directory_noop_10k_s", noop, "s")
    report.target("directory_noop_10k_s", noop, 1.0, "s")


def chaton_command() -> list[str]:
    """Return how sshd would start ``chaton``: the console script beside this Python."""
    script = Path(sys.executable).parent / "chaton"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "chaton.cli.entry"]


def time_lookups(configuration: Path, uid: str, runs: int) -> list[float]:
    """Run ``chaton ssh-keys`` ``runs`` times for ``uid``; return each run's milliseconds.

    Raise RuntimeError when a run prints no key: a fast wrong answer is no figure.
    """
    command = [*chaton_command(), "ssh-keys", "--config", str(configuration), uid]
    # sshd gives the command an almost empty environment; so does this.
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    samples = []
    for _ in range(runs):
        completed, seconds = timed(lambda: runner.run(command, env=environment, timeout=30))
        if not completed.stdout.startswith("ssh-ed25519 "):
            raise RuntimeError(f"chaton ssh-keys printed no key for {uid}: "
                               f"{completed.stdout!r} {completed.stderr!r}")
        samples.append(seconds * 1000)
    return samples


def bench_ssh_keys(report: Report, workspace: Path, population: Population) -> None:
    """Time the whole ``chaton ssh-keys`` process against a slapd holding the 10k accounts."""
    with slapd_in(workspace, "slapd-lookup") as server:
        directory = directory_of(server)
        with use_ldap(directory, BASE_DN):
            progress("loading the directory for the ssh-keys lookups")
            reconcile.sync_all()
        directory.close()

        external = workspace / "ssh-keys-external.toml"
        external.write_text(
            f'data_dir = "{workspace / "data"}"\n'
            f'[ldap]\nmanaged = false\nurl = "{server.ldapi_url}"\nbase_dn = "{BASE_DN}"\n',
            encoding="utf-8")
        password_file = workspace / "bind-password"
        password_file.write_text(server.admin_password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        simple = workspace / "ssh-keys-simple.toml"
        simple.write_text(
            f'data_dir = "{workspace / "data"}"\n'
            f'[ldap]\nmanaged = false\nurl = "{server.url}"\nbase_dn = "{BASE_DN}"\n'
            f'bind_dn = "{server.admin_dn}"\nbind_password_file = "{password_file}"\n',
            encoding="utf-8")

        progress(f"{LOOKUP_RUNS} ssh-keys lookups (SASL EXTERNAL over ldapi)")
        time_lookups(external, population.tech_member_uid, 3)  # warm the page cache
        samples = time_lookups(external, population.tech_member_uid, LOOKUP_RUNS)
        progress(f"{SIMPLE_BIND_RUNS} ssh-keys lookups (simple bind)")
        simple_samples = time_lookups(simple, population.tech_member_uid, SIMPLE_BIND_RUNS)

    report.figure("ssh_keys_lookup_median_ms", statistics.median(samples), "ms", digits=1)
    p99 = percentile(samples, 0.99)
    report.figure("ssh_keys_lookup_p99_ms", p99, "ms", digits=1)
    report.target("ssh_keys_lookup_p99_ms", p99, 100, "ms")
    report.figure("ssh_keys_simple_bind_p99_ms", percentile(simple_samples, 0.99), "ms",
                  digits=1)


def run_all(workspace: Path) -> int:
    """Given a fresh workspace (Django set up on it), run the benchmarks; return the exit status."""
    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    population = populate()
    progress(f"{population.accounts} accounts, {population.groups} groups, "
             f"{population.memberships} memberships, {population.ssh_keys} SSH keys")
    report = Report()
    bench_directory(report, workspace)
    bench_ssh_keys(report, workspace, population)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
