"""BookStack: books and pages through its API (``/api/books``, ``/api/pages``: the
``total`` of a listing of one), with the token in the instance's secret
``stats_token`` (``<id>:<secret>``)."""

from __future__ import annotations

from chaton.stats.collectors import CollectorError, Figures, Source


def collect(source: Source) -> Figures:
    headers = {"Authorization": f"Token {source.need_secret('stats_token')}"}
    found: Figures = {}
    for name in ("books", "pages"):
        answer = source.get_json(f"/api/{name}", headers=headers, params={"count": 1})
        if not isinstance(answer, dict) or "total" not in answer:
            raise CollectorError(f"/api/{name} answered without a total")
        found[name] = float(answer["total"])
    return found
