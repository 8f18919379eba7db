"""The checks Chaton computes itself: Docker engines, backup plans, disk space, its own web.

Each returns a :class:`~chaton.monitoring.engine.ProbeResult` like the engine's,
plus a ``warning`` flag for a result that holds but needs attention soon (a
disk almost full). They never raise: a failure is a result with ``ok`` false.
The Docker pings run in threads (:func:`run_computed`) so a host that does not
answer costs one timeout, not one per host.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import httpx

from chaton.adapters.docker import DockerError
from chaton.backups import queries as backup_queries
from chaton.backups.models import DrillOutcome, Plan
from chaton.core import clock
from chaton.monitoring.engine import ProbeResult
from chaton.monitoring.models import Kind, Probe
from chaton.services.engine import engine_for
from chaton.services.models import Host

#: Free space under these shares puts a disk probe in warning, or down.
DISK_WARNING_FREE = 0.10
DISK_DOWN_FREE = 0.05


def _timed(key: str, check: Callable[[], str | None], started: float) -> ProbeResult:
    try:
        error = check()
    except Exception as failure:  # a computed check never breaks the cycle
        error = (str(failure) or type(failure).__name__)[:300]
    return ProbeResult(key, error is None, (time.monotonic() - started) * 1000, error or "")


def docker_check(probe: Probe, host: Host | None) -> ProbeResult:
    """Ping the host's Docker engine (its version and name). Touches no database: it runs
    in a thread of its own."""
    started = time.monotonic()

    def check() -> str | None:
        if host is None:
            return "no such host"
        try:
            engine_for(host).info()
        except DockerError as error:
            return f"the Docker engine does not answer: {error}"[:300]
        return None

    return _timed(probe.key, check, started)


def backup_check(probe: Probe, now: dt.datetime) -> ProbeResult:
    """A backup plan's last good backup against its threshold, its last drill, its
    repository's last check."""
    started = time.monotonic()

    def check() -> str | None:
        name, _, aspect = probe.target.rpartition(":")
        plan = Plan.objects.filter(name=name).select_related("repository").first()
        if plan is None:
            return "no such plan"
        status = backup_queries.plan_status(plan)
        if aspect == "age":
            if backup_queries.is_stale(plan, status.last_good_at, now):
                when = (status.last_good_at.isoformat(timespec="minutes")
                        if status.last_good_at else "never")
                return (f"last good backup {when}, older than {plan.stale_after_hours} h")
            return None
        if aspect == "drill":
            drill = status.last_drill
            if drill is not None and drill.outcome == DrillOutcome.FAILED:
                return "the last restore drill failed"
            return None
        repository = plan.repository
        if repository.checked_at is not None and repository.check_ok is False:
            return f"the last repository check found errors: {repository.check_message}"[:300]
        return None

    return _timed(probe.key, check, started)


def disk_check(probe: Probe) -> tuple[ProbeResult, bool]:
    """Free space of the probe's folder; return the result and whether it is a warning."""
    started = time.monotonic()
    try:
        usage = shutil.disk_usage(probe.target)
    except OSError as error:
        return ProbeResult(probe.key, False, 0.0, str(error)[:300]), False
    free = usage.free / usage.total if usage.total else 0.0
    duration = (time.monotonic() - started) * 1000
    text = f"{free:.0%} free ({usage.free // 2**30} GiB of {usage.total // 2**30} GiB)"
    if free < DISK_DOWN_FREE:
        return ProbeResult(probe.key, False, duration, text), False
    return ProbeResult(probe.key, True, duration, text if free < DISK_WARNING_FREE else ""), \
        free < DISK_WARNING_FREE


def web_check(probe: Probe) -> ProbeResult:
    """Chaton's own web answers below 500 at its public URL."""
    started = time.monotonic()

    def check() -> str | None:
        try:
            response = httpx.get(probe.target, timeout=probe.timeout_seconds)
        except httpx.HTTPError as error:
            return (str(error) or type(error).__name__)[:300]
        return f"HTTP {response.status_code}" if response.status_code >= 500 else None

    return _timed(probe.key, check, started)


def run_computed(probes: Sequence[Probe], now: dt.datetime | None = None
                 ) -> dict[str, tuple[ProbeResult, bool]]:
    """Run the computed probes (in threads, each bounded by its timeout); return by key the
    result and whether it is a warning."""
    now = now or clock.now()
    out: dict[str, tuple[ProbeResult, bool]] = {}
    threaded: list[Probe] = []
    for probe in probes:
        if probe.kind == Kind.BACKUP:
            out[probe.key] = (backup_check(probe, now), False)
        elif probe.kind == Kind.DISK:
            out[probe.key] = disk_check(probe)
        else:
            threaded.append(probe)
    if not threaded:
        return out
    hosts = {host.name: host for host in Host.objects.all()}
    pool = ThreadPoolExecutor(max_workers=min(8, len(threaded)))
    futures = {probe.key: (pool.submit(docker_check, probe, hosts.get(probe.key.split(":")[1]))
                           if probe.kind == Kind.DOCKER else pool.submit(web_check, probe))
               for probe in threaded}
    limit = max(probe.timeout_seconds for probe in threaded) + 1
    wait(futures.values(), timeout=limit)
    for key, future in futures.items():
        if future.done():
            out[key] = (future.result(), False)
        else:
            out[key] = (ProbeResult(key, False, limit * 1000, "timed out"), False)
    pool.shutdown(wait=False, cancel_futures=True)
    return out
