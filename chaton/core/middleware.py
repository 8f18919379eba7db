"""Errors a view raised, as pages, in one place.

- A lookup that finds nothing is the ordinary 404 page. Views call the lookups
  of each app's ``queries`` (``group_by_name``, ``instance_by_slug`` …)
  directly; the API turns the same ``NotFound`` into its 404 ``not_found``
  (``chaton/project/api.py``), the CLI into its one line on stderr
  (``chaton/cli/app.py``), so no view writes ``_*_or_404``.
- An adapter's error no view caught is a clear page, never a 500: the same table
  as the API and the CLI (:data:`chaton.core.errors.ADAPTER_ERRORS`) says which
  server failed, in the reader's language, with the error's code and its status
  (503 when the server is down, 502 when it refused). Views that can say more
  (the directory's page, a form that keeps what was typed) still catch the error
  themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from chaton.core.errors import NotFound, ServerFailure, coded

logger = logging.getLogger("chaton.web")


class ErrorPagesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Given a view's exception: raise Http404 for a NotFound; return the
        ``server_failure.html`` page for an adapter's error; else None (Django's own
        handling: a bug stays a bug)."""
        if isinstance(exception, NotFound):
            raise Http404(str(exception)) from exception
        failure = coded(exception)
        if not isinstance(failure, ServerFailure):
            return None
        logger.warning("page %s: %s: %s", request.path, type(exception).__name__, exception)
        return render(request, "server_failure.html",
                      {"message": str(failure.message), "code": failure.code},
                      status=failure.status)
