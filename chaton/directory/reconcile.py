"""Reconcile the directory: read what is in LDAP, diff with the database, write the difference.

``plan()`` returns a :class:`Plan` (a value to print, test, or apply);
``apply()`` writes it. Applying a plan twice changes nothing: the second plan
is empty. A run killed half way leaves some changes applied; the next plan
contains exactly the rest.

Ownership: Chaton owns the entries it wrote (listed in ProjectedEntry) and
every entry it wants. Anything else under its organizational units is
*foreign*: listed in the plan, deleted only with ``delete_foreign=True``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters.ldap import Attributes, Change, Directory, LdapError, normalize_dn
from chaton.core import audit, clock
from chaton.directory.backend import base_dn, get_directory
from chaton.directory.models import ProjectedEntry, SyncState
from chaton.directory.projection import MANAGED_ATTRIBUTES, OUS, Projection

logger = logging.getLogger("chaton.directory")

#: Attributes whose values compare without regard to case.
_CASELESS = frozenset({"objectclass", "member"})


def _canonical(name: str, values: Sequence[bytes]) -> list[bytes]:
    if name == "member":
        return sorted(normalize_dn(value.decode()).encode() for value in values)
    if name in _CASELESS:
        return sorted(value.lower() for value in values)
    return sorted(values)


def _differences(desired: Attributes, actual: Attributes) -> dict[str, list[bytes]]:
    """Return the managed attributes to replace so that ``actual`` becomes ``desired``."""
    replace: dict[str, list[bytes]] = {}
    for name in MANAGED_ATTRIBUTES:
        wanted = desired.get(name, [])
        found = actual.get(name, [])
        if wanted == found:  # the usual case: the directory holds what Chaton wrote
            continue
        if _canonical(name, wanted) != _canonical(name, found):
            replace[name] = list(wanted)
    return replace


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a whole-directory plan is built.

    The plan makes tens of thousands of small dicts and lists, none cyclic;
    the collector would walk them again and again (half the time of a no-op).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class Plan:
    """The changes that bring the directory to the desired state, and what was noticed."""

    changes: list[Change] = field(default_factory=list)
    #: Entries under Chaton's units that Chaton does not own (reported, kept).
    foreign: list[str] = field(default_factory=list)
    #: Desired entries already present that Chaton had not recorded as its own.
    adopted: list[str] = field(default_factory=list)
    #: Recorded entries that are gone and no longer wanted: forget them.
    forgotten: list[str] = field(default_factory=list)

    @property
    def is_noop(self) -> bool:
        return not (self.changes or self.adopted or self.forgotten)

    def counts(self) -> dict[str, int]:
        counts = {"add": 0, "modify": 0, "delete": 0}
        for change in self.changes:
            counts[change.kind] += 1
        counts["foreign"] = len(self.foreign)
        return counts

    def lines(self) -> list[str]:
        """Return the plan as lines a person reads: ``+`` add, ``~`` modify, ``-`` delete."""
        signs = {"add": "+", "modify": "~", "delete": "-"}
        lines = []
        for change in self.changes:
            detail = ""
            if change.kind == "modify":
                detail = " (" + ", ".join(sorted(change.attributes)) + ")"
            lines.append(f"{signs[change.kind]} {change.dn}{detail}")
        lines += ["? " + _("%(dn)s (not Chaton's: kept)") % {"dn": dn} for dn in self.foreign]
        return lines

    def phases(self) -> list[list[Change]]:
        """Split the changes into batches that may run in any order within themselves.

        Parents are added before children, accounts before the groups naming
        them, and children deleted before parents.
        """
        base_depth = normalize_dn(base_dn()).count(",")

        def key(change: Change) -> tuple[int, int]:
            depth = change.dn.count(",") - base_depth
            if change.kind == "delete":
                return (2, -depth)
            group = depth > 1 and change.dn.split(",", 2)[1] == "ou=groups"
            return (1 if group else 0, depth)

        batches: dict[tuple[int, int], list[Change]] = {}
        for change in self.changes:
            batches.setdefault(key(change), []).append(change)
        return [batches[batch_key] for batch_key in sorted(batches)]


def diff(desired: dict[str, Attributes], actual: dict[str, Attributes], owned: set[str],
         *, delete_foreign: bool = False) -> Plan:
    """Given desired and actual entries and the DNs Chaton owns, return the plan."""
    plan = Plan()
    for dn, entry in desired.items():
        if dn not in actual:
            plan.changes.append(Change("add", dn, entry))
            continue
        if dn not in owned:
            plan.adopted.append(dn)
        replace = _differences(entry, actual[dn])
        if replace:
            plan.changes.append(Change("modify", dn, replace))
    for dn in actual.keys() - desired.keys():
        if dn in owned or delete_foreign:
            plan.changes.append(Change("delete", dn))
        else:
            plan.foreign.append(dn)
    plan.forgotten = sorted(owned - actual.keys() - desired.keys())
    plan.foreign.sort()
    return plan


def _projection() -> Projection:
    return Projection(base_dn(), at=clock.now(),
                      users_gid_number=settings.CHATON.directory.users_gid_number)


def _under_units(dn: str, base: str) -> bool:
    return any(dn == f"ou={unit},{base}" or dn.endswith(f",ou={unit},{base}") for unit in OUS)


def plan_all(directory: Directory, *, delete_foreign: bool = False) -> Plan:
    """Return the plan for the whole directory. Raise LdapError if it cannot be read."""
    projection = _projection()
    desired = projection.desired()
    base = normalize_dn(base_dn())
    actual = {dn: entry for dn, entry in directory.read_subtree(base, MANAGED_ATTRIBUTES).items()
              if _under_units(dn, base)}
    owned = set(ProjectedEntry.objects.values_list("dn", flat=True))
    return diff(desired, actual, owned, delete_foreign=delete_foreign)


def plan_some(directory: Directory, *, account_uids: Iterable[str] = (),
              group_names: Iterable[str] = (), organization_slugs: Iterable[str] = ()) -> Plan:
    """Return the plan for a few entries only: what one action touched."""
    projection = _projection()
    uids, names, slugs = list(account_uids), list(group_names), list(organization_slugs)
    desired = projection.desired(account_uids=uids, group_names=names, organization_slugs=slugs)
    # The units come along, so that a change made before the first full sync still lands.
    desired.update(projection.ou_entries())
    dns = (list(projection.ou_entries())
           + [normalize_dn(projection.account_dn(uid)) for uid in uids]
           + [normalize_dn(projection.group_dn(name)) for name in names]
           + [normalize_dn(projection.organization_dn(slug)) for slug in slugs])
    actual = directory.read(dns, MANAGED_ATTRIBUTES)
    owned = set(ProjectedEntry.objects.filter(dn__in=dns).values_list("dn", flat=True))
    plan = diff(desired, actual, owned)
    # Entries not in scope are neither missing nor foreign for this plan.
    scope = set(dns)
    plan.forgotten = [dn for dn in plan.forgotten if dn in scope]
    return plan


@dataclass
class Outcome:
    applied: int = 0
    failures: list[tuple[Change, LdapError]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


#: Changes written, and recorded as Chaton's, at a time: progress and crash safety.
CHUNK = 500

Progress = Callable[[int, int], None]


def apply(directory: Directory, plan: Plan, *, progress: Progress | None = None) -> Outcome:
    """Write ``plan`` to the directory and record which entries Chaton now owns.

    ``progress(done, total)`` is called before the first write and after each
    chunk of writes. Raise LdapUnavailable if the server goes away: what was
    written stays written and recorded, and the next plan holds the rest.
    """
    outcome = Outcome()
    total, done = len(plan.changes), 0
    if progress:
        progress(0, total)
    if plan.adopted:
        ProjectedEntry.objects.bulk_create([ProjectedEntry(dn=dn) for dn in plan.adopted],
                                           ignore_conflicts=True)
    if plan.forgotten:
        ProjectedEntry.objects.filter(dn__in=plan.forgotten).delete()
    chunks = [batch[start:start + CHUNK] for batch in plan.phases()
              for start in range(0, len(batch), CHUNK)]
    for batch in chunks:
        results = directory.apply(batch)
        added, deleted = [], []
        for change, error in zip(batch, results, strict=True):
            if error is None:
                outcome.applied += 1
                if change.kind == "add":
                    added.append(ProjectedEntry(dn=change.dn))
                elif change.kind == "delete":
                    deleted.append(change.dn)
            else:
                logger.warning("directory: %s %s failed: %s", change.kind, change.dn, error)
                outcome.failures.append((change, error))
        ProjectedEntry.objects.bulk_create(added, ignore_conflicts=True, batch_size=1000)
        if deleted:
            ProjectedEntry.objects.filter(dn__in=deleted).delete()
        done += len(batch)
        if progress:
            progress(done, total)
    return outcome


def sync_all(*, dry_run: bool = False, delete_foreign: bool = False,
             directory: Directory | None = None,
             progress: Progress | None = None) -> tuple[Plan, Outcome | None]:
    """Plan the whole directory and, unless ``dry_run``, apply it and record the run.

    ``progress`` is handed to :func:`apply`. Raise LdapError when the directory
    cannot be reached (recorded as pending).
    """
    connection = directory or get_directory()
    try:
        with _collector_paused():
            plan = plan_all(connection, delete_foreign=delete_foreign)
        if dry_run:
            return plan, None
        outcome = apply(connection, plan, progress=progress)
    except LdapError as error:
        _record_failure(error)
        raise
    _record_success(plan, outcome)
    return plan, outcome


def sync_some(*, account_uids: Iterable[str] = (), group_names: Iterable[str] = (),
              organization_slugs: Iterable[str] = ()) -> Outcome | None:
    """Bring a few entries up to date right after a change; never raise.

    When the directory cannot be reached, the change is marked pending and the
    worker's next pass writes it. Return the outcome, or None on failure.
    """
    connection = get_directory()
    try:
        plan = plan_some(connection, account_uids=account_uids, group_names=group_names,
                         organization_slugs=organization_slugs)
        outcome = apply(connection, plan)
    except LdapError as error:
        logger.warning("directory unreachable, change left for the worker: %s", error)
        _record_failure(error)
        return None
    if not outcome.ok:
        _record_failure(outcome.failures[0][1])
    return outcome


def _record_failure(error: Exception) -> None:
    state = SyncState.get()
    now = clock.now()
    state.pending_since = state.pending_since or now
    state.last_run_at = now
    state.last_error = str(error)[:2000]
    state.save(update_fields=["pending_since", "last_run_at", "last_error"])


def _record_success(plan: Plan, outcome: Outcome) -> None:
    with transaction.atomic():
        state = SyncState.get()
        now = clock.now()
        state.last_run_at = now
        if outcome.ok:
            state.pending_since = None
            state.last_success_at = now
            state.last_error = ""
        else:
            state.pending_since = state.pending_since or now
            state.last_error = str(outcome.failures[0][1])[:2000]
        state.save(update_fields=["pending_since", "last_run_at", "last_success_at",
                                  "last_error"])
        if not plan.is_noop:
            audit.record("directory.sync", state, acting_user=None, actor_label="reconciler",
                         after={**plan.counts(), "failed": len(outcome.failures)})
