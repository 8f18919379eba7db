"""An invented collective to try Chaton with: ``chaton demo``, each app loading its part.

Every installed app may declare a :class:`~chaton.core.registry.DemoLoader`;
:func:`load_demo` runs them in their order, each adding what is missing to one
:class:`DemoReport`. Every name a loader uses is made up, and everything is
written through the ``do_*`` actions, so the demo leaves the same audit trail
and directory entries as real use. Loading the demo twice changes nothing the
second time, and never overwrites what someone changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaton.core import registry


@dataclass
class DemoReport:
    """What loading the demo created; empty lists when it was already loaded."""

    created: list[str] = field(default_factory=list)
    #: The demo administrator's uid, and its password when this run created the account.
    admin_uid: str = ""
    admin_password: str | None = None
    #: What could not be loaded (the demo stands without it), for people.
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created)


def load_demo() -> DemoReport:
    """Run every installed app's demo loader, in order; return what they created.

    Raise what a loader raises: ChatonError when an action refuses a demo value
    (the members' part refuses a collective with members of its own, before
    anything is written), CommandError when a tool fails.
    """
    report = DemoReport()
    for loader in registry.demo_loaders():
        loader(report)
    return report
