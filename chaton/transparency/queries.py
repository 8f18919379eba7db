"""Reads of the transparency app: the register's rows (private and public), the software list."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.core.queries import is_database_id
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
