"""restic's retention policy, computed here: the plan page's "what will be kept"."""

from __future__ import annotations

import datetime as dt

from chaton.adapters.restic import KeepPolicy, Snapshot, parse_time
from chaton.backups.retention import apply_policy, group_by_host_and_tags


def snapshot(moment: str, tags: tuple[str, ...] = ("chaton",), host: str = "h") -> Snapshot:
    time = parse_time(moment)
    return Snapshot(id=moment, short_id=moment[:8], time=time, paths=("/x",), tags=tags,
                    hostname=host)


def kept(snapshots: list[Snapshot], policy: KeepPolicy) -> list[str]:
    return [decision.snapshot.id for decision in apply_policy(snapshots, policy)
            if decision.kept]


def test_daily_weekly_monthly_yearly_on_a_made_up_calendar() -> None:
    calendar = [snapshot(moment) for moment in (
        "2024-02-14T12:00:00+01:00", "2024-02-13T18:00:00+01:00", "2024-02-13T09:00:00+01:00",
        "2024-02-12T12:00:00+01:00", "2024-02-11T12:00:00+01:00", "2024-02-05T12:00:00+01:00",
        "2024-01-31T12:00:00+01:00", "2024-01-10T12:00:00+01:00", "2023-12-28T12:00:00+01:00",
        "2023-11-20T12:00:00+01:00", "2023-06-15T12:00:00+02:00")]
    policy = KeepPolicy(daily=3, weekly=2, monthly=3, yearly=2)
    assert kept(list(reversed(calendar)), policy) == [
        "2024-02-14T12:00:00+01:00", "2024-02-13T18:00:00+01:00", "2024-02-12T12:00:00+01:00",
        "2024-02-11T12:00:00+01:00", "2024-01-31T12:00:00+01:00", "2023-12-28T12:00:00+01:00"]
    decisions = {decision.snapshot.id: decision.reasons
                 for decision in apply_policy(calendar, policy)}
    assert decisions["2024-02-14T12:00:00+01:00"] == ("daily", "weekly", "monthly", "yearly")
    assert decisions["2024-02-11T12:00:00+01:00"] == ("weekly",)
    assert decisions["2023-06-15T12:00:00+02:00"] == ()


def test_days_are_counted_in_the_snapshots_own_zone() -> None:
    # Two days in Paris, one day (the 1st) in UTC: restic counts the snapshots' own days.
    late = snapshot("2024-03-01T23:30:00+01:00")
    early = snapshot("2024-03-02T00:30:00+01:00")
    assert kept([late, early], KeepPolicy(daily=2)) == [early.id, late.id]


def test_keep_last_and_a_policy_that_keeps_everything() -> None:
    calendar = [snapshot(f"2024-01-0{day}T10:00:00Z") for day in range(1, 6)]
    assert kept(calendar, KeepPolicy(last=2)) == ["2024-01-05T10:00:00Z", "2024-01-04T10:00:00Z"]
    assert len(kept(calendar, KeepPolicy())) == 5
    assert KeepPolicy(last=2, monthly=1).arguments() == ["--keep-last", "2",
                                                          "--keep-monthly", "1"]


def test_groups_are_per_host_and_tag_set_as_forget_group_by() -> None:
    snapshots = [snapshot("2024-01-01T10:00:00Z", ("chaton", "source:a")),
                 snapshot("2024-01-02T10:00:00Z", ("source:a", "chaton")),
                 snapshot("2024-01-03T10:00:00Z", ("chaton", "source:a", "safety")),
                 snapshot("2024-01-04T10:00:00Z", ("chaton", "source:a"), host="other")]
    groups = group_by_host_and_tags(snapshots)
    assert sorted(len(members) for members in groups.values()) == [1, 1, 2]
    assert parse_time("2024-01-01T10:00:00.123456789+02:00") == dt.datetime(
        2024, 1, 1, 10, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
