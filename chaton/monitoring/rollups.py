"""Roll-ups: each probe's hours and days summarised from raw results; raw results pruned.

A result stands for the time from its check until the next one, for at most
two intervals: time no result stands for — Chaton was not running — is
unknown, never down. Hours are rolled up once they are over, days (UTC) too,
both from raw results, which are kept ``monitoring.raw_hours`` (at least a
day and a bit, so that a day is always rolled up from them). Roll-ups are kept.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from chaton.core import clock
from chaton.monitoring.cycle import GAP_INTERVALS
from chaton.monitoring.models import Period, Probe, Result, Rollup

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Summary:
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    checks: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Return the ``share`` percentile of ``values`` (nearest rank), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def summarize(results: Sequence[Result], start: dt.datetime, end: dt.datetime,
              interval_seconds: int, before: Result | None = None) -> Summary:
    """Summarise the window [start, end) from ``results`` (in it, by time) and the last
    result ``before`` it."""
    cover = dt.timedelta(seconds=GAP_INTERVALS * interval_seconds)
    up = down = 0.0
    timeline = ([before] if before is not None else []) + list(results)
    for index, result in enumerate(timeline):
        following = timeline[index + 1].at if index + 1 < len(timeline) else end
        span_start = max(result.at, start)
        span_end = min(following, result.at + cover, end)
        seconds = max(0.0, (span_end - span_start).total_seconds())
        if result.ok:
            up += seconds
        else:
            down += seconds
    total = (end - start).total_seconds()
    durations = [result.duration_ms for result in results if result.ok]
    return Summary(up_seconds=up, down_seconds=down,
                   unknown_seconds=max(0.0, total - up - down), checks=len(results),
                   failures=sum(1 for result in results if not result.ok),
                   p50_ms=percentile(durations, 0.50), p95_ms=percentile(durations, 0.95),
                   p99_ms=percentile(durations, 0.99))


def roll_up(probe: Probe, period: str, start: dt.datetime) -> Rollup:
    """Compute and store (replacing) the roll-up of ``probe`` for the period at ``start``."""
    end = start + (HOUR if period == Period.HOUR else DAY)
    results = list(Result.objects.filter(probe=probe, at__gte=start, at__lt=end).order_by("at"))
    before = Result.objects.filter(probe=probe, at__lt=start).order_by("-at").first()
    summary = summarize(results, start, end, probe.interval_seconds, before)
    rollup, _created = Rollup.objects.update_or_create(
        probe=probe, period=period, start=start, defaults=summary.__dict__)
    return rollup


def _floor(at: dt.datetime, period: str) -> dt.datetime:
    at = at.astimezone(dt.UTC)
    if period == Period.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def roll_up_all(now: dt.datetime | None = None) -> int:
    """Roll up every finished hour and day that has raw results and no roll-up yet (the
    last finished ones again, in case results came late); return how many were written."""
    now = now or clock.now()
    written = 0
    for probe in Probe.objects.all():
        first = Result.objects.filter(probe=probe).order_by("at").values_list("at", flat=True)
        oldest = first.first()
        if oldest is None:
            continue
        for period, step in ((Period.HOUR, HOUR), (Period.DAY, DAY)):
            done = set(Rollup.objects.filter(probe=probe, period=period)
                       .values_list("start", flat=True))
            start = _floor(oldest, period)
            current = _floor(now, period)
            while start < current:
                if start not in done or start + step >= current:
                    with transaction.atomic():
                        roll_up(probe, period, start)
                    written += 1
                start += step
    return written


def prune(now: dt.datetime | None = None) -> int:
    """Delete raw results older than ``monitoring.raw_hours``; return how many."""
    now = now or clock.now()
    hours = max(settings.CHATON.monitoring.raw_hours, 26)
    deleted, _ = Result.objects.filter(at__lt=now - dt.timedelta(hours=hours)).delete()
    return deleted
