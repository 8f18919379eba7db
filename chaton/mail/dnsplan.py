"""Read what the zones hold, compare it with what the domain needs, and put it right.

For a zone Chaton updates (RFC 2136) :func:`plan` reads the records through the
DNS adapter and lists what to add, change (a record changed by hand included)
and remove; :func:`apply_plan` sends the changes. For a manual zone the plan is
read through :func:`resolve` against the zone's authoritative servers: it says
what to set, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.adapters import dns
from chaton.core.errors import InvalidInput, coded
from chaton.mail.models import DnsZone, MailDomain, ZoneMode
from chaton.mail.queries import facts_of
from chaton.mail.records import Expected, expected


@contextmanager
def coded_errors() -> Iterator[None]:
    """Within the block, a DNS server's failure becomes the coded error of the one table
    (:data:`chaton.core.errors.ADAPTER_ERRORS`: ``dns_unavailable`` 503, ``dns_refused``
    502 …); a record the adapter refuses is InvalidInput."""
    try:
        yield
    except dns.BadRecord as error:
        raise InvalidInput(str(error), field="zone") from error
    except dns.DnsError as error:
        failure = coded(error)
        if failure is None:
            raise
        raise failure from error


@dataclass(frozen=True)
class Step:
    """One line of a plan: ``action`` is "add", "change", "remove" or "ok"."""

    action: str
    item: Expected
    current: dns.Record | None

    def as_dict(self) -> dict[str, object]:
        record = self.item.record
        return {"action": self.action, "zone": self.item.zone, "name": record.name,
                "type": record.type, "purpose": self.item.purpose,
                "wanted": list(record.values) if not self.item.absent else [],
                "current": list(self.current.values) if self.current else []}


@dataclass(frozen=True)
class Plan:
    domain: str
    steps: tuple[Step, ...]
    manual_zones: tuple[str, ...]

    @property
    def changes(self) -> list[Step]:
        return [step for step in self.steps if step.action != "ok"]


def zone_server(zone: DnsZone) -> dns.ZoneServer:
    return dns.ZoneServer(zone=zone.name, host=zone.server_host, port=zone.server_port,
                          tsig_name=zone.tsig_name or None,
                          tsig_algorithm=zone.tsig_algorithm,
                          tsig_secret=zone.tsig_secret_clear(),
                          timeout=settings.CHATON.mail_identity.dns_timeout_seconds)


def zone_client(zone: DnsZone) -> dns.Zone:
    """Return the client that reads and updates ``zone``: the slot's, else RFC 2136."""
    server = zone_server(zone)
    client = dns.slot.current(server)
    if client is not None:
        return client
    from chaton.adapters.dns.client import Rfc2136Zone

    return Rfc2136Zone(server)


def servers_of(zone: DnsZone) -> list[tuple[str, int]]:
    """Return the zone's authoritative servers Chaton asks: its primary (when set)."""
    return [(zone.server_host, zone.server_port)] if zone.server_host else []


def _same(current: dns.Record | None, item: Expected) -> bool:
    if item.absent:
        return current is None or not current.values
    return (current is not None and current.values == item.record.values
            and current.ttl == item.record.ttl)


def _read(zone: DnsZone, items: list[Expected]) -> dict[tuple[str, str], dns.Record | None]:
    wanted = [(item.record.name, item.record.type) for item in items]
    if zone.mode == ZoneMode.RFC2136:
        return zone_client(zone).read(wanted)
    servers = servers_of(zone)
    if not servers:
        raise InvalidInput(_("The zone %(zone)s names no authoritative server to check "
                             "against.") % {"zone": zone.name}, field="server_host")
    timeout = settings.CHATON.mail_identity.dns_timeout_seconds
    return {key: dns.resolve(key[0], key[1], server=servers[0], timeout=timeout)
            for key in wanted}


def plan(domain: MailDomain, *, only_updatable: bool = False) -> Plan:
    """Return the plan that brings the domain's records to what it needs; with
    ``only_updatable``, in the zones Chaton updates only (manual ones are not read).

    Raise the DNS adapter's errors when a zone cannot be read, InvalidInput when a manual
    zone names no server.
    """
    items = expected(facts_of(domain))
    if only_updatable:
        updatable = set(DnsZone.objects.filter(mode=ZoneMode.RFC2136)
                        .values_list("name", flat=True))
        items = [item for item in items if item.zone in updatable]
    zones = {zone.name: zone for zone in DnsZone.objects.filter(
        name__in={item.zone for item in items})}
    steps: list[Step] = []
    for zone_name in sorted(zones):
        zone = zones[zone_name]
        in_zone = [item for item in items if item.zone == zone_name]
        current = _read(zone, in_zone)
        for item in in_zone:
            now = current.get((item.record.name, item.record.type))
            if _same(now, item):
                action = "ok"
            elif item.absent:
                action = "remove"
            else:
                action = "add" if now is None else "change"
            steps.append(Step(action, item, now))
    manual = tuple(sorted(name for name, zone in zones.items()
                          if zone.mode == ZoneMode.MANUAL))
    return Plan(domain.name, tuple(steps), manual)


def apply_plan(the_plan: Plan) -> int:
    """Send the plan's changes to the zones Chaton updates; return how many sets changed.

    Manual zones are skipped (people set them). Raise the DNS adapter's errors.
    """
    changed = 0
    by_zone: dict[str, list[dns.Change]] = {}
    for step in the_plan.changes:
        if step.item.zone in the_plan.manual_zones:
            continue
        action = "delete" if step.action == "remove" else "replace"
        by_zone.setdefault(step.item.zone, []).append(dns.Change(action, step.item.record))
    for zone_name, changes in sorted(by_zone.items()):
        zone = DnsZone.objects.get(name=zone_name)
        changed += zone_client(zone).apply(changes)
    return changed


def domains_in(zone: DnsZone) -> list[MailDomain]:
    return list(MailDomain.objects.filter(zone=zone))
