"""A lookup that finds nothing is the pages' 404, in one place.

Views call the lookups of each app's ``queries`` (``group_by_name``,
``instance_by_slug`` …) directly: their ``NotFound`` reaches this middleware,
which answers the ordinary "Not found" page. The API turns the same error into
its 404 ``not_found`` itself (``chaton/project/api.py``), and the CLI into its
one line on stderr (``chaton/cli/app.py``), so no view writes ``_*_or_404``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse

from chaton.core.errors import NotFound


class NotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Given an exception a view raised, raise Http404 for a NotFound; leave others."""
        if isinstance(exception, NotFound):
            raise Http404(str(exception)) from exception
