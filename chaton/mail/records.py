"""The DNS records a mail domain needs (pure: values in, records out; no I/O).

:func:`expected` gives every record Chaton wants, each with the zone it goes in;
:func:`zone_snippet` writes them as zone-file lines (TXT values over 255 bytes
split into quoted strings), :func:`checklist` as rows for people.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from chaton.adapters.dns import Record, split_txt

TTL = 3600
#: DKIM records change at each rotation: short, so a new key is seen sooner everywhere.
DKIM_TTL = 300


@dataclass(frozen=True)
class KeyFacts:
    selector: str
    algorithm: str
    public_key: str


@dataclass(frozen=True)
class DomainFacts:
    """What the records of one domain are made from."""

    name: str                                   # "example.org"
    zone: str                                   # "example.org."
    mx_hosts: tuple[str, ...] = ()
    sending_addresses: tuple[str, ...] = ()
    dmarc_policy: str = "none"
    dmarc_report_address: str = ""
    mta_sts_mode: str = "testing"
    mta_sts_max_age: int = 604800
    tls_rpt_address: str = ""
    #: The keys whose record is published (pending, active, retiring).
    advertised: tuple[KeyFacts, ...] = ()
    #: Selectors of retired keys whose record must go (unless advertised again).
    withdrawn: tuple[str, ...] = ()
    #: The zone DKIM records live in, when the domain carries CNAMEs to it.
    dkim_zone: str | None = None
    #: Selectors the domain carries fixed CNAMEs for (a fixed cycle), with ``dkim_zone``.
    cname_selectors: tuple[str, ...] = ()
    #: For the ``_report._dmarc`` authorisation: the report domain and its zone, when
    #: Chaton manages it and it is not this domain.
    report_zone: str | None = None
    #: Where ``mta-sts``, ``autoconfig`` and ``autodiscover`` point (Chaton's proxy).
    web_host: str = ""
    #: The certificate authority allowed to issue (CAA ``issue``); empty: no CAA.
    caa_issuer: str = ""


@dataclass(frozen=True)
class Expected:
    """One record set Chaton wants (``record``), or wants gone (``absent``), in ``zone``."""

    zone: str
    record: Record
    purpose: str
    absent: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False)


def absolute(name: str) -> str:
    return name.lower().rstrip(".") + "."


def spf(facts: DomainFacts) -> str:
    """Return the SPF value: ``v=spf1 mx`` and the sending addresses, then ``-all``."""
    parts = ["v=spf1", "mx"]
    for address in facts.sending_addresses:
        parts.append(("ip6:" if ":" in address else "ip4:") + address)
    parts.append("-all")
    return " ".join(parts)


def dkim_value(key: KeyFacts) -> str:
    return f"v=DKIM1; k={key.algorithm}; p={key.public_key}"


def mta_sts_policy(facts: DomainFacts) -> str:
    """Return the MTA-STS policy text (RFC 8461), served at mta-sts.<domain>."""
    lines = ["version: STSv1", f"mode: {facts.mta_sts_mode}"]
    lines += [f"mx: {host}" for host in facts.mx_hosts]
    lines.append(f"max_age: {facts.mta_sts_max_age}")
    return "\r\n".join(lines) + "\r\n"


def mta_sts_id(facts: DomainFacts) -> str:
    """Return the policy's ``id``: it changes whenever the policy does."""
    return hashlib.sha256(mta_sts_policy(facts).encode()).hexdigest()[:20]


def dmarc_value(facts: DomainFacts) -> str:
    value = f"v=DMARC1; p={facts.dmarc_policy}"
    if facts.dmarc_report_address:
        value += f"; rua=mailto:{facts.dmarc_report_address}"
    return value


def dkim_name(facts: DomainFacts, selector: str) -> tuple[str, str]:
    """Return (zone, name) of the TXT record of ``selector``: under the domain, or in the
    DKIM zone as ``<selector>.<domain>.<dkim zone>``."""
    if facts.dkim_zone:
        return facts.dkim_zone, absolute(f"{selector}.{facts.name}.{facts.dkim_zone}")
    return facts.zone, absolute(f"{selector}._domainkey.{facts.name}")


def expected(facts: DomainFacts) -> list[Expected]:
    """Return every record set the domain needs, and those that must go, in a stable order."""
    domain = absolute(facts.name)
    zone = facts.zone
    out: list[Expected] = []

    def want(name: str, type: str, values: list[str], purpose: str, *, ttl: int = TTL,
             in_zone: str | None = None) -> None:
        out.append(Expected(in_zone or zone, Record(absolute(name), type, ttl,
                                                    tuple(sorted(values))), purpose))

    if facts.mx_hosts:
        want(domain, "MX", [f"{10 * (index + 1)} {absolute(host)}"
                            for index, host in enumerate(facts.mx_hosts)], "MX")
    want(domain, "TXT", [spf(facts)], "SPF")
    advertised = {key.selector for key in facts.advertised}
    for key in facts.advertised:
        key_zone, name = dkim_name(facts, key.selector)
        want(name, "TXT", [dkim_value(key)], "DKIM", ttl=DKIM_TTL, in_zone=key_zone)
    for selector in sorted(set(facts.withdrawn) - advertised):
        key_zone, name = dkim_name(facts, selector)
        out.append(Expected(key_zone, Record(name, "TXT", DKIM_TTL, ()), "DKIM", absent=True))
    if facts.dkim_zone:
        selectors = facts.cname_selectors or tuple(sorted(advertised))
        for selector in selectors:
            want(f"{selector}._domainkey.{facts.name}", "CNAME",
                 [dkim_name(facts, selector)[1]], "DKIM")
    want(f"_dmarc.{facts.name}", "TXT", [dmarc_value(facts)], "DMARC")
    if facts.report_zone and facts.dmarc_report_address:
        report_domain = facts.dmarc_report_address.rpartition("@")[2]
        want(f"{facts.name}._report._dmarc.{report_domain}", "TXT", ["v=DMARC1"], "DMARC",
             in_zone=facts.report_zone)
    if facts.mta_sts_mode != "none" or facts.mx_hosts:
        want(f"_mta-sts.{facts.name}", "TXT", [f"v=STSv1; id={mta_sts_id(facts)}"], "MTA-STS")
        if facts.web_host:
            want(f"mta-sts.{facts.name}", "CNAME", [absolute(facts.web_host)], "MTA-STS")
    if facts.tls_rpt_address:
        want(f"_smtp._tls.{facts.name}", "TXT",
             [f"v=TLSRPTv1; rua=mailto:{facts.tls_rpt_address}"], "TLS-RPT")
    if facts.mx_hosts:
        server = absolute(facts.mx_hosts[0])
        want(f"_submission._tcp.{facts.name}", "SRV", [f"0 1 587 {server}"], "SRV")
        want(f"_submissions._tcp.{facts.name}", "SRV", [f"0 1 465 {server}"], "SRV")
        # RFC 8314: implicit TLS preferred; plain IMAP is said to be unavailable.
        want(f"_imap._tcp.{facts.name}", "SRV", ["0 0 0 ."], "SRV")
        want(f"_imaps._tcp.{facts.name}", "SRV", [f"0 1 993 {server}"], "SRV")
    if facts.web_host:
        want(f"autoconfig.{facts.name}", "CNAME", [absolute(facts.web_host)], "autoconfig")
        want(f"autodiscover.{facts.name}", "CNAME", [absolute(facts.web_host)], "autoconfig")
    if facts.caa_issuer:
        want(domain, "CAA", [f'0 issue "{facts.caa_issuer}"'], "CAA")
    return out


def presentation(record: Record, value: str) -> str:
    """Return ``value`` as a zone file writes it (TXT: quoted strings of ≤ 255 bytes)."""
    if record.type == "TXT":
        return " ".join('"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
                        for part in split_txt(value))
    return value


def zone_snippet(items: list[Expected]) -> str:
    """Return the records to set as zone-file lines, by zone (a comment names each zone);
    records that must go are listed as comments."""
    lines: list[str] = []
    for zone in sorted({item.zone for item in items}):
        lines.append(f"; zone {zone}")
        for item in items:
            if item.zone != zone:
                continue
            record = item.record
            if item.absent:
                lines.append(f"; remove: {record.name} {record.type}")
                continue
            for value in record.values:
                lines.append(f"{record.name} {record.ttl} IN {record.type} "
                             f"{presentation(record, value)}")
    return "\n".join(lines) + "\n"
