"""PrivateBin: the pastes kept, counted in its data volume (``data/??/??/<id>.php``).

PrivateBin keeps no creation date: the daily snapshot of the count is the history.
"""

from __future__ import annotations

from chaton.stats.collectors import Figures, Source, manifest_figures


def collect(source: Source) -> Figures:
    return manifest_figures(source)
