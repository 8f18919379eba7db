"""Fetch the ChatonsInfos files a site serves and run the validator on each.

:func:`check_served` starts at ``organization.properties`` and follows its
``subs.*`` links, through a fetcher: Django's test client for the files this
Chaton serves, or HTTP for a site given by its address (``--url``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from chaton.transparency.validator import Finding, parse, validate

#: Given an absolute URL, return (status, content type, text).
Fetcher = Callable[[str], tuple[int, str, str]]


@dataclass
class FileReport:
    url: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(finding.level == "error" for finding in self.findings)


def _check_one(url: str, fetch: Fetcher) -> tuple[FileReport, str]:
    report = FileReport(url)
    try:
        status, content_type, text = fetch(url)
    except OSError as error:
        report.findings.append(Finding("error", 0, "", f"not fetched: {error}"))
        return report, ""
    if status != 200:
        report.findings.append(Finding("error", 0, "", f"answered HTTP {status}"))
        return report, ""
    kind = content_type.split(";")[0].strip().lower()
    if kind != "text/plain" or "utf-8" not in content_type.lower():
        report.findings.append(Finding("error", 0, "", f"served as “{content_type}”, not "
                                                       "text/plain; charset=UTF-8"))
    report.findings += validate(text)
    return report, text


def check_served(organization_url: str, fetch: Fetcher) -> list[FileReport]:
    """Return one report for ``organization_url`` and one per file its ``subs.*`` name."""
    first, text = _check_one(organization_url, fetch)
    reports = [first]
    values, _ = parse(text)
    for key, (_, url) in sorted(values.items()):
        if key.startswith("subs.") and urlsplit(url).scheme in ("http", "https"):
            reports.append(_check_one(url, fetch)[0])
    return reports


def http_fetcher(timeout: float = 10.0) -> Fetcher:
    """Return a fetcher over HTTP(S)."""
    import httpx

    def fetch(url: str) -> tuple[int, str, str]:
        try:
            response = httpx.get(url, timeout=timeout, follow_redirects=True)
        except httpx.HTTPError as error:
            raise OSError(str(error)) from None
        return response.status_code, response.headers.get("content-type", ""), response.text

    return fetch


def local_fetcher() -> Fetcher:
    """Return a fetcher that asks this Chaton's own views (Django's test client) by path."""
    from django.test import Client

    client = Client()

    def fetch(url: str) -> tuple[int, str, str]:
        response = client.get(urlsplit(url).path)
        return (response.status_code, response.get("Content-Type", ""),
                response.content.decode("utf-8", errors="replace"))

    return fetch
