"""HTTP figures from access log lines in Caddy's exact JSON format: requests, visitors, bots
per day and instance; read incrementally; and from the attacker's side, no address (nor
anything that could lead back to one after the day) in the database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.core import serializers

from chaton.core import clock
from chaton.stats import access_logs
from chaton.stats.access_logs import forget_past_days, is_bot, read_access_log
from chaton.stats.models import DaySalt, LogCursor, Sample, Visitor

pytestmark = pytest.mark.django_db
HOSTS = {"pad.example.org": "pad", "chat.example.org": "chat"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def line(host: str, address: str, agent: str, moment: dt.datetime, uri: str = "/") -> str:
    """One line as Caddy 2 writes it (encoder json, logger http.log.access.log0)."""
    return json.dumps({
        "level": "info", "ts": moment.timestamp(), "logger": "http.log.access.log0",
        "msg": "handled request",
        "request": {"remote_ip": address, "remote_port": "41342", "client_ip": address,
                    "proto": "HTTP/2.0", "method": "GET", "host": host, "uri": uri,
                    "headers": {"User-Agent": [agent], "Accept": ["*/*"]},
                    "tls": {"resumed": False, "version": 772, "cipher_suite": 4865,
                            "proto": "h2", "server_name": host}},
        "bytes_read": 0, "user_id": "", "duration": 0.000929675, "size": 10900, "status": 200,
        "resp_headers": {"Server": ["Caddy"], "Content-Type": ["text/html; charset=utf-8"]},
    }) + "\n"


def at(day: int, hour: int) -> dt.datetime:
    return clock.start_of_day(dt.date(2026, 11, day)) + dt.timedelta(hours=hour)


def figures(subject: str, day: int) -> dict[str, float]:
    return {sample.figure: sample.value for sample in
            Sample.objects.filter(subject=subject, day=dt.date(2026, 11, day))}


def test_requests_visitors_and_bots_per_day_and_instance(tmp_path: Path):
    log = tmp_path / "access.log"
    log.write_text(
        line("pad.example.org", "203.0.113.7", FIREFOX, at(3, 9))
        + line("pad.example.org", "203.0.113.7", FIREFOX, at(3, 10), "/p/agenda")
        + line("pad.example.org", "2001:db8::42", FIREFOX, at(3, 11))
        + line("pad.example.org", "198.51.100.9", CRAWLER, at(3, 12))
        + line("PAD.example.org:443", "198.51.100.10", "curl/8.5.0", at(3, 13))
        + line("chat.example.org", "203.0.113.7", FIREFOX, at(3, 14))
        + line("pad.example.org", "203.0.113.7", FIREFOX, at(4, 9))
        + line("unknown.example.net", "203.0.113.99", FIREFOX, at(3, 9))
        + "not json at all\n")
    assert read_access_log(log, HOSTS) == 7
    assert figures("pad", 3) == {"http.requests": 5, "http.visitors": 2, "http.bots": 2}
    assert figures("chat", 3) == {"http.requests": 1, "http.visitors": 1, "http.bots": 0}
    assert figures("pad", 4) == {"http.requests": 1, "http.visitors": 1, "http.bots": 0}
    assert not Sample.objects.filter(subject__contains="unknown").exists()


def test_the_log_is_read_from_where_it_stopped_and_again_after_a_rotation(tmp_path: Path):
    log = tmp_path / "access.log"
    log.write_text(line("pad.example.org", "203.0.113.7", FIREFOX, at(3, 9)))
    assert read_access_log(log, HOSTS) == 1
    with log.open("a") as stream:
        stream.write(line("pad.example.org", "203.0.113.7", FIREFOX, at(3, 10))
                     + line("pad.example.org", "203.0.113.8", FIREFOX, at(3, 11)))
        # A line Caddy is still writing waits for the next reading.
        stream.write(line("pad.example.org", "203.0.113.9", FIREFOX, at(3, 12))[:40])
    assert read_access_log(log, HOSTS) == 2
    assert figures("pad", 3) == {"http.requests": 3, "http.visitors": 2, "http.bots": 0}
    assert read_access_log(log, HOSTS) == 0
    # Rotated: a new file under the same name is read from its start.
    log.rename(tmp_path / "access-old.log")
    log.write_text(line("pad.example.org", "203.0.113.7", FIREFOX, at(3, 13)))
    assert read_access_log(log, HOSTS) == 1
    assert figures("pad", 3) == {"http.requests": 4, "http.visitors": 2, "http.bots": 0}
    assert LogCursor.objects.get(path=str(log)).offset == log.stat().st_size


def test_a_long_log_is_written_in_batches_with_the_same_counts(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(access_logs, "BATCH", 7)
    log = tmp_path / "access.log"
    log.write_text("".join(line("pad.example.org", f"203.0.113.{index % 20}", FIREFOX,
                                at(3, 9)) for index in range(100)))
    assert read_access_log(log, HOSTS) == 100
    assert figures("pad", 3) == {"http.requests": 100, "http.visitors": 20, "http.bots": 0}


def test_no_address_reaches_the_database_and_the_days_hashes_go_with_its_salt(
        tmp_path: Path):
    addresses = ["203.0.113.7", "2001:db8::42", "198.51.100.9"]
    log = tmp_path / "access.log"
    log.write_text("".join(line("pad.example.org", address, FIREFOX, at(3, 9))
                           for address in addresses))
    read_access_log(log, HOSTS)
    stored = serializers.serialize("json", [*Sample.objects.all(), *Visitor.objects.all(),
                                            *DaySalt.objects.all(), *LogCursor.objects.all()])
    for address in addresses:
        assert address not in stored
    assert Visitor.objects.count() == 3 and DaySalt.objects.count() == 1
    # Two days draw two salts: the same address gives unrelated hashes.
    with log.open("a") as stream:
        stream.write(line("pad.example.org", addresses[0], FIREFOX, at(4, 9)))
    read_access_log(log, HOSTS)
    digests = dict(Visitor.objects.filter(day__in=[dt.date(2026, 11, 3), dt.date(2026, 11, 4)])
                   .values_list("day", "digest"))
    assert len(set(Visitor.objects.values_list("digest", flat=True))) == 4
    assert digests
    assert forget_past_days(dt.date(2026, 11, 4)) == 3
    assert list(DaySalt.objects.values_list("day", flat=True)) == [dt.date(2026, 11, 4)]
    assert figures("pad", 3)["http.visitors"] == 3  # the count stays


@pytest.mark.parametrize(("agent", "bot"), [
    (FIREFOX, False), (CRAWLER, True), ("curl/8.5.0", True), ("", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0)", True), ("Wget/1.21", True),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15", False),
    ("python-requests/2.32", True), ("facebookexternalhit/1.1", True)])
def test_bots_are_told_from_people_by_their_user_agent(agent: str, bot: bool):
    assert is_bot(agent) is bot
