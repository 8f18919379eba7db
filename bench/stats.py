"""The statistics benchmark: one day's collection over 30 instances whose APIs answer locally.

The APIs are :mod:`chaton.testing.stats_apis` in a process of its own (its CPU is
not counted as the collection's): 30 instances — Mattermost, Nextcloud, Kanboard
and BookStack in turn — each read over HTTP as in production (Mattermost's 30
days of analytics, Kanboard's tasks per project …), plus the collective's own
figures and an access log of 30,000 requests (1,000 per instance).

``stats_collect_30_s``
    The wall-clock time of ``collect_day`` (median of 3). Target ≤ 5 s;
    ``stats_collect_30_ratio`` is the figure over its target.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from django.core.management import call_command

from bench.figures import Report, progress
from chaton.core import clock
from chaton.core.servers import free_port

TARGET_SECONDS = 5.0
INSTANCES = 30
REQUESTS_PER_INSTANCE = 1000
RUNS = 3
ENTRIES = ("mattermost", "nextcloud", "kanboard", "bookstack")


def write_log(path: Path, domains: list[str], day: dt.date) -> None:
    start = clock.start_of_day(day).timestamp()
    with path.open("w") as stream:
        for index in range(REQUESTS_PER_INSTANCE):
            for number, domain in enumerate(domains):
                agent = "curl/8.5.0" if index % 10 == 0 else "Mozilla/5.0 Firefox/128.0"
                stream.write(json.dumps({
                    "level": "info", "ts": start + index * 60 + number,
                    "logger": "http.log.access.log0", "msg": "handled request",
                    "request": {"client_ip": f"203.0.{index % 250}.{number}", "method": "GET",
                                "host": domain, "uri": "/",
                                "headers": {"User-Agent": [agent]}},
                    "status": 200, "size": 1000, "duration": 0.001}) + "\n")


def run_all(workspace: Path) -> int:
    from chaton.services.models import Host, Instance
    from chaton.stats.collect import collect_day
    from chaton.stats.collectors import Source
    from chaton.stats.models import Gap, LogCursor, Sample

    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    host = Host.objects.create(name="bench", docker_url="unix:///run/none.sock")
    instances = [Instance.objects.create(slug=f"app{index}", application=ENTRIES[index % 4],
                                         domain=f"app{index}.example.org", host=host,
                                         port=30000 + index)
                 for index in range(INSTANCES)]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "chaton.testing.stats_apis", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"

        def source(instance: Instance, day: dt.date, client: object) -> Source:
            return Source(slug=instance.slug, entry=instance.application, day=day,
                          base_url=url, client=client,  # type: ignore[arg-type]
                          secrets={"stats_token": "token", "admin_password": "secret"})
        day = clock.today() - dt.timedelta(days=1)
        log = workspace / "access.log"
        write_log(log, [instance.domain for instance in instances], day)
        progress(f"{RUNS} collections of {INSTANCES} instances and "
                 f"{INSTANCES * REQUESTS_PER_INSTANCE} logged requests")
        durations = []
        for _run in range(RUNS):
            Sample.objects.all().delete()
            LogCursor.objects.all().delete()
            started = time.monotonic()
            result = collect_day(day, instances=instances, make_source=source, access_log=log)
            durations.append(time.monotonic() - started)
            assert not result.gaps, result.gaps
            assert result.requests == INSTANCES * REQUESTS_PER_INSTANCE
        assert not Gap.objects.exists()
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = Report()
    median = statistics.median(durations)
    report.figure("stats_collect_30_s", median, "s")
    report.figure("stats_collect_30_ratio", median / TARGET_SECONDS, "x", digits=2)
    report.target("stats_collect_30_s", median, TARGET_SECONDS, "s")
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
