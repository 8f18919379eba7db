"""The public side of monitoring: the status page, a Prometheus scrape, and what history costs.

Everything reads the bench's SQLite database, filled here with rows (no probing):

``status_page_ms``
    Server time of ``GET /status/`` (Django's test client: URL resolution,
    middleware, the queries, the template) for 50 public services of one probe
    each, with 90 daily and 24 hourly roll-ups each, two incidents and two
    maintenance windows: the median of 50 requests, after 3 to warm up. Target ≤ 50 ms.
    ``status_page_cpu_ms`` is the same requests' CPU time, which a machine busy
    with other work does not inflate.
``metrics_scrape_ms``
    Server time of ``GET /metrics`` with a bearer token, with 1,000 enabled
    probes (the 50 above and 950 private ones, a third with a certificate),
    median of 20 scrapes. Target ≤ 200 ms.
``probe_storage_bytes_per_probe_day``
    Database bytes one probe adds per day once its results are rolled up: the
    24 hourly and the one daily roll-up rows it keeps for years. Measured on
    20 probes by 90 days of roll-ups in a database of their own, as the bytes of
    the ``monitoring_rollup`` table and its indexes (SQLite's ``dbstat``: the
    pages they occupy, free space inside the pages included), divided by
    probes and days. No target. ``probe_raw_window_bytes_per_probe`` is the raw
    results' share (48 h at one result a minute, pruned after): bounded, not growing.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

from bench.figures import Report, progress
from chaton.core import clock

STATUS_SERVICES = 50
METRICS_PROBES = 1000
DAYS = 90
STATUS_RUNS = 50
METRICS_RUNS = 20
WARM_UP = 3
STORAGE_PROBES = 20
RAW_HOURS = 48
TOKEN = "benchmark-scrape-token"


def _rollups(probe_ids: list[int], days: int) -> list[Any]:
    """Return unsaved daily and hourly roll-ups of ``days`` days for each probe."""
    from chaton.monitoring.models import Rollup

    today = clock.today()
    rows = []
    for probe_id in probe_ids:
        for offset in range(days):
            start = clock.start_of_day(today - dt.timedelta(days=offset))
            down = 600.0 if offset % 17 == 0 else 0.0
            rows.append(Rollup(probe_id=probe_id, period="day", start=start,
                               up_seconds=86400.0 - down, down_seconds=down, checks=1440,
                               failures=int(down // 60), p50_ms=38.5, p95_ms=91.25,
                               p99_ms=180.0))
            for hour in range(24):
                rows.append(Rollup(probe_id=probe_id, period="hour",
                                   start=start + dt.timedelta(hours=hour),
                                   up_seconds=3600.0, checks=60, p50_ms=38.5, p95_ms=91.25,
                                   p99_ms=180.0))
    return rows


def populate_status() -> None:
    """Create the 1,000 probes, the public ones' 90 days of roll-ups, incidents, windows."""
    from chaton.monitoring.models import Incident, Maintenance, Probe, Rollup

    now = clock.now()
    probes = [Probe(key=f"instance-service-{index:04d}-https", name=f"service {index}",
                    kind="http" if index % 5 else "tcp",
                    target=f"https://service-{index}.example.org/",
                    service=f"Service {index:02d}" if index < STATUS_SERVICES
                    else f"Private {index:04d}",
                    public=index < STATUS_SERVICES, state="down" if index % 97 == 0 else "up",
                    last_checked_at=now, last_duration_ms=30.0 + index % 50,
                    cert_expires_at=now + dt.timedelta(days=60) if index % 3 == 0 else None)
              for index in range(METRICS_PROBES)]
    Probe.objects.bulk_create(probes, batch_size=500)
    public_ids = list(Probe.objects.filter(public=True).values_list("pk", flat=True))
    Rollup.objects.bulk_create(_rollups(public_ids, DAYS), batch_size=2000)
    Incident.objects.create(probe_id=public_ids[0], opened_at=now - dt.timedelta(minutes=30),
                            first_error="[STATUS] (503) == 200")
    Incident.objects.create(probe_id=public_ids[1], opened_at=now - dt.timedelta(days=1),
                            resolved_at=now - dt.timedelta(hours=23), first_error="timeout")
    Maintenance.objects.create(starts_at=now - dt.timedelta(hours=1),
                               ends_at=now + dt.timedelta(hours=1), title="Upgrade",
                               services=["Service 03"])
    Maintenance.objects.create(starts_at=now + dt.timedelta(days=3),
                               ends_at=now + dt.timedelta(days=3, hours=2), title="Storage")


def server_milliseconds(client: Client, url: str, runs: int,
                        **headers: str) -> tuple[list[float], list[float]]:
    """GET ``url`` ``runs`` times (after a warm-up); return each answer's milliseconds, of
    the clock and of this process's CPU (the second is what a busy machine does not inflate).

    Raise RuntimeError on an answer other than 200: a fast refusal is no figure.
    """
    samples, cpu_samples = [], []
    for run in range(WARM_UP + runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, **headers)
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu_started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        if run >= WARM_UP:
            samples.append(elapsed)
            cpu_samples.append(cpu)
    return samples, cpu_samples


def _table_bytes(table: str) -> int:
    """Return the bytes of the pages SQLite gives ``table`` and its indexes (``dbstat``)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                       "(SELECT name FROM sqlite_master WHERE tbl_name = %s)", [table])
        (size,) = cursor.fetchone()
    return int(size or 0)


def bench_storage(report: Report) -> None:
    """Measure the roll-ups' bytes per probe per day, and the raw window's per probe."""
    from chaton.monitoring.models import Probe, Result, Rollup

    Rollup.objects.all().delete()
    Result.objects.all().delete()
    ids = list(Probe.objects.order_by("pk").values_list("pk", flat=True)[:STORAGE_PROBES])
    Rollup.objects.bulk_create(_rollups(ids, DAYS), batch_size=2000)
    now = clock.now()
    minutes = RAW_HOURS * 60
    Result.objects.bulk_create(
        (Result(probe_id=probe_id, at=now - dt.timedelta(minutes=minute), ok=minute % 500 != 0,
                duration_ms=37.25 + minute % 13,
                error="" if minute % 500 else "[STATUS] (503) == 200")
         for probe_id in ids for minute in range(minutes)), batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    rollup_bytes = _table_bytes("monitoring_rollup")
    raw_bytes = _table_bytes("monitoring_result")
    progress(f"roll-ups {rollup_bytes} bytes, raw window {raw_bytes} bytes, with their indexes")
    report.figure("probe_storage_bytes_per_probe_day", rollup_bytes / (len(ids) * DAYS),
                  "bytes", digits=0)
    report.figure("probe_raw_window_bytes_per_probe", raw_bytes / len(ids), "bytes", digits=0)


def run_all(workspace: Path) -> int:
    """Given a fresh workspace (Django set up on it), run the benchmarks; return the exit status."""
    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    section = getattr(settings.CHATON, "monitoring", None)
    if section is None:
        section = SimpleNamespace()
        settings.CHATON.monitoring = section
    section.metrics_token = TOKEN
    progress(f"{METRICS_PROBES} probes, {STATUS_SERVICES} public with {DAYS} days of roll-ups")
    populate_status()
    report = Report()
    client = Client()
    samples, cpu = server_milliseconds(client, "/status/?lang=en", STATUS_RUNS)
    status_ms = statistics.median(samples)
    report.figure("status_page_ms", status_ms, "ms", digits=1)
    report.figure("status_page_cpu_ms", statistics.median(cpu), "ms", digits=1)
    report.figure("status_page_ratio", status_ms / 50, "x", digits=2)
    report.target("status_page_ms", status_ms, 50, "ms")
    samples, cpu = server_milliseconds(client, "/metrics", METRICS_RUNS,
                                       HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    metrics_ms = statistics.median(samples)
    report.figure("metrics_scrape_ms", metrics_ms, "ms", digits=1)
    report.figure("metrics_scrape_cpu_ms", statistics.median(cpu), "ms", digits=1)
    report.figure("metrics_scrape_ratio", metrics_ms / 200, "x", digits=2)
    report.target("metrics_scrape_ms", metrics_ms, 200, "ms")
    bench_storage(report)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
