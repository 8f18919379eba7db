"""HTTP figures from Caddy's JSON access log: requests, distinct visitors and bots per day.

Each line is one request (Caddy's ``http.log.access`` JSON: ``ts``,
``request.host``, ``request.client_ip`` or ``remote_ip``,
``request.headers.User-Agent``). The host names the instance; a host no
instance serves is skipped. The file is read from where the last reading
stopped (its inode and offset in :class:`~chaton.stats.models.LogCursor`; a
new inode or a shorter file starts over), in batches of :data:`BATCH` lines,
so memory stays bounded whatever the log's size.

Addresses never reach the database: a visitor is the SHA-256 of a random
salt of the day (:class:`~chaton.stats.models.DaySalt`) and the address; the
salted hashes of a day (:class:`~chaton.stats.models.Visitor`) only tell
whether a visitor was already counted, and :func:`forget_past_days` deletes
them with the salt once the day is over: then nothing links a count to an
address. A request whose user agent matches :data:`BOT_PATTERNS` (or has none)
counts as a bot's, not as a visitor's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import transaction

from chaton.core import clock
from chaton.stats.models import DaySalt, LogCursor, Sample, Visitor

#: Lines read before their counts are written (bounds the memory a reading takes).
BATCH = 5000
#: User agents of robots (case-insensitive substrings): crawlers, feed and link-preview
#: fetchers, monitoring, command-line and library clients.
BOT_PATTERNS = ("bot", "crawl", "spider", "slurp", "fetch", "preview", "monitor", "uptime",
                "curl", "wget", "python-", "httpx", "go-http-client", "java/", "okhttp",
                "headless", "lighthouse", "facebookexternalhit", "scrapy", "libwww")
_BOT = re.compile("|".join(re.escape(pattern) for pattern in BOT_PATTERNS), re.IGNORECASE)


def is_bot(user_agent: str) -> bool:
    """Return whether a request with this user agent comes from a robot (no agent: yes)."""
    return not user_agent.strip() or bool(_BOT.search(user_agent))


def salt_of(day: dt.date, cache: dict[dt.date, bytes]) -> bytes:
    """Return the day's salt, drawing (and keeping) a random one the first time."""
    if day not in cache:
        salt, _created = DaySalt.objects.get_or_create(day=day,
                                                       defaults={"salt": os.urandom(32)})
        cache[day] = bytes(salt.salt)
    return cache[day]


def _parse(line: bytes) -> tuple[str, dt.date, str, str] | None:
    try:
        entry = json.loads(line)
        request: dict[str, Any] = entry["request"]
        moment = dt.datetime.fromtimestamp(float(entry["ts"]), tz=dt.UTC)
    except (ValueError, KeyError, TypeError):
        return None
    host = str(request.get("host", "")).lower()
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    address = str(request.get("client_ip") or request.get("remote_ip") or "")
    agents = (request.get("headers") or {}).get("User-Agent") or [""]
    return host, clock.local_day(moment), address, str(agents[0])


class _Batch:
    """Counts of a batch of lines, by (subject, day)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, dt.date], int] = defaultdict(int)
        self.bots: dict[tuple[str, dt.date], int] = defaultdict(int)
        self.digests: dict[tuple[str, dt.date], set[str]] = defaultdict(set)

    def __bool__(self) -> bool:
        return bool(self.requests)


def _add(figure: str, subject: str, day: dt.date, value: float) -> None:
    sample, created = Sample.objects.select_for_update().get_or_create(
        figure=figure, subject=subject, day=day,
        defaults={"value": value, "collected_at": clock.now()})
    if not created:
        sample.value += value
        sample.collected_at = clock.now()
        sample.save(update_fields=["value", "collected_at"])


def _write(batch: _Batch, cursor: LogCursor) -> None:
    with transaction.atomic():
        for (subject, day), requests in batch.requests.items():
            _add("http.requests", subject, day, requests)
            _add("http.bots", subject, day, batch.bots.get((subject, day), 0))
            digests = batch.digests.get((subject, day), set())
            known = set(Visitor.objects.filter(subject=subject, day=day, digest__in=digests)
                        .values_list("digest", flat=True))
            new = digests - known
            Visitor.objects.bulk_create([Visitor(subject=subject, day=day, digest=digest)
                                         for digest in new], ignore_conflicts=True)
            _add("http.visitors", subject, day, len(new))
        cursor.save()


def read_access_log(path: Path, hosts: Mapping[str, str]) -> int:
    """Read ``path`` from where the last reading stopped; return how many requests it counted.

    ``hosts`` maps each served domain to its instance's slug.
    """
    cursor, _created = LogCursor.objects.get_or_create(path=str(path))
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0
    if stat.st_ino != cursor.inode or stat.st_size < cursor.offset:
        cursor.inode, cursor.offset = stat.st_ino, 0
    salts: dict[dt.date, bytes] = {}
    counted = 0
    batch, lines = _Batch(), 0
    with path.open("rb") as stream:
        stream.seek(cursor.offset)
        for line in stream:
            if not line.endswith(b"\n"):
                break  # Caddy is still writing it: the next reading takes it whole
            cursor.offset += len(line)
            parsed = _parse(line)
            if parsed is not None and parsed[0] in hosts:
                host, day, address, agent = parsed
                key = (hosts[host], day)
                batch.requests[key] += 1
                counted += 1
                if is_bot(agent):
                    batch.bots[key] += 1
                elif address:
                    digest = hashlib.sha256(salt_of(day, salts) + address.encode()).hexdigest()
                    batch.digests[key].add(digest)
            lines += 1
            if lines >= BATCH:
                _write(batch, cursor)
                batch, lines = _Batch(), 0
    _write(batch, cursor)
    return counted


def forget_past_days(today: dt.date | None = None) -> int:
    """Delete the salts and the visitors' hashes of the days before ``today``; return how
    many hashes went. A day's visitors are counted by then (its sample stays)."""
    today = today or clock.today()
    with transaction.atomic():
        deleted, _detail = Visitor.objects.filter(day__lt=today).delete()
        DaySalt.objects.filter(day__lt=today).delete()
    return deleted
