"""Monitoring's part of ``chaton demo``: no probe written by hand.

The reconcile derives every probe from what the demo made before (services,
directory, backups, hosts); loading again changes nothing.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from chaton.core.demo import DemoReport
from chaton.monitoring import derive


def load(report: DemoReport) -> None:
    """Derive the demo's probes; say how many in ``report.created``."""
    lines = derive.reconcile()
    added = [line for line in lines if line.startswith("+ ")]
    if added:
        report.created.append(_("%(count)d probe(s) watching the demo's services, directory, "
                                "backups and hosts") % {"count": len(added)})
