"""The public face of monitoring: the status page, its JSON and Atom feed, Prometheus /metrics.

``/status/``, ``/status.json`` and ``/status/feed.atom`` need no login. They
show only probes marked ``public``, by their ``service`` label, and never a
probe's target, key or error (a private service's address stays private): a
state, uptime, incident times, maintenance announcements. They are cacheable
(``Cache-Control: public, max-age=30`` and an ETag); they set no cookie.

``/metrics`` is the exposition format of Prometheus, built from the database
at each scrape (a fresh ``CollectorRegistry``: no global state, so several web
processes answer the same). It opens to a bearer token
(``monitoring.metrics_token``, compared in constant time) or to an address in
``monitoring.metrics_allow``; otherwise 401 (no or wrong token) or 403.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import CharField, Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import feedgenerator, formats, translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chaton.core import clock
from chaton.monitoring.models import Incident, Maintenance, Period, Probe, Rollup, State

#: Days of bars on the status page.
DAYS = 90
#: Seconds a status response may be cached (by browsers and proxies).
MAX_AGE = 30
#: Resolved incidents stay on the page this long.
RECENT_INCIDENT_DAYS = 7
#: Entries of the Atom feed.
FEED_ENTRIES = 50
#: The worst state first: a service is as bad as its worst probe.
SEVERITY: dict[str, int] = {State.DOWN: 3, State.WARNING: 2, State.UNKNOWN: 1, State.UP: 0}
LANGUAGES = ("fr", "en")


# -- what the status page shows ------------------------------------------------


@dataclass
class Day:
    """One bar: a day of a service, its uptime (0 to 1) or None when nothing was measured."""

    day: dt.date
    up_seconds: float = 0.0
    down_seconds: float = 0.0

    @property
    def uptime(self) -> float | None:
        known = self.up_seconds + self.down_seconds
        return self.up_seconds / known if known else None

    @property
    def percent(self) -> float | None:
        uptime = self.uptime
        return None if uptime is None else 100 * uptime

    @property
    def level(self) -> str:
        """The bar's colour class: ``none`` (no data), ``up``, ``degraded`` or ``down``."""
        uptime = self.uptime
        if uptime is None:
            return "none"
        if uptime >= 0.999:
            return "up"
        return "degraded" if uptime >= 0.95 else "down"


@functools.lru_cache(maxsize=4)
def _day_names(first_day: dt.date, count: int) -> tuple[str, ...]:
    """Return the ISO dates of ``count`` days from ``first_day`` (shared by every service)."""
    return tuple((first_day + dt.timedelta(days=offset)).isoformat() for offset in range(count))


@dataclass
class Service:
    """A public service: its state now, its days, its uptime over windows."""

    name: str
    state: str = State.UP
    in_maintenance: bool = False
    first_day: dt.date = dt.date.min
    #: Seconds up and down on each day from ``first_day`` (plain lists: thousands of
    #: objects a page cost more than everything else).
    up: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)
    uptime: dict[str, float | None] = field(default_factory=dict)

    @property
    def days(self) -> list[Day]:
        """The bars, oldest first."""
        return [Day(self.first_day + dt.timedelta(days=offset), up, down)
                for offset, (up, down) in enumerate(zip(self.up, self.down, strict=True))]

    @property
    def state_text(self) -> str:
        """The state in words, in the active language (maintenance first)."""
        if self.in_maintenance:
            return _("maintenance")
        texts: dict[str, str] = {State.UP: _("operational"), State.DOWN: _("unavailable"),
                                 State.WARNING: _("degraded")}
        return texts.get(self.state, _("no data"))

    @property
    def bars_label(self) -> str:
        return _("Uptime of %(name)s over the last %(days)d days") % {
            "name": self.name, "days": len(self.up)}

    @property
    def uptime_text(self) -> str:
        """The uptime over the days shown, e.g. "99.95 % uptime", or "no data"."""
        uptime = self.uptime.get(f"{DAYS}d")
        if uptime is None:
            return _("no data")
        return _("%(percent)s %% uptime") % {
            "percent": formats.number_format(uptime, 2, use_l10n=True)}

    def bars_html(self) -> SafeString:
        """Return the ``<li>`` of each day, in the active language.

        Built here rather than by a template loop: 90 bars a service is thousands of
        template nodes, ten times the time of the whole page otherwise.
        """
        no_data = escape(_("no data"))
        separator = escape(formats.get_format("DECIMAL_SEPARATOR"))
        parts = []
        # Most days are alike (all up, or no data): each distinct day is worked out once.
        seen: dict[tuple[float, float], tuple[str, str]] = {}
        for day, up, down in zip(_day_names(self.first_day, len(self.up)), self.up, self.down,
                                 strict=True):
            known = seen.get((up, down))
            if known is None:
                bar = Day(self.first_day, up, down)
                percent = bar.percent
                known = seen[(up, down)] = (bar.level, no_data if percent is None else
                                            f"{percent:.2f}".replace(".", separator) + "\u00a0%")
            parts.append(f'<li class="{known[0]}" title="{day}: {known[1]}"></li>')
        return mark_safe("".join(parts))  # noqa: S308 -- dates, numbers and escaped text


@dataclass
class PublicIncident:
    """An incident as the public sees it: which service, when; never the error."""

    id: int
    service: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None

    @property
    def duration(self) -> dt.timedelta:
        return (self.resolved_at or clock.now()) - self.opened_at

    @property
    def duration_text(self) -> str:
        return duration_text(self.duration)


def duration_text(duration: dt.timedelta) -> str:
    """Given a duration, return it for people: "3 min", "2 h 05 min", "2 d 4 h"."""
    minutes = max(1, round(duration.total_seconds() / 60))
    if minutes < 60:
        return _("%(minutes)d min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    days, hours = divmod(hours, 24)
    return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}


@dataclass
class Status:
    """Everything /status/ shows, computed once for the HTML and the JSON."""

    generated_at: dt.datetime
    services: list[Service]
    incidents: list[PublicIncident]
    maintenance: list[Maintenance]

    @property
    def overall(self) -> str:
        """The page's headline: ``down``, ``warning``, ``unknown`` or ``up``."""
        worst = max((SEVERITY.get(service.state, 1) for service in self.services), default=0)
        return next(state for state, level in SEVERITY.items() if level == worst)

    @property
    def current_maintenance(self) -> list[Maintenance]:
        return [window for window in self.maintenance if window.starts_at <= self.generated_at]

    @property
    def upcoming_maintenance(self) -> list[Maintenance]:
        return [window for window in self.maintenance if window.starts_at > self.generated_at]


def _uptime(up: float, down: float) -> float | None:
    known = up + down
    return round(100 * up / known, 3) if known else None


def _instant(text: str) -> dt.datetime:
    """Given a stored datetime as the database writes it as text, return the aware instant
    (SQLite keeps UTC without an offset; PostgreSQL writes the offset)."""
    moment = parse_datetime(text.replace(" ", "T", 1))
    if moment is None:
        raise ValueError(f"not a datetime: {text!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def status(at: dt.datetime | None = None) -> Status:
    """Return what the status page shows at ``at`` (default now), in five queries.

    The days are the collective's days; a day without a roll-up (or with only
    unknown time) has no uptime: the bar says "no data", never "down".
    """
    now = at or clock.now()
    today = clock.local_day(now)
    first_day = today - dt.timedelta(days=DAYS - 1)
    probes = list(Probe.objects.filter(public=True, enabled=True)
                  .order_by("service", "key").values_list("id", "service", "state"))
    service_of = {probe_id: service for probe_id, service, _state in probes}
    services: dict[str, Service] = {}
    for _probe_id, name, state in probes:
        service = services.setdefault(name, Service(name=name, state=State.UP))
        if SEVERITY.get(state, 1) > SEVERITY.get(service.state, 1):
            service.state = state
    for service in services.values():
        service.first_day, service.up, service.down = first_day, [0.0] * DAYS, [0.0] * DAYS
    # The start as text, each of the 90 distinct values parsed once: converting thousands
    # of datetimes row by row was half the page's time.
    rollups = (Rollup.objects.filter(probe_id__in=list(service_of), period=Period.DAY,
                                     start__gte=clock.start_of_day(first_day))
               .order_by().values_list("probe_id", Cast("start", CharField()), "up_seconds",
                            "down_seconds"))
    offsets: dict[str, int] = {}
    for probe_id, start, up, down in rollups:
        offset = offsets.get(start)
        if offset is None:
            offset = offsets[start] = (clock.local_day(_instant(start)) - first_day).days
        if 0 <= offset < DAYS:
            service = services[service_of[probe_id]]
            service.up[offset] += up
            service.down[offset] += down
    since_day = now - dt.timedelta(hours=24)
    hours: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for probe_id, up, down in (Rollup.objects.filter(probe_id__in=list(service_of),
                                                     period=Period.HOUR, start__gte=since_day)
                               .order_by().values("probe_id")
                               .annotate(up=Sum("up_seconds"), down=Sum("down_seconds"))
                               .values_list("probe_id", "up", "down")):
        totals = hours[service_of[probe_id]]
        totals[0] += up
        totals[1] += down
    for name, service in services.items():
        service.uptime = {"24h": _uptime(*hours.get(name, [0.0, 0.0]))}
        for window in (7, 30, 90):
            service.uptime[f"{window}d"] = _uptime(sum(service.up[-window:]),
                                                   sum(service.down[-window:]))
    incidents = [
        PublicIncident(id=incident_id, service=service, opened_at=opened_at,
                       resolved_at=resolved_at)
        for incident_id, service, opened_at, resolved_at in
        Incident.objects.filter(probe__public=True, probe__enabled=True)
        .filter(Q(resolved_at__isnull=True)
                | Q(resolved_at__gte=now - dt.timedelta(days=RECENT_INCIDENT_DAYS)))
        .order_by("-opened_at").values_list("id", "probe__service", "opened_at", "resolved_at")]
    maintenance = list(Maintenance.objects.filter(ends_at__gt=now).order_by("starts_at"))
    for announced in maintenance:
        if announced.starts_at <= now:
            for name, service in services.items():
                if not announced.services or name in announced.services:
                    service.in_maintenance = True
    return Status(generated_at=now, services=list(services.values()), incidents=incidents,
                  maintenance=maintenance)


# -- HTTP helpers ----------------------------------------------------------------


def _chosen_language(request: HttpRequest) -> str:
    """``?lang=fr|en`` when given (a plain link switches language, no form, no cookie),
    else what LocaleMiddleware chose from the cookie or Accept-Language."""
    asked = request.GET.get("lang", "")
    return asked if asked in LANGUAGES else translation.get_language() or settings.LANGUAGE_CODE


def _cacheable(request: HttpRequest, body: bytes, content_type: str) -> HttpResponse:
    """Return ``body`` with an ETag and a short public max-age, or 304 when the client has it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    known = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
    response = HttpResponse(status=304) if etag in known else HttpResponse(
        body, content_type=content_type)
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=MAX_AGE)
    patch_vary_headers(response, ("Accept-Language",))
    return response


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


# -- the views -----------------------------------------------------------------------


@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    """/status/: the public status page, server-rendered, without JavaScript."""
    language = _chosen_language(request)
    current = status()
    with translation.override(language):
        body = render_to_string("monitoring/public/status.html", {
            "status": current, "language": language, "days": DAYS,
            "collective_name": settings.CHATON.collective_name,
            "json_url": reverse("status-json"), "feed_url": reverse("status-feed"),
            "days_ago": _("%(days)d days ago") % {"days": DAYS}, "today_text": _("today"),
        })
    response = _cacheable(request, body.encode(), "text/html; charset=utf-8")
    response["Content-Language"] = language
    return response


def status_data(current: Status) -> dict[str, Any]:
    """Return the JSON document of /status.json for ``current``."""
    return {
        # To the minute, and no running duration: the ETag holds while nothing changes.
        "generated_at": _iso(current.generated_at.replace(second=0, microsecond=0)),
        "state": current.overall,
        "services": [{
            "name": service.name, "state": service.state,
            "in_maintenance": service.in_maintenance, "uptime": service.uptime,
        } for service in current.services],
        "incidents": [{
            "id": incident.id, "service": incident.service,
            "opened_at": _iso(incident.opened_at), "resolved_at": _iso(incident.resolved_at),
            "duration_seconds": round(incident.duration.total_seconds())
            if incident.resolved_at else None,
        } for incident in current.incidents],
        "maintenance": [{
            "title": window.title, "description": window.description,
            "starts_at": _iso(window.starts_at), "ends_at": _iso(window.ends_at),
            "services": list(window.services),
        } for window in current.maintenance],
    }


@require_GET
def status_json(request: HttpRequest) -> HttpResponse:
    """/status.json: the status page's data, for other sites and scripts."""
    body = json.dumps(status_data(status()), ensure_ascii=False, sort_keys=True).encode()
    return _cacheable(request, body, "application/json")


def _incident_title(incident: Incident) -> str:
    if incident.resolved_at:
        return _("%(service)s: resolved incident") % {"service": incident.probe.service}
    return _("%(service)s: incident in progress") % {"service": incident.probe.service}


def _incident_text(incident: Incident) -> str:
    opened = _iso(incident.opened_at)
    if incident.resolved_at:
        return _("Unavailable from %(opened)s to %(resolved)s (%(duration)s).") % {
            "opened": opened, "resolved": _iso(incident.resolved_at),
            "duration": duration_text(incident.resolved_at - incident.opened_at)}
    return _("Unavailable since %(opened)s.") % {"opened": opened}


@require_GET
def status_feed(request: HttpRequest) -> HttpResponse:
    """/status/feed.atom: an Atom feed of the public services' incidents, newest first."""
    language = _chosen_language(request)
    incidents = list(Incident.objects.filter(probe__public=True, probe__enabled=True)
                     .select_related("probe").order_by("-opened_at")[:FEED_ENTRIES])
    page = request.build_absolute_uri(reverse("status"))
    with translation.override(language):
        feed = feedgenerator.Atom1Feed(
            title=_("Status of %(name)s") % {"name": settings.CHATON.collective_name},
            link=page, description="", language=language,
            feed_url=request.build_absolute_uri(reverse("status-feed")), feed_guid=page)
        for incident in incidents:
            updated = incident.resolved_at or incident.opened_at
            feed.add_item(title=_incident_title(incident), link=f"{page}#incident-{incident.pk}",
                          description=_incident_text(incident),
                          unique_id=f"{page}#incident-{incident.pk}",
                          unique_id_is_permalink=False, pubdate=incident.opened_at,
                          updateddate=updated)
        body = feed.writeString("utf-8").encode()
    return _cacheable(request, body, "application/atom+xml; charset=utf-8")


# -- /metrics ----------------------------------------------------------------------


def _metrics_settings() -> tuple[str, list[str]]:
    """Return (the bearer token, the allowed networks) of ``[monitoring]``; empty: closed."""
    section = getattr(settings.CHATON, "monitoring", None)
    token = str(getattr(section, "metrics_token", "") or "")
    allow = getattr(section, "metrics_allow", None) or []
    if isinstance(allow, str):
        allow = [part for part in allow.replace(",", " ").split() if part]
    return token, [str(entry) for entry in allow]


def _address_allowed(address: str, networks: Iterable[str]) -> bool:
    """Return whether ``address`` lies in one of ``networks`` (CIDR or single addresses)."""
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if client in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Return the 401/403 answer for a scrape that may not read /metrics, None when it may.

    A bearer token in the Authorization header opens it when it equals
    ``metrics_token`` (constant-time comparison); so does a client address in
    ``metrics_allow``. A token in the query string counts for nothing (it would
    end up in access logs).
    """
    token, networks = _metrics_settings()
    header = request.headers.get("Authorization", "")
    scheme, _space, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and given.strip() and hmac.compare_digest(
            given.strip().encode(), token.encode()):
        return None
    if not header and _address_allowed(request.META.get("REMOTE_ADDR", ""), networks):
        return None
    if token:
        response = HttpResponse("authentication required\n", status=401,
                                content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse("forbidden\n", status=403, content_type="text/plain; charset=utf-8")


class DatabaseCollector:
    """A prometheus_client collector reading Chaton's database once per scrape."""

    def describe(self) -> list[Metric]:
        # Without describe(), registering would call collect() — a scrape's worth of queries.
        return []

    def collect(self) -> Iterator[Metric]:
        yield from probe_metrics()
        yield from chaton_metrics()


def probe_metrics() -> Iterator[Metric]:
    """Yield the blackbox exporter's metrics, one sample per enabled probe (one query)."""
    labels = ["instance", "service", "kind"]
    success = GaugeMetricFamily("probe_success", "Whether the probe's last check succeeded",
                                labels=labels)
    duration = GaugeMetricFamily("probe_duration_seconds",
                                 "How long the probe's last check took", labels=labels)
    expiry = GaugeMetricFamily("probe_ssl_earliest_cert_expiry",
                               "When the certificate the probe saw expires (Unix time)",
                               labels=labels)
    rows = (Probe.objects.filter(enabled=True).order_by("key")
            .values_list("key", "service", "kind", "state", "last_checked_at",
                         "last_duration_ms", "cert_expires_at"))
    for key, service, kind, state, checked_at, duration_ms, cert_expires_at in rows:
        values = [key, service, kind]
        if checked_at is not None and state != State.UNKNOWN:
            success.add_metric(values, 0.0 if state == State.DOWN else 1.0)
        if duration_ms is not None:
            duration.add_metric(values, duration_ms / 1000)
        if cert_expires_at is not None:
            expiry.add_metric(values, cert_expires_at.timestamp())
    yield from (success, duration, expiry)


def chaton_metrics() -> Iterator[Metric]:
    """Yield Chaton's own gauges: backups, directory, accounts, members, decisions, instances."""
    from chaton.backups.models import Drill, Outcome, Plan, Run, RunKind
    from chaton.directory.models import Account, SyncState
    from chaton.governance.models import Decision, Status
    from chaton.members.models import Membership
    from chaton.services.models import Instance

    last_backup = GaugeMetricFamily(
        "chaton_backup_last_success_timestamp_seconds",
        "When the plan's last successful backup finished (Unix time)", labels=["plan"])
    last_drill = GaugeMetricFamily(
        "chaton_backup_last_drill_success",
        "Whether the plan's last finished restore drill passed", labels=["plan"])
    finished_backups = Run.objects.filter(plan=OuterRef("pk"), kind=RunKind.BACKUP,
                                          outcome=Outcome.SUCCEEDED).order_by("-finished_at")
    finished_drills = Drill.objects.filter(plan=OuterRef("pk")).exclude(
        outcome="running").order_by("-started_at")
    plans = Plan.objects.filter(enabled=True).order_by("name").annotate(
        backup_at=Subquery(finished_backups.values("finished_at")[:1]),
        drill=Subquery(finished_drills.values("outcome")[:1])).values_list(
        "name", "backup_at", "drill")
    for name, backup_at, drill in plans:
        if backup_at is not None:
            last_backup.add_metric([name], backup_at.timestamp())
        if drill is not None:
            last_drill.add_metric([name], 1.0 if drill == "passed" else 0.0)
    yield from (last_backup, last_drill)

    pending = SyncState.objects.filter(pending_since__isnull=False).exists()
    yield GaugeMetricFamily("chaton_directory_sync_pending",
                            "Whether changes wait to be written to the directory",
                            value=1.0 if pending else 0.0)
    accounts = GaugeMetricFamily("chaton_accounts", "Accounts by state", labels=["state"])
    for state, count in (Account.objects.order_by().values_list("state")
                         .annotate(count=Count("pk"))):
        accounts.add_metric([state], float(count))
    yield accounts
    members = Membership.objects.current(clock.today()).values("person", "organization")
    yield GaugeMetricFamily("chaton_members", "Current memberships",
                            value=float(members.distinct().count()))
    yield GaugeMetricFamily(
        "chaton_decisions_open", "Decisions being voted on or under a counter-vote",
        value=float(Decision.objects.filter(status__in=[Status.OPEN, Status.CONTESTED]).count()))
    instances = GaugeMetricFamily("chaton_instances", "Service instances by desired state",
                                  labels=["state"])
    for state, count in (Instance.objects.order_by().values_list("state")
                         .annotate(count=Count("pk"))):
        instances.add_metric([state], float(count))
    yield instances
    yield GaugeMetricFamily(
        "chaton_incidents_open", "Monitoring incidents not yet resolved",
        value=float(Incident.objects.filter(resolved_at__isnull=True).count()))


def render_metrics() -> bytes:
    """Return the exposition text of a scrape (a fresh registry: no state between scrapes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


@require_GET
def metrics(request: HttpRequest) -> HttpResponseBase:
    """/metrics: Prometheus' exposition format, for a token or an allowed address."""
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    response = HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response

