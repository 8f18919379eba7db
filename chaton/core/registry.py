"""How apps plug in: each app's ``AppConfig`` declares what it adds, the project collects it.

An app's ``apps.py`` subclasses :class:`ChatonAppConfig` and sets any of::

    api_routers = [("/backups", "chaton.backups.api:router")]   # mounted under /api/v1
    urls = "chaton.backups.urls"                                 # its pages, under /
    jobs = "chaton.backups.jobs"      # due_jobs(schedule) and LONG_JOBS, for the worker
    nav = [NavEntry(label=_("Backups"), url_name="backup-overview", admin_only=True,
                    order=60, active=("backup-*",))]
    cli = [CliGroup("backup", "chaton.cli.backups:app", "Backups: …", order=90)]
    demo = DemoLoader("chaton.backups.demo:load", order=40)

Dotted paths (``module:attribute``) are imported only when used: the CLI
lists its groups without importing the apps' models, and a page never imports
the CLI. The functions below walk the installed apps in the order of
``INSTALLED_APPS`` and sort what they collect by each entry's ``order``.
Adding an app is then its folder plus one line in ``INSTALLED_APPS``
(``docs/how-to/add-an-app.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.utils.functional import Promise

if TYPE_CHECKING:
    from chaton.core.demo import DemoReport


def load(dotted: str) -> Any:
    """Given ``"package.module:attribute"`` (or a plain module path), return what it names.

    Raise ImportError or AttributeError when it does not exist.
    """
    module_name, _, attribute = dotted.partition(":")
    module = import_module(module_name)
    return getattr(module, attribute) if attribute else module


@dataclass(frozen=True)
class NavEntry:
    """A link of the site's navigation bar.

    ``admin_only`` entries go in the administration bar, the others in the bar
    of every signed-in account. ``active`` lists the URL names under which the
    link is marked as the current page: ``"name"`` exactly, ``"prefix-*"``
    for names that start with ``prefix-``, ``"*part*"`` for names that
    contain ``part``; by default, ``url_name`` alone.
    """

    label: str | Promise
    url_name: str
    admin_only: bool = False
    order: int = 1000
    active: tuple[str, ...] = ()

    def is_current(self, current: str) -> bool:
        """Return whether the page named ``current`` (a URL name) is this entry's."""
        for pattern in self.active or (self.url_name,):
            if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
                if pattern[1:-1] in current:
                    return True
            elif pattern.endswith("*"):
                if current.startswith(pattern[:-1]):
                    return True
            elif current == pattern:
                return True
        return False


@dataclass(frozen=True)
class CliGroup:
    """A group of the ``chaton`` command: ``chaton <name> …``, a Typer app at ``app``."""

    name: str
    #: ``"module:attribute"`` of a ``typer.Typer``; imported only when the group runs.
    app: str
    #: The group's line in ``chaton --help`` (in English, as the CLI's help texts are).
    help: str
    order: int = 1000


@dataclass(frozen=True)
class DemoLoader:
    """An app's part of ``chaton demo``: ``loader(report)`` adds what is missing.

    The loaders run by ``order``, lowest first: an app's part may use what the
    parts before it created (the directory's accounts use the members' persons).
    """

    loader: str
    order: int = 1000


class ChatonAppConfig(AppConfig):
    """An app of Chaton: what it plugs into the project (every attribute optional)."""

    #: ``(prefix, "module:router")`` pairs, mounted under ``/api/v1`` in this order.
    api_routers: Sequence[tuple[str, str]] = ()
    #: The module of its pages' URL patterns, included at the site's root.
    urls: str | None = None
    #: The module of its worker jobs: ``due_jobs(schedule)`` and, optionally, ``LONG_JOBS``.
    jobs: str | None = None
    nav: Sequence[NavEntry] = ()
    cli: Sequence[CliGroup] = ()
    demo: DemoLoader | None = None


#: Top-level packages of installed apps that plug nothing into Chaton.
_DECLARE_NOTHING = frozenset({"django", "ninja", "django_otp"})


def _configs() -> list[AppConfig]:
    """Return the installed apps' configurations, in the order of INSTALLED_APPS.

    Before Django is set up (the CLI listing its groups), they are created from
    the settings without importing any model.
    """
    if apps.apps_ready:
        return list(apps.get_app_configs())
    from django.conf import settings

    # Importing a third-party package costs the CLI's start (ninja's is a tenth of a
    # second) and it declares nothing here: only the others are read.
    return [AppConfig.create(entry) for entry in settings.INSTALLED_APPS
            if entry.partition(".")[0] not in _DECLARE_NOTHING]


def _declared(name: str) -> Iterable[tuple[AppConfig, Any]]:
    for config in _configs():
        value = getattr(config, name, None)
        if value:
            yield config, value


def api_routers() -> list[tuple[str, str]]:
    """Return the ``(prefix, "module:router")`` pairs of every app, app by app."""
    return [pair for _config, pairs in _declared("api_routers") for pair in pairs]


def url_modules() -> list[str]:
    """Return the URL modules of every app, app by app."""
    return [module for _config, module in _declared("urls")]


def job_modules() -> list[str]:
    """Return the worker-job modules of every app, app by app."""
    return [module for _config, module in _declared("jobs")]


def nav_entries(*, admin_only: bool) -> list[NavEntry]:
    """Return the navigation entries of one bar (administration or account), by order."""
    entries = [entry for _config, declared in _declared("nav") for entry in declared
               if entry.admin_only == admin_only]
    return sorted(entries, key=lambda entry: entry.order)


def cli_groups() -> list[CliGroup]:
    """Return the CLI groups of every app, by order. Raise ImproperlyConfigured (or
    ConfigError) when the settings cannot be read."""
    groups = [group for _config, declared in _declared("cli") for group in declared]
    return sorted(groups, key=lambda group: group.order)


def demo_loaders() -> list[Callable[[DemoReport], None]]:
    """Return the demo loaders of every app, by order, imported."""
    declared = sorted((loader for _config, loader in _declared("demo")),
                      key=lambda loader: loader.order)
    return [load(loader.loader) for loader in declared]
