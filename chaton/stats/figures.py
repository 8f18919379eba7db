"""What each figure means: its label, its unit and how a period sums it up.

A **gauge** (accounts, pads …) is read as it stands: its value on a week or a
month is its last sample in it. A **count** (requests, posts written …) is
what happened on the day: its value on a period is the sum of its samples.
The figures of a catalogue entry are ``<entry>.<name>``; those its manifest
declares (``usage``) and that are not listed here read as gauges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

Kind = Literal["gauge", "count"]


@dataclass(frozen=True)
class Figure:
    name: str
    label: str | Promise
    unit: str | Promise
    kind: Kind


def _figures(*items: Figure) -> dict[str, Figure]:
    return {item.name: item for item in items}


FIGURES: dict[str, Figure] = _figures(
    Figure("etherpad.pads", _("Pads"), _("pads"), "gauge"),
    Figure("etherpad.authors", _("Pad authors"), _("authors"), "gauge"),
    Figure("mattermost.users", _("Mattermost accounts"), _("accounts"), "gauge"),
    Figure("mattermost.posts", _("Messages posted"), _("messages"), "count"),
    Figure("mattermost.active_users", _("Accounts that posted"), _("accounts"), "gauge"),
    Figure("mattermost.teams", _("Teams"), _("teams"), "gauge"),
    Figure("mattermost.channels", _("Channels"), _("channels"), "gauge"),
    Figure("nextcloud.users", _("Nextcloud accounts"), _("accounts"), "gauge"),
    Figure("nextcloud.active_users", _("Accounts active in the day"), _("accounts"), "gauge"),
    Figure("nextcloud.files", _("Files"), _("files"), "gauge"),
    Figure("nextcloud.storage_bytes", _("Space used"), _("bytes"), "gauge"),
    Figure("privatebin.pastes", _("Pastes kept"), _("pastes"), "gauge"),
    Figure("castopod.podcasts", _("Podcasts"), _("podcasts"), "gauge"),
    Figure("castopod.episodes", _("Published episodes"), _("episodes"), "gauge"),
    Figure("castopod.hits", _("Episode downloads"), _("downloads"), "count"),
    Figure("castopod.listeners", _("Listeners"), _("listeners"), "count"),
    Figure("kanboard.projects", _("Projects"), _("projects"), "gauge"),
    Figure("kanboard.tasks", _("Tasks"), _("tasks"), "gauge"),
    Figure("bookstack.books", _("Books"), _("books"), "gauge"),
    Figure("bookstack.pages", _("Pages"), _("pages"), "gauge"),
    Figure("http.requests", _("HTTP requests"), _("requests"), "count"),
    Figure("http.visitors", _("Visitors"), _("visitors"), "count"),
    Figure("http.bots", _("Requests from bots"), _("requests"), "count"),
    Figure("chaton.members", _("Members"), _("members"), "gauge"),
    Figure("chaton.members.natural", _("Members: natural persons"), _("members"), "gauge"),
    Figure("chaton.members.legal", _("Members: legal persons"), _("members"), "gauge"),
    Figure("chaton.organizations", _("Partner organizations"), _("organizations"), "gauge"),
    Figure("chaton.accounts", _("Accounts"), _("accounts"), "gauge"),
    Figure("chaton.groups", _("Groups"), _("groups"), "gauge"),
    Figure("chaton.decisions", _("Decisions taken"), _("decisions"), "count"),
    Figure("chaton.dues", _("Dues received"), _("€"), "count"),
    Figure("chaton.instances", _("Service instances"), _("instances"), "gauge"),
    Figure("chaton.backups.bytes", _("Backed-up data"), _("bytes"), "gauge"),
    Figure("chaton.backups.restores_tested", _("Restores tested"), _("drills"), "count"),
    Figure("chaton.backups.restores_passed", _("Restores passed"), _("drills"), "count"),
    Figure("uptime", _("Uptime"), "%", "gauge"),
)


def figure(name: str) -> Figure:
    """Return the figure called ``name``; an undeclared one (a manifest's) reads as a gauge."""
    if name in FIGURES:
        return FIGURES[name]
    if name.startswith("uptime."):
        return Figure(name, _("Uptime"), "%", "gauge")
    return Figure(name, name, "", "gauge")
