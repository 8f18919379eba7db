"""Pages: an adapter's error that no view caught becomes a clear page, never a 500.

:class:`AdapterErrorMiddleware` reads the same table as the API and the CLI
(:data:`chaton.core.errors.ADAPTER_ERRORS`): the page says which server failed,
in the reader's language, with the error's code and its status (503 when the
server is down, 502 when it refused). Views that can say more (the directory's
page, a form that keeps what was typed) still catch the error themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chaton.core.errors import ServerFailure, coded

logger = logging.getLogger("chaton.web")


class AdapterErrorMiddleware:
    """Turn an adapter's exception raised by a view into the ``server_failure.html`` page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Given a view's exception, return the error page when an adapter raised it, else
        None (Django's own handling: a bug stays a bug)."""
        failure = coded(exception)
        if not isinstance(failure, ServerFailure):
            return None
        logger.warning("page %s: %s: %s", request.path, type(exception).__name__, exception)
        return render(request, "server_failure.html",
                      {"message": str(failure.message), "code": failure.code},
                      status=failure.status)
