"""The services benchmark: a dockerd, a Caddy and pebble of the benchmark's own, all real.

A dockerd (:class:`chaton.testing.docker.TemporaryDockerd`) runs the local
test image ``chaton-test/web:1`` (imported, never pulled); Caddy gets its
certificates from pebble, as in the integration tests. Then:

``services_deploy_ready_s``
    From ``do_create_instance`` to the instance answering over HTTPS through
    Caddy, with a new certificate issued by pebble (median of 3 instances).
    No target: reported.
``services_deploy_action_s``
    The part of it spent in the action itself: checks, the row, the reconcile
    it triggers (network, volume, container) and the routes handed to Caddy,
    until ``do_create_instance`` returns (median of 3). The rest is Caddy
    obtaining the certificate and the container starting to answer. No target.
``services_noop_reconcile_20_s``
    ``reconcile()`` over 20 running instances with nothing to change: one
    snapshot of the host (a few list calls, no inspect), the diff by labels,
    one look at Caddy's configuration (median of 5). Target ≤ 2 s.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from bench.figures import Report, progress, timed

INSTANCES = 20
READY_RUNS = 3
NOOP_RUNS = 5


@contextmanager
def servers(workspace: Path) -> Iterator[tuple[object, object]]:
    """Start a dockerd, pebble (with its DNS) and Caddy in ``workspace``; point Chaton's proxy
    settings at that Caddy; yield (dockerd, pebble); stop them all by their pids."""
    from chaton.adapters.caddy.server import ManagedCaddy
    from chaton.core.servers import free_port
    from chaton.project.config import ProxyConfig
    from chaton.testing.acme import ChallengeDns, Pebble
    from chaton.testing.docker import TemporaryDockerd

    # dockerd's folder holds its sockets: short, under /tmp.
    docker_folder = Path(tempfile.mkdtemp(prefix="chaton-bench-docker-"))
    dockerd = TemporaryDockerd(docker_folder)
    acme_folder = workspace / "acme"
    acme_folder.mkdir()
    dns = ChallengeDns(acme_folder, free_port(), free_port())
    pebble = Pebble(acme_folder, port=free_port(), management_port=free_port(),
                    http_port=free_port(), tls_port=free_port(), dns_port=dns.port)
    caddy = ManagedCaddy(workspace / "caddy", admin_port=free_port())
    try:
        dockerd.start()
        dns.start()
        pebble.start()
        caddy.start()
        proxy = ProxyConfig()
        proxy.managed = False
        proxy.admin_url = caddy.admin_url
        proxy.http_port = pebble.http_port
        proxy.https_port = free_port()
        proxy.acme_ca = pebble.directory_url
        proxy.acme_ca_root = str(pebble.https_root)
        proxy.acme_email = "admin@chaton.test"
        settings.CHATON.proxy = proxy
        yield dockerd, pebble
    finally:
        caddy.stop()
        pebble.stop()
        dns.stop()
        dockerd.stop()
        shutil.rmtree(docker_folder, ignore_errors=True)


def bench_services(report: Report, workspace: Path) -> None:
    """Deploy instances of the test application and time what the figures say."""
    from chaton.services import actions, catalog, reconcile
    from chaton.testing.acme import Pebble, wait_for_https
    from chaton.testing.docker import TEST_CATALOG, TemporaryDockerd

    with servers(workspace) as (dockerd, pebble), catalog.extra_folder(TEST_CATALOG):
        assert isinstance(dockerd, TemporaryDockerd) and isinstance(pebble, Pebble)
        dockerd.build_web_images()
        roots = pebble.roots_path()
        host = actions.do_create_host("bench", dockerd.url, acting_user=None,
                                      address="127.0.0.1", is_default=True)
        ready, action = [], []
        for index in range(INSTANCES):
            domain = f"web{index:02d}.chaton.test"
            started = time.perf_counter()
            actions.do_create_instance("webtest", domain, host, acting_user=None)
            if index < READY_RUNS:
                action.append(time.perf_counter() - started)
                wait_for_https(domain, settings.CHATON.proxy.https_port, roots=roots,
                               expect=b"chaton-test web version 1", timeout=60)
                ready.append(time.perf_counter() - started)
        progress(f"{INSTANCES} instances deployed")
        reconcile.reconcile()  # the certificates of the last ones settle first
        samples = []
        for run in range(NOOP_RUNS):
            (plan, result), seconds = timed(reconcile.reconcile)
            if not plan.is_noop or not result.ok:
                raise RuntimeError(f"a reconcile with nothing to change did something: "
                                   f"{plan.lines()} {result}")
            progress(f"no-op reconcile {run + 1}/{NOOP_RUNS}: {seconds:.3f} s")
            samples.append(seconds)
    report.figure("services_deploy_ready_s", statistics.median(ready), "s")
    report.figure("services_deploy_action_s", statistics.median(action), "s")
    noop = statistics.median(samples)
    report.figure("services_noop_reconcile_20_s", noop, "s")
    report.target("services_noop_reconcile_20_s", noop, 2.0, "s")


def run_all(workspace: Path) -> int:
    """Given a workspace (Django set up on it), run the services benchmark; return the exit
    status (1 when the target is missed)."""
    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    report = Report()
    bench_services(report, workspace)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
