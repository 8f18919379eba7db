"""The ``/api/v1`` instance: its routers, its authentication and its one error shape.

Every error answers JSON ``{"code": …, "message": …, "field": …}``; long work
answers 202 with a job to poll:

==========  ===================================================================
status      code
==========  ===================================================================
202         not an error: long work (opening an instance, an upgrade,
            initialising a repository, a backup, a retention pass, a drill, a
            restore) is checked at once (the errors below), then answers a
            job, ``{"id", "state", "progress", "result", "error", "url", …}``,
            to poll at ``GET /api/v1/jobs/{id}`` until ``state`` is
            ``succeeded`` (``result`` holds what the work answers) or
            ``failed`` (``error`` holds the code, message and field, and the
            ``status`` the work's error would have had: 409 ``conflict`` for
            a plan already running, 502 ``backup_error``, 503
            ``engine_unreachable`` …; ``interrupted`` when the process
            running it stopped)
400         ``invalid``: a value an action refused, a body that is not JSON, or
            a request that does not fit the schema (wrong type, missing field,
            bad date). Schema errors also list every problem in ``errors``.
            They answer 400, not ninja's usual 422: one status for bad input.
401         ``unauthorized``: no token, an unknown one, or a disabled account's
403         ``forbidden``: a non-administrator's token outside ``/me`` and the
            governance endpoints; ``missing_scope``: the token lacks the
            scope (``read``, ``write``, ``admin``, ``vote``) the request needs;
            ``vote_scope_refused``: a token that could vote asked for by
            someone other than its owner; ``decision_required``: an
            extraordinary operation asked for directly (``link`` opens a
            proposal for it); ``not_a_voter``: the caller is not in the
            ballot's electorate, or the account was linked to its person after
            the ballot opened
404         ``not_found``: an unknown id, uid, group name or path
405         ``method_not_allowed``
409         ``conflict``: the value is taken (uid, email, name …);
            ``voted_on_open_ballot``: an account re-linked while its person
            (or the new one) has a vote on an open ballot;
            ``voting_closed``: the vote or counter-vote is over; a backup plan
            that is already running
502         ``backup_error``: restic failed; ``engine_error``: a Docker engine
            refused; ``proxy_refused``: Caddy refused the configuration;
            ``directory_error``: the directory refused a change
503         ``directory_unavailable``, ``engine_unreachable``,
            ``proxy_unavailable``, ``backup_unavailable``: that server cannot
            be reached (one table, ``core/errors.ADAPTER_ERRORS``, maps each
            adapter's errors to these codes)
==========  ===================================================================

An unexpected exception is logged and answers 500 ``server_error`` without
details; bad input never does.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, cast

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Router
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from chaton.core import api as core_api
from chaton.core import registry
from chaton.core.errors import ADAPTER_ERRORS, ChatonError, NotFound, coded

logger = logging.getLogger("chaton.api")

DESCRIPTION = __doc__.split("\n\n", 1)[1] if __doc__ else ""

_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJsonParser(Parser):
    """JSON bodies whose every string is valid Unicode.

    ``json.loads`` accepts a lone surrogate escape (``"\\ud800"``), which no
    database can store; refusing it here makes it a 400 instead of a 500 on save.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        """Return the decoded body. Raise ValueError (ninja answers 400) for a bad one."""
        data = json.loads(request.body)
        pending = [data]
        while pending:  # a loop, not recursion: a deeply nested body cannot blow the stack
            value = pending.pop()
            if isinstance(value, str) and _SURROGATE.search(value):
                raise ValueError("lone surrogate in a string")
            if isinstance(value, dict):
                pending.extend(value.keys())
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return cast(dict[str, Any], data)


api = NinjaAPI(
    title="Chaton API",
    version="1",
    urls_namespace="api",
    description=DESCRIPTION,
    # Admin-only unless an operation says otherwise (the /me family): safe by default.
    auth=core_api.admin_token,
    parser=StrictJsonParser(),
)


def _error(request: HttpRequest, status: int, code: str, message: str,
           field: str | None = None, **extra: Any) -> HttpResponse:
    response = api.create_response(
        request, {"code": code, "message": message, "field": field, **extra}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="chaton"'
    return response


@api.exception_handler(ChatonError)
def chaton_error(request: HttpRequest, error: ChatonError) -> HttpResponse:
    """An action's or a lookup's error: its own code, message, field and status.

    An error that carries a ``link`` (``decision_required``: the path of a new
    proposal for the refused operation) answers it too, so a client can offer it.
    """
    link = error.params.get("link")
    extra = {"link": str(link)} if link else {}
    return _error(request, error.status, error.code, str(error.message), error.field, **extra)


def _field(location: tuple[Any, ...]) -> str | None:
    """Given a pydantic error location such as ("body", "payload", "email"), return "email"."""
    parts = [str(part) for part in location[1:]]
    if location and location[0] == "body" and parts:
        parts = parts[1:]  # the name of the body parameter, which the client never sees
    return ".".join(parts) or None


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    """A request that does not fit the schema: 400 ``invalid``, every problem listed."""
    problems = [{"location": str(problem.get("loc", ("body",))[0]),
                 "field": _field(tuple(problem.get("loc", ()))),
                 "message": str(problem.get("msg", "")),
                 "type": str(problem.get("type", ""))} for problem in error.errors]
    first = problems[0] if problems else {"field": None, "message": ""}
    message = (_("Invalid value for “%(field)s”: %(problem)s")
               % {"field": first["field"], "problem": first["message"]}
               if first["field"] else _("The request is not valid: %(problem)s")
               % {"problem": first["message"]})
    return _error(request, 400, "invalid", message, first["field"], errors=problems)


_HTTP_CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 429: "throttled"}


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    """ninja's own errors: a body that is not JSON, a missing token …"""
    if error.status_code == 400:
        message = _("The request body is not valid JSON.")
    elif error.status_code == 401:
        message = _("Send an API token: “Authorization: Bearer <key>”.")
    else:
        message = str(error)
    return _error(request, error.status_code, _HTTP_CODES.get(error.status_code, "error"),
                  message)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", _("Not found."))


@api.exception_handler(IntegrityError)
def integrity_error(request: HttpRequest, error: IntegrityError) -> HttpResponse:
    """Two requests raced for the same name: the loser gets 409, nothing half-written."""
    logger.warning("API: integrity error on %s: %s", request.path, error)
    return _error(request, 409, "conflict", _("This value was just taken; try again."))


def adapter_error(request: HttpRequest, error: Exception) -> HttpResponse:
    """A server Chaton drives failed and no app said more: the coded error of
    :data:`chaton.core.errors.ADAPTER_ERRORS` (503 when down, 502 when it refused)."""
    logger.warning("API: %s on %s: %s", type(error).__name__, request.path, error)
    failure = coded(error)
    assert failure is not None  # registered only for the table's exceptions
    return _error(request, failure.status, failure.code, str(failure.message))


for _row in ADAPTER_ERRORS:
    # cast: ninja types the handler's error as "the exception or its class".
    api.add_exception_handler(_row.exception, cast(Any, adapter_error))


@api.exception_handler(SuspiciousOperation)
def suspicious(request: HttpRequest, error: SuspiciousOperation) -> HttpResponse:
    if isinstance(error, RequestDataTooBig):
        return _error(request, 413, "too_large", _("The request body is too large."))
    return _error(request, 400, "invalid", _("The request is malformed."))


@api.exception_handler(Exception)
def unexpected(request: HttpRequest, error: Exception) -> HttpResponse:
    """A bug: logged with its traceback, answered without details."""
    logger.exception("API: unexpected error on %s %s", request.method, request.path)
    return _error(request, 500, "server_error", _("Something went wrong on the server."))


# The last router answers JSON 404 for any other path under /api/v1/.
fallback = Router()


@fallback.api_operation(["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", auth=None,
                        include_in_schema=False)
def unknown_path(request: HttpRequest, rest: str) -> None:
    raise NotFound(_("There is no such API endpoint."))


# Each installed app's routers (its ``AppConfig.api_routers``), in the order of INSTALLED_APPS.
for prefix, router in registry.api_routers():
    api.add_router(prefix, registry.load(router))
api.add_router("/", fallback)
