"""The mail diagnosis's benchmark: 20 domains diagnosed against local servers.

A Knot of its own serves 20 zones (``d0.test`` … ``d19.test``, every record Chaton wants for
each, from :func:`chaton.mail.records.expected`), the DMARC reports zone and the reverse zone
of 127.0.0.0/24; a Postfix of its own answers with STARTTLS and implicit TLS; an OpenDKIM of
its own holds the 20 active keys; an HTTPS server serves the 20 MTA-STS policies. Each
domain is checked on its authoritative server and from the "resolver" (the same Knot): its
records, SPF walked and evaluated, DKIM against DNS and the signer, DMARC, MTA-STS, TLS on
two ports, and the reverse DNS of its sending address against Postfix's EHLO name.

``mail_diagnose_20_domains_s``
    The wall-clock time of one :func:`chaton.mail.diagnosis.diagnose` of the 20 domains,
    median of 3 (each finds nothing to fix: checked). Target ≤ 3 s;
    ``mail_diagnose_20_domains_ratio`` is the figure over its target.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.figures import Report, progress
from chaton.adapters.dns import Record
from chaton.adapters.opendkim import SigningKey, public_key_of
from chaton.adapters.opendkim.client import OpenDkimSigner
from chaton.core.servers import free_port
from chaton.mail import records
from chaton.mail.diagnosis import (
    KeyCheck,
    MtaStsSource,
    Target,
    TlsEndpoint,
    diagnose,
    from_expected,
)
from chaton.testing.dns import KnotServer
from chaton.testing.mailservers import (
    OpenDkimServer,
    PolicyServer,
    PostfixServer,
    rsa_key_pem,
    self_signed_certificate,
    zone_text,
)

TARGET_SECONDS = 3.0
DOMAINS = 20
ROUNDS = 3
ADDRESS = "127.0.0.2"
EHLO_NAME = "mail.bench.test"


def domain_facts(index: int) -> records.DomainFacts:
    return records.DomainFacts(
        name=f"d{index}.test", zone=f"d{index}.test.", mx_hosts=(EHLO_NAME,),
        sending_addresses=(ADDRESS,), dmarc_policy="reject",
        dmarc_report_address="dmarc@reports.test", report_zone="reports.test.",
        tls_rpt_address=f"tls@d{index}.test",
        advertised=(records.KeyFacts("k1", "rsa", public_key_of(rsa_key_pem(index))),))


def bench_mail_diagnosis(report: Report, workspace: Path) -> None:
    facts = [domain_facts(index) for index in range(DOMAINS)]
    zones: dict[str, list[Record]] = {"reports.test": [], "bench.test": [
        Record(f"{EHLO_NAME}.", "A", 300, (ADDRESS,))]}
    for domain in facts:
        for item in records.expected(domain):
            if not item.absent:
                zones.setdefault(item.zone.rstrip("."), []).append(Record(
                    item.record.name, item.record.type, item.record.ttl, item.record.values))
    texts = {origin: zone_text(origin, rows) for origin, rows in zones.items()}
    texts["0.0.127.in-addr.arpa"] = (zone_text("0.0.127.in-addr.arpa", [])
                                     + f"2 300 PTR {EHLO_NAME}.\n")
    knot = KnotServer(workspace / "knot", free_port(), texts)
    certificate, key = self_signed_certificate(
        workspace / "tls", ["127.0.0.1", EHLO_NAME, *[f"mta-sts.{domain.name}"
                                                      for domain in facts]])
    postfix = PostfixServer(workspace / "postfix", free_port(), relay_port=free_port(),
                            milter=None, certificate=certificate, key=key, hostname=EHLO_NAME,
                            implicit_tls_port=free_port())
    opendkim = OpenDkimServer(workspace / "opendkim", free_port())
    policies = PolicyServer(certificate, key, {f"mta-sts.{domain.name}":
                                               records.mta_sts_policy(domain)
                                               for domain in facts})
    knot.start()
    postfix.start()
    opendkim.start()
    policies.start()
    try:
        signer = OpenDkimSigner(opendkim.config_dir)
        signer.install([SigningKey(domain.name, "k1", rsa_key_pem(index))
                        for index, domain in enumerate(facts)])
        server = ("127.0.0.1", knot.port)
        targets = []
        for index, domain in enumerate(facts):
            wanted, absent = from_expected(records.expected(domain))
            targets.append(Target(
                domain=domain.name,
                expected=[record for record in wanted if record.name.endswith(
                    f"{domain.name}.")],
                absent=absent, authoritative=[server], resolver=server,
                mx_hosts=domain.mx_hosts, sending_addresses=domain.sending_addresses,
                keys=[KeyCheck("k1", public_key_of(rsa_key_pem(index)), "active",
                               f"k1._domainkey.{domain.name}.")],
                mta_sts=MtaStsSource(("127.0.0.1", policies.port)),
                tls=[TlsEndpoint("127.0.0.1", postfix.port, "smtp-starttls"),
                     TlsEndpoint("127.0.0.1", postfix.implicit_tls_port or 0, "smtp-tls")],
                ehlo_endpoint=("127.0.0.1", postfix.port)))
        timings = []
        for round_number in range(1, ROUNDS + 1):
            started = time.perf_counter()
            found = diagnose(targets, signer=signer, ca_file=str(certificate), timeout=5)
            timings.append(time.perf_counter() - started)
            problems = [finding.as_dict() for rows in found.values() for finding in rows]
            if problems:
                raise RuntimeError(f"the bench's domains should have no finding: {problems[:3]}")
            progress(f"diagnosis round {round_number}: {timings[-1]:.3f} s")
        figure = statistics.median(timings)
        report.figure("mail_diagnose_20_domains_s", figure, "s")
        report.figure("mail_diagnose_20_domains_ratio", figure / TARGET_SECONDS, "x")
        report.target("mail_diagnose_20_domains_s", figure, TARGET_SECONDS, "s")
    finally:
        policies.stop()
        opendkim.stop()
        postfix.stop()
        knot.stop()


def run_all(workspace: Path) -> int:
    """Run the diagnosis benchmark in ``workspace``; return 1 if its target is missed."""
    report = Report()
    bench_mail_diagnosis(report, workspace)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
    return 1 if report.missed else 0
