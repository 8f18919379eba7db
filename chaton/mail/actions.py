"""Writes of the mail app: zones, domains, DKIM rotation, DNS apply.

Each ``do_*`` runs in one transaction, takes the acting account keyword-only, writes an
audit row, and leaves what talks to the signer for after the commit. ``publish_retired_keys``
changes only through :func:`do_set_publish_retired_keys`, under a decision of the members.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters import dns, opendkim
from chaton.core import audit, clock, secrets
from chaton.core import gate as core_gate
from chaton.core.errors import Conflict, InvalidInput
from chaton.mail import dnsplan, keys, validation
from chaton.mail.gated import PublishRetiredKeysParams
from chaton.mail.models import (
    DkimKey,
    DmarcPolicy,
    DnsZone,
    KeyAlgorithm,
    KeyState,
    MailDomain,
    MtaStsMode,
    ZoneMode,
)
from chaton.mail.queries import ADVERTISED, selector_cycle
from chaton.mail.records import dkim_value

if TYPE_CHECKING:
    from chaton.core.gate import Authorisation
    from chaton.directory.models import Account
    from chaton.members.models import Organization

logger = logging.getLogger("chaton.mail")

ZONE_FIELDS = ["name", "mode", "server_host", "server_port", "tsig_name", "tsig_algorithm"]
DOMAIN_FIELDS = ["name", "mx_hosts", "sending_addresses", "dmarc_policy",
                 "dmarc_report_address", "mta_sts_mode", "mta_sts_max_age", "tls_rpt_address",
                 "publish_retired_keys", "rotation_days"]
#: RFC 8461: max_age at most 31,557,600 seconds (a year).
MAX_MTA_STS_AGE = 31_557_600


# -- zones -------------------------------------------------------------------------------

def do_create_zone(name: str, *, acting_user: Account | None, mode: str = ZoneMode.MANUAL,
                   server_host: str = "", server_port: int = 53, tsig_name: str = "",
                   tsig_algorithm: str = "hmac-sha256", tsig_secret: str = "") -> DnsZone:
    """Record a DNS zone. Raise InvalidInput for a bad value, Conflict when it exists."""
    zone_name = validation.clean_zone_name(name, field="name")
    if mode not in ZoneMode.values:
        raise InvalidInput(_("Unknown mode: use rfc2136 or manual."), field="mode")
    if mode == ZoneMode.RFC2136 and not server_host:
        raise InvalidInput(_("A zone Chaton updates needs its primary server."),
                           field="server_host")
    if not 0 < server_port < 65536:
        raise InvalidInput(_("A port is a number from 1 to 65535."), field="server_port")
    with transaction.atomic():
        if DnsZone.objects.filter(name=zone_name).exists():
            raise Conflict(_("The zone %(zone)s is recorded already.") % {"zone": zone_name},
                           field="name")
        zone = DnsZone.objects.create(
            name=zone_name, mode=mode, server_host=server_host.strip(), server_port=server_port,
            tsig_name=tsig_name.strip(), tsig_algorithm=tsig_algorithm.strip(),
            tsig_secret=secrets.encrypt(tsig_secret) if tsig_secret else "",
            created_at=clock.now())
        audit.record("mail.zone.create", zone, acting_user=acting_user,
                     after={**audit.snapshot(zone, ZONE_FIELDS), "tsig": bool(tsig_secret)})
    return zone


# -- domains -----------------------------------------------------------------------------

@dataclass
class DomainValues:
    """A domain's settings, checked (:func:`validate_domain_values`)."""

    mx_hosts: list[str] = field(default_factory=list)
    sending_addresses: list[str] = field(default_factory=list)
    dmarc_policy: str = DmarcPolicy.NONE
    dmarc_report_address: str = ""
    mta_sts_mode: str = MtaStsMode.TESTING
    mta_sts_max_age: int = 604800
    tls_rpt_address: str = ""
    rotation_days: int = 30


def _clean_address(value: str, name: str) -> str:
    value = value.strip()
    if not value:
        return ""
    local, at, domain = value.rpartition("@")
    if not at or not local or not validation.is_domain(domain.lower()):
        raise InvalidInput(_("“%(value)s” is not a mail address.") % {"value": value},
                           field=name)
    return value


def refuse_direct_publication(name: str, values: dict[str, Any]) -> None:
    """Raise DecisionRequired (with the link to a proposal) when ``values`` tries to set
    ``publish_retired_keys``: only the members' decision sets it."""
    if "publish_retired_keys" in values:
        core_gate.require(PublishRetiredKeysParams(
            domain=name, publish=bool(values["publish_retired_keys"])), None)


def validate_domain_values(values: dict[str, Any], *, base: DomainValues | None = None
                           ) -> DomainValues:
    """Given changed settings by name, return the whole set checked. Raise InvalidInput.

    ``publish_retired_keys`` is not among them: it changes only by a decision
    (:func:`refuse_direct_publication`).
    """
    unknown = set(values) - set(DomainValues.__dataclass_fields__)
    if unknown:
        raise InvalidInput(_("Unknown setting: %(name)s.") % {"name": sorted(unknown)[0]},
                           field=sorted(unknown)[0])
    out = DomainValues(**vars(base)) if base else DomainValues()
    for name, value in values.items():
        if name in ("mx_hosts", "sending_addresses"):
            if isinstance(value, str):
                value = [part for part in value.replace(",", " ").split() if part]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInput(_("A list of names is expected."), field=name)
            value = (validation.clean_hosts(value, field=name) if name == "mx_hosts"
                     else validation.clean_addresses(value, field=name))
        elif name == "dmarc_policy":
            if value not in DmarcPolicy.values:
                raise InvalidInput(_("The DMARC policy is none, quarantine or reject."),
                                   field=name)
        elif name == "mta_sts_mode":
            if value not in MtaStsMode.values:
                raise InvalidInput(_("The MTA-STS mode is testing, enforce or none."),
                                   field=name)
        elif name in ("dmarc_report_address", "tls_rpt_address"):
            if not isinstance(value, str):
                raise InvalidInput(_("A mail address is expected."), field=name)
            value = _clean_address(value, name)
        elif name == "mta_sts_max_age":
            if not isinstance(value, int) or isinstance(value, bool) or not (
                    0 < value <= MAX_MTA_STS_AGE):
                raise InvalidInput(_("The MTA-STS max age is from 1 to 31557600 seconds."),
                                   field=name)
        elif name == "rotation_days":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 366:
                raise InvalidInput(_("Rotate every 1 to 366 days."), field=name)
        setattr(out, name, value)
    if out.mta_sts_mode == MtaStsMode.ENFORCE and not out.mx_hosts:
        raise InvalidInput(_("MTA-STS in enforce mode needs the mail exchangers."),
                           field="mta_sts_mode")
    return out


def do_add_domain(name: str, *, acting_user: Account | None, zone: DnsZone,
                  dkim_zone: DnsZone | None = None, organization: Organization | None = None,
                  **values: Any) -> MailDomain:
    """Record a mail domain in ``zone``; its first DKIM key comes with the next reconcile.

    Raise InvalidInput for a bad name or setting, or a domain not in its zone; Conflict
    when the domain exists.
    """
    domain_name = validation.clean_domain(name)
    refuse_direct_publication(domain_name, values)
    validation.check_in_zone(domain_name, zone.name)
    if dkim_zone is not None and dkim_zone.mode != ZoneMode.RFC2136:
        raise InvalidInput(_("DKIM records can live only in a zone Chaton updates."),
                           field="dkim_zone")
    values.setdefault("rotation_days", settings.CHATON.mail_identity.rotation_days)
    checked = validate_domain_values(values)
    with transaction.atomic():
        if MailDomain.objects.filter(name=domain_name).exists():
            raise Conflict(_("The mail domain %(name)s is recorded already.")
                           % {"name": domain_name}, field="name")
        domain = MailDomain.objects.create(name=domain_name, zone=zone, dkim_zone=dkim_zone,
                                           organization=organization, created_at=clock.now(),
                                           **vars(checked))
        audit.record("mail.domain.add", domain, acting_user=acting_user,
                     after={**audit.snapshot(domain, DOMAIN_FIELDS), "zone": zone.name})
    return domain


def do_update_domain(domain: MailDomain, *, acting_user: Account | None,
                     **values: Any) -> MailDomain:
    """Change a domain's settings. Raise InvalidInput (``publish_retired_keys`` included:
    that one is the members' decision, :func:`do_set_publish_retired_keys`)."""
    refuse_direct_publication(domain.name, values)
    base = DomainValues(**{name: getattr(domain, name)
                           for name in DomainValues.__dataclass_fields__})
    checked = validate_domain_values(values, base=base)
    with transaction.atomic():
        before = audit.snapshot(domain, DOMAIN_FIELDS)
        for name in values:
            setattr(domain, name, getattr(checked, name))
        domain.save(update_fields=list(values))
        audit.record("mail.domain.update", domain, acting_user=acting_user, before=before,
                     after=audit.snapshot(domain, DOMAIN_FIELDS))
    return domain


def do_delete_domain(domain: MailDomain, *, acting_user: Account | None) -> None:
    """Forget a domain and its keys (its DNS records stay as they are)."""
    with transaction.atomic():
        audit.record("mail.domain.delete", domain, acting_user=acting_user,
                     before=audit.snapshot(domain, DOMAIN_FIELDS))
        domain.delete()
    transaction.on_commit(install_signer_keys_quietly)


def validate_publish_retired_keys(domain: MailDomain) -> None:
    """The gated operation's own check: nothing to refuse beyond the domain existing."""


def do_set_publish_retired_keys(domain: MailDomain, publish: bool, *,
                                acting_user: Account | None,
                                authorised_by: Authorisation | None = None) -> MailDomain:
    """Turn the publication of retired private keys on or off for ``domain``.

    Only a decision of the members opens it (``mail.publish_retired_keys``, extraordinary):
    without ``authorised_by`` it raises DecisionRequired.
    """
    validate_publish_retired_keys(domain)
    core_gate.require(PublishRetiredKeysParams(domain=domain.name, publish=publish),
                      authorised_by)
    with transaction.atomic():
        before = domain.publish_retired_keys
        domain.publish_retired_keys = publish
        domain.save(update_fields=["publish_retired_keys"])
        audit.record("mail.domain.publish_retired_keys", domain, acting_user=acting_user,
                     before={"publish_retired_keys": before},
                     after={"publish_retired_keys": publish})
    return domain


# -- DNS ---------------------------------------------------------------------------------

def do_apply_dns(domain: MailDomain, *, acting_user: Account | None) -> int:
    """Bring the domain's records in the zones Chaton updates to what it needs; return how
    many record sets changed. Raise ServerFailure (``dns_unavailable``, ``dns_refused``) when
    a server fails (nothing recorded then)."""
    with dnsplan.coded_errors():
        the_plan = dnsplan.plan(domain)
        changed = dnsplan.apply_plan(the_plan)
    with transaction.atomic():
        audit.record("mail.dns.apply", domain, acting_user=acting_user,
                     after={"changed": changed,
                            "steps": [f"{step.action} {step.item.record.name} "
                                      f"{step.item.record.type}"
                                      for step in the_plan.changes
                                      if step.item.zone not in the_plan.manual_zones]})
    return changed


# -- DKIM rotation -----------------------------------------------------------------------

def _now() -> dt.datetime:
    return clock.now()


def next_selector(domain: MailDomain) -> str:
    """Return the selector of the domain's next key: the next of the fixed cycle not in
    use, or the date template expanded on today (a suffix when taken). Raise InvalidInput
    when the configured selectors are not valid."""
    cycle = selector_cycle()
    in_use = set(domain.keys.filter(state__in=ADVERTISED).values_list("selector", flat=True))
    if cycle and not any("%" in selector for selector in cycle):
        last = domain.keys.order_by("-created_at", "-id").first()
        start = (cycle.index(last.selector) + 1) if last and last.selector in cycle else 0
        for offset in range(len(cycle)):
            candidate = cycle[(start + offset) % len(cycle)]
            if candidate not in in_use:
                return validation.clean_selector(candidate, field="selectors")
        raise InvalidInput(_("Every selector of the cycle is in use: add one to "
                           "mail_identity.selectors."), field="selectors")
    template = cycle[0] if cycle else "k%Y%m%d"
    base = validation.clean_selector(clock.today().strftime(template), field="selectors")
    taken = set(domain.keys.values_list("selector", flat=True))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _new_key(domain: MailDomain, selector: str, algorithm: str, *, emergency: bool) -> DkimKey:
    bits = 2048 if algorithm == KeyAlgorithm.RSA else 256
    private = keys.generate(algorithm, bits)
    public = keys.public_key_of(private)
    return DkimKey.objects.create(
        domain=domain, selector=selector, algorithm=algorithm, bits=bits,
        private_key=secrets.encrypt(private), public_key=public, state=KeyState.PENDING,
        created_at=_now(), emergency=emergency, published_name=keys.published_name(public))


def _generate(domain: MailDomain, *, emergency: bool, acting_user: Account | None
              ) -> list[DkimKey]:
    selector = next_selector(domain)
    made = [_new_key(domain, selector, KeyAlgorithm.RSA, emergency=emergency)]
    if settings.CHATON.mail_identity.ed25519:
        made.append(_new_key(domain, f"{selector}-ed", KeyAlgorithm.ED25519,
                             emergency=emergency))
    for key in made:
        audit.record("mail.dkim.generate", key, acting_user=acting_user,
                     after={"selector": key.selector, "algorithm": key.algorithm,
                            "emergency": emergency})
    return made


@dataclass
class RotationResult:
    """What a rotation did, and what it skipped (emergency)."""

    new_keys: list[DkimKey]
    retired: list[DkimKey]
    skipped: list[str]


def do_rotate(domain: MailDomain, *, acting_user: Account | None, emergency: bool = False
              ) -> RotationResult:
    """Start a rotation: a new key, pending until its record is seen everywhere.

    ``emergency`` (the active key is compromised): the active keys stop signing at once
    (retired, not retiring), and the new key signs as soon as its record is seen, without
    the minimum advertisement time. Without emergency, a rotation already under way
    (a pending key) is a Conflict.
    """
    with transaction.atomic():
        domain = MailDomain.objects.select_for_update().get(pk=domain.pk)
        pending = list(domain.keys.filter(state=KeyState.PENDING))
        retired: list[DkimKey] = []
        skipped: list[str] = []
        if pending and not emergency:
            raise Conflict(_("A rotation is under way: the key %(selector)s waits to be seen "
                             "in DNS.") % {"selector": pending[0].selector})
        if emergency:
            hours = settings.CHATON.mail_identity
            for key in domain.keys.filter(state=KeyState.ACTIVE):
                key.state, key.retired_at, key.emergency = KeyState.RETIRED, _now(), True
                key.save(update_fields=["state", "retired_at", "emergency"])
                audit.record("mail.dkim.retire", key, acting_user=acting_user,
                             after={"selector": key.selector, "emergency": True})
                retired.append(key)
            skipped = [
                _("the minimum advertisement of the new key (%(hours)s h): it signs as soon "
                  "as its record is seen on every server") % {"hours": hours.min_advertise_hours},
                _("the transit window of the compromised key (%(hours)s h): it stopped signing "
                  "and its record goes now") % {"hours": hours.transit_hours},
            ]
            if retired:
                skipped.append(_("signing: no mail of this domain is signed until the new "
                                 "key's record is seen"))
            for key in pending:
                key.emergency = True
                key.save(update_fields=["emergency"])
        new_keys = pending if pending else _generate(domain, emergency=emergency,
                                                     acting_user=acting_user)
        audit.record("mail.dkim.rotate", domain, acting_user=acting_user,
                     after={"emergency": emergency,
                            "new": [key.selector for key in new_keys],
                            "retired": [key.selector for key in retired],
                            "skipped": skipped})
        transaction.on_commit(install_signer_keys_quietly)
    return RotationResult(new_keys, retired, skipped)


def record_seen(key: DkimKey) -> bool:
    """Return whether the key's record is seen, with its ``p=``, on every authoritative
    server of its zone. Raise the DNS adapter's errors."""
    domain = key.domain
    zone = domain.dkim_zone or domain.zone
    from chaton.mail.queries import facts_of
    from chaton.mail.records import KeyFacts, dkim_name

    _zone_name, name = dkim_name(facts_of(domain), key.selector)
    wanted = dkim_value(KeyFacts(key.selector, key.algorithm, key.public_key))
    answers: list[dns.Record | None] = []
    if zone.mode == ZoneMode.RFC2136:
        answers.append(dnsplan.zone_client(zone).read([(name, "TXT")]).get((name, "TXT")))
    else:
        timeout = settings.CHATON.mail_identity.dns_timeout_seconds
        servers = dnsplan.servers_of(zone)
        if not servers:
            return False
        answers += [dns.resolve(name, "TXT", server=server, timeout=timeout)
                    for server in servers]
    return all(answer is not None and wanted in answer.values for answer in answers)


@dataclass
class ReconcileResult:
    domain: str
    events: list[str]
    errors: list[str]


def do_reconcile_keys(domain: MailDomain, *, acting_user: Account | None = None
                      ) -> ReconcileResult:
    """Move the domain's keys along their lifecycle, publish their records, install the
    active ones in the signer (after the commit). Never raise for a DNS server that
    fails: the keys stay where they are and the result says why."""
    config = settings.CHATON.mail_identity
    min_advertise = dt.timedelta(hours=config.min_advertise_hours)
    transit = dt.timedelta(hours=config.transit_hours)
    events: list[str] = []
    errors: list[str] = []
    with transaction.atomic():
        domain = (MailDomain.objects.select_for_update().select_related("zone", "dkim_zone")
                  .get(pk=domain.pk))
        now = _now()

        def move(key: DkimKey, state: str, stamp: str) -> None:
            before = key.state
            key.state = state
            setattr(key, stamp, now)
            key.save(update_fields=["state", stamp])
            audit.record(f"mail.dkim.{state}", key, acting_user=acting_user,
                         actor_label=None if acting_user else "worker",
                         before={"state": before}, after={"state": state})
            events.append(f"{key.selector}: {before} → {state}")

        for key in domain.keys.filter(state=KeyState.RETIRING):
            if key.retiring_at is not None and now - key.retiring_at >= transit:
                move(key, KeyState.RETIRED, "retired_at")
        active = list(domain.keys.filter(state=KeyState.ACTIVE))
        pending = list(domain.keys.filter(state=KeyState.PENDING))
        due = any(key.activated_at is not None
                  and now - key.activated_at >= dt.timedelta(days=domain.rotation_days)
                  for key in active)
        if not pending and (not active or due):
            pending = _generate(domain, emergency=False, acting_user=acting_user)
            events += [f"{key.selector}: new key (pending)" for key in pending]
        synced = True
        try:
            the_plan = dnsplan.plan(domain, only_updatable=True)
            if the_plan.changes:
                dnsplan.apply_plan(the_plan)
        except (dns.DnsError, OSError, InvalidInput) as error:
            synced = False
            errors.append(_("DNS: %(error)s") % {"error": error})
        for key in pending:
            try:
                seen = record_seen(key)
            except (dns.DnsError, OSError, InvalidInput) as error:
                errors.append(_("DNS: %(error)s") % {"error": error})
                seen = False
            if not seen:
                if key.advertised_at is not None:  # another key, or gone: wait again
                    key.advertised_at = None
                    key.save(update_fields=["advertised_at"])
                continue
            if key.advertised_at is None:
                key.advertised_at = now
                key.save(update_fields=["advertised_at"])
                events.append(f"{key.selector}: seen in DNS")
            if key.emergency or now - key.advertised_at >= min_advertise:
                for old in domain.keys.filter(state=KeyState.ACTIVE,
                                              algorithm=key.algorithm):
                    move(old, KeyState.RETIRING, "retiring_at")
                move(key, KeyState.ACTIVE, "activated_at")
        if domain.publish_retired_keys and synced:
            try:
                gone = {step.item.record.name for step in dnsplan.plan(domain).steps
                        if step.item.absent and step.action == "ok"}
            except (dns.DnsError, OSError, InvalidInput):
                gone = set()
            from chaton.mail.queries import facts_of
            from chaton.mail.records import dkim_name

            facts = facts_of(domain)
            for key in domain.keys.filter(state=KeyState.RETIRED):
                if dkim_name(facts, key.selector)[1] in gone:
                    move(key, KeyState.REVEALED, "revealed_at")
        transaction.on_commit(install_signer_keys_quietly)
    return ReconcileResult(domain.name, events, errors)


def signer() -> opendkim.Signer | None:
    """Return the signer: the slot's, else OpenDKIM when configured, else None."""
    replacement = opendkim.slot.current(None)
    if replacement is not None:
        return replacement
    config = settings.CHATON.mail_identity
    if not config.signer_config_dir:
        return None
    from chaton.adapters.opendkim.client import OpenDkimSigner

    return OpenDkimSigner(config.signer_config_dir,
                          reload=config.signer_reload_command)


def active_signing_keys() -> list[opendkim.SigningKey]:
    """Return every active key as the signer takes it."""
    return [opendkim.SigningKey(key.domain.name, key.selector, key.private_key_pem())
            for key in DkimKey.objects.select_related("domain").filter(state=KeyState.ACTIVE)
            .order_by("domain__name", "selector")]


def install_signer_keys_quietly() -> None:
    """:func:`install_signer_keys` after a commit: a signer that fails is logged, and the
    worker's next reconcile tries again (the signer holds other keys than the active ones)."""
    try:
        install_signer_keys()
    except opendkim.SignerError:
        logger.exception("mail: the signer did not take the active keys")


def install_signer_keys() -> bool:
    """Give the signer the active keys when it holds others; return whether it was given
    them. Raise the signer's errors."""
    the_signer = signer()
    if the_signer is None:
        return False
    wanted = active_signing_keys()
    held = the_signer.held()
    if held == {(key.domain, key.selector): keys.public_key_of(key.private_key_pem)
                for key in wanted}:
        return False
    the_signer.install(wanted)
    return True
