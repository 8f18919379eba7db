"""The DNS adapter's benchmark: 1,000 record changes applied to a real Knot by RFC 2136 UPDATE.

A knotd of its own (:class:`chaton.testing.dns.KnotServer`, a TSIG key, the zone
``example.org.``) takes the changes from :class:`~chaton.adapters.dns.client.Rfc2136Zone`:
a third A sets, a third DKIM-sized TXT sets (two strings each on the wire), a third SRV sets.

``mail_dns_apply_1000_s``
    The wall-clock time of one ``apply`` of 1,000 changes that all differ from what the zone
    holds (the adapter reads the 1,000 sets, sends the batched UPDATE messages, and reads the
    changed sets back to catch a change the server skipped), median
    of 3 rounds, each changing every set again. Target ≤ 2 s; ``mail_dns_apply_1000_ratio``
    is the figure over its target.
``mail_dns_noop_1000_s``
    The same 1,000 changes applied again: the adapter reads them and sends nothing. No target.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.figures import Report, progress
from chaton.adapters.dns import Change, Record
from chaton.adapters.dns.client import Rfc2136Zone
from chaton.core.servers import free_port
from chaton.testing.dns import EXAMPLE_ZONE, KnotServer, TsigKey

TARGET_SECONDS = 2.0
CHANGES = 1000
ROUNDS = 3


def changes(round_number: int) -> list[Change]:
    """Return the 1,000 replaces of one round: the same sets, values of that round."""
    made = []
    for index in range(CHANGES):
        if index % 3 == 0:
            record = Record(f"host{index}.example.org.", "A", 300,
                            (f"198.51.{round_number}.{index % 250}",))
        elif index % 3 == 1:
            record = Record(f"s{index}._domainkey.example.org.", "TXT", 300,
                            (f"v=DKIM1; k=rsa; t=s; n=round{round_number}; p=" + "A" * 392,))
        else:
            record = Record(f"_imaps._tcp.h{index}.example.org.", "SRV", 300,
                            (f"0 {round_number} 993 host{index}.example.org.",))
        made.append(Change("replace", record))
    return made


def bench_mail_dns(report: Report, workspace: Path) -> None:
    knot = KnotServer(workspace / "knot", free_port(), {"example.org": EXAMPLE_ZONE},
                      tsig=TsigKey.random())
    knot.start()
    try:
        zone = Rfc2136Zone(knot.zone_server("example.org.", timeout=30))
        applied, noop = [], []
        for round_number in range(1, ROUNDS + 1):
            wanted = changes(round_number)
            started = time.perf_counter()
            changed = zone.apply(wanted)
            applied.append(time.perf_counter() - started)
            if changed != CHANGES:
                raise RuntimeError(f"round {round_number} changed {changed} sets, not {CHANGES}")
            started = time.perf_counter()
            if zone.apply(wanted) != 0:
                raise RuntimeError(f"round {round_number} applied again changed something")
            noop.append(time.perf_counter() - started)
            progress(f"dns round {round_number}: {applied[-1]:.3f} s, again {noop[-1]:.3f} s, "
                     f"{zone.messages_sent} UPDATE messages so far")
        figure = statistics.median(applied)
        report.figure("mail_dns_apply_1000_s", figure, "s")
        report.figure("mail_dns_apply_1000_ratio", figure / TARGET_SECONDS, "x")
        report.figure("mail_dns_noop_1000_s", statistics.median(noop), "s")
        report.target("mail_dns_apply_1000_s", figure, TARGET_SECONDS, "s")
    finally:
        knot.stop()


def run_all(workspace: Path) -> int:
    """Run the DNS benchmark in ``workspace``; return 1 if its target is missed."""
    report = Report()
    bench_mail_dns(report, workspace)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
    return 1 if report.missed else 0
