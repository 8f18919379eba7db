"""The backups part of ``chaton demo``: the embedded default plan, backed up once.

:func:`load_demo` creates the local repository and the ``chaton`` plan (Chaton's
database and its directory) through :func:`~chaton.backups.actions.do_create_default_plan`,
then runs a first backup so that the pages have a run to show. Loading it again
changes nothing and runs nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from chaton.backups import actions, runs
from chaton.backups.models import Plan, Run
from chaton.core import demo
from chaton.core.errors import ChatonError


@dataclass
class DemoReport:
    """What loading the backups demo did."""

    created: list[str] = field(default_factory=list)
    #: The first backup's run, when this load ran one.
    run: Run | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created)


def load_demo(*, back_up: bool = True) -> DemoReport:
    """Create the default backup plan if missing and, with ``back_up``, back it up once.

    The directory must be reachable for its source to succeed (the demo
    command runs this with the directory started). Raise BackupError when the
    repository cannot be initialised; a failed backup is recorded in its run.
    """
    report = DemoReport()
    if Plan.objects.filter(name=actions.DEFAULT_PLAN).exists():
        return report
    plan = actions.do_create_default_plan(acting_user=None)
    report.created.append(_("backup plan %(name)s in repository %(repository)s")
                          % {"name": plan.name, "repository": plan.repository.name})
    if back_up:
        report.run = runs.run_backup(plan, triggered_by="demo")
        report.created.append(_("first backup of plan %(name)s: %(outcome)s")
                              % {"name": plan.name, "outcome": report.run.get_outcome_display()})
    return report


def load(report: demo.DemoReport) -> None:
    """The backups part of ``chaton demo``: :func:`load_demo`, whose refusal is logged and
    left out (the demo collective stands without its backup plan)."""
    try:
        report.created.extend(load_demo().created)
    except ChatonError as error:
        logging.getLogger("chaton.backups").warning("demo: no backup plan: %s", error)
