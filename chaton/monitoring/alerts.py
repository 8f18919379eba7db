"""Alerts: a mail to the alert group's members and a post to the team channel's webhook.

They go through the notifications queue (:mod:`chaton.notifications.outbox`):
queued in the caller's transaction, tried once after the commit, retried by
the worker. A mail server or a webhook that fails never reaches the probing.
A maintenance window covering a probe's service silences its alerts.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.directory.models import GroupMembership
from chaton.monitoring.models import Incident, Maintenance, Probe
from chaton.notifications import outbox
from chaton.notifications.models import Notification


def recipients() -> list[str]:
    """Return the mail addresses of the alert group's valid members (none without a group)."""
    group = settings.CHATON.monitoring.alert_group
    if not group:
        return []
    memberships = (GroupMembership.objects.valid(clock.now()).filter(group__name=group)
                   .select_related("account").order_by("account__uid"))
    return sorted({membership.account.email for membership in memberships
                   if membership.account.email})


def silenced(probe: Probe, at: dt.datetime) -> Maintenance | None:
    """Return the maintenance window that silences ``probe`` at ``at``, if any."""
    for window in Maintenance.objects.filter(starts_at__lte=at, ends_at__gt=at):
        if window.covers(probe.service, at):
            return window
    return None


def format_duration(duration: dt.timedelta) -> str:
    """Return ``duration`` for people: "2 h 05 min", "3 min 10 s"."""
    seconds = int(duration.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _link(incident: Incident) -> str:
    return f"{settings.CHATON.resolved_public_url}/monitoring/incidents/{incident.pk}/"


def message(incident: Incident, event: str) -> tuple[str, str]:
    """Return the subject and body of an alert: ``event`` is "opened", "resolved" or
    "reminder"."""
    probe = incident.probe
    values = {"service": probe.service, "probe": probe.name, "error": incident.last_error,
              "first": incident.first_error, "link": _link(incident),
              "duration": format_duration(incident.duration or dt.timedelta(0)),
              "collective": settings.CHATON.collective_name}
    if event == "resolved":
        subject = _("[%(collective)s] Resolved: %(service)s (after %(duration)s)") % values
        body = _("%(probe)s works again after %(duration)s.\nFirst error: %(first)s\n"
                 "%(link)s") % values
    elif event == "reminder":
        subject = _("[%(collective)s] Still down: %(service)s (for %(duration)s)") % values
        body = _("%(probe)s has been failing for %(duration)s and nobody acknowledged it.\n"
                 "Last error: %(error)s\n%(link)s") % values
    else:
        subject = _("[%(collective)s] Down: %(service)s") % values
        body = _("%(probe)s is failing.\nError: %(error)s\n%(link)s") % values
    return subject, body


def queue(subject: str, body: str, *, source: str) -> list[Notification]:
    """Queue one mail to the alert group and one webhook post; return the rows (may be
    none: no group member, no webhook)."""
    rows = []
    addresses = recipients()
    if addresses:
        rows.append(outbox.enqueue_mail(addresses, subject, body, source=source))
    channel = settings.CHATON.monitoring.webhook_channel
    if channel and outbox.webhook_url(channel):
        rows.append(outbox.enqueue_webhook(channel, f"**{subject}**\n{body}", source=source))
    if rows:
        outbox.send_on_commit(rows)
    return rows


def alert(incident: Incident, event: str, now: dt.datetime) -> bool:
    """Queue the alert of ``event`` for ``incident`` unless a maintenance window silences it;
    count it on the incident (saved by the caller). Return whether it was queued."""
    if silenced(incident.probe, now) is not None:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = message(incident, event)
    queue(subject, body, source=f"monitoring:incident:{incident.pk}:{event}")
    incident.alerts_sent += 1
    incident.last_alert_at = now
    return True
