"""The probes benchmark: one cycle of 1,000 probes against local servers, all real.

The servers run in a process of their own (``python -m chaton.testing.probe_targets``:
50 HTTPS sites with certificates made for the run, an SMTP server with STARTTLS) so
that their CPU is not counted as the engine's, plus a Knot DNS server
(:class:`chaton.testing.dns.KnotServer`). The cycle:

* 700 HTTPS probes, each checking ``[STATUS] == 200`` and
  ``[CERTIFICATE_EXPIRATION] > 240h`` against one of the 50 sites;
* 100 TCP, 100 DNS (an A record, its expected answer) and 100 SMTP with STARTTLS;
* of each ten, one answers past its timeout of 1.5 s (HTTPS ``/slow``, a TLS
  handshake or an SMTP banner that never comes, a DNS server that never answers)
  and one fails (HTTPS 503, a refused port, NXDOMAIN).

``probes_1000_cycle_s``
    The wall-clock time of ``AsyncProbeEngine.run`` for the cycle at the default
    concurrency (200), median of 3 cycles. Target ≤ 3 s. ``probes_1000_cycle_ratio``
    is the figure over its target; ``probes_1000_cycle_cpu_s`` the engine's own CPU time
    for the cycle (median), which a busy machine does not inflate.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.figures import Report, progress
from chaton.adapters.probes import ProbeResult, ProbeSpec
from chaton.adapters.probes.client import AsyncProbeEngine
from chaton.core.servers import free_port
from chaton.testing.dns import TEST_ZONE, KnotServer
from chaton.testing.pytest_plugin import hold_closed_port

TARGET_SECONDS = 3.0
PROBES = 1000
SITES = 50
TIMEOUT = 1.5
CYCLES = 3


def build_cycle(ports: dict[str, object], ca_file: str, dns_address: str, silent_dns: str,
                closed_port: int) -> tuple[list[ProbeSpec], dict[str, str]]:
    """Given the servers' addresses, return the 1,000 specs and what each should give
    (``ok``, ``slow`` or ``fail``), by key."""
    sites = [int(port) for port in ports["https_sites"]]  # type: ignore[attr-defined]
    https = {"ca_file": ca_file}
    specs: list[ProbeSpec] = []
    expected: dict[str, str] = {}

    def add(spec: ProbeSpec, outcome: str) -> None:
        specs.append(spec)
        expected[spec.key] = outcome

    certificate = ("[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 240h")
    smtp = {**https, "starttls": True, "server_name": "localhost"}
    for index in range(PROBES):
        site = sites[index % len(sites)]
        # In each ten, the fourth answers past its timeout and the eighth fails.
        outcome = {3: "slow", 7: "fail"}.get(index % 10, "ok")
        group = index % 100
        if group < 70:
            path = {"slow": "slow", "fail": "fail"}.get(outcome, "ok")
            add(ProbeSpec(f"https:{index}", "http",
                          f"https://127.0.0.1:{site}/{path}?probe={index}",
                          certificate, TIMEOUT, https), outcome)
        elif group < 80:
            if outcome == "slow":  # a TLS handshake with a server that never answers it
                add(ProbeSpec(f"tls:{index}", "tls", f"127.0.0.1:{ports['http']}",
                              timeout=TIMEOUT, options=https), outcome)
            else:
                port = closed_port if outcome == "fail" else site
                add(ProbeSpec(f"tcp:{index}", "tcp", f"127.0.0.1:{port}", timeout=TIMEOUT),
                    outcome)
        elif group < 90:
            name = "nowhere.chaton.test" if outcome == "fail" else "www.chaton.test"
            server = silent_dns if outcome == "slow" else dns_address
            add(ProbeSpec(f"dns:{index}", "dns", name, ("[DNS_RCODE] == NOERROR",), TIMEOUT,
                          {"server": server, "expected": ["127.0.0.1"]}), outcome)
        else:
            # Slow: a web server, which never sends an SMTP banner; failing: a closed port.
            port = {"slow": ports["http"], "fail": closed_port}.get(outcome, ports["smtp"])
            add(ProbeSpec(f"smtp:{index}", "smtp", f"127.0.0.1:{port}",
                          ("[STATUS] == 220", "[CERTIFICATE_EXPIRATION] > 240h"), TIMEOUT,
                          smtp), outcome)
    return specs, expected


def cpu_seconds(pid: int) -> float:
    """Given a pid, return the CPU time (user and system) that process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def outcome(result: ProbeResult) -> str:
    if result.ok:
        return "ok"
    return "slow" if result.error.startswith("timed out") else "fail"


def bench_probes(report: Report, workspace: Path) -> None:
    """Start the servers, run the cycles, print the figure."""
    folder = workspace / "probes"
    folder.mkdir()
    targets = subprocess.Popen(
        [sys.executable, "-m", "chaton.testing.probe_targets", str(folder / "targets"),
         str(SITES)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    knot = KnotServer(folder / "knot", free_port(), {"chaton.test": TEST_ZONE})
    closed = hold_closed_port()
    # A UDP port bound and never read: a DNS server that does not answer.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        assert targets.stdout is not None
        ports = json.loads(targets.stdout.readline())
        knot.start()
        specs, expected = build_cycle(ports, ports["ca_file"], knot.address,
                                      f"127.0.0.1:{silent.getsockname()[1]}",
                                      closed.getsockname()[1])
        progress(f"{len(specs)} probes: " + ", ".join(
            f"{count} {name}" for name, count in sorted(Counter(expected.values()).items())))
        engine = AsyncProbeEngine()
        seconds: list[float] = []
        processor: list[float] = []
        for cycle in range(CYCLES):
            servers_cpu = cpu_seconds(targets.pid)
            started, started_cpu = time.perf_counter(), time.process_time()
            results = engine.run(specs, concurrency=200)
            seconds.append(time.perf_counter() - started)
            processor.append(time.process_time() - started_cpu)
            servers_cpu = cpu_seconds(targets.pid) - servers_cpu
            wrong = [result for result in results if outcome(result) != expected[result.key]]
            progress(f"cycle {cycle + 1}: {seconds[-1]:.2f} s ({processor[-1]:.2f} s of CPU, "
                     f"the servers {servers_cpu:.2f} s, load {os.getloadavg()[0]:.1f}), "
                     + ", ".join(f"{count} {name}" for name, count in
                                 sorted(Counter(map(outcome, results)).items()))
                     + (f"; {len(wrong)} unexpected, e.g. {wrong[0]}" if wrong else ""))
        engine.close()
        figure = statistics.median(seconds)
        report.figure("probes_1000_cycle_s", figure, "s")
        report.figure("probes_1000_cycle_ratio", figure / TARGET_SECONDS, "x")
        report.figure("probes_1000_cycle_cpu_s", statistics.median(processor), "s")
        report.target("probes_1000_cycle_s", figure, TARGET_SECONDS, "s")
    finally:
        closed.close()
        silent.close()
        knot.stop()
        if targets.stdin is not None:
            targets.stdin.close()
        try:
            targets.wait(15)
        except subprocess.TimeoutExpired:
            targets.kill()
            targets.wait(5)


def run_all(workspace: Path) -> int:
    """Given a workspace, run the probes benchmark; return 1 when the target is missed."""
    report = Report()
    bench_probes(report, workspace)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
