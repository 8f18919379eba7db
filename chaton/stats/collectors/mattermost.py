"""Mattermost: accounts, teams, channels and, per day, posts and the accounts that posted.

Through ``/api/v4/analytics/old`` with a system administrator's token (the
instance's secret ``stats_token``): the standard figures, then
``name=post_counts_day`` and ``name=user_counts_with_posts_day``. Those answer
only the last 30 days and skip the days without posts: every day they cover
is kept (a skipped day is 0, not a gap), so the history outlives them.

Without a token, the figures come from its database: the manifest's (accounts,
messages, teams, channels) and the day's messages (``posts.createat``, in
milliseconds).
"""

from __future__ import annotations

import datetime as dt

from chaton.core import clock
from chaton.stats.collectors import Figures, Source, manifest_figures

STANDARD = {"unique_user_count": "users", "team_count": "teams",
            "channel_open_count": "channels", "post_count": "posts"}
DAILY = {"post_counts_day": "posts_day", "user_counts_with_posts_day": "active_users"}
#: How many days the daily analytics cover.
WINDOW = 30


DAY_QUERY = ("SELECT count(*) FROM posts WHERE deleteat = 0 AND createat >= {start} "
             "AND createat < {end}")


def from_database(source: Source) -> Figures:
    found = manifest_figures(source)
    start = clock.start_of_day(source.day)
    end = clock.start_of_day(source.day + dt.timedelta(days=1))
    assert source.sql is not None
    rows = source.sql(DAY_QUERY.format(start=int(start.timestamp() * 1000),
                                       end=int(end.timestamp() * 1000)))
    found["posts_day"] = float(rows[0][0] if rows else 0)
    return found


def collect(source: Source) -> Figures:
    if not source.secrets.get("stats_token") and source.sql is not None:
        return from_database(source)
    headers = {"Authorization": f"Bearer {source.need_secret('stats_token')}"}
    found: Figures = {}
    for row in source.get_json("/api/v4/analytics/old", headers=headers):
        if row.get("name") in STANDARD:
            found[STANDARD[row["name"]]] = float(row["value"])
    first = source.day - dt.timedelta(days=WINDOW - 1)
    for name, figure in DAILY.items():
        answered = source.get_json("/api/v4/analytics/old", headers=headers,
                                   params={"name": name}) or []
        values = {dt.date.fromisoformat(row["name"]): float(row["value"]) for row in answered}
        day = first
        while day <= source.day:
            found[(figure, day)] = values.get(day, 0.0)
            day += dt.timedelta(days=1)
    return found
