"""One day's collection: every instance's collector, the collective's figures, the access log.

Each instance's collector runs in a thread with :data:`COLLECTOR_TIMEOUT`
seconds; one that fails or overruns leaves its figures empty for the day and a
:class:`~chaton.stats.models.Gap` (a warning, logged and shown on the pages),
never a failed collection. Samples are written with ``update_or_create``: a
second collection of the same day replaces the first's values.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.db import transaction

from chaton.core import clock, secrets
from chaton.services import proxy
from chaton.services.models import DesiredState, Instance
from chaton.stats import access_logs, collectors
from chaton.stats.collectors import CollectorError, Figures, Source
from chaton.stats.models import CHATON, Gap, Sample
from chaton.stats.own import own_figures

logger = logging.getLogger("chaton.stats")

#: Seconds one instance's collector may take.
COLLECTOR_TIMEOUT = 30.0
#: A volume's glob (from the manifest) goes to a shell: letters, digits and ``_./?*-`` only.
_GLOB = re.compile(r"^[A-Za-z0-9_./?*-]+$")
#: Collectors run at the same time.
WORKERS = 8

SourceFactory = Callable[[Instance, dt.date, httpx.Client], Source]


@dataclass
class Collection:
    """What a collection did: samples written, gaps left (subject → why), HTTP requests read."""

    day: dt.date
    samples: int = 0
    gaps: dict[str, str] = field(default_factory=dict)
    requests: int = 0


def _usage(instance: Instance) -> list[tuple[str, str, str]]:
    return [(figure.name, figure.source, figure.query) for figure in instance.manifest.usage]


def _workload(instance: Instance, role: str) -> tuple[Any, Any]:
    from chaton.services.engine import engine_for

    engine = engine_for(instance.host)
    for workload in engine.snapshot().workloads:
        if workload.instance == instance.slug and workload.role == role:
            return engine, workload
    raise CollectorError(f"no {role} container of {instance.slug} runs")


def engine_source(instance: Instance, day: dt.date, client: httpx.Client) -> Source:
    """Return the source of a deployed instance: its published port on its host, its secrets,
    SQL run in its database container, its volumes read in its application container."""
    from chaton.services import render

    manifest = instance.manifest
    values = {name: secrets.decrypt(ciphertext) for name, ciphertext in instance.secrets.items()}
    sql = files = None
    if manifest.database is not None:
        kind, name = manifest.database.kind, render.database_name(manifest)

        def sql(query: str) -> Sequence[Sequence[str]]:
            if kind == "postgres":
                command = ["psql", "-At", "-F", "\t", "-U", name, "-d", name, "-c", query]
            else:
                command = ["mariadb", "-N", "-B", "-u", "root",
                           f"-p{values.get('database_root_password', '')}", name, "-e", query]
            engine, workload = _workload(instance, render.DATABASE)
            code, output = engine.execute(workload, command)
            if code != 0:
                raise CollectorError(f"the database answered {code}: {output.strip()[:200]}")
            return [line.split("\t") for line in output.splitlines() if line.strip()]
    paths = {volume.name: volume.path for volume in manifest.volumes}
    if paths:
        def files(volume: str, pattern: str) -> int:
            if volume not in paths:
                raise CollectorError(f"the volume {volume!r} is not the manifest's")
            if not _GLOB.match(pattern):
                raise CollectorError(f"the pattern {pattern!r} is not a plain glob")
            engine, workload = _workload(instance, render.APP)
            script = f"cd {shlex.quote(paths[volume])} && ls -1d {pattern} 2>/dev/null | wc -l"
            _code, output = engine.execute(workload, ["sh", "-c", script])
            return int(output.strip().splitlines()[-1]) if output.strip() else 0
    host = instance.host.address or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return Source(slug=instance.slug, entry=instance.application, day=day,
                  base_url=f"http://{host}:{instance.port}", client=client, secrets=values,
                  sql=sql, files=files, usage=_usage(instance))


def _store(figures: Figures, entry: str, subject: str, day: dt.date) -> int:
    now = clock.now()
    written = 0
    for key, value in figures.items():
        name, when = (key, day) if isinstance(key, str) else key
        figure = f"{entry}.{name}" if entry else name
        Sample.objects.update_or_create(figure=figure, subject=subject, day=when,
                                        defaults={"value": float(value), "collected_at": now})
        written += 1
    return written


def _run_one(instance: Instance, day: dt.date, client: httpx.Client,
             make_source: SourceFactory) -> Figures:
    module = collectors.module_for(instance.application)
    source = make_source(instance, day, client)
    if module is None:
        return collectors.manifest_figures(source)
    result: Figures = module.collect(source)
    return result


def collect_instances(day: dt.date, instances: Iterable[Instance], result: Collection, *,
                      make_source: SourceFactory = engine_source,
                      timeout: float = COLLECTOR_TIMEOUT) -> None:
    """Run the collector of every instance that has usage figures; record samples and gaps."""
    chosen = []
    for instance in instances:
        try:
            manifest = instance.manifest
        except KeyError:
            continue
        if manifest.usage or collectors.module_for(instance.application):
            chosen.append(instance)
    if not chosen:
        return
    pool = ThreadPoolExecutor(max_workers=min(WORKERS, len(chosen)),
                              thread_name_prefix="stats-collector")
    # A collector past its timeout is left behind (its thread ends with its own HTTP
    # timeout): shutting the pool down does not wait for it.
    with httpx.Client(follow_redirects=False, timeout=collectors.TIMEOUT) as client:
        try:
            _collect_all(day, chosen, result, client, pool, make_source, timeout)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _collect_all(day: dt.date, chosen: list[Instance], result: Collection,
                 client: httpx.Client, pool: ThreadPoolExecutor, make_source: SourceFactory,
                 timeout: float) -> None:
    futures = [(instance, pool.submit(_run_one, instance, day, client, make_source))
               for instance in chosen]
    started = time.monotonic()
    for position, (instance, future) in enumerate(futures):
        slug = instance.slug
        # Each collector has ``timeout`` seconds once a worker takes it up.
        deadline = started + timeout * (position // WORKERS + 1)
        try:
            figures = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()
            _gap(result, slug, instance.application, f"no answer within {timeout:g} s")
            continue
        except httpx.HTTPStatusError as error:
            _gap(result, slug, instance.application,
                 f"{error.request.url.path} answered {error.response.status_code}")
            continue
        except (CollectorError, httpx.HTTPError, OSError, ValueError, KeyError,
                TypeError) as error:
            _gap(result, slug, instance.application,
                 (str(error) or type(error).__name__).splitlines()[0])
            continue
        with transaction.atomic():
            result.samples += _store(figures, instance.application, slug, day)
            Gap.objects.filter(subject=slug, day=day, collector=instance.application).delete()


def _gap(result: Collection, subject: str, collector: str, message: str) -> None:
    logger.warning("stats: %s (%s) gave no figures for %s: %s", subject, collector,
                   result.day, message)
    result.gaps[subject] = message
    Gap.objects.update_or_create(subject=subject, day=result.day, collector=collector,
                                 defaults={"message": message[:2000], "noted_at": clock.now()})


def collect_day(day: dt.date | None = None, *, instances: Iterable[Instance] | None = None,
                make_source: SourceFactory = engine_source,
                access_log: Any = None, timeout: float = COLLECTOR_TIMEOUT) -> Collection:
    """Collect every figure of ``day`` (default: today); see the module's docstring."""
    day = day or clock.today()
    result = Collection(day=day)
    if instances is None:
        instances = Instance.objects.exclude(state=DesiredState.REMOVED).select_related("host")
    chosen = list(instances)
    collect_instances(day, chosen, result, make_source=make_source, timeout=timeout)
    with transaction.atomic():
        result.samples += _store(own_figures(day), "", CHATON, day)
    path = access_log if access_log is not None else proxy.access_log_path()
    if path:
        hosts = {instance.domain.lower(): instance.slug for instance in chosen}
        result.requests = access_logs.read_access_log(path, hosts)
        access_logs.forget_past_days()
    return result
