"""What every part of ``/api/v1`` shares, and the API token endpoints.

- Authentication: ``Authorization: Bearer <key>``. :class:`AccountToken` lets
  any active account in; :class:`AdminToken`, the API's default, lets only
  administrators in and answers 403 to the others. So an endpoint is
  admin-only unless it says ``auth=account_token`` (the ``/me`` family).
  Tokens carry scopes: ``read`` for GET, ``write`` for the other methods,
  ``admin`` besides for the administrators' endpoints, and ``vote`` — alone —
  for casting a vote (:data:`vote_token`), which only a token its owner
  minted may carry. A missing scope answers 403 ``missing_scope``.
- Errors: :class:`ErrorOut` and :class:`ValidationErrorOut` are the only error
  shapes; :data:`ERRORS` documents them on every operation.
- Input types: :data:`DateTimeIn` (a naive date and time is read in the
  collective's time zone) and :class:`Page` (bounded limit/offset pagination).
- Long work: :class:`JobOut`, what an endpoint that starts a job answers with
  ``202 Accepted``, and ``GET /jobs/{id}`` to poll it (:data:`jobs_router`).
"""


import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.security import HttpBearer
from pydantic import AfterValidator, BeforeValidator, ConfigDict

from chaton.core import actions, limits, queries
from chaton.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from chaton.core.models import ApiToken, Job, JobState, Scope

if TYPE_CHECKING:
    from chaton.directory.models import Account

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- errors ---------------------------------------------------------------------------------


class ErrorOut(Schema):
    """Every error: a stable machine code, a message for people, the field at fault if any."""

    code: str = Field(..., examples=["not_found"],
                      description="invalid, not_found, conflict, forbidden, unauthorized, "
                                  "directory_unavailable …")
    message: str = Field(..., examples=["No account has this user name."])
    field: str | None = Field(None, examples=["uid"])


class FieldErrorOut(Schema):
    """One problem found while reading the request (path, query or body)."""

    location: str = Field(..., examples=["body"], description="path, query or body")
    field: str | None = Field(None, examples=["email"])
    message: str = Field(..., examples=["Field required"])
    type: str = Field(..., examples=["missing"])


class ValidationErrorOut(ErrorOut):
    """A request that does not fit the schema (400, code ``invalid``): every problem is listed."""

    errors: list[FieldErrorOut] = Field(default_factory=list)


#: The error answers any operation may give, for the OpenAPI schema.
ERRORS: dict[int, Any] = {400: ValidationErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                          409: ErrorOut}


class SecondFactorRequired(Forbidden):
    """An administrator without a second factor asked for something that needs one."""

    code = "second_factor_required"


# --- authentication -------------------------------------------------------------------------


class MissingScope(Forbidden):
    """The token is valid but does not carry the scope this request needs."""

    code = "missing_scope"


_READING = {"GET", "HEAD", "OPTIONS"}


class AccountToken(HttpBearer):
    """A bearer token of any active account; ``request.auth`` becomes that account and
    ``request.api_token`` the token. A GET needs the ``read`` scope, anything else ``write``
    (or ``scope``, when the class is made for one)."""

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> "Account":
        """Given the bearer key, return its active account.

        Raise Unauthorized for an unknown key or an account that is disabled or
        expired, MissingScope for a token without the scope the request needs.
        """
        api_token = ApiToken.find(token.strip()) if token.strip() else None
        if api_token is None:
            raise Unauthorized(_("This API token is not valid."))
        account = api_token.account
        if not account.is_active:
            raise Unauthorized(_("This account is disabled or expired."))
        needed = self.scope or (Scope.READ if request.method in _READING else Scope.WRITE)
        if not api_token.allows(needed):
            raise MissingScope(_("This API token does not have the “%(scope)s” scope.")
                               % {"scope": needed})
        actions.note_api_token_use(api_token)
        request.api_token = api_token  # type: ignore[attr-defined]
        return account

    def __call__(self, request: HttpRequest) -> "Account":
        """Return the account, or raise Unauthorized when no bearer token was sent at all."""
        account = super().__call__(request)
        if account is None:
            raise Unauthorized(_("Send an API token: “Authorization: Bearer <key>”."))
        return account


class AdminToken(AccountToken):
    """A bearer token of an active administrator, with the ``admin`` scope; others get 403."""

    def authenticate(self, request: HttpRequest, token: str) -> "Account":
        """Return the administrator's account. Raise Unauthorized, Forbidden or MissingScope."""
        account = super().authenticate(request, token)
        if not account.is_admin:
            raise Forbidden(_("Only an administrator may use this endpoint; "
                              "your token may use /me only."))
        if not request_token(request).allows(Scope.ADMIN):
            raise MissingScope(_("This API token does not have the “%(scope)s” scope.")
                               % {"scope": Scope.ADMIN})
        return account


account_token = AccountToken()
admin_token = AdminToken()
#: For casting a vote: the ``vote`` scope, which only a token minted by its owner carries.
vote_token = AccountToken(scope=Scope.VOTE)


def request_token(request: HttpRequest) -> ApiToken:
    """Return the API token that authenticated ``request`` (set by the auth classes)."""
    return request.api_token  # type: ignore[attr-defined]


def acting_account(request: HttpRequest) -> "Account":
    """Return the account whose token authenticated ``request`` (set by the auth classes)."""
    return request.auth  # type: ignore[attr-defined]


# --- input types ----------------------------------------------------------------------------


def _aware(value: dt.datetime) -> dt.datetime:
    """Read a naive datetime in the collective's time zone; refuse years a database cannot hold."""
    # A year at the edge of the calendar overflows once converted to UTC.
    if not 1900 <= value.year <= 9000:
        raise ValueError(_("The year must be between 1900 and 9000."))
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


def _sane_date(value: dt.date) -> dt.date:
    if not 1900 <= value.year <= 9000:
        raise ValueError(_("The year must be between 1900 and 9000."))
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    """Refuse numbers for dates: pydantic would read ``0`` as 1 January 1970 (a Unix time)."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError(_("Expected a date written YYYY-MM-DD."))
    if isinstance(value, int | float):
        raise ValueError(_("Expected a date written YYYY-MM-DD."))
    return value


#: An aware datetime; a naive one is taken in the collective's time zone.
DateTimeIn = Annotated[dt.datetime, BeforeValidator(_iso_only), AfterValidator(_aware)]
#: A date in a year the collective could mean (1900 to 9000).
DateIn = Annotated[dt.date, BeforeValidator(_iso_only), AfterValidator(_sane_date)]


class InputSchema(Schema):
    """A request body: a field the schema does not know is an error, not silently dropped.

    (A typo in a PATCH, or ``is_admin`` sent to ``/me``, must not look accepted.)
    """

    model_config = ConfigDict(extra="forbid")


def check_id(value: int) -> int:
    """Return ``value`` if it can be a database id; raise NotFound otherwise (never an overflow)."""
    if not queries.is_database_id(value):
        raise NotFound(_("Nothing has this id."))
    return value


def clean_search(text: str, *, field: str = "q") -> str:
    """Return a search text trimmed; raise InvalidInput for control characters or over 200 chars.

    A NUL would make PostgreSQL refuse the query outright (a 500), so it stops here.
    """
    text = text.strip()
    if _CONTROL.search(text):
        raise InvalidInput(_("This text contains control characters."), field=field)
    if len(text) > 200:
        raise InvalidInput(_("At most %(count)d characters.") % {"count": 200}, field=field)
    return text


class Page(LimitOffsetPagination):
    """``?limit=`` (1 to 500, default 50) and ``?offset=``; answers ``{"items": […], "count": n}``.

    Both are bounded, so that a silly value is a 400 rather than a database overflow.
    """

    class Input(Schema):
        limit: int = Field(50, ge=1, le=500)
        # Bounded so that a silly offset is a 400, not a database overflow.
        offset: int = Field(0, ge=0, le=2**31)


# --- token endpoints ------------------------------------------------------------------------


router = Router(tags=["tokens"])


class TokenOut(Schema):
    id: int
    account: str = Field(..., description="The uid of the account the token acts as.")
    name: str
    scopes: list[str] = Field(..., description="read, write, admin, vote.")
    minted_by_owner: bool = Field(
        ..., description="Made by the account's owner with their own credentials: only such a "
                         "token may vote.")
    created_at: dt.datetime
    last_used_at: dt.datetime | None

    @staticmethod
    def resolve_account(token: ApiToken) -> str:
        return token.account.uid


class TokenCreatedOut(TokenOut):
    key: str = Field(..., description="The bearer key: shown this once, never again.")


_SCOPES_HELP = ("read, write, admin (administrators), vote. Default: read and write, admin "
                "for an administrator, vote only on a token its owner makes.")


class TokenIn(InputSchema):
    account: str = Field(..., max_length=limits.UID_MAX_LENGTH,
                         description="The uid of the account to act as.")
    name: str = Field(..., max_length=limits.TOKEN_NAME_MAX_LENGTH)
    scopes: list[str] | None = Field(None, max_length=4, description=_SCOPES_HELP)


class MyTokenIn(InputSchema):
    name: str = Field(..., max_length=limits.TOKEN_NAME_MAX_LENGTH)
    scopes: list[str] | None = Field(
        None, max_length=4, description=_SCOPES_HELP + " Never more than the calling token's.")


@router.get("/tokens", response={200: list[TokenOut], **ERRORS},
            summary="List every API token (administrators)")
@paginate(Page)
def list_tokens(request: HttpRequest, account: str = "") -> Any:
    """Every token, oldest first; ``?account=<uid>`` keeps one account's. Keys are never shown."""
    tokens = ApiToken.objects.select_related("account").order_by("created_at", "id")
    if account:
        tokens = tokens.filter(account__uid=account.strip())
    return tokens


def _account_or_404(uid: str) -> "Account":
    """Given a uid from a body, return its account, owner joined. Core reaches the account
    through Django's user model, never the directory app above it.

    Raise NotFound for an unknown uid, and for one with control characters (NUL …)
    without asking the database.
    """
    from django.contrib.auth import get_user_model

    model = get_user_model()
    account = None if _CONTROL.search(uid) else (
        model._default_manager.select_related("person", "organization")
        .filter(**{model.USERNAME_FIELD: uid}).first())
    if account is None:
        raise NotFound(_("No account has the user name “%(uid)s”.") % {"uid": uid[:64]},
                       field="uid")
    return account


@router.post("/tokens", response={201: TokenCreatedOut, **ERRORS},
             summary="Create a token for any account (administrators)")
def create_token(request: HttpRequest, payload: TokenIn) -> tuple[int, ApiToken]:
    """Create a token acting as ``account``; the answer holds the key, once.

    A token for another account never has the ``vote`` scope (403
    ``vote_scope_refused``): a vote is cast only with the member's own credentials.
    A token with the ``admin`` scope (asked, or an administrator's default) for another
    account that has no second factor is refused (403 ``second_factor_required``).
    """
    if not queries.has_second_factor(acting_account(request)):
        raise SecondFactorRequired(_("Set up a second factor (My account → Two-step login) "
                                     "before creating API tokens."))
    account = _account_or_404(payload.account)
    asked = (payload.scopes if payload.scopes is not None
             else actions.default_scopes(account, by_owner=False))
    if (Scope.ADMIN in asked and account.pk != acting_account(request).pk
            and not queries.has_second_factor(account)):
        # A token that administers is a key: it goes only to someone who holds a second
        # factor, or a password alone (theirs, or whoever reads their mail) would open it.
        raise SecondFactorRequired(
            _("%(uid)s has no second factor: a token with the “admin” scope is made only "
              "for an administrator who has set one up.") % {"uid": account.uid},
            field="scopes")
    token, key = actions.do_create_api_token(account, payload.name,
                                             acting_user=acting_account(request),
                                             scopes=payload.scopes,
                                             via_token=request_token(request))
    # Only on this answer's object: the key is never stored.
    token.key = key  # type: ignore[attr-defined]
    return 201, token


@router.delete("/tokens/{token_id}", response={204: None, **ERRORS},
               summary="Revoke any token (administrators)")
def revoke_token(request: HttpRequest, token_id: int) -> tuple[int, None]:
    token = ApiToken.objects.select_related("account").filter(pk=check_id(token_id)).first()
    if token is None:
        raise NotFound(_("No API token has this id."))
    actions.do_revoke_api_token(token, acting_user=acting_account(request))
    return 204, None


@router.get("/me/tokens", response={200: list[TokenOut], **ERRORS}, auth=account_token,
            summary="List my API tokens")
@paginate(Page)
def list_my_tokens(request: HttpRequest) -> Any:
    return (ApiToken.objects.select_related("account")
            .filter(account=acting_account(request)).order_by("created_at", "id"))


@router.post("/me/tokens", response={201: TokenCreatedOut, **ERRORS}, auth=account_token,
             summary="Create an API token for my own account")
def create_my_token(request: HttpRequest, payload: MyTokenIn) -> tuple[int, ApiToken]:
    """Create a token of the caller's account, with at most the calling token's scopes.

    It may vote only if the calling token was itself minted by the caller (so a
    token an administrator made for someone never leads to one that votes).
    """
    account = acting_account(request)
    if (Scope.ADMIN in (payload.scopes or []) and account.is_admin
            and not queries.has_second_factor(account)):
        raise SecondFactorRequired(_("Set up a second factor (My account → Two-step login) "
                                     "before creating API tokens."))
    token, key = actions.do_create_api_token(account, payload.name, acting_user=account,
                                             scopes=payload.scopes,
                                             via_token=request_token(request))
    token.key = key  # type: ignore[attr-defined]
    return 201, token


@router.delete("/me/tokens/{token_id}", response={204: None, **ERRORS}, auth=account_token,
               summary="Revoke one of my API tokens")
def revoke_my_token(request: HttpRequest, token_id: int) -> tuple[int, None]:
    account = acting_account(request)
    token = (ApiToken.objects.select_related("account")
             .filter(pk=check_id(token_id), account=account).first())
    if token is None:
        raise NotFound(_("You have no API token with this id."))
    actions.do_revoke_api_token(token, acting_user=account)
    return 204, None


# --- jobs -----------------------------------------------------------------------------------


jobs_router = Router(tags=["jobs"])


def as_json(schema: type[Schema], value: Any) -> dict[str, Any]:
    """Given an answer schema and a value (a model, a dict), return the JSON the API would send.

    For a job's result: the work's endpoint would have answered this.
    """
    return schema.model_validate(value, from_attributes=True).model_dump(mode="json")


class JobErrorOut(Schema):
    """Why a job failed: an error as the API answers them, with the status it would have had."""

    code: str = Field(..., examples=["backup_error"])
    message: str
    field: str | None = None
    status: int = Field(..., examples=[502])


class JobOut(Schema):
    """Long work to poll at ``url`` until ``state`` is succeeded or failed."""

    id: int
    kind: str = Field(..., examples=["backups.run"])
    target: str = Field(..., description="What it works on.", examples=["nightly"])
    state: str = Field(..., description="queued, running, succeeded or failed")
    progress: int | None = Field(None, description="Percent done, when known.")
    result: dict[str, Any] | None = Field(
        None, description="Once succeeded: what the work answers (a run, a repository …).")
    error: JobErrorOut | None = Field(None, description="Once failed: why.")
    created_by: str | None = Field(None, description="The uid of who asked for it.")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    url: str = Field(..., examples=["/api/v1/jobs/42"])

    @staticmethod
    def resolve_target(job: Job) -> str:
        return job.target_label

    @staticmethod
    def resolve_created_by(job: Job) -> str | None:
        return job.created_by.get_username() if job.created_by is not None else None

    @staticmethod
    def resolve_url(job: Job) -> str:
        return f"/api/v1/jobs/{job.pk}"


@jobs_router.get("/jobs", response={200: list[JobOut], **ERRORS},
                 summary="List the jobs, newest first (administrators)")
@paginate(Page)
def list_jobs(request: HttpRequest, state: str = "", kind: str = "") -> Any:
    """``?state=`` keeps one state (queued, running, succeeded, failed); ``?kind=`` one kind."""
    found = Job.objects.select_related("created_by")
    if state:
        if state not in JobState.values:
            raise InvalidInput(_("Unknown state: choose among %(choices)s.")
                               % {"choices": ", ".join(JobState.values)}, field="state")
        found = found.filter(state=state)
    if kind:
        found = found.filter(kind=clean_search(kind, field="kind"))
    return found.order_by("-created_at", "-id")


@jobs_router.get("/jobs/{job_id}", response={200: JobOut, **ERRORS}, url_name="job",
                 summary="A job: its state, progress, result or error (administrators)")
def get_job(request: HttpRequest, job_id: int) -> Job:
    return queries.job_by_id(job_id)
