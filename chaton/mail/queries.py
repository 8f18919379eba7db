"""Reads of the mail app: lookups by natural key, and what the records are made from."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import lookup_text
from chaton.mail.models import DkimKey, DnsZone, KeyState, MailDomain
from chaton.mail.records import DomainFacts, KeyFacts

ADVERTISED = (KeyState.PENDING, KeyState.ACTIVE, KeyState.RETIRING)
WITHDRAWN = (KeyState.RETIRED, KeyState.REVEALED)


def domain_by_name(name: str, *, field: str = "domain") -> MailDomain:
    """Return the mail domain ``name``. Raise NotFound."""
    text = lookup_text(name)
    key = text.lower().removesuffix(".") if text else None
    domain = (MailDomain.objects.select_related("zone", "dkim_zone", "organization")
              .filter(name=key).first() if key else None)
    if domain is None:
        raise NotFound(_("No mail domain is named “%(name)s”.") % {"name": name}, field=field)
    return domain


def zone_by_name(name: str, *, field: str = "zone") -> DnsZone:
    """Return the DNS zone ``name`` (with or without the trailing dot). Raise NotFound."""
    text = lookup_text(name)
    key = text.lower().rstrip(".") + "." if text else None
    zone = DnsZone.objects.filter(name=key).first() if key else None
    if zone is None:
        raise NotFound(_("No DNS zone is named “%(name)s”.") % {"name": name}, field=field)
    return zone


def key_by_published_name(name: str) -> DkimKey | None:
    """Return the revealed key published under ``name`` (64 hex digits), or None."""
    if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
        return None
    return (DkimKey.objects.select_related("domain")
            .filter(published_name=name, state=KeyState.REVEALED,
                    domain__publish_retired_keys=True).first())


def selector_cycle() -> list[str]:
    """Return the configured selectors: a fixed cycle, or one date template."""
    return list(settings.CHATON.mail_identity.selectors)


def is_fixed_cycle() -> bool:
    selectors = selector_cycle()
    return not any("%" in selector for selector in selectors)


def web_host() -> str:
    """Return the host name people reach Chaton at (where mta-sts.<domain> points)."""
    host = urlsplit(settings.CHATON.resolved_public_url).hostname or ""
    return host if host and not host.replace(".", "").isdigit() and "." in host else ""


def caa_issuer() -> str:
    """Return the CAA issuer for the ACME directory in use (Let's Encrypt by default)."""
    proxy = settings.CHATON.proxy
    if proxy.tls != "acme":
        return ""
    host = urlsplit(proxy.acme_ca).hostname or ""
    return "letsencrypt.org" if host.endswith("letsencrypt.org") else ""


def facts_of(domain: MailDomain) -> DomainFacts:
    """Return what the domain's records are made from."""
    keys = list(domain.keys.all())
    advertised = tuple(KeyFacts(key.selector, key.algorithm, key.public_key)
                       for key in keys if key.state in ADVERTISED)
    withdrawn = tuple(sorted({key.selector for key in keys if key.state in WITHDRAWN}))
    report_zone = None
    report_domain = domain.dmarc_report_address.rpartition("@")[2].lower()
    if report_domain and report_domain != domain.name:
        managed = MailDomain.objects.select_related("zone").filter(name=report_domain).first()
        report_zone = managed.zone.name if managed else None
    return DomainFacts(
        name=domain.name, zone=domain.zone.name, mx_hosts=tuple(domain.mx_hosts),
        sending_addresses=tuple(domain.sending_addresses), dmarc_policy=domain.dmarc_policy,
        dmarc_report_address=domain.dmarc_report_address, mta_sts_mode=domain.mta_sts_mode,
        mta_sts_max_age=domain.mta_sts_max_age, tls_rpt_address=domain.tls_rpt_address,
        advertised=advertised, withdrawn=withdrawn,
        dkim_zone=domain.dkim_zone.name if domain.dkim_zone else None,
        cname_selectors=tuple(selector_cycle()) if domain.dkim_zone and is_fixed_cycle()
        else (),
        report_zone=report_zone, web_host=web_host(), caa_issuer=caa_issuer())


def key_rows(domain: MailDomain) -> list[DkimKey]:
    return list(domain.keys.order_by("-created_at", "-id"))
