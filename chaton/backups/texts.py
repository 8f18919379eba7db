"""Backups in words, the same on the pages and on the command line: durations, intervals,
retention policies, a source's parameters.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chaton.backups.models import Plan

#: The drill summary (pages, API, CLI) covers this many days (about six months).
SUMMARY_DAYS = 183


def duration_text(seconds: float | None) -> str:
    """Given a duration in seconds (None: unfinished), return it for people: ``2 min 05 s``."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return _("%(seconds).1f s") % {"seconds": seconds}
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": secs}
    return _("%(seconds)d s") % {"seconds": secs}


def interval_text(minutes: int) -> str:
    """Given a plan's interval in minutes, return it for people: ``every day``, ``every 6
    hours``, ``every 90 minutes``."""
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return ngettext("every day", "every %(count)d days", days) % {"count": days}
    if minutes % 60 == 0:
        hours = minutes // 60
        return ngettext("every hour", "every %(count)d hours", hours) % {"count": hours}
    return ngettext("every minute", "every %(count)d minutes", minutes) % {"count": minutes}


def retention_text(plan: Plan) -> str:
    """Given a plan, return its retention policy in words: ``keeps 7 daily snapshots, 4
    weekly snapshots``."""
    if plan.keep_policy().keeps_everything:
        return _("keeps every snapshot")
    rules = (
        (plan.keep_last, ngettext("the last snapshot", "the last %(count)d snapshots",
                                  plan.keep_last)),
        (plan.keep_daily, ngettext("%(count)d daily snapshot", "%(count)d daily snapshots",
                                   plan.keep_daily)),
        (plan.keep_weekly, ngettext("%(count)d weekly snapshot", "%(count)d weekly snapshots",
                                    plan.keep_weekly)),
        (plan.keep_monthly, ngettext("%(count)d monthly snapshot",
                                     "%(count)d monthly snapshots", plan.keep_monthly)),
        (plan.keep_yearly, ngettext("%(count)d yearly snapshot", "%(count)d yearly snapshots",
                                    plan.keep_yearly)),
    )
    parts = [text % {"count": count} for count, text in rules if count]
    return _("keeps %(rules)s") % {"rules": ", ".join(parts)}


def params_text(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Given a source's parameters fit to show (secrets masked), return (name, text) pairs:
    lists joined, true and false in words."""
    shown = []
    for name, value in params.items():
        if isinstance(value, bool):
            text = _("yes") if value else _("no")
        elif isinstance(value, list):
            text = ", ".join(str(item) for item in value) or "—"
        else:
            text = str(value)
        shown.append((name, text))
    return shown


def reason_labels() -> dict[str, str]:
    """Return the words for why retention keeps a snapshot, by the rule's name."""
    return {"last": _("one of the last"), "hourly": _("hourly"), "daily": _("daily"),
            "weekly": _("weekly"), "monthly": _("monthly"), "yearly": _("yearly"),
            "all": _("no rule: everything is kept"), "kept": _("kept")}
