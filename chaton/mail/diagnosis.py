"""Diagnosis of a mail domain: what the world sees, compared with what Chaton wants.

Given each domain's wanted records (:mod:`chaton.mail.records`) and where to look (the
zone's authoritative servers, a recursive resolver, the mail hosts and their ports),
:func:`diagnose` returns :class:`Finding` rows: a code, a severity, what was expected, what
was found, on which server, and the fix in words. No finding: nothing to fix.

The checks, each over what it reads through the DNS adapter (:func:`chaton.adapters.dns.
resolve`), the signer adapter, the probes adapter and the network:

- ``records``: each wanted record present and equal on every authoritative server and from
  the resolver's view (TXT compared as joined strings; tag records ``v=DKIM1``, ``v=DMARC1``
  … tag by tag; SPF token by token), each withdrawn one gone;
- ``spf``: one SPF record, at most 10 DNS lookups (include, a, mx, ptr, exists, redirect,
  walked recursively and bounded) and every sending address authorised by it;
- ``dkim``: each advertised key's record carries Chaton's key, RSA keys of at least 2048
  bits, the signer holds exactly the active keys and each equals its record, an active key
  younger than its rotation period allows, the retired selectors gone from every server;
- ``dmarc``: the record's syntax, and the ``_report._dmarc`` authorisation when reports go
  to another domain;
- ``mta_sts``: the policy reachable over HTTPS, valid, and its ``mx`` patterns covering the
  MX hosts;
- ``tls``: STARTTLS on 25 and 587, implicit TLS on 465 and 993 (the probes adapter), the
  certificate valid and not about to expire;
- ``ptr``: the reverse DNS of each sending address equal to the EHLO name the mail host
  announces, and that name resolving back to the address.

The checks run concurrently on a bounded pool within a deadline; a check that does not
finish in time is a finding too. Django-free but for gettext: the fix is rendered when read
(:attr:`Finding.fix`), in the reader's language.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from threading import Lock
from typing import Any, Protocol

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from chaton.adapters.dns import DnsError, DnsUnavailable, Record, resolve
from chaton.adapters.opendkim import Signer, SignerError

#: RFC 7208 §4.6.4.
SPF_LOOKUP_LIMIT = 10
#: RFC 8461 §3.2.
MTA_STS_MAX_AGE = 31_557_600
#: A certificate that expires sooner than this is a warning.
CERTIFICATE_WARNING_DAYS = 21
#: Tag records compared tag by tag rather than as strings.
_TAG_RECORDS = ("v=dkim1", "v=dmarc1", "v=stsv1", "v=tlsrptv1")


class Resolve(Protocol):
    def __call__(self, name: str, type: str, *, server: tuple[str, int],
                 timeout: float = ...) -> Record | None: ...


# -- what is asked ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCheck:
    """One DKIM key of the domain as Chaton knows it."""

    selector: str
    #: The ``p=`` value (base64).
    public_key: str
    #: pending, active, retiring, retired, revealed.
    state: str
    #: Where its TXT record lives ("k1._domainkey.example.org.", or in the DKIM zone).
    record_name: str
    #: Since when it signs (an active key), for its age.
    since: dt.datetime | None = None


@dataclass(frozen=True)
class TlsEndpoint:
    """A mail port to check: ``smtp-starttls`` (25, 587), ``smtp-tls`` (465), ``imap-tls``
    (993), ``imap-starttls`` (143)."""

    host: str
    port: int
    kind: str
    #: The name the certificate must carry; empty: ``host``.
    server_name: str = ""


@dataclass(frozen=True)
class MtaStsSource:
    """Where the MTA-STS policy is fetched: ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
    (as its name says), connecting to ``address`` instead of resolving it when given."""

    address: tuple[str, int] | None = None


@dataclass(frozen=True)
class Target:
    """One domain to diagnose and where to look."""

    domain: str
    #: The record sets wanted, and those that must be gone (``Expected.absent``).
    expected: Sequence[Record] = ()
    absent: Sequence[Record] = ()
    #: The zone's authoritative servers, each asked directly.
    authoritative: Sequence[tuple[str, int]] = ()
    #: A recursive resolver's view (the world's); None: the first authoritative server.
    resolver: tuple[str, int] | None = None
    mx_hosts: Sequence[str] = ()
    sending_addresses: Sequence[str] = ()
    keys: Sequence[KeyCheck] = ()
    rotation_days: int = 30
    mta_sts: MtaStsSource | None = None
    tls: Sequence[TlsEndpoint] = ()
    #: The outgoing mail host's SMTP port, whose EHLO name the reverse DNS must equal.
    ehlo_endpoint: tuple[str, int] | None = None


def from_expected(items: Iterable[Any]) -> tuple[list[Record], list[Record]]:
    """Given :func:`chaton.mail.records.expected`'s items, return (wanted, absent) records."""
    wanted: list[Record] = []
    absent: list[Record] = []
    for item in items:
        (absent if getattr(item, "absent", False) else wanted).append(
            Record(item.record.name, item.record.type, item.record.ttl,
                   tuple(item.record.values)) if item.record.values
            else item.record)
    return wanted, absent


# -- what is found ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something to fix: ``code`` (stable, for machines), ``severity`` (``error`` or
    ``warning``), what it is about, expected and found values, the server whose view it is,
    and the fix in words (:attr:`fix`)."""

    domain: str
    code: str
    severity: str
    subject: str
    expected: str
    found: str
    fix_message: str | Promise = field(compare=False)
    fix_params: Mapping[str, Any] = field(default_factory=dict, compare=False)
    server: str = ""

    @property
    def fix(self) -> str:
        """The fix, in the active language."""
        return str(self.fix_message) % dict(self.fix_params) if self.fix_params \
            else str(self.fix_message)

    @property
    def check(self) -> str:
        """The finding's code, as the pages' table names the check."""
        return self.code

    @property
    def message(self) -> str:
        """What is wrong, in one line: the subject, what was expected, what was found."""
        where = f" [{self.server}]" if self.server else ""
        return f"{self.subject}{where}: expected {self.expected or '-'}, found {self.found or '-'}"

    def as_dict(self) -> dict[str, str]:
        return {"domain": self.domain, "code": self.code, "severity": self.severity,
                "subject": self.subject, "expected": self.expected, "found": self.found,
                "server": self.server, "fix": self.fix}


def _finding(target: Target, code: str, severity: str, subject: str, expected: str,
             found: str, fix: str | Promise, server: str = "", **params: Any) -> Finding:
    return Finding(target.domain, code, severity, subject, expected, found, fix, params, server)


def _shown(server: tuple[str, int]) -> str:
    return f"{server[0]}:{server[1]}"


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# -- reading DNS -----------------------------------------------------------------------------


class _Reader:
    """Answers of one diagnosis, asked once each: (server, name, type) → Record | None."""

    def __init__(self, resolver: Resolve, timeout: float) -> None:
        self._resolve = resolver
        self.timeout = timeout
        self._answers: dict[tuple[tuple[str, int], str, str], Record | None] = {}
        self._lock = Lock()
        self._once: dict[Any, Future[Any]] = {}

    def once(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Return ``compute()``, computed once per diagnosis for ``key`` (concurrent callers
        wait for the first); its exception is raised to each caller."""
        with self._lock:
            future = self._once.get(key)
            owner = future is None
            if future is None:
                future = self._once[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as failure:  # handed to every caller
                future.set_exception(failure)
        return future.result()

    def get(self, server: tuple[str, int], name: str, type: str) -> Record | None:
        key = (server, name.lower().rstrip(".") + ".", type)
        with self._lock:
            if key in self._answers:
                return self._answers[key]
        answer = self._resolve(name, type, server=server, timeout=self.timeout)
        with self._lock:
            self._answers[key] = answer
        return answer

    def ptr(self, server: tuple[str, int], address: str) -> list[str]:
        """Return the PTR names of ``address`` (absolute, lower case). The DNS adapter
        publishes no PTR records, so this one query is made with dnspython here."""
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode
        import dns.rdatatype
        import dns.reversename

        query = dns.message.make_query(dns.reversename.from_address(address), "PTR")
        try:
            response = dns.query.udp(query, server[0], port=server[1], timeout=self.timeout)
        except (OSError, dns.exception.Timeout) as failure:
            raise DnsUnavailable(f"the DNS server {_shown(server)} does not answer: "
                                 f"{failure or type(failure).__name__}") from None
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsError(f"the DNS server {_shown(server)} answered "
                           f"{dns.rcode.to_text(response.rcode())} for {address} PTR")
        return sorted(rdata.to_text().lower() for rrset in response.answer
                      if rrset.rdtype == dns.rdatatype.PTR for rdata in rrset)


def _tags(value: str) -> dict[str, str]:
    """Given a tag record (``v=DKIM1; k=rsa; p=…``), return its tags, names lower case,
    values stripped (``p=`` without the spaces a zone file may leave in it)."""
    tags: dict[str, str] = {}
    for part in value.split(";"):
        name, equals, tag_value = part.partition("=")
        if not equals:
            continue
        name = name.strip().lower()
        tag_value = tag_value.strip()
        tags[name] = "".join(tag_value.split()) if name == "p" else tag_value
    return tags


def _kind(value: str) -> str:
    """``spf``, a tag record's ``v=`` (lower case), or ``text``."""
    lowered = value.strip().lower()
    if lowered == "v=spf1" or lowered.startswith("v=spf1 "):
        return "spf"
    for prefix in _TAG_RECORDS:
        if lowered.replace(" ", "").startswith(prefix):
            return prefix
    return "text"


def _spf_tokens(value: str) -> list[str]:
    return [token.lower() for token in value.split()[1:]]


# -- the checks ------------------------------------------------------------------------------


def _compare(target: Target, want: Record, found: Record | None, server: str
             ) -> list[Finding]:
    """Findings for one wanted set as one server shows it."""
    subject = f"{want.name} {want.type}"
    shown_want = " | ".join(want.values)
    if found is None:
        return [_finding(target, "record_missing", "error", subject, shown_want, "",
                         _("Publish %(record)s with the value shown in the zone "
                           "snippet."), server, record=subject)]
    if want.type != "TXT":
        if tuple(found.values) == tuple(want.values):
            return []
        return [_finding(target, "record_differs", "error", subject, shown_want,
                         " | ".join(found.values),
                         _("Set %(record)s to exactly the expected values (Chaton puts it "
                           "back on its next DNS apply in a zone it updates)."), server,
                         record=subject)]
    findings = []
    for value in want.values:
        kind = _kind(value)
        same_kind = [other for other in found.values if _kind(other) == kind]
        if kind == "text":
            if value not in found.values:
                findings.append(_finding(
                    target, "record_differs", "error", subject, value,
                    " | ".join(found.values),
                    _("Add the TXT value shown to %(record)s."), server, record=subject))
            continue
        if kind == "spf":
            if len(same_kind) > 1:
                findings.append(_finding(
                    target, "spf_several", "error", subject, value, " | ".join(same_kind),
                    _("Keep one SPF record at %(record)s: with several, receivers treat SPF "
                      "as broken."), server, record=subject))
                continue
            wanted_tokens = _spf_tokens(value)
            found_tokens = _spf_tokens(same_kind[0]) if same_kind else []
            # The same terms, "all" last: the same policy, whatever the order of the rest.
            if same_kind and sorted(found_tokens) == sorted(wanted_tokens) \
                    and found_tokens[-1:] == wanted_tokens[-1:]:
                continue
            missing = [token for token in wanted_tokens if token not in found_tokens]
            extra = [token for token in found_tokens if token not in wanted_tokens]
            findings.append(_finding(
                target, "spf_differs", "error", subject, value,
                same_kind[0] if same_kind else "",
                _("Set the SPF record of %(domain)s to the expected value (missing: "
                  "%(missing)s; not expected: %(extra)s)."), server,
                domain=target.domain, missing=" ".join(missing) or "-",
                extra=" ".join(extra) or "-"))
            continue
        if not any(_tags(other) == _tags(value) for other in same_kind):
            findings.append(_finding(
                target, "record_differs", "error", subject, value, " | ".join(same_kind),
                _("Set %(record)s to the expected value (compared tag by tag)."), server,
                record=subject))
    return findings


def _address(reader: _Reader, view: tuple[str, int] | None, name: str) -> str | None:
    """Given a host name, return an address of it as the DNS ``view`` answers (following a
    few CNAMEs), None when it has none or there is no view; an address is itself. The mail
    hosts are reached at what the zone says, never through this machine's resolver."""
    if _is_address(name):
        return name
    if view is None:
        return None
    for _hop in range(4):
        for type in ("A", "AAAA"):
            record = reader.get(view, name, type)
            if record is not None and record.values:
                return record.values[0]
        alias = reader.get(view, name, "CNAME")
        if alias is None or not alias.values:
            return None
        name = alias.values[0]
    return None


def _unresolved(target: Target, name: str, view: tuple[str, int] | None) -> Finding:
    where = _shown(view) if view else ""
    return _finding(target, "host_unresolved", "error", name, "A/AAAA", "",
                    _("Publish an address (A or AAAA) for %(name)s: without one, the checks "
                      "of that host cannot run and senders cannot reach it."), where,
                    name=name.rstrip("."))


def check_records(target: Target, reader: _Reader, server: tuple[str, int], *,
                  authoritative: bool) -> list[Finding]:
    """Each wanted set equal, each withdrawn one gone, as ``server`` answers."""
    shown = _shown(server) if authoritative else f"resolver {_shown(server)}"
    findings: list[Finding] = []
    for want in target.expected:
        found = reader.get(server, want.name, want.type)
        findings += _compare(target, want, found, shown)
    for gone in target.absent:
        found = reader.get(server, gone.name, gone.type)
        if found is not None and found.values:
            findings.append(_finding(
                target, "record_not_removed", "error", f"{gone.name} {gone.type}", "",
                " | ".join(found.values),
                _("Remove %(record)s: Chaton no longer uses it."), shown,
                record=f"{gone.name} {gone.type}"))
    return findings


@dataclass
class _SpfWalk:
    reader: _Reader
    server: tuple[str, int]
    lookups: int = 0
    voids: int = 0
    problems: list[str] = field(default_factory=list)

    def spf_of(self, domain: str) -> str | None:
        record = self.reader.get(self.server, domain, "TXT")
        values = [value for value in (record.values if record else ()) if _kind(value) == "spf"]
        if len(values) > 1:
            self.problems.append(f"{domain}: several SPF records")
        return values[0] if values else None

    def addresses(self, name: str) -> list[str]:
        found = []
        for type in ("A", "AAAA"):
            record = self.reader.get(self.server, name, type)
            found += list(record.values) if record else []
        return found

    def mx_names(self, name: str) -> list[str]:
        record = self.reader.get(self.server, name, "MX")
        return [value.split()[-1] for value in record.values] if record else []


def _split_mechanism(term: str, domain: str) -> tuple[str, str, str, int | None, int | None]:
    """Given an SPF term, return (qualifier, mechanism, target, ip4 cidr, ip6 cidr)."""
    qualifier = term[0] if term[0] in "+-~?" else "+"
    body = term.lstrip("+-~?")
    name, _colon, argument = body.partition(":")
    if not _colon and "/" in name:
        name, _slash, cidr = name.partition("/")
        argument = "/" + cidr
    cidr4: int | None = None
    cidr6: int | None = None
    if name.lower() in ("a", "mx") and "/" in argument:
        argument, _slash, cidrs = argument.partition("/")
        first, _double, second = cidrs.partition("//")
        cidr4 = int(first) if first else None
        cidr6 = int(second) if second else None
    return qualifier, name.lower(), argument or domain, cidr4, cidr6


def _matches(address: str, candidates: Iterable[str], cidr4: int | None,
             cidr6: int | None) -> bool:
    ip = ipaddress.ip_address(address)
    for candidate in candidates:
        other = ipaddress.ip_address(candidate)
        if other.version != ip.version:
            continue
        prefix = (cidr4 if ip.version == 4 else cidr6) or other.max_prefixlen
        if ip in ipaddress.ip_network(f"{other}/{prefix}", strict=False):
            return True
    return False


def _count_lookups(walk: _SpfWalk, domain: str, depth: int) -> None:
    """Walk every term of ``domain``'s SPF record and the records it includes, counting the
    DNS lookups a receiver may make (all of them: the worst case)."""
    if depth > SPF_LOOKUP_LIMIT or walk.lookups > 2 * SPF_LOOKUP_LIMIT:
        return
    value = walk.spf_of(domain)
    if value is None:
        if depth:
            walk.voids += 1
            walk.problems.append(f"{domain}: no SPF record (an include that matches nothing)")
        return
    for term in value.split()[1:]:
        lowered = term.lower()
        if lowered.startswith("redirect="):
            walk.lookups += 1
            _count_lookups(walk, term.partition("=")[2], depth + 1)
            continue
        if "=" in lowered.split(":")[0]:
            continue
        _qualifier, mechanism, argument, _cidr4, _cidr6 = _split_mechanism(term, domain)
        if mechanism == "include":
            walk.lookups += 1
            _count_lookups(walk, argument, depth + 1)
        elif mechanism in ("a", "exists", "ptr"):
            walk.lookups += 1
        elif mechanism == "mx":
            walk.lookups += 1
            if len(walk.mx_names(argument)) > SPF_LOOKUP_LIMIT:
                walk.problems.append(f"{argument}: more than 10 MX names")


def _evaluate(walk: _SpfWalk, address: str, domain: str, depth: int) -> str:
    """Return the SPF result for mail from ``address`` for ``domain``: pass, fail, softfail,
    neutral, none or permerror (RFC 7208 check_host, without macros)."""
    if depth > SPF_LOOKUP_LIMIT:
        return "permerror"
    value = walk.spf_of(domain)
    if value is None:
        return "none"
    results = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
    redirect = None
    for term in value.split()[1:]:
        if term.lower().startswith("redirect="):
            redirect = term.partition("=")[2]
            continue
        if "=" in term.split(":")[0]:
            continue
        qualifier, mechanism, argument, cidr4, cidr6 = _split_mechanism(term, domain)
        matched = False
        try:
            if mechanism == "all":
                matched = True
            elif mechanism in ("ip4", "ip6"):
                matched = ipaddress.ip_address(address) in ipaddress.ip_network(
                    argument, strict=False)
            elif mechanism == "a":
                matched = _matches(address, walk.addresses(argument), cidr4, cidr6)
            elif mechanism == "mx":
                matched = any(_matches(address, walk.addresses(name), cidr4, cidr6)
                              for name in walk.mx_names(argument)[:SPF_LOOKUP_LIMIT])
            elif mechanism == "include":
                inner = _evaluate(walk, address, argument, depth + 1)
                # RFC 7208 §5.2: an include that errs, or names no SPF record, is an error.
                if inner in ("permerror", "none"):
                    return "permerror"
                matched = inner == "pass"
            elif mechanism == "exists":
                matched = bool(walk.addresses(argument)) if "%" not in argument else False
        except ValueError:
            return "permerror"
        if matched:
            return results[qualifier]
    if redirect:
        return _evaluate(walk, address, redirect, depth + 1)
    return "neutral"


def check_spf(target: Target, reader: _Reader, server: tuple[str, int]) -> list[Finding]:
    """SPF's lookup count and the sending addresses' authorisation, from ``server``'s view."""
    walk = _SpfWalk(reader, server)
    subject = f"{target.domain}. TXT (SPF)"
    if walk.spf_of(target.domain) is None:
        return [_finding(target, "spf_missing", "error", subject, "v=spf1 …", "",
                         _("Publish an SPF record for %(domain)s (see the zone snippet)."),
                         domain=target.domain)]
    _count_lookups(walk, target.domain, 0)
    findings = []
    if walk.lookups > SPF_LOOKUP_LIMIT:
        findings.append(_finding(
            target, "spf_too_many_lookups", "error", subject, f"≤ {SPF_LOOKUP_LIMIT}",
            str(walk.lookups),
            _("The SPF record of %(domain)s needs %(count)s DNS lookups, more than the 10 "
              "receivers allow: replace include, a and mx terms by ip4/ip6 addresses."),
            domain=target.domain, count=walk.lookups))
    for problem in walk.problems:
        findings.append(_finding(
            target, "spf_broken_term", "warning", subject, "", problem,
            _("Fix or remove the SPF term this names: %(problem)s."), problem=problem))
    for address in target.sending_addresses:
        result = _evaluate(_SpfWalk(reader, server), address, target.domain, 0)
        if result != "pass":
            findings.append(_finding(
                target, "spf_address_not_authorised", "error", subject,
                f"{address}: pass", f"{address}: {result}",
                _("Mail sent from %(address)s fails SPF for %(domain)s: add "
                  "ip%(version)s:%(address)s to its SPF record."),
                address=address, domain=target.domain,
                version=ipaddress.ip_address(address).version))
    return findings


def _rsa_bits(public_key: str) -> int | None:
    """The size of an RSA ``p=`` key, None for another kind or a key that cannot be read."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(public_key))
    except (ValueError, TypeError):
        return None
    return key.key_size if isinstance(key, rsa.RSAPublicKey) else None


def _dkim_p(record: Record | None) -> str | None:
    if record is None:
        return None
    for value in record.values:
        if _kind(value) == "v=dkim1" or "p=" in value:
            return _tags(value).get("p")
    return None


def check_dkim(target: Target, reader: _Reader, view: tuple[str, int],
               held: Mapping[tuple[str, str], str] | None, now: dt.datetime
               ) -> list[Finding]:
    """Keys in DNS, the signer's keys, their length and age, retired selectors gone."""
    findings: list[Finding] = []
    domain = target.domain.lower().rstrip(".")
    in_dns: dict[str, str | None] = {}
    for key in target.keys:
        if key.state not in ("pending", "active", "retiring"):
            continue
        published = _dkim_p(reader.get(view, key.record_name, "TXT"))
        in_dns[key.selector] = published
        subject = f"{key.record_name} TXT"
        if published != key.public_key:
            findings.append(_finding(
                target, "dkim_dns_differs", "error", subject, _short(key.public_key),
                _short(published),
                _("Publish the key of selector %(selector)s at %(name)s (Chaton's DNS apply "
                  "does it in a zone it updates)."),
                selector=key.selector, name=key.record_name))
        bits = _rsa_bits(published or key.public_key)
        if bits is not None and bits < 2048:
            findings.append(_finding(
                target, "dkim_key_short", "error", subject, "≥ 2048", str(bits),
                _("Rotate the DKIM key of %(domain)s: an RSA key of %(bits)s bits is too "
                  "short (2048 at least)."), domain=domain, bits=bits))
        if key.state == "active" and key.since is not None \
                and now - key.since > dt.timedelta(days=target.rotation_days + 1):
            age = (now - key.since).days
            findings.append(_finding(
                target, "dkim_key_old", "warning", subject,
                f"≤ {target.rotation_days} d", f"{age} d",
                _("The DKIM key of %(domain)s has signed for %(age)s days: check that the "
                  "worker runs (it rotates keys every %(days)s days)."),
                domain=domain, age=age, days=target.rotation_days))
    if held is not None:
        active = {key.selector: key for key in target.keys if key.state == "active"}
        ours = {selector: public for (held_domain, selector), public in held.items()
                if held_domain == domain}
        for selector, key in active.items():
            holding = ours.get(selector)
            if holding != key.public_key:
                findings.append(_finding(
                    target, "dkim_signer_differs", "error", f"signer {selector}",
                    _short(key.public_key), _short(holding),
                    _("The signer does not hold the active key of selector %(selector)s: "
                      "it has not reloaded its tables. Restart OpenDKIM, then run the DKIM "
                      "reconcile again."), selector=selector))
        for selector, holding in ours.items():
            if selector in active:
                continue
            published = in_dns.get(selector)
            if published is None and selector not in in_dns:
                record_name = next((key.record_name for key in target.keys
                                    if key.selector == selector),
                                   f"{selector}._domainkey.{domain}.")
                published = _dkim_p(reader.get(view, record_name, "TXT"))
            findings.append(_finding(
                target, "dkim_signer_differs", "error", f"signer {selector}",
                "", _short(holding),
                _("The signer still signs with selector %(selector)s, which is not the "
                  "active key: restart OpenDKIM, then run the DKIM reconcile again.")
                if published == holding else
                _("The signer signs with selector %(selector)s, which is not the active key "
                  "and not in DNS (receivers cannot verify it): restart OpenDKIM, then run "
                  "the DKIM reconcile again."), selector=selector))
    for key in target.keys:
        if key.state not in ("retired", "revealed"):
            continue
        for server in target.authoritative:
            published = _dkim_p(reader.get(server, key.record_name, "TXT"))
            if published:
                findings.append(_finding(
                    target, "dkim_retired_present", "error", f"{key.record_name} TXT", "",
                    _short(published),
                    _("Remove the record of retired selector %(selector)s (%(name)s)."),
                    _shown(server), selector=key.selector, name=key.record_name))
    return findings


def _short(key: str | None) -> str:
    if not key:
        return ""
    return key if len(key) <= 24 else f"{key[:10]}…{key[-10:]}"


_DMARC_POLICIES = ("none", "quarantine", "reject")


def dmarc_problems(value: str) -> list[str]:
    """Given a DMARC record, return what is wrong with its syntax (RFC 7489), in words."""
    problems = []
    parts = [part.strip() for part in value.split(";") if part.strip()]
    if not parts or parts[0].replace(" ", "") != "v=DMARC1":
        problems.append("v=DMARC1 must come first")
    tags = _tags(value)
    if tags.get("p") not in _DMARC_POLICIES:
        problems.append(f"p={tags.get('p', '')!s} is not none, quarantine or reject")
    if "sp" in tags and tags["sp"] not in _DMARC_POLICIES:
        problems.append(f"sp={tags['sp']} is not none, quarantine or reject")
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        problems.append(f"pct={tags['pct']} is not a number from 0 to 100")
    for name in ("adkim", "aspf"):
        if name in tags and tags[name] not in ("r", "s"):
            problems.append(f"{name}={tags[name]} is not r or s")
    for name in ("rua", "ruf"):
        for uri in filter(None, (uri.strip() for uri in tags.get(name, "").split(","))):
            if not uri.lower().startswith("mailto:") or "@" not in uri:
                problems.append(f"{name}: {uri} is not a mailto: address")
    return problems


def report_domains(value: str) -> list[str]:
    """The domains a DMARC record's aggregate reports go to."""
    domains = []
    for uri in _tags(value).get("rua", "").split(","):
        uri = uri.strip()
        if uri.lower().startswith("mailto:") and "@" in uri:
            domains.append(uri.rpartition("@")[2].split("!")[0].lower().rstrip("."))
    return domains


def check_dmarc(target: Target, reader: _Reader, view: tuple[str, int]) -> list[Finding]:
    domain = target.domain.lower().rstrip(".")
    subject = f"_dmarc.{domain}. TXT"
    record = reader.get(view, f"_dmarc.{domain}", "TXT")
    values = [value for value in (record.values if record else ()) if _kind(value) != "text"
              or value.lower().startswith("v=dmarc")]
    if not values:
        return [_finding(target, "dmarc_missing", "error", subject, "v=DMARC1; p=…", "",
                         _("Publish a DMARC record at _dmarc.%(domain)s."), domain=domain)]
    findings = []
    problems = dmarc_problems(values[0])
    if len(values) > 1:
        problems.append("several DMARC records")
    if problems:
        findings.append(_finding(
            target, "dmarc_syntax", "error", subject, "v=DMARC1; p=none|quarantine|reject",
            values[0], _("Fix the DMARC record of %(domain)s: %(problems)s."),
            domain=domain, problems="; ".join(problems)))
    for report_domain in report_domains(values[0]):
        if report_domain == domain or report_domain.endswith("." + domain) \
                or domain.endswith("." + report_domain):
            continue
        name = f"{domain}._report._dmarc.{report_domain}"
        authorisation = reader.get(view, name, "TXT")
        if not authorisation or not any(value.replace(" ", "").lower().startswith("v=dmarc1")
                                        for value in authorisation.values):
            findings.append(_finding(
                target, "dmarc_report_unauthorised", "error", f"{name}. TXT", "v=DMARC1",
                "", _("Reports of %(domain)s go to %(report)s, which does not accept them: "
                      "publish %(name)s TXT \"v=DMARC1\" in its zone."),
                domain=domain, report=report_domain, name=name))
    return findings


def _mx_pattern_covers(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _dot, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def fetch_mta_sts(domain: str, source: MtaStsSource, *, ca_file: str | None,
                  timeout: float) -> str:
    """Return the MTA-STS policy text of ``domain``. Raise OSError (ssl.SSLError among them)
    or ValueError (a status other than 200) when it cannot be fetched."""
    host = f"mta-sts.{domain.lower().rstrip('.')}"
    address = source.address or (host, 443)
    context = ssl.create_default_context(cafile=ca_file) if ca_file \
        else ssl.create_default_context()
    with socket.create_connection(address, timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as connection:
        connection.sendall(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\n"
                           "Connection: close\r\nAccept: text/plain\r\n\r\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
            if sum(map(len, chunks)) > 65536:
                break
    head, _blank, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if status_line.split()[1:2] != ["200"]:
        raise ValueError(f"https://{host}/.well-known/mta-sts.txt answered {status_line}")
    if b"transfer-encoding: chunked" in head.lower():
        raise ValueError("the policy is sent chunked; serve it with a Content-Length")
    return body.decode("utf-8", errors="replace")


def mta_sts_problems(policy: str) -> tuple[list[str], list[str]]:
    """Given a policy text, return (what is wrong with it, its mx patterns)."""
    fields: dict[str, list[str]] = {}
    for line in policy.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    problems = []
    if fields.get("version") != ["STSv1"]:
        problems.append("version: STSv1 must be there once")
    if fields.get("mode", [""])[0] not in ("testing", "enforce", "none"):
        problems.append("mode is not testing, enforce or none")
    max_age = fields.get("max_age", [""])[0]
    if not max_age.isdigit() or int(max_age) > MTA_STS_MAX_AGE:
        problems.append(f"max_age {max_age or '(none)'} is not a number up to {MTA_STS_MAX_AGE}")
    return problems, fields.get("mx", [])


def check_mta_sts(target: Target, reader: _Reader, view: tuple[str, int] | None,
                  source: MtaStsSource, *, ca_file: str | None, timeout: float
                  ) -> list[Finding]:
    domain = target.domain.lower().rstrip(".")
    url = f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
    if source.address is None:
        address = _address(reader, view, f"mta-sts.{domain}.")
        if address is None:
            return [_unresolved(target, f"mta-sts.{domain}.", view)]
        source = MtaStsSource((address, 443))
    try:
        policy = fetch_mta_sts(domain, source, ca_file=ca_file, timeout=timeout)
    except (OSError, ValueError, IndexError) as failure:
        return [_finding(target, "mta_sts_unreachable", "error", url, "200, a policy",
                         str(failure) or type(failure).__name__,
                         _("Serve the MTA-STS policy at %(url)s over HTTPS with a valid "
                           "certificate for mta-sts.%(domain)s."), url=url, domain=domain)]
    findings = []
    problems, patterns = mta_sts_problems(policy)
    if problems:
        findings.append(_finding(
            target, "mta_sts_policy", "error", url, "version, mode, mx, max_age",
            "; ".join(problems), _("Fix the MTA-STS policy: %(problems)s."),
            problems="; ".join(problems)))
    for host in target.mx_hosts:
        if not any(_mx_pattern_covers(pattern, host) for pattern in patterns):
            findings.append(_finding(
                target, "mta_sts_mx_uncovered", "error", url, host, ", ".join(patterns),
                _("Add \"mx: %(host)s\" to the MTA-STS policy: senders that enforce it "
                  "refuse to deliver to an MX it does not name."), host=host))
    return findings


_TLS_PROBE: dict[str, tuple[str, dict[str, Any]]] = {
    "smtp-starttls": ("smtp", {"starttls": True}),
    "smtp-tls": ("smtp", {"implicit_tls": True}),
    "imap-tls": ("imap", {"tls": "implicit"}),
    "imap-starttls": ("imap", {"tls": "starttls"}),
}


def probe_tls(endpoint: TlsEndpoint, *, ca_file: str | None, timeout: float) -> Any:
    """Return the probes adapter's result (a ProbeResult) for one endpoint."""
    from chaton.adapters.probes import ProbeSpec
    from chaton.adapters.probes.client import AsyncProbeEngine

    kind, fixed = _TLS_PROBE[endpoint.kind]
    options: dict[str, Any] = dict(fixed)
    if ca_file:
        options["ca_file"] = ca_file
    if endpoint.server_name:
        options["server_name"] = endpoint.server_name
    engine = AsyncProbeEngine(ldap_threads=1)
    try:
        return engine.run([ProbeSpec("tls", kind, f"{endpoint.host}:{endpoint.port}",
                                     timeout=timeout, options=options)])[0]
    finally:
        engine.close()


def check_tls(target: Target, reader: _Reader, view: tuple[str, int] | None,
              endpoints: Sequence[TlsEndpoint], *, ca_file: str | None, timeout: float,
              now: dt.datetime) -> list[Finding]:
    """STARTTLS or implicit TLS on each endpoint, through the probes adapter; an endpoint
    several domains share is probed once per diagnosis."""
    findings: list[Finding] = []
    unresolved: set[str] = set()
    for endpoint in endpoints:
        address = _address(reader, view, endpoint.host)
        if address is None:
            if endpoint.host not in unresolved:
                unresolved.add(endpoint.host)
                findings.append(_unresolved(target, endpoint.host, view))
            continue
        probed = TlsEndpoint(address, endpoint.port, endpoint.kind, endpoint.server_name
                             or ("" if _is_address(endpoint.host)
                                 else endpoint.host.rstrip(".")))
        result = reader.once(("tls", probed), partial(probe_tls, probed,
                                                      ca_file=ca_file, timeout=timeout))
        subject = f"{endpoint.host}:{endpoint.port} ({endpoint.kind})"
        if not result.ok:
            findings.append(_finding(
                target, "tls_failed", "error", subject, "TLS with a valid certificate",
                result.error,
                _("%(endpoint)s must offer TLS with a certificate valid for %(host)s."),
                endpoint=subject, host=endpoint.server_name or endpoint.host))
            continue
        expires = result.cert_expires_at
        if expires is not None and expires - now < dt.timedelta(days=CERTIFICATE_WARNING_DAYS):
            days = max(0, (expires - now).days)
            findings.append(_finding(
                target, "tls_expiring", "warning", subject,
                f"> {CERTIFICATE_WARNING_DAYS} d", f"{days} d",
                _("The certificate of %(endpoint)s expires in %(days)s days: renew it."),
                endpoint=subject, days=days))
    return findings


def ehlo_name(host: str, port: int, *, timeout: float) -> str:
    """Return the name a mail host announces in its EHLO answer. Raise OSError or
    smtplib.SMTPException when it cannot be read."""
    client = smtplib.SMTP(timeout=timeout)
    try:
        code, _banner = client.connect(host, port)
        if code != 220:
            raise smtplib.SMTPException(f"banner {code}")
        code, answer = client.ehlo("diagnosis.chaton.invalid")
        if code != 250:
            raise smtplib.SMTPException(f"EHLO answered {code}")
        return answer.decode("utf-8", errors="replace").splitlines()[0].split()[0].lower()
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def check_ptr(target: Target, reader: _Reader, view: tuple[str, int],
              endpoint: tuple[str, int]) -> list[Finding]:
    """The reverse DNS of each sending address equals the EHLO name, which resolves back."""
    address = _address(reader, view, endpoint[0])
    if address is None:
        return [_unresolved(target, endpoint[0], view)]
    endpoint = (address, endpoint[1])
    try:
        name = reader.once(("ehlo", endpoint),
                           lambda: ehlo_name(*endpoint, timeout=reader.timeout))
    except (OSError, smtplib.SMTPException) as failure:
        return [_finding(target, "ehlo_unreadable", "error", _shown(endpoint), "an EHLO name",
                         str(failure) or type(failure).__name__,
                         _("The mail host %(endpoint)s must answer SMTP, with its name in "
                           "EHLO."), endpoint=_shown(endpoint))]
    absolute = name.rstrip(".") + "."
    findings = []
    for address in target.sending_addresses:
        names = reader.ptr(view, address)
        if absolute not in names:
            findings.append(_finding(
                target, "ptr_mismatch" if names else "ptr_missing", "error",
                f"{address} PTR", absolute, " ".join(names),
                _("Ask whoever runs %(address)s (the hosting provider) to set its reverse "
                  "DNS to %(name)s, the name the mail host gives in EHLO."),
                address=address, name=name))
            continue
        forward = reader.get(view, absolute, "AAAA" if ":" in address else "A")
        if forward is None or address not in forward.values:
            findings.append(_finding(
                target, "ehlo_name_unresolved", "warning", f"{absolute} A/AAAA", address,
                " ".join(forward.values) if forward else "",
                _("Make %(name)s resolve to %(address)s: receivers check that the reverse "
                  "name points back."), name=name, address=address))
    return findings


# -- running them ----------------------------------------------------------------------------


def diagnose(targets: Sequence[Target], *, signer: Signer | None = None,
             resolver: Resolve = resolve, ca_file: str | None = None, timeout: float = 5.0,
             deadline: float = 30.0, workers: int = 16, now: dt.datetime | None = None
             ) -> dict[str, list[Finding]]:
    """Given domains to diagnose, return domain → its findings (an empty list: nothing to
    fix), errors before warnings.

    ``signer`` is read once (its ``held()`` keys); ``resolver`` answers one query (the DNS
    adapter's :func:`~chaton.adapters.dns.resolve`); ``ca_file`` is the CA bundle TLS is
    verified with (the system's when None); each network call waits ``timeout`` seconds at
    most and the whole diagnosis ``deadline`` seconds, ``workers`` checks at a time. A
    server that does not answer is a finding, never an exception.
    """
    now = now or dt.datetime.now(dt.UTC)
    reader = _Reader(resolver, timeout)
    held: Mapping[tuple[str, str], str] | None = None
    signer_error = ""
    if signer is not None:
        try:
            held = signer.held()
        except SignerError as failure:
            signer_error = str(failure)
    elif any(key.state == "active" for target in targets for key in target.keys):
        signer_error = "no signer configured"

    jobs: list[tuple[Target, str, Callable[[], list[Finding]]]] = []
    for target in targets:
        view = target.resolver or (target.authoritative[0] if target.authoritative else None)
        for server in target.authoritative:
            jobs.append((target, _shown(server), _bind(check_records, target, reader, server,
                                                       authoritative=True)))
        if target.resolver is not None:
            jobs.append((target, f"resolver {_shown(target.resolver)}",
                         _bind(check_records, target, reader, target.resolver,
                               authoritative=False)))
        if view is not None:
            shown = _shown(view)
            jobs.append((target, shown, _bind(check_spf, target, reader, view)))
            jobs.append((target, shown, _bind(check_dkim, target, reader, view, held, now)))
            jobs.append((target, shown, _bind(check_dmarc, target, reader, view)))
            # Reverse zones are not the domain's: only a resolver answers for them.
            if target.ehlo_endpoint is not None and target.sending_addresses \
                    and target.resolver is not None:
                jobs.append((target, shown, _bind(check_ptr, target, reader,
                                                  target.resolver, target.ehlo_endpoint)))
        if target.mta_sts is not None:
            jobs.append((target, "https", _bind(check_mta_sts, target, reader, view,
                                                target.mta_sts, ca_file=ca_file,
                                                timeout=timeout)))
        if target.tls:
            jobs.append((target, "tls", _bind(check_tls, target, reader, view, target.tls,
                                              ca_file=ca_file, timeout=timeout, now=now)))

    findings: dict[str, list[Finding]] = {target.domain: [] for target in targets}
    for target in targets:
        if held is None and any(key.state == "active" for key in target.keys):
            findings[target.domain].append(_finding(
                target, "signer_unavailable", "error", "signer", "", signer_error,
                _("The DKIM signer cannot be read: check that OpenDKIM runs.")))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="diagnosis")
    try:
        futures = {pool.submit(job): (target, where) for target, where, job in jobs}
        _done, late = wait(futures, timeout=deadline)
        for future, (target, where) in futures.items():
            if future in late:
                findings[target.domain].append(_finding(
                    target, "check_timed_out", "warning", where, "", f"> {deadline:g} s",
                    _("A check of %(domain)s did not finish in time; run the diagnosis "
                      "again."), where, domain=target.domain))
                continue
            problem = future.exception()
            if problem is None:
                findings[target.domain] += future.result()
            elif isinstance(problem, DnsUnavailable):
                findings[target.domain].append(_finding(
                    target, "dns_unreachable", "error", where, "an answer", str(problem),
                    _("The DNS server %(where)s does not answer: check that it runs and "
                      "that this host may query it."), where, where=where))
            elif isinstance(problem, DnsError):
                findings[target.domain].append(_finding(
                    target, "dns_error", "error", where, "an answer", str(problem),
                    _("The DNS server %(where)s answered with an error: check the zone "
                      "there."), where, where=where))
            else:
                raise problem
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for _domain, rows in findings.items():
        rows.sort(key=lambda finding: (finding.severity != "error", finding.code,
                                       finding.subject, finding.server))
    return findings


def _bind(function: Callable[..., list[Finding]], *arguments: Any, **keywords: Any
          ) -> Callable[[], list[Finding]]:
    return lambda: function(*arguments, **keywords)


def diagnose_domain(domain: Any, *, timeout: float = 3.0, deadline: float = 10.0
                    ) -> list[Finding]:
    """Given a :class:`~chaton.mail.models.MailDomain`, diagnose it as Chaton knows it and
    return its findings: its zone's records on the zone's server, its keys against DNS and
    the configured signer, its SPF, DMARC, MTA-STS, the TLS ports of its first MX host
    (25 and 587 STARTTLS, 465 and 993 implicit TLS) and the reverse DNS of its sending
    addresses against that host's EHLO name. (The one function here that reads the
    database: the pages, the API and the CLI call it.)"""
    from chaton.mail import actions, dnsplan, queries, records

    facts = queries.facts_of(domain)
    items = records.expected(facts)
    zone_name = domain.zone.name
    wanted, absent = from_expected(item for item in items if item.zone == zone_name)
    servers = dnsplan.servers_of(domain.zone)
    keys = [KeyCheck(key.selector, key.public_key, key.state,
                     records.dkim_name(facts, key.selector)[1], key.activated_at)
            for key in domain.keys.all()]
    mx = domain.mx_hosts[0].rstrip(".") if domain.mx_hosts else ""
    tls = [TlsEndpoint(mx, port, kind) for port, kind in (
        (25, "smtp-starttls"), (587, "smtp-starttls"), (465, "smtp-tls"), (993, "imap-tls"))
           ] if mx else []
    target = Target(
        domain=domain.name, expected=wanted, absent=absent, authoritative=servers,
        mx_hosts=tuple(domain.mx_hosts), sending_addresses=tuple(domain.sending_addresses),
        keys=keys, rotation_days=domain.rotation_days,
        mta_sts=MtaStsSource() if domain.mta_sts_mode != "none" and mx else None,
        tls=tls, ehlo_endpoint=(mx, 25) if mx else None)
    # Any: the mail app's signer() names the protocol through its own import of the adapter.
    the_signer: Any = actions.signer()
    return diagnose([target], signer=the_signer, resolver=_zone_reader(domain.zone, servers),
                    timeout=timeout, deadline=deadline)[domain.name]


def _zone_reader(zone: Any, servers: Sequence[tuple[str, int]]) -> Resolve:
    """Return a resolver that reads names of a zone Chaton updates through its zone client
    (the DNS adapter's slot first: a test's fake, never the network) and asks the DNS
    directly for every other name or zone."""
    from chaton.adapters.dns import in_zone, normalize_name
    from chaton.mail import dnsplan

    if zone.mode != "rfc2136":
        return resolve
    client = dnsplan.zone_client(zone)
    origin = normalize_name(zone.name)

    def read(name: str, type: str, *, server: tuple[str, int], timeout: float = 5.0
             ) -> Record | None:
        absolute = normalize_name(name)
        if server in servers and in_zone(absolute, origin):
            return next(iter(client.read([(absolute, type)]).values()), None)
        return resolve(name, type, server=server, timeout=timeout)

    return read
