"""A validator of ChatonsInfos files (the StatoolInfos format), written from the format.

A file is UTF-8 text of ``key = value`` lines; blank lines and lines starting
with ``#`` are comments. Every file has ``file.class``, ``file.protocol``,
``file.datetime``, ``file.generator`` and ``file.url``; each class adds its
required keys (:data:`REQUIRED`). Values have types: DATE (``2026-01-31``),
DATETIME (ISO 8601, ``2026-01-31T10:00:00+01:00``), URL (absolute, http or
https), EMAIL, a STATUS or another enumeration, a COUNTRY code (two capital
letters), and the numbers of ``metrics.<name>.<year>.months|weeks|days``
separated by ``;`` where an empty cell means "no data".

:func:`validate` returns :class:`Finding` values: ``error`` for what breaks the
format (a missing required key, a bad value, a line without ``=``, a key given
twice), ``warning`` for a key the format does not know. Django-free: the tests
and ``chaton chatonsinfos check`` use it alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

PROTOCOL = "ChatonsInfos-0.5"
CLASSES = ("organization", "service")

ORGANIZATION_TYPES = ("ASSOCIATION", "INFORMAL", "COOPERATIVE", "MICROCOMPANY", "COMPANY",
                      "INDIVIDUAL", "OTHER")
ORGANIZATION_STATUSES = ("ACTIVE", "IDLE", "AWAY")
SERVICE_STATUSES = ("ON", "MAINTENANCE", "DOWN", "OFF", "DRAFT")
REGISTRATIONS = ("None", "Free", "Member", "Client")
PROVIDER_TYPES = ("HOME", "HOSTEDBAY", "HOSTEDSERVER", "OUTSOURCED")
SERVER_TYPES = ("NANO", "PHYSICAL", "VIRTUAL", "SHARED", "CLOUD")
INSTALL_TYPES = ("DISTRIBUTION", "PROVIDER", "PACKAGE", "TOOLING", "CLONEREPO", "ARCHIVE",
                 "SOURCES", "CONTAINER")


@dataclass(frozen=True)
class Finding:
    """One thing found wrong: ``level`` is ``error`` or ``warning``; ``line`` 0 is the file."""

    level: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{self.level}: {where}: {self.key}: {self.message}" if self.key else \
            f"{self.level}: {where}: {self.message}"


Check = Callable[[str], str | None]  # returns what is wrong, or None


def _string(value: str) -> str | None:
    return None if value.strip() else "is empty"


def _date(value: str) -> str | None:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return f"“{value}” is not a DATE (YYYY-MM-DD)"
    return None if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else \
        f"“{value}” is not a DATE (YYYY-MM-DD)"


def _datetime(value: str) -> str | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?",
                        value):
        return f"“{value}” is not a DATETIME (ISO 8601)"
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"“{value}” is not a DATETIME (ISO 8601)"
    return None


def check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or re.search(r"[\s\x00-\x1f\x7f]", value)):
        return f"“{value}” is not an absolute URL (http or https)"
    return None


def check_email(value: str) -> str | None:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return f"“{value}” is not an email address"
    return None


def _country(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Z]{2}", value) else \
        f"“{value}” is not a country code (two capital letters, ISO 3166-1)"


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else \
            f"“{value}” is not one of {', '.join(choices)}"
    return check


def _protocol(value: str) -> str | None:
    return None if re.fullmatch(r"ChatonsInfos-\d+\.\d+", value) else \
        f"“{value}” is not a protocol such as {PROTOCOL}"


def _numbers(value: str) -> str | None:
    for cell in value.split(";"):
        cell = cell.strip()
        if cell and not re.fullmatch(r"-?\d+(\.\d+)?", cell):
            return f"“{cell}” is not a number (cells are separated by ';', empty for no data)"
    return None


COMMON: dict[str, Check] = {
    "file.class": _one_of(CLASSES), "file.protocol": _protocol, "file.datetime": _datetime,
    "file.generator": _string, "file.url": check_url,
}

KEYS: dict[str, dict[str, Check]] = {
    "organization": {
        "organization.name": _string, "organization.description": _string,
        "organization.website": check_url, "organization.logo": check_url,
        "organization.type": _one_of(ORGANIZATION_TYPES),
        "organization.status.level": _one_of(ORGANIZATION_STATUSES),
        "organization.status.description": _string,
        "organization.startdate": _date, "organization.enddate": _date,
        "organization.memberof.chatons.startdate": _date,
        "organization.memberof.chatons.enddate": _date,
        "organization.memberof.chatons.status.level": _one_of(ORGANIZATION_STATUSES),
        "organization.country.name": _string, "organization.country.code": _country,
        "organization.contact.url": check_url, "organization.contact.email": check_email,
        "organization.legal.url": check_url, "organization.guide.technical": check_url,
    },
    "service": {
        "service.name": _string, "service.description": _string, "service.website": check_url,
        "service.logo": check_url, "service.legal.url": check_url, "service.guide.user": check_url,
        "service.contact.url": check_url, "service.contact.email": check_email,
        "service.startdate": _date, "service.enddate": _date,
        "service.status.level": _one_of(SERVICE_STATUSES), "service.status.description": _string,
        "service.registration": _one_of(REGISTRATIONS),
        "service.install.type": _one_of(INSTALL_TYPES),
        "software.name": _string, "software.website": check_url, "software.license.url": check_url,
        "software.license.name": _string, "software.version": _string,
        "software.source.url": check_url, "software.modules": _string,
        "host.name": _string, "host.description": _string,
        "host.provider.type": _one_of(PROVIDER_TYPES),
        "host.server.type": _one_of(SERVER_TYPES),
        "host.country.name": _string, "host.country.code": _country,
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "organization": ("organization.name", "organization.website", "organization.type",
                     "organization.status.level", "organization.startdate"),
    "service": ("service.name", "service.website", "service.status.level",
                "service.registration", "software.name", "software.website",
                "software.license.name", "host.name"),
}

#: Keys with a part of their own choosing: (pattern, check, classes where allowed).
PATTERNS: list[tuple[re.Pattern[str], Check, tuple[str, ...]]] = [
    (re.compile(r"subs\.[a-z0-9][a-z0-9_-]*"), check_url, ("organization",)),
    (re.compile(r"organization\.(funding|socialnetworks|chatrooms)\.[a-z0-9][a-z0-9_-]*"),
     check_url, ("organization",)),
    (re.compile(r"metrics\.[a-z0-9_.-]+\.(name|description)"), _string, CLASSES),
]
_METRICS = re.compile(r"metrics\.(?P<name>[a-z0-9_.-]+)\.(?P<year>\d{4})"
                      r"\.(?P<step>months|weeks|days)")


def _cells_expected(year: int, step: str) -> tuple[int, int]:
    if step == "months":
        return 12, 12
    if step == "weeks":
        return 52, 53
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    return days, days


def parse(text: str) -> tuple[dict[str, tuple[int, str]], list[Finding]]:
    """Given a file's text, return ``{key: (line, value)}`` and the findings of the syntax."""
    values: dict[str, tuple[int, str]] = {}
    findings: list[Finding] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            findings.append(Finding("error", number, "", "a line that is no “key = value”"))
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not key:
            findings.append(Finding("error", number, "", "a value without a key"))
        elif key in values:
            findings.append(Finding("error", number, key,
                                    f"given twice (first on line {values[key][0]})"))
        else:
            values[key] = (number, value)
    return values, findings


def validate(text: str) -> list[Finding]:
    """Given a ChatonsInfos file's text, return every finding (errors first, by line)."""
    values, findings = parse(text)
    file_class = values.get("file.class", (0, ""))[1]
    if file_class not in CLASSES:
        file_class = ""
    for key in COMMON:
        if key not in values:
            findings.append(Finding("error", 0, key, "missing (every file has it)"))
    for key in REQUIRED.get(file_class, ()):
        if key not in values:
            findings.append(Finding("error", 0, key, f"missing (required in a {file_class} file)"))
    known = {**COMMON, **KEYS.get(file_class, {})}
    for key, (line, value) in values.items():
        check = known.get(key)
        if check is None:
            check = _pattern_check(key, file_class, line, value, findings)
            if check is None:
                continue
        if value == "" and key not in COMMON and key not in REQUIRED.get(file_class, ()):
            continue  # an optional key left empty says "not given"
        problem = check(value)
        if problem:
            findings.append(Finding("error", line, key, problem))
    return sorted(findings, key=lambda finding: (finding.level != "error", finding.line))


def _pattern_check(key: str, file_class: str, line: int, value: str,
                   findings: list[Finding]) -> Check | None:
    """Return the check of a key with a part of its own choosing; note unknown or bad keys."""
    metrics = _METRICS.fullmatch(key)
    if metrics:
        problem = _numbers(value)
        if problem:
            findings.append(Finding("error", line, key, problem))
            return None
        low, high = _cells_expected(int(metrics["year"]), metrics["step"])
        cells = len(value.split(";"))
        if not low <= cells <= high:
            expected = str(low) if low == high else f"{low} or {high}"
            findings.append(Finding("error", line, key,
                                    f"{cells} cells where {metrics['year']} has {expected} "
                                    f"{metrics['step']}"))
        return None
    for pattern, check, classes in PATTERNS:
        if pattern.fullmatch(key) and file_class in classes:
            return check
    findings.append(Finding("warning", line, key, "a key the format does not define"))
    return None


def errors(findings: list[Finding]) -> list[Finding]:
    """Return the findings that are errors."""
    return [finding for finding in findings if finding.level == "error"]
