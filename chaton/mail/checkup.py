"""What the diagnosis (:mod:`chaton.mail.diagnosis`) is asked about a mail domain.

:func:`target_of` turns a :class:`MailDomain` into the diagnosis's :class:`Target` (the records
of its own zone, the zone's servers, its keys, its mail ports); :func:`diagnose_domain` runs it
with the signer and returns the findings. The pages, the API and the CLI call it.
"""

from __future__ import annotations

from django.conf import settings

from chaton.mail import diagnosis, dnsplan
from chaton.mail.models import MailDomain, MtaStsMode
from chaton.mail.queries import facts_of
from chaton.mail.records import dkim_name, expected


def target_of(domain: MailDomain) -> diagnosis.Target:
    """Return what the diagnosis checks for ``domain``: the records of its own zone, asked of
    the zone's server; its DKIM keys; the first mail exchanger's ports (25, 587, 465, 993)
    and its EHLO name against the sending addresses; the MTA-STS policy over HTTPS."""
    facts = facts_of(domain)
    items = [item for item in expected(facts) if item.zone == domain.zone.name]
    wanted, absent = diagnosis.from_expected(items)
    keys = [diagnosis.KeyCheck(key.selector, key.public_key, key.state,
                               dkim_name(facts, key.selector)[1], key.activated_at)
            for key in domain.keys.all()]
    mx = domain.mx_hosts[0] if domain.mx_hosts else ""
    tls = [diagnosis.TlsEndpoint(mx, port, kind) for port, kind in (
        (25, "smtp-starttls"), (587, "smtp-starttls"), (465, "smtp-tls"), (993, "imap-tls"))
    ] if mx else []
    return diagnosis.Target(
        domain=domain.name, expected=wanted, absent=absent,
        authoritative=dnsplan.servers_of(domain.zone), mx_hosts=list(domain.mx_hosts),
        sending_addresses=list(domain.sending_addresses), keys=keys,
        rotation_days=domain.rotation_days,
        mta_sts=diagnosis.MtaStsSource() if domain.mta_sts_mode != MtaStsMode.NONE
        and domain.mx_hosts else None,
        tls=tls, ehlo_endpoint=(mx, 25) if mx and domain.sending_addresses else None)


def diagnose_domain(domain: MailDomain) -> list[diagnosis.Finding]:
    """Return the findings of ``domain`` (none: nothing to fix). Never raise for a server
    that does not answer: that is a finding."""
    from chaton.mail.actions import signer

    timeout = settings.CHATON.mail_identity.dns_timeout_seconds
    target = target_of(domain)
    return diagnosis.diagnose([target], signer=signer(), timeout=timeout, deadline=4 * timeout,
                              resolver=diagnosis.zone_reader(domain.zone, target.authoritative)
                              )[domain.name]
