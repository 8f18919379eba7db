"""One collector per catalogue entry: ``chaton/stats/collectors/<entry>.py``.

Each module has one function, ``collect(source: Source) -> dict[str, float]``:
the figures of the instance for ``source.day`` by their short name
(``"pads"``; stored as ``<entry>.pads``), or by ``(name, day)`` for the past
days an API still reports (Mattermost's last 30 days). It raises
:class:`CollectorError` (or any ``httpx.HTTPError``/``OSError``) when the
service does not answer: the day stays a gap and a warning is kept.

An entry whose manifest declares ``usage`` and has no module here is read by
:func:`manifest_figures` (its ``sql`` and ``volume`` figures), like backup
sources are found in their folder.
"""

from __future__ import annotations

import datetime as dt
import glob
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

#: What a collector returns: today's figures by name, past days' by (name, day).
Figures = dict[str | tuple[str, dt.date], float]
#: Runs one SQL query in the instance's database; returns its rows.
SqlRunner = Callable[[str], Sequence[Sequence[Any]]]
#: Counts the files of a volume (its name) that match a glob (relative to the volume).
FileCounter = Callable[[str, str], int]

#: The time one request of a collector may take, in seconds.
TIMEOUT = 10.0


class CollectorError(Exception):
    """The service did not give its figures."""


@dataclass
class Source:
    """What a collector reads for one instance on one day."""

    slug: str
    entry: str
    day: dt.date
    #: Where the application answers, without a trailing slash (the proxy's target).
    base_url: str
    client: httpx.Client
    #: The instance's secrets in clear (admin password, API tokens …), by name.
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: Runs SQL in the instance's companion database; None where it cannot be reached.
    sql: SqlRunner | None = None
    #: Counts the files matching a glob in one of the instance's volumes: (volume, glob).
    files: FileCounter | None = None
    #: The manifest's usage figures: (name, source, query).
    usage: Sequence[tuple[str, str, str]] = ()

    def need_secret(self, name: str) -> str:
        value = self.secrets.get(name, "")
        if not value:
            raise CollectorError(f"the instance has no secret {name!r} to read its API with")
        return value

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(self.base_url + path, timeout=TIMEOUT, **kwargs)
        response.raise_for_status()
        return response.json()


def module_for(entry: str) -> ModuleType | None:
    """Return the collector module of a catalogue entry, None when it has none."""
    if not entry.replace("_", "").replace("-", "").isalnum():
        return None
    try:
        return importlib.import_module(f"chaton.stats.collectors.{entry.replace('-', '_')}")
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("chaton.stats.collectors."):
            return None
        raise


def local_files(folders: Mapping[str, Path]) -> FileCounter:
    """Return a :data:`FileCounter` over local folders, by volume name."""
    def count(volume: str, pattern: str) -> int:
        if volume not in folders:
            raise CollectorError(f"the volume {volume!r} cannot be read")
        return sum(1 for path in glob.iglob(str(folders[volume] / pattern))
                   if Path(path).is_file())
    return count


def manifest_figures(source: Source, *, only: Sequence[str] = ()) -> Figures:
    """Read the manifest's ``sql`` and ``volume`` usage figures (all, or those in ``only``).

    A ``volume`` query is ``<volume>:<glob>``: the number of files matching it.
    """
    found: Figures = {}
    for name, kind, query in source.usage:
        if only and name not in only:
            continue
        if kind == "sql":
            if source.sql is None:
                raise CollectorError("the instance's database cannot be reached")
            rows = source.sql(query)
            found[name] = float(rows[0][0] if rows and rows[0][0] is not None else 0)
        elif kind == "volume":
            volume, _, pattern = query.partition(":")
            if source.files is None:
                raise CollectorError(f"the volume {volume!r} cannot be read")
            found[name] = float(source.files(volume, pattern))
    return found
