"""The ChatonsInfos files, written from the desired state and the collective's profile.

``organization.properties`` holds the ``organization.*`` facts of the profile and
one ``subs.<slug>`` line per public instance; each ``<slug>.properties`` holds
``service.*`` (from the instance, its probes and its logins), ``software.*``
(from the catalogue entry and the image it runs), ``host.*`` (from the host's
facts) and ``metrics.<figure>.<year>.months|weeks|days`` from the statistics'
samples, an empty cell where no sample was taken. Every file passes
:func:`chaton.transparency.validator.validate` (the tests check it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet

from chaton.core import clock
from chaton.monitoring.models import Maintenance, Probe
from chaton.services.models import DesiredState, Instance
from chaton.stats.figures import FIGURES
from chaton.stats.models import Sample
from chaton.transparency.models import HostFacts, OrganizationProfile
from chaton.transparency.validator import PROTOCOL

WELL_KNOWN = "/.well-known/chatonsinfos/"
GENERATOR = "Chaton"

#: What the catalogue's manifests do not say: each application's SPDX licence and sources.
SOFTWARE: dict[str, tuple[str, str]] = {
    "bookstack": ("MIT", "https://github.com/BookStackApp/BookStack"),
    "castopod": ("AGPL-3.0-only", "https://code.castopod.org/adaures/castopod"),
    "etherpad": ("Apache-2.0", "https://github.com/ether/etherpad-lite"),
    "homepage": ("GPL-2.0-only", "https://git.busybox.net/busybox"),
    "kanboard": ("MIT", "https://github.com/kanboard/kanboard"),
    "mattermost": ("AGPL-3.0-only", "https://github.com/mattermost/mattermost"),
    "nextcloud": ("AGPL-3.0-or-later", "https://github.com/nextcloud/server"),
    "privatebin": ("Zlib", "https://github.com/PrivateBin/PrivateBin"),
}
#: Applications where nobody has an account: their registration is "None".
NO_ACCOUNTS = frozenset({"privatebin", "homepage"})
#: The statistics' figures under the names StatoolInfos gives them.
METRIC_NAMES = {"http.requests": "http.hits", "http.visitors": "http.visitors",
                "http.bots": "http.hits.bots"}


def base_url() -> str:
    """Return the site's public address, without a trailing slash."""
    return str(settings.CHATON.resolved_public_url)


def file_url(name: str) -> str:
    """Return the absolute URL of the file ``name`` (``organization`` or a slug)."""
    return f"{base_url()}{WELL_KNOWN}{name}.properties"


def profile() -> OrganizationProfile:
    """Return the collective's profile (the one row, made with the collective's name)."""
    row = OrganizationProfile.objects.order_by("pk").first()
    if row is None:
        row = OrganizationProfile(name=settings.CHATON.collective_name)
    return row


def public_instances() -> QuerySet[Instance]:
    """Return the instances the files describe: every one not being removed."""
    return (Instance.objects.exclude(state=DesiredState.REMOVED)
            .select_related("host", "login_group").order_by("slug"))


def _one_line(value: object) -> str:
    """Return ``value`` as one line: a line break would end the value and start a key."""
    return re.sub(r"\s+", " ", str(value or "")).strip()


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def _header(file_class: str, name: str, now: dt.datetime) -> list[str]:
    stamp = now.astimezone(clock.collective_zone()).isoformat(timespec="seconds")
    return [f"# {name}.properties — ChatonsInfos ({PROTOCOL}), written by {GENERATOR}", "",
            f"file.class = {file_class}", f"file.protocol = {PROTOCOL}",
            f"file.datetime = {stamp}",
            f"file.generator = {GENERATOR}", f"file.url = {file_url(name)}", ""]


def organization_file(now: dt.datetime | None = None) -> str:
    """Return the text of ``organization.properties``."""
    now = now or clock.now()
    row = profile()
    lines = _header("organization", "organization", now)
    lines += [
        f"organization.name = {_one_line(row.name)}",
        f"organization.description = {_one_line(row.description)}",
        f"organization.website = {_one_line(row.website) or base_url() + '/'}",
        f"organization.logo = {_one_line(row.logo)}",
        f"organization.type = {row.type}",
        f"organization.status.level = {row.status}",
        f"organization.startdate = {_date(row.start_date) or _date(clock.today())}",
        f"organization.memberof.chatons.startdate = {_date(row.chatons_start_date)}",
        f"organization.memberof.chatons.enddate = {_date(row.chatons_end_date)}",
        f"organization.country.name = {_one_line(row.country_name)}",
        f"organization.country.code = {row.country_code.upper()}",
        f"organization.contact.url = {_one_line(row.contact_url)}",
        f"organization.contact.email = {_one_line(row.contact_email)}",
        f"organization.legal.url = {_one_line(row.legal_url)}",
    ]
    for name, url in sorted((row.funding or {}).items()):
        lines.append(f"organization.funding.{name} = {_one_line(url)}")
    lines.append("")
    for instance in public_instances():
        lines.append(f"subs.{instance.slug} = {file_url(instance.slug)}")
    return "\n".join(lines) + "\n"


def status(instance: Instance, now: dt.datetime) -> str:
    """Return ON, MAINTENANCE, DOWN or OFF for ``instance``, from its state and its probes."""
    if instance.state == DesiredState.STOPPED:
        return "OFF"
    probes = list(Probe.objects.filter(instance=instance, enabled=True))
    windows = Maintenance.objects.filter(starts_at__lte=now, ends_at__gt=now)
    if any(window.covers(probe.service, now) for window in windows for probe in probes):
        return "MAINTENANCE"
    if any(probe.state == "down" for probe in probes):
        return "DOWN"
    return "ON"


def registration(instance: Instance) -> str:
    """Return None, Free or Member: who may get an account on ``instance``."""
    if instance.application in NO_ACCOUNTS:
        return "None"
    if instance.login_group_id is not None:
        return "Member"
    try:
        ldap = instance.manifest.ldap.supported
    except KeyError:
        return "Free"
    # Without a login group every account of the directory logs in: the members' accounts.
    return "Member" if ldap else "Free"


def image_version(image: str) -> str:
    """Return the tag of ``repository:tag[@sha256:…]`` (the version an image runs)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def service_file(instance: Instance, now: dt.datetime | None = None) -> str:
    """Return the text of ``<slug>.properties`` for ``instance``."""
    now = now or clock.now()
    try:
        manifest = instance.manifest
        label, description, homepage = manifest.label, manifest.description, manifest.homepage
    except KeyError:
        label, description, homepage = instance.application, "", ""
    licence, source = SOFTWARE.get(instance.application, ("", ""))
    facts = HostFacts.objects.filter(host=instance.host).first() or HostFacts(host=instance.host)
    lines = _header("service", instance.slug, now)
    lines += [
        f"service.name = {_one_line(label)} ({instance.slug})",
        f"service.description = {_one_line(description)}",
        f"service.website = https://{instance.domain}/",
        f"service.startdate = {_date(clock.local_day(instance.created_at))}",
        f"service.status.level = {status(instance, now)}",
        f"service.registration = {registration(instance)}",
        "service.install.type = CONTAINER",
        "",
        f"software.name = {_one_line(label)}",
        f"software.website = {homepage or source}",
        f"software.license.name = {licence}",
        f"software.license.url = {f'https://spdx.org/licenses/{licence}.html' if licence else ''}",
        f"software.version = {image_version(instance.image) if _has_manifest(instance) else ''}",
        f"software.source.url = {source}",
        "",
        f"host.name = {instance.host.name}",
        f"host.description = {_one_line(facts.description)}",
        f"host.provider.type = {facts.provider_type}",
        f"host.server.type = {facts.server_type}",
        f"host.country.name = {_one_line(facts.country_name)}",
        f"host.country.code = {facts.country_code.upper()}",
    ]
    metrics = metrics_lines(instance.slug, clock.local_day(now))
    if metrics:
        lines += ["", *metrics]
    return "\n".join(lines) + "\n"


def _has_manifest(instance: Instance) -> bool:
    try:
        _ = instance.manifest
    except KeyError:
        return bool(instance.image_override)
    return True


def _cells(values: Iterable[float | None]) -> str:
    return ";".join("" if value is None else f"{value:g}" for value in values)


def _period_value(samples: list[tuple[dt.date, float]], kind: str) -> float | None:
    if not samples:
        return None
    if kind == "gauge":
        return max(samples)[1]
    return sum(value for _, value in samples)


def year_lines(metric: str, year: int, daily: dict[dt.date, float], kind: str) -> list[str]:
    """Return the months, weeks and days lines of ``metric`` for ``year``.

    ``daily`` maps a day to its sample; a month or week with no sample is an empty
    cell (a service opened mid-year has empty leading cells), never a zero.
    """
    months: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    weeks: dict[int, list[tuple[dt.date, float]]] = defaultdict(list)
    for day, value in daily.items():
        if day.year == year:
            months[day.month].append((day, value))
        iso_year, week, _ = day.isocalendar()
        if iso_year == year:
            weeks[week].append((day, value))
    week_count = dt.date(year, 12, 28).isocalendar()[1]
    first = dt.date(year, 1, 1)
    day_count = (dt.date(year + 1, 1, 1) - first).days
    return [
        f"metrics.{metric}.{year}.months = "
        + _cells(_period_value(months[month], kind) for month in range(1, 13)),
        f"metrics.{metric}.{year}.weeks = "
        + _cells(_period_value(weeks[week], kind) for week in range(1, week_count + 1)),
        f"metrics.{metric}.{year}.days = "
        + _cells(daily.get(first + dt.timedelta(days=offset)) for offset in range(day_count)),
    ]


def metrics_lines(subject: str, today: dt.date) -> list[str]:
    """Return the ``metrics.*`` lines of ``subject`` from the samples, every year up to today."""
    by_figure: dict[str, dict[dt.date, float]] = defaultdict(dict)
    for figure, day, value in (Sample.objects.filter(subject=subject, day__lte=today)
                               .values_list("figure", "day", "value")):
        by_figure[figure][day] = value
    lines: list[str] = []
    for figure in sorted(by_figure):
        daily = by_figure[figure]
        meaning = FIGURES.get(figure)
        kind = meaning.kind if meaning else "gauge"
        metric = METRIC_NAMES.get(figure, figure)
        if meaning is not None:
            lines.append(f"metrics.{metric}.name = {_one_line(meaning.label)}")
        for year in sorted({day.year for day in daily}):
            lines += year_lines(metric, year, daily, kind)
    return lines
