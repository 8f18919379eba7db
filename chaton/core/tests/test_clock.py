"""Days are the collective's days: one conversion from instants to days, in its time zone."""

from __future__ import annotations

import ast
import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from chaton.core import clock
from chaton.project import config

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
CHATON = Path(clock.__file__).resolve().parent.parent


def test_a_day_is_the_collectives_not_utcs() -> None:
    # 00:30 in Paris is still the day before in UTC.
    moment = dt.datetime(2026, 12, 6, 0, 30, tzinfo=PARIS)
    assert moment.astimezone(dt.UTC).date() == dt.date(2026, 12, 5)
    assert clock.local_day(moment) == dt.date(2026, 12, 6)
    assert clock.local_day(moment, dt.UTC) == dt.date(2026, 12, 5)
    with pytest.raises(ValueError, match="naive"):
        clock.local_day(dt.datetime(2026, 12, 6, 0, 30))


def test_end_of_day_and_last_day_are_inverses_across_daylight_saving() -> None:
    for day in (dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 10, 25),
                dt.date(2026, 12, 5), dt.date(2026, 12, 31)):
        end = clock.end_of_day(day)
        assert end is not None
        assert end.astimezone(PARIS).time() == dt.time(0, 0)
        assert clock.last_day(end) == day
        assert clock.first_day_after(end) == day + dt.timedelta(days=1)
        assert clock.start_of_day(day + dt.timedelta(days=1)) == end
    assert clock.end_of_day(None) is None and clock.last_day(None) is None


def test_first_day_after_an_end_during_a_day_is_the_next_day() -> None:
    end = dt.datetime(2026, 12, 5, 15, 0, tzinfo=PARIS)
    assert clock.first_day_after(end) == dt.date(2026, 12, 6)
    assert clock.last_day(end) == dt.date(2026, 12, 5)


def test_today_follows_the_travelling_clock() -> None:
    from django.utils import timezone

    target = dt.datetime(2026, 12, 6, 0, 30, tzinfo=PARIS)
    clock.travel(target - timezone.now())
    try:
        assert clock.today() == dt.date(2026, 12, 6)
    finally:
        clock.travel(dt.timedelta(0))


def test_shadow_expire_of_an_account_whose_last_day_is_today() -> None:
    from chaton.directory.projection import shadow_expire

    # Expires 2026-12-06 00:00 Paris (2026-12-05 23:00 UTC): the 5th is its last day.
    end = clock.end_of_day(dt.date(2026, 12, 5))
    assert end is not None
    assert shadow_expire(end) == str((dt.date(2026, 12, 6) - dt.date(1970, 1, 1)).days).encode()
    assert shadow_expire(end) == b"20793"


def test_the_time_zone_comes_from_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "chaton.toml"
    path.write_text('time_zone = "America/Montreal"\n', encoding="utf-8")
    assert config.load(path).resolved_time_zone() == zoneinfo.ZoneInfo("America/Montreal")
    path.write_text('time_zone = "Mars/Olympus_Mons"\n', encoding="utf-8")
    with pytest.raises(config.ConfigError, match="time_zone"):
        config.load(path).resolved_time_zone()


def _day_conversions(tree: ast.AST) -> list[int]:
    """Return the lines of ``tree`` that turn an instant into a day or a local time by hand."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name == "localdate":
            lines.append(node.lineno)
        elif name == "date" and not node.args and not node.keywords:
            lines.append(node.lineno)  # datetime.date(): the day of whatever zone it carries
        elif name == "astimezone" and not node.args:
            lines.append(node.lineno)  # the server's zone, not the collective's
    return lines


def test_every_instant_becomes_a_day_through_the_clock() -> None:
    offenders = []
    for path in sorted(CHATON.rglob("*.py")):
        relative = path.relative_to(CHATON).as_posix()
        if "/tests/" in relative or relative == "core/clock.py" or "/migrations/" in relative:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{relative}:{line}" for line in _day_conversions(tree)]
    assert offenders == [], "use chaton.core.clock.local_day: " + ", ".join(offenders)
