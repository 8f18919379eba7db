"""The recovery kit: what a person needs to open the backups after losing the server.

Chaton stores every repository's password encrypted with its secrets key
(:mod:`chaton.core.secrets`), in a database that lives inside those very
repositories. The kit breaks that circle: each repository's location, its
password and its extra variables, Chaton's secrets key, the plain restic
commands that get the data out without Chaton, and the ``chaton restore``
command that rebuilds Chaton from a repository on a new machine.

It is shown by ``chaton backup recovery-kit`` and by ``/backups/recovery-kit/``
(after the password is typed again), and each showing is an audited
:class:`~chaton.backups.models.RecoveryKitEvent`; its content is never
logged nor stored. ``/backups/`` warns until someone confirms they stored the
current kit (:func:`do_confirm_recovery_kit_stored`): the confirmation holds for
the kit's *digest*, so a new repository, password or key brings the warning back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from chaton.backups.models import (
    Plan,
    RecoveryKitEvent,
    RecoveryKitEventKind,
    Repository,
    RepositoryKind,
    Source,
)
from chaton.backups.sources.secrets_key import key_id
from chaton.core import audit, clock, secrets
from chaton.core.errors import Conflict

if TYPE_CHECKING:
    from chaton.directory.models import Account


@dataclass(frozen=True)
class KitSource:
    """One source of a plan, as the kit names it: where its snapshots are and what file."""

    plan: str
    name: str
    kind: str
    #: The file a streamed backup holds ("" for plain directories, restored as they were).
    filename: str

    @property
    def tags(self) -> str:
        return f"plan:{self.plan},source:{self.name}"


@dataclass(frozen=True)
class KitRepository:
    """A repository as the kit shows it, its secrets in clear."""

    name: str
    kind: str
    location: str
    password: str
    environment: dict[str, str]
    sources: list[KitSource]
    #: The repository lives under Chaton's data directory: lost with the server.
    on_this_server: bool
    #: Why its password could not be read (another key); empty when it could.
    error: str = ""


@dataclass(frozen=True)
class RecoveryKit:
    """Everything needed to restore on a new machine. Never log it, never store it."""

    collective: str
    generated_at: dt.datetime
    secrets_key: str
    data_dir: str
    ldap_base_dn: str
    ldap_managed: bool
    database_engine: str
    repositories: list[KitRepository] = field(default_factory=list)

    @property
    def key_id(self) -> str:
        return key_id(self.secrets_key)

    @property
    def digest(self) -> str:
        return kit_digest(self)


def kit_digest(kit: RecoveryKit) -> str:
    """Return the SHA-256 of what makes a kit usable: the key and each repository's access.

    Two kits with the same digest open the same repositories with the same
    key; the digest reveals nothing of either (the key alone is 256 random bits).
    """
    return _digest(kit.secrets_key, [(repository.name, repository.location, repository.password,
                                      repository.environment)
                                     for repository in kit.repositories])


def _digest(key: str, accesses: list[tuple[str, str, str, dict[str, str]]]) -> str:
    content = json.dumps({
        "key": key,
        "repositories": sorted([name, location, password, sorted(environment.items())]
                               for name, location, password, environment in accesses),
    }, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()


def _filename(kind: str, name: str) -> str:
    from chaton.backups.sources import kind_class

    if kind == "paths":
        return ""
    if kind == "chaton":
        engine = settings.DATABASES["default"]["ENGINE"]
        return f"{name}.{'pgdump' if 'postgresql' in engine else 'sqlite3'}"
    if kind == "secrets_key":
        return "secrets.key"
    return f"{name}.{kind_class(kind).extension}"


def build_kit() -> RecoveryKit:
    """Return the current recovery kit (reads the key and decrypts every repository's secrets).

    A repository whose password no longer decrypts is listed with its error.
    """
    data_dir = Path(settings.DATA_DIR).resolve()
    repositories = []
    plans = Prefetch("plans", queryset=Plan.objects.order_by("name").prefetch_related(
        Prefetch("sources", queryset=Source.objects.order_by("name"))))
    for repository in Repository.objects.order_by("name").prefetch_related(plans):
        sources = [KitSource(plan=plan.name, name=source.name, kind=source.kind,
                             filename=_filename(source.kind, source.name))
                   for plan in repository.plans.all() for source in plan.sources.all()]
        error = ""
        try:
            password, environment = repository.password(), repository.environment()
        except secrets.SecretError as failure:
            password, environment, error = "", {}, str(failure)
        on_this_server = (repository.kind == RepositoryKind.LOCAL
                          and Path(repository.location).resolve().is_relative_to(data_dir))
        repositories.append(KitRepository(
            name=repository.name, kind=repository.kind, location=repository.location,
            password=password, environment=environment, sources=sources,
            on_this_server=on_this_server, error=error))
    config = settings.CHATON
    return RecoveryKit(
        collective=config.collective_name, generated_at=clock.now(),
        secrets_key=secrets.current_key(), data_dir=str(data_dir),
        ldap_base_dn=config.ldap.base_dn, ldap_managed=config.ldap.managed,
        database_engine="postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"]
        else "sqlite", repositories=repositories)


def current_digest(repositories: list[Repository] | None = None) -> str:
    """Return the digest of the kit as it is now (one query, without the plans and sources)."""
    accesses = []
    for repository in repositories if repositories is not None else Repository.objects.all():
        try:
            password, environment = repository.password(), repository.environment()
        except secrets.SecretError:
            password, environment = "", {}
        accesses.append((repository.name, repository.location, password, environment))
    return _digest(secrets.current_key(), accesses)


def needs_confirmation() -> bool:
    """Return whether ``/backups/`` must warn: nobody confirmed storing the current kit.

    Two queries, whatever the number of repositories and plans.
    """
    repositories = list(Repository.objects.all())
    if not repositories:
        return False
    return not RecoveryKitEvent.objects.filter(kind=RecoveryKitEventKind.STORED,
                                               kit_digest=current_digest(repositories)).exists()


def last_stored() -> RecoveryKitEvent | None:
    """Return the newest confirmation that a kit was stored (of any content)."""
    return RecoveryKitEvent.objects.filter(kind=RecoveryKitEventKind.STORED).first()


# -- commands shown in the kit ------------------------------------------------------------


def environment_lines(repository: KitRepository) -> list[str]:
    """Return the shell lines that point restic at ``repository`` (its password included)."""
    lines = [f"export RESTIC_REPOSITORY={shlex.quote(repository.location)}",
             f"export RESTIC_PASSWORD={shlex.quote(repository.password)}"]
    lines += [f"export {name}={shlex.quote(value)}"
              for name, value in sorted(repository.environment.items())]
    return lines


def restic_commands(repository: KitRepository) -> list[tuple[str, str]]:
    """Return (what it does, the shell command) pairs that get the data out with restic alone."""
    commands = [(_("List the snapshots"), "restic snapshots --tag chaton")]
    for source in repository.sources:
        if source.filename:
            commands.append((
                _("Write the newest copy of %(plan)s/%(source)s to a file")
                % {"plan": source.plan, "source": source.name},
                f"restic dump latest --tag {source.tags} /{source.filename} > {source.filename}"))
        else:
            commands.append((
                _("Restore the newest copy of %(plan)s/%(source)s under ./restored")
                % {"plan": source.plan, "source": source.name},
                f"restic restore latest --tag {source.tags} --target ./restored"))
    return commands


def restore_command(kit: RecoveryKit, repository: KitRepository) -> list[str]:
    """Return the shell lines that rebuild Chaton on a new machine from ``repository``."""
    lines = [
        f"export CHATON_DATA_DIR={shlex.quote(kit.data_dir)}",
        f"export CHATON_RESTORE_PASSWORD={shlex.quote(repository.password)}",
        f"export CHATON_SECRETS_KEY={shlex.quote(kit.secrets_key)}",
    ]
    lines += [f"export {name}={shlex.quote(value)}"
              for name, value in sorted(repository.environment.items())]
    lines.append(f"chaton restore --from-repository {shlex.quote(repository.location)}")
    return lines


def holds_chaton(repository: KitRepository) -> bool:
    """Return whether ``repository`` holds a backup of Chaton's own database."""
    return any(source.kind == "chaton" for source in repository.sources)


def render_text(kit: RecoveryKit) -> str:
    """Return the kit as plain text to print or keep in a password manager."""
    moment = timezone.localtime(kit.generated_at).strftime("%Y-%m-%d %H:%M")
    rule = "=" * 72
    lines = [
        rule,
        _("RECOVERY KIT — %(collective)s — %(moment)s") % {"collective": kit.collective,
                                                           "moment": moment},
        rule,
        _("Keep this off the server (printed in a safe place, or in the collective's password "
          "manager). Whoever holds it can read every backup."),
        "",
        _("Chaton's secrets key (key id %(id)s)") % {"id": kit.key_id},
        "  " + kit.secrets_key,
        _("On a new machine it goes into %(path)s (mode 600), or into the variable "
          "CHATON_SECRETS_KEY.") % {"path": str(Path(kit.data_dir) / "secrets.key")},
        "",
        _("Configuration: data directory %(data_dir)s; directory base DN %(base_dn)s (%(kind)s); "
          "Chaton's database: %(engine)s.")
        % {"data_dir": kit.data_dir, "base_dn": kit.ldap_base_dn,
           "kind": _("slapd managed by Chaton") if kit.ldap_managed else _("another server"),
           "engine": kit.database_engine},
    ]
    if not kit.repositories:
        lines += ["", _("No repository is recorded: there is nothing to restore from yet.")]
    for repository in kit.repositories:
        lines += ["", "-" * 72,
                  _("Repository %(name)s (%(kind)s)") % {
                      "name": repository.name,
                      "kind": RepositoryKind(repository.kind).label},
                  _("  Location: %(location)s") % {"location": repository.location}]
        if repository.error:
            lines.append(_("  Its password cannot be read: %(error)s") % {
                "error": repository.error})
            continue
        lines.append(_("  Password: %(password)s") % {"password": repository.password})
        for name, value in sorted(repository.environment.items()):
            lines.append(f"  {name}={value}")
        if repository.on_this_server:
            lines.append(_("  Warning: this repository is on this server, under Chaton's data "
                           "directory: it is lost with the server. Add a repository on another "
                           "machine."))
        lines += ["", _("  With restic alone (no Chaton needed):")]
        lines += [f"    {line}" for line in environment_lines(repository)]
        for label, command in restic_commands(repository):
            lines += [f"    # {label}", f"    {command}"]
        if holds_chaton(repository):
            lines += ["", _("  Rebuild Chaton on a new machine (database, secrets, directory):")]
            lines += [f"    {line}" for line in restore_command(kit, repository)]
    lines += ["", rule]
    return "\n".join(lines) + "\n"


# -- actions ------------------------------------------------------------------------------


def _record(kind: str, kit: RecoveryKit, *, acting_user: Account | None,
            via: str) -> RecoveryKitEvent:
    label = acting_user.get_username() if acting_user is not None else via
    event = RecoveryKitEvent.objects.create(kind=kind, at=clock.now(), account=acting_user,
                                            actor_label=label, via=via, kit_digest=kit.digest)
    # The audit row says who saw which kit, never what it holds.
    audit.record(f"backups.recovery_kit.{kind}", event, acting_user=acting_user,
                 actor_label=None if acting_user is not None else via,
                 after={"via": via, "key_id": kit.key_id,
                        "repositories": [repository.name for repository in kit.repositories]})
    return event


def do_show_recovery_kit(*, acting_user: Account | None, via: str) -> RecoveryKit:
    """Build the recovery kit for someone about to see it, and record that they did.

    ``via`` is "web" or "cli". The caller has checked who may see it (an
    administrator who typed their password again, or the server's operator).
    """
    kit = build_kit()
    with transaction.atomic():
        _record(RecoveryKitEventKind.SHOWN, kit, acting_user=acting_user, via=via)
    return kit


def do_confirm_recovery_kit_stored(*, acting_user: Account | None, via: str
                                   ) -> RecoveryKitEvent:
    """Record that the current kit was stored off the server; ``/backups/`` stops warning.

    Raise Conflict when this kit was never shown: a kit nobody saw cannot have been stored.
    """
    kit = build_kit()
    with transaction.atomic():
        if not RecoveryKitEvent.objects.filter(kind=RecoveryKitEventKind.SHOWN,
                                               kit_digest=kit.digest).exists():
            raise Conflict(_("This recovery kit was never shown: open it, store it off the "
                             "server, then confirm."))
        return _record(RecoveryKitEventKind.STORED, kit, acting_user=acting_user, via=via)
