"""Mattermost: accounts, teams, channels and, per day, posts and the accounts that posted.

Through ``/api/v4/analytics/old`` with a system administrator's token (the
instance's secret ``stats_token``): the standard figures, then
``name=post_counts_day`` and ``name=user_counts_with_posts_day``. Those answer
only the last 30 days and skip the days without posts: every day they cover
is kept (a skipped day is 0, not a gap), so the history outlives them.
"""

from __future__ import annotations

import datetime as dt

from chaton.stats.collectors import Figures, Source

STANDARD = {"unique_user_count": "users", "team_count": "teams",
            "channel_open_count": "channels"}
DAILY = {"post_counts_day": "posts", "user_counts_with_posts_day": "active_users"}
#: How many days the daily analytics cover.
WINDOW = 30


def collect(source: Source) -> Figures:
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
