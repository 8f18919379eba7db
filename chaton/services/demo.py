"""The services part of ``chaton demo``: the collective's home page, one instance.

The catalogue's ``homepage`` runs an image Chaton builds itself (no registry is
asked). :func:`load_demo` opens it at :data:`DOMAIN` on the default host (the
local engine, registered when missing). When that engine answers, the image is
built and loaded and the instance deployed at once, behind the proxy; when it
does not yet (``chaton serve`` starts Chaton's own dockerd later), the instance
is recorded and the worker's reconcile deploys it once the engine answers.
Loading it again changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from chaton.core import demo
from chaton.core.errors import ChatonError
from chaton.services import actions
from chaton.services.models import Instance

#: The demo's home page (``.test`` is reserved for tests and demos: never on the Internet).
DOMAIN = "www.chaton-demo.test"
APPLICATION = "homepage"
SETTINGS = {
    "title": "Chaton du Rutabaga",
    "introduction": "Des services web éthiques, hébergés par et pour nos membres.",
    "links": "",
}


@dataclass
class DemoReport:
    """What loading the services demo did."""

    created: list[str] = field(default_factory=list)
    #: The instance, when this load created it.
    instance: Instance | None = None
    #: Whether it was deployed now (False: the worker deploys it once the engine answers).
    deployed: bool = False


def load_demo() -> DemoReport:
    """Open the demo's home page if no instance has its domain; return what was done.

    Raise ChatonError when an action refuses (a port range all taken …), or
    when the engine answers but refuses to build or run the page.
    """
    report = DemoReport()
    if Instance.objects.filter(domain=DOMAIN).exists():
        return report
    host = actions.do_ensure_default_host(acting_user=None)
    instance = actions.do_create_instance(APPLICATION, DOMAIN, host, acting_user=None,
                                          settings=SETTINGS, when_engine_answers=True)
    report.instance = instance
    report.deployed = instance.deployments.exists()
    report.created.append(
        (_("home page https://%(domain)s, deployed on %(host)s")
         if report.deployed else
         _("home page https://%(domain)s, deployed by the worker once the Docker engine of "
           "%(host)s answers")) % {"domain": DOMAIN, "host": host.name})
    return report


def load(report: demo.DemoReport) -> None:
    """The services part of ``chaton demo``: :func:`load_demo`, whose refusal is logged and
    shown as a warning (the demo collective stands without its home page)."""
    try:
        report.created.extend(load_demo().created)
    except ChatonError as error:
        logging.getLogger("chaton.services").warning("demo: no home page: %s", error)
        report.warnings.append(_("The demo's home page could not be opened: %(error)s")
                               % {"error": error})
