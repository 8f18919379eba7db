"""Every write of the transparency app: the profile, the hosts' facts, the register of authority
requests, the software list.

Each ``do_*`` runs in one transaction with an audit row and takes the acting
account keyword-only. Only administrators act here (``acting_user`` None is the
system: the worker, the command line without ``--as``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.core.errors import Conflict, Forbidden, InvalidInput
from chaton.services.models import Host
from chaton.transparency import software
from chaton.transparency.chatonsinfos import profile
from chaton.transparency.models import (
    AuthorityRequest,
    HostFacts,
    OrganizationProfile,
    OrganizationStatus,
    OrganizationType,
    ProviderType,
    ServerType,
    SoftwareList,
)
from chaton.transparency.validator import check_email, check_url

if TYPE_CHECKING:
    from chaton.directory.models import Account

PROFILE_FIELDS = ["name", "description", "website", "logo", "type", "status", "start_date",
                  "chatons_start_date", "chatons_end_date", "country_name", "country_code",
                  "contact_email", "contact_url", "legal_url", "funding"]
URL_FIELDS = ("website", "logo", "contact_url", "legal_url")
HOST_FIELDS = ["description", "provider_type", "server_type", "country_name", "country_code"]
REQUEST_FIELDS = ["received_on", "authority", "kind", "answered_on", "published",
                  "published_text"]
_FUNDING_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _require_admin(acting_user: Account | None) -> None:
    if acting_user is not None and not acting_user.is_admin:
        raise Forbidden(_("Only administrators manage the transparency records."))


def _clean_profile(fields: dict[str, Any]) -> dict[str, Any]:
    """Return ``fields`` checked. Raise InvalidInput naming the field."""
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown field: %(name)s.") % {"name": sorted(unknown)[0]},
                           field=sorted(unknown)[0])
    if "name" in fields and not str(fields["name"]).strip():
        raise InvalidInput(_("Give the collective's name."), field="name")
    for name in URL_FIELDS:
        if fields.get(name) and check_url(fields[name]):
            raise InvalidInput(_("Give an absolute address starting with https:// or "
                                 "http://."), field=name)
    if fields.get("contact_email") and check_email(fields["contact_email"]):
        raise InvalidInput(_("Give an email address such as contact@example.org."),
                           field="contact_email")
    if "type" in fields and fields["type"] not in OrganizationType.values:
        raise InvalidInput(_("Choose a type from the list."), field="type")
    if "status" in fields and fields["status"] not in OrganizationStatus.values:
        raise InvalidInput(_("Choose a status from the list."), field="status")
    code = fields.get("country_code")
    if code and not re.fullmatch(r"[A-Za-z]{2}", code):
        raise InvalidInput(_("A country code has two letters (FR, BE …)."), field="country_code")
    if code:
        fields["country_code"] = code.upper()
    start, end = fields.get("chatons_start_date"), fields.get("chatons_end_date")
    if start and end and end < start:
        raise InvalidInput(_("The membership of CHATONS cannot end before it starts."),
                           field="chatons_end_date")
    funding = fields.get("funding")
    if funding is not None:
        if not isinstance(funding, dict):
            raise InvalidInput(_("Funding links are name: address pairs."), field="funding")
        for name, url in funding.items():
            if not _FUNDING_NAME.match(str(name)) or check_url(str(url)):
                raise InvalidInput(_("“%(name)s”: a funding link is a short lowercase name "
                                     "and an absolute address.") % {"name": name},
                                   field="funding")
    return fields


def do_update_profile(*, acting_user: Account | None, **fields: Any) -> OrganizationProfile:
    """Update the collective's profile with ``fields`` (see PROFILE_FIELDS) and return it.

    Raise Forbidden for a non-administrator, InvalidInput for a bad value.
    """
    _require_admin(acting_user)
    fields = _clean_profile(dict(fields))
    with transaction.atomic():
        row = profile()
        before = audit.snapshot(row, PROFILE_FIELDS) if row.pk else None
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
        audit.record("transparency.profile_update", row, acting_user=acting_user, before=before,
                     after=audit.snapshot(row, PROFILE_FIELDS))
    return row


def do_update_host_facts(host: Host, *, acting_user: Account | None,
                         **fields: Any) -> HostFacts:
    """Set what ChatonsInfos says of ``host`` and return its facts. Raise InvalidInput."""
    _require_admin(acting_user)
    if fields.get("provider_type") and fields["provider_type"] not in ProviderType.values:
        raise InvalidInput(_("Choose a provider type from the list."), field="provider_type")
    if fields.get("server_type") and fields["server_type"] not in ServerType.values:
        raise InvalidInput(_("Choose a server type from the list."), field="server_type")
    code = fields.get("country_code", "")
    if code and not re.fullmatch(r"[A-Za-z]{2}", code):
        raise InvalidInput(_("A country code has two letters (FR, BE …)."), field="country_code")
    with transaction.atomic():
        facts, _created = HostFacts.objects.get_or_create(host=host)
        before = audit.snapshot(facts, HOST_FIELDS)
        for name in HOST_FIELDS:
            if name in fields:
                value = fields[name]
                setattr(facts, name, value.upper() if name == "country_code" else value)
        facts.save()
        audit.record("transparency.host_facts_update", facts, acting_user=acting_user,
                     before=before, after=audit.snapshot(facts, HOST_FIELDS))
    return facts


def _text(value: str, *, field: str, message: str, limit: int = 10_000) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(message, field=field)
    if len(value) > limit:
        raise InvalidInput(_("At most %(count)d characters.") % {"count": limit}, field=field)
    return value


def do_add_authority_request(*, acting_user: Account | None, received_on: dt.date,
                             authority: str, kind: str, asked: str, answered: str = "",
                             answered_on: dt.date | None = None) -> AuthorityRequest:
    """Record a request received from an authority (not published). Raise InvalidInput."""
    _require_admin(acting_user)
    if received_on > clock.today():
        raise InvalidInput(_("A request cannot be received in the future."), field="received_on")
    if answered_on is not None and answered_on < received_on:
        raise InvalidInput(_("The answer cannot come before the request."), field="answered_on")
    with transaction.atomic():
        row = AuthorityRequest.objects.create(
            received_on=received_on,
            authority=_text(authority, field="authority", limit=200,
                            message=_("Name the authority (a court, the police …).")),
            kind=_text(kind, field="kind", limit=200,
                       message=_("Say what kind of request it was.")),
            asked=_text(asked, field="asked", message=_("Say what was asked.")),
            answered=(answered or "").strip(), answered_on=answered_on,
            created_by=acting_user)
        # The audit row names the request, never its private text.
        audit.record("transparency.request_add", row, acting_user=acting_user,
                     after=audit.snapshot(row, REQUEST_FIELDS))
    return row


def do_answer_authority_request(row: AuthorityRequest, *, acting_user: Account | None,
                                answered: str, answered_on: dt.date) -> AuthorityRequest:
    """Record what was answered to ``row``, and when. Raise InvalidInput."""
    _require_admin(acting_user)
    if answered_on < row.received_on:
        raise InvalidInput(_("The answer cannot come before the request."), field="answered_on")
    with transaction.atomic():
        before = audit.snapshot(row, REQUEST_FIELDS)
        row.answered = _text(answered, field="answered", message=_("Say what was answered."))
        row.answered_on = answered_on
        row.save(update_fields=["answered", "answered_on"])
        audit.record("transparency.request_answer", row, acting_user=acting_user, before=before,
                     after=audit.snapshot(row, REQUEST_FIELDS))
    return row


def do_publish_authority_request(row: AuthorityRequest, *, acting_user: Account | None,
                                 published_text: str) -> AuthorityRequest:
    """Publish ``row`` with ``published_text``, written with personal data removed.

    Raise InvalidInput for an empty text or one that repeats the private record,
    Conflict when the request is already published.
    """
    _require_admin(acting_user)
    text = _text(published_text, field="published_text",
                 message=_("Write the text to publish, with personal data removed."))
    if row.published:
        raise Conflict(_("Request #%(id)s is already published.") % {"id": row.pk})
    if text == row.asked.strip() or (row.answered and text == row.answered.strip()):
        raise InvalidInput(_("The published text repeats the private record: rewrite it "
                             "without personal data."), field="published_text")
    with transaction.atomic():
        before = audit.snapshot(row, REQUEST_FIELDS)
        row.published, row.published_text, row.published_at = True, text, clock.now()
        row.save(update_fields=["published", "published_text", "published_at"])
        audit.record("transparency.request_publish", row, acting_user=acting_user,
                     before=before, after=audit.snapshot(row, REQUEST_FIELDS))
    return row


def do_refresh_software_list(*, acting_user: Account | None) -> SoftwareList:
    """Read the software the collective runs now and store it as a new list."""
    _require_admin(acting_user)
    entries, notes = software.collect()
    now = clock.now()
    with transaction.atomic():
        row = SoftwareList.objects.create(year=clock.local_day(now).year, generated_at=now,
                                          entries=entries, notes=notes)
        audit.record("transparency.software_refresh", row, acting_user=acting_user,
                     after={"entries": len(entries), "notes": notes})
    return row
