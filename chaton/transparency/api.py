"""``/api/v1/transparency``: the collective's profile, the hosts' facts, the register of authority
requests, the software list.

Administrators only, but for ``GET /public/requests`` and ``GET /public/software`` (no
token): the published requests (date, authority, kind, published text — never what
was asked or answered) and the newest software list. Errors are the coded ones of
``/api/v1``: ``invalid`` (400, with its ``field``), ``not_found`` (404),
``conflict`` (409: a request published twice), ``forbidden`` (403).
"""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from chaton.core.api import ERRORS, InputSchema, acting_account, check_id
from chaton.core.errors import NotFound
from chaton.services.queries import host_by_name
from chaton.transparency import actions, chatonsinfos, queries
from chaton.transparency.models import AuthorityRequest, HostFacts, SoftwareList

router = Router(tags=["transparency"])


class ProfileOut(Schema):
    name: str
    description: str
    website: str
    logo: str
    type: str
    status: str
    start_date: dt.date | None
    chatons_start_date: dt.date | None
    chatons_end_date: dt.date | None
    country_name: str
    country_code: str
    contact_email: str
    contact_url: str
    legal_url: str
    funding: dict[str, str]


class ProfileIn(InputSchema):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    website: str | None = Field(None, max_length=200)
    logo: str | None = Field(None, max_length=200)
    type: str | None = None
    status: str | None = None
    start_date: dt.date | None = None
    chatons_start_date: dt.date | None = None
    chatons_end_date: dt.date | None = None
    country_name: str | None = Field(None, max_length=100)
    country_code: str | None = Field(None, max_length=2)
    contact_email: str | None = Field(None, max_length=254)
    contact_url: str | None = Field(None, max_length=200)
    legal_url: str | None = Field(None, max_length=200)
    funding: dict[str, str] | None = None


class HostFactsIn(InputSchema):
    description: str = Field("", max_length=300)
    provider_type: str = ""
    server_type: str = ""
    country_name: str = Field("", max_length=100)
    country_code: str = Field("", max_length=2)


class HostFactsOut(Schema):
    host: str
    description: str
    provider_type: str
    server_type: str
    country_name: str
    country_code: str


class RequestIn(InputSchema):
    received_on: dt.date
    authority: str = Field(max_length=200)
    kind: str = Field(max_length=200)
    asked: str = Field(max_length=10000)
    answered: str = Field("", max_length=10000)
    answered_on: dt.date | None = None


class AnswerIn(InputSchema):
    answered: str = Field(max_length=10000)
    answered_on: dt.date


class PublishIn(InputSchema):
    published_text: str = Field(max_length=10000)


class RequestOut(Schema):
    """Every field: for administrators only."""

    id: int
    received_on: dt.date
    authority: str
    kind: str
    asked: str
    answered: str
    answered_on: dt.date | None
    published: bool
    published_text: str
    published_at: dt.datetime | None


class PublicRequestOut(Schema):
    """What the public sees of a published request: no asked, no answered."""

    received_on: dt.date
    authority: str
    kind: str
    published_text: str


class SoftwareOut(Schema):
    year: int
    generated_at: dt.datetime
    entries: list[dict[str, str]]
    notes: list[str]


@router.get("/profile", response={200: ProfileOut, **ERRORS}, summary="The collective's profile")
def get_profile(request: HttpRequest) -> Any:
    return chatonsinfos.profile()


@router.patch("/profile", response={200: ProfileOut, **ERRORS},
              summary="Change the collective's profile")
def update_profile(request: HttpRequest, payload: ProfileIn) -> Any:
    fields = payload.model_dump(exclude_unset=True)
    for name in ("description", "website", "logo", "country_name", "country_code",
                 "contact_email", "contact_url", "legal_url"):
        if name in fields and fields[name] is None:
            fields[name] = ""
    return actions.do_update_profile(acting_user=acting_account(request), **fields)


def _facts(facts: HostFacts) -> dict[str, Any]:
    return {"host": facts.host.name, "description": facts.description,
            "provider_type": facts.provider_type, "server_type": facts.server_type,
            "country_name": facts.country_name, "country_code": facts.country_code}


@router.put("/hosts/{name}", response={200: HostFactsOut, **ERRORS},
            summary="Set what ChatonsInfos says of a host")
def set_host_facts(request: HttpRequest, name: str, payload: HostFactsIn) -> Any:
    facts = actions.do_update_host_facts(host_by_name(name), acting_user=acting_account(request),
                                         **payload.model_dump())
    return _facts(facts)


@router.get("/requests", response={200: list[RequestOut], **ERRORS},
            summary="The register of authority requests, every field")
def list_requests(request: HttpRequest) -> Any:
    return list(AuthorityRequest.objects.order_by("-received_on", "-id"))


@router.post("/requests", response={201: RequestOut, **ERRORS},
             summary="Record a request received from an authority")
def add_request(request: HttpRequest, payload: RequestIn) -> tuple[int, AuthorityRequest]:
    row = actions.do_add_authority_request(acting_user=acting_account(request),
                                           **payload.model_dump())
    return 201, row


@router.get("/requests/{request_id}", response={200: RequestOut, **ERRORS},
            summary="One authority request")
def get_request(request: HttpRequest, request_id: int) -> AuthorityRequest:
    return queries.request_by_id(check_id(request_id))


@router.post("/requests/{request_id}/answer", response={200: RequestOut, **ERRORS},
             summary="Record what was answered to a request, and when")
def answer_request(request: HttpRequest, request_id: int, payload: AnswerIn) -> Any:
    row = queries.request_by_id(check_id(request_id))
    return actions.do_answer_authority_request(row, acting_user=acting_account(request),
                                               **payload.model_dump())


@router.post("/requests/{request_id}/publish", response={200: RequestOut, **ERRORS},
             summary="Publish a request with its text free of personal data")
def publish_request(request: HttpRequest, request_id: int, payload: PublishIn) -> Any:
    row = queries.request_by_id(check_id(request_id))
    return actions.do_publish_authority_request(row, acting_user=acting_account(request),
                                                published_text=payload.published_text)


@router.get("/public/requests", auth=None, response={200: list[PublicRequestOut], **ERRORS},
            summary="The published register (no login)")
def public_requests(request: HttpRequest) -> Any:
    return [{"received_on": row.received_on, "authority": row.authority, "kind": row.kind,
             "published_text": row.published_text} for row in queries.published_requests()]


@router.get("/public/software", auth=None, response={200: SoftwareOut, **ERRORS},
            summary="The newest software list (no login)")
def public_software(request: HttpRequest) -> SoftwareList:
    latest = queries.latest_software_list()
    if latest is None:
        raise NotFound(_("The software list has not been drawn up yet."))
    return latest


@router.post("/software/refresh", response={201: SoftwareOut, **ERRORS},
             summary="Draw up the software list now")
def refresh_software(request: HttpRequest) -> tuple[int, SoftwareList]:
    return 201, actions.do_refresh_software_list(acting_user=acting_account(request))
