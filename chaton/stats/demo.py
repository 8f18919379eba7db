"""Statistics' part of ``chaton demo``: a year of figures to chart and report on.

The collective's own figures are worked out from the demo's tables for each of
the last 365 days (members joined on their dates, so the curve is the real
one); each demo instance gets a year of made-up HTTP figures (a weekly rhythm,
slow growth, a quiet August) so that the pages and the semester report have
something to show before the first real collection. Loading again changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import random

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.core import clock
from chaton.core.demo import DemoReport
from chaton.services.models import Instance
from chaton.stats.collect import upsert
from chaton.stats.models import CHATON, Sample
from chaton.stats.own import own_figures

DAYS = 365


def http_figures(day: dt.date, index: int, rng: random.Random) -> dict[str, float]:
    """Made-up requests, visitors and bots of a demo instance on ``day``."""
    weekday = 1.0 if day.weekday() < 5 else 0.55
    holidays = 0.5 if day.month == 8 else 1.0
    growth = 1 + index / DAYS
    visitors = max(0, round(40 * growth * weekday * holidays * rng.uniform(0.8, 1.2)))
    requests = visitors * rng.randint(9, 14)
    bots = round(requests * rng.uniform(0.15, 0.3) + 20 * (1 + math.sin(index / 9)))
    return {"http.requests": requests + bots, "http.visitors": visitors, "http.bots": bots}


def load(report: DemoReport) -> None:
    """Write a year of samples unless the collective's own figures are there already."""
    if Sample.objects.filter(subject=CHATON).exists():
        return
    today = clock.today()
    now = clock.now()
    instances = list(Instance.objects.order_by("slug"))
    rng = random.Random(2026)  # noqa: S311 -- made-up figures, the same demo every time
    rows: list[Sample] = []
    with transaction.atomic():
        for index in range(DAYS):
            day = today - dt.timedelta(days=DAYS - index)
            for name, value in own_figures(day).items():
                rows.append(Sample(figure=name, subject=CHATON, day=day, value=value,
                                   collected_at=now))
            for instance in instances:
                for name, value in http_figures(day, index, rng).items():
                    rows.append(Sample(figure=name, subject=instance.slug, day=day,
                                       value=value, collected_at=now))
            if len(rows) > 5000:
                upsert(rows)
                rows = []
        upsert(rows)
    report.created.append(_("%(days)d days of statistics (the collective's figures, and "
                            "made-up HTTP figures for %(count)d service(s))")
                          % {"days": DAYS, "count": len(instances)})
