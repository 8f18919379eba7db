"""The worker's mail job: move every domain's DKIM keys along their lifecycle.

Quick lane: it only talks to DNS servers and the signer, each with a timeout.
"""

from __future__ import annotations

from collections.abc import Callable

from chaton.core.worker import JobResult, Schedule

LONG_JOBS: frozenset[str] = frozenset()
INTERVAL_SECONDS = 300


def due_jobs(schedule: Schedule) -> list[tuple[str, Callable[[], JobResult | None]]]:
    if not schedule.is_due("mail.dkim", INTERVAL_SECONDS):
        return []
    schedule.mark("mail.dkim")
    return [("mail.dkim", reconcile_keys)]


def reconcile_keys() -> JobResult | None:
    """Reconcile every domain's keys, then give the signer the active ones."""
    from chaton.adapters import opendkim
    from chaton.mail import actions
    from chaton.mail.models import MailDomain

    events: list[str] = []
    errors: list[str] = []
    for domain in MailDomain.objects.select_related("zone", "dkim_zone"):
        result = actions.do_reconcile_keys(domain)
        events += [f"{domain.name} {event}" for event in result.events]
        errors += [f"{domain.name}: {error}" for error in result.errors]
    revealed = sorted({domain for domain, event in revealed_in(events)})
    if revealed:
        from chaton.mail import published

        rows = published.check([key for name in revealed
                                for key in published.published_keys(name)])
        errors += [f"{row.domain}: {row.url} is not reachable ({row.detail})"
                   for row in rows if not row.reachable]
    try:
        actions.install_signer_keys()
    except opendkim.SignerError as error:
        errors.append(f"signer: {error}")
    if not events and not errors:
        return None
    return JobResult("mail.dkim", "; ".join(events + errors), ok=not errors)


def revealed_in(events: list[str]) -> list[tuple[str, str]]:
    """Return (domain, event) for the events that revealed a key ("<domain> <selector>:
    retired → revealed")."""
    return [(event.split(" ", 1)[0], event) for event in events if event.endswith("→ revealed")]
