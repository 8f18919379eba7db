"""Reads of the transparency app: the register's rows (private and public), the software list."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import is_database_id
from chaton.stats.figures import FIGURES
from chaton.stats.models import Sample
from chaton.transparency.models import AuthorityRequest, SoftwareList


def request_by_id(request_id: int) -> AuthorityRequest:
    """Return the authority request ``request_id``. Raise NotFound."""
    if not is_database_id(request_id):
        raise NotFound(_("No authority request #%(id)s.") % {"id": request_id})
    try:
        return AuthorityRequest.objects.get(pk=request_id)
    except AuthorityRequest.DoesNotExist:
        raise NotFound(_("No authority request #%(id)s.") % {"id": request_id}) from None


def published_requests() -> QuerySet[AuthorityRequest]:
    """Return the published requests; only their public fields may be shown from these."""
    return AuthorityRequest.objects.filter(published=True).order_by("-received_on", "-id")


def latest_software_list() -> SoftwareList | None:
    """Return the newest software list, or None before the first."""
    return SoftwareList.objects.order_by("-generated_at").first()


@dataclass(frozen=True)
class LatestFigure:
    subject: str
    figure: str
    label: str
    day: dt.date
    value: float


def latest_figures(subjects: list[str]) -> list[LatestFigure]:
    """Return, for each subject and figure, its newest sample (what the public page shows)."""
    seen: set[tuple[str, str]] = set()
    found: list[LatestFigure] = []
    for subject, figure, day, value in (Sample.objects.filter(subject__in=subjects)
                                        .order_by("subject", "figure", "-day")
                                        .values_list("subject", "figure", "day", "value")):
        if (subject, figure) in seen:
            continue
        seen.add((subject, figure))
        meaning = FIGURES.get(figure)
        found.append(LatestFigure(subject, figure, str(meaning.label) if meaning else figure,
                                  day, value))
    return found
