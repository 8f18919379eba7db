"""Etherpad: pads and authors, counted in its PostgreSQL ``store`` table.

Etherpad's HTTP API needs the API key that the container generates into its
own ``APIKEY.txt``; the database is what the backups already read, so the
pads are counted there: keys ``pad:<id>`` (not the revisions ``pad:<id>:…``).
"""

from __future__ import annotations

from chaton.stats.collectors import Figures, Source, manifest_figures


def collect(source: Source) -> Figures:
    return manifest_figures(source)
