"""Castopod: podcasts and episodes, and from ``cp_analytics_podcasts`` the day's downloads
(``hits``) and distinct listeners (``unique_listeners``), summed over its podcasts."""

from __future__ import annotations

from chaton.stats.collectors import CollectorError, Figures, Source, manifest_figures

DAY_QUERY = ("SELECT coalesce(sum(hits), 0), coalesce(sum(unique_listeners), 0) "
             "FROM cp_analytics_podcasts WHERE date = '{day}'")


def collect(source: Source) -> Figures:
    if source.sql is None:
        raise CollectorError("the instance's database cannot be reached")
    found = manifest_figures(source, only=("podcasts", "episodes"))
    rows = source.sql(DAY_QUERY.format(day=source.day.isoformat()))
    hits, listeners = rows[0] if rows else (0, 0)
    found["hits"] = float(hits or 0)
    found["listeners"] = float(listeners or 0)
    return found
