"""The configuration writes of the backups app: repositories, plans and their sources.

Each ``do_*`` runs in one transaction with an audit row, and checks its input
(InvalidInput naming the field, Conflict). :func:`do_init_repository` talks to
restic once, briefly. The long work — backups, retention, checks, restores,
drills — is in :mod:`chaton.backups.runs`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets as random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils.translation import gettext as _

from chaton.adapters import restic as restic_adapter
from chaton.backups import engine
from chaton.backups.errors import as_chaton_error
from chaton.backups.models import (
    Outcome,
    Plan,
    Repository,
    RepositoryKind,
    Source,
)
from chaton.backups.sources import kind_class
from chaton.core import audit, clock, secrets
from chaton.core.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from chaton.directory.models import Account

logger = logging.getLogger("chaton.backups")

REPOSITORY_FIELDS = ["name", "kind", "location", "check_interval_days",
                     "check_read_data_subset"]
PLAN_FIELDS = ["name", "repository", "enabled", "interval_minutes", "keep_last", "keep_daily",
               "keep_weekly", "keep_monthly", "keep_yearly", "stale_after_hours",
               "drill_interval_days"]
#: The plan fields do_update_plan changes (the name is the plan's restic tag: it stays).
PLAN_SETTINGS = PLAN_FIELDS[1:]
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
_DATA_SUBSET = re.compile(r"^(\d{1,3}(\.\d+)?%|\d+/\d+|\d+[KMGT])$")
#: Variables Chaton sets itself: an extra environment must not override them.
_RESERVED_VARIABLES = frozenset({"RESTIC_PASSWORD", "RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE",
                                 "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY_FILE"})
#: The largest count a retention rule or an interval takes: beyond it, a typo.
_LARGEST = 100_000


# -- input checks -----------------------------------------------------------------------------


def clean_name(name: str, *, field: str = "name") -> str:
    """Return ``name`` as a plan, repository or source name. Raise InvalidInput otherwise.

    Lower-case letters, digits and hyphens, starting with a letter: it ends up
    in restic tags and file names.
    """
    value = (name or "").strip()
    if not _NAME.match(value):
        raise InvalidInput(_("A name is 1 to 64 lower-case letters, digits or hyphens, starting "
                             "with a letter."), field=field)
    return value


def _clean_location(kind: str, location: str) -> str:
    value = (location or "").strip()
    if not value or any(character in value for character in "\n\r\0"):
        raise InvalidInput(_("The location is required, on one line."), field="location")
    if kind == RepositoryKind.LOCAL:
        if not value.startswith("/"):
            raise InvalidInput(_("A local repository's location is an absolute path."),
                               field="location")
        return os.path.normpath(value)
    if kind == RepositoryKind.SFTP:
        if not re.match(r"^sftp:(//)?[^\s/:]+", value):
            raise InvalidInput(_("An SFTP location looks like sftp:user@host:/path."),
                               field="location")
        return value
    if kind == RepositoryKind.S3:
        if not re.match(r"^s3:\S+/\S+", value):
            raise InvalidInput(_("An S3 location looks like s3:https://host/bucket."),
                               field="location")
        return value
    raise InvalidInput(_("Unknown kind of repository."), field="kind")


def _clean_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < 8:
        raise InvalidInput(_("A repository password has at least 8 characters."),
                           field="password")
    return password


def _clean_environment(environment: dict[str, str]) -> dict[str, str]:
    cleaned = {}
    for name, value in environment.items():
        if not isinstance(name, str) or not _VARIABLE.match(name):
            raise InvalidInput(_("“%(name)s” is not an environment variable name (A-Z, 0-9, _).")
                               % {"name": name}, field="environment")
        if name in _RESERVED_VARIABLES:
            raise InvalidInput(_("%(name)s is set by Chaton itself.") % {"name": name},
                               field="environment")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInput(_("The value of %(name)s must be text.") % {"name": name},
                               field="environment")
        cleaned[name] = value
    return cleaned


def _clean_count(value: int, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _LARGEST:
        raise InvalidInput(_("Expected a whole number from %(minimum)d to %(maximum)d.")
                           % {"minimum": minimum, "maximum": _LARGEST}, field=field)
    return value


def clean_subset(value: str) -> str:
    """Given what a check reads (``5%``, ``1/10``, ``500M``), return it stripped. Raise
    InvalidInput otherwise."""
    value = (value or "").strip()
    if not _DATA_SUBSET.match(value):
        raise InvalidInput(_("The data read by a check is a percentage (5%), a fraction (1/10) "
                             "or a size (500M)."), field="check_read_data_subset")
    return value


# -- repositories ------------------------------------------------------------------------------


def do_create_repository(name: str, *, kind: str, location: str, password: str,
                         acting_user: Account | None,
                         environment: dict[str, str] | None = None,
                         check_interval_days: int = 7,
                         check_read_data_subset: str = "5%") -> Repository:
    """Record a restic repository (not yet initialised: see :func:`do_init_repository`).

    ``environment`` holds extra variables for restic (``AWS_ACCESS_KEY_ID`` …),
    stored encrypted like the password. Raise InvalidInput for a bad value,
    Conflict for a name or location already recorded.
    """
    name = clean_name(name)
    if kind not in RepositoryKind.values:
        raise InvalidInput(_("Unknown kind of repository."), field="kind")
    location = _clean_location(kind, location)
    password = _clean_password(password)
    extra = _clean_environment(environment or {})
    check_interval_days = _clean_count(check_interval_days, "check_interval_days")
    check_read_data_subset = clean_subset(check_read_data_subset)
    with transaction.atomic():
        if Repository.objects.filter(name=name).exists():
            raise Conflict(_("A repository named %(name)s exists already.") % {"name": name},
                           field="name")
        if Repository.objects.filter(location=location).exists():
            raise Conflict(_("A repository at %(location)s is recorded already.")
                           % {"location": location}, field="location")
        repository = Repository.objects.create(
            name=name, kind=kind, location=location,
            password_encrypted=secrets.encrypt(password),
            environment_encrypted=secrets.encrypt(json.dumps(extra)) if extra else "",
            check_interval_days=check_interval_days,
            check_read_data_subset=check_read_data_subset, created_at=clock.now())
        audit.record("backups.repository.create", repository, acting_user=acting_user,
                     after={**audit.snapshot(repository, REPOSITORY_FIELDS),
                            "environment": sorted(extra)})
    return repository


def do_update_repository(repository: Repository, *, acting_user: Account | None,
                         location: str | None = None, password: str | None = None,
                         environment: dict[str, str] | None = None,
                         check_interval_days: int | None = None,
                         check_read_data_subset: str | None = None) -> Repository:
    """Change how Chaton reaches a repository.

    ``password`` is the one Chaton opens it with (after ``restic key passwd``,
    or to correct a typo): restic's own keys do not change. A new location
    means another repository: it is marked not initialised and not checked.
    Raise InvalidInput, Conflict for a location recorded for another one.
    """
    before = {**audit.snapshot(repository, REPOSITORY_FIELDS),
              "environment": repository.environment_names}
    fields: list[str] = []
    if location is not None:
        location = _clean_location(repository.kind, location)
        if location != repository.location:
            repository.location = location
            repository.initialised_at = None
            repository.checked_at = None
            repository.check_ok = None
            repository.check_message = ""
            repository.check_cycle_position = 0
            repository.check_cycle_started_at = None
            repository.last_full_read_at = None
            fields += ["location", "initialised_at", "checked_at", "check_ok", "check_message",
                       "check_cycle_position", "check_cycle_started_at", "last_full_read_at"]
    if password is not None:
        repository.password_encrypted = secrets.encrypt(_clean_password(password))
        fields.append("password_encrypted")
    if environment is not None:
        extra = _clean_environment(environment)
        repository.environment_encrypted = (secrets.encrypt(json.dumps(extra)) if extra
                                            else "")
        fields.append("environment_encrypted")
    if check_interval_days is not None:
        repository.check_interval_days = _clean_count(check_interval_days,
                                                      "check_interval_days")
        fields.append("check_interval_days")
    if check_read_data_subset is not None:
        subset = clean_subset(check_read_data_subset)
        if subset != repository.check_read_data_subset:
            # Another share per check is another cycle: it starts again from its first part.
            repository.check_cycle_position = 0
            repository.check_cycle_started_at = None
            fields += ["check_cycle_position", "check_cycle_started_at"]
        repository.check_read_data_subset = subset
        fields.append("check_read_data_subset")
    if not fields:
        return repository
    with transaction.atomic():
        if "location" in fields and Repository.objects.filter(
                location=repository.location).exclude(pk=repository.pk).exists():
            raise Conflict(_("A repository at %(location)s is recorded already.")
                           % {"location": repository.location}, field="location")
        repository.save(update_fields=fields)
        after = {**audit.snapshot(repository, REPOSITORY_FIELDS),
                 "environment": repository.environment_names}
        if "password_encrypted" in fields:
            after["password_changed"] = True  # never the value
        audit.record("backups.repository.update", repository, acting_user=acting_user,
                     before=before, after=after)
    return repository


def do_delete_repository(repository: Repository, *, acting_user: Account | None) -> None:
    """Forget a repository: its record, its checks and the runs made into it. The restic
    repository itself, its data and its snapshots, stay where they are.

    Raise Conflict while a plan uses it (move or delete the plan first), or
    while a check, prune or backup holds it (``wait_seconds`` 0: never waits).
    """
    with engine.repository_lock(repository, exclusive=True, wait_seconds=0), \
            transaction.atomic():
        plans = sorted(repository.plans.values_list("name", flat=True))
        if plans:
            raise Conflict(_("Repository %(name)s is used by the plans %(plans)s: give them "
                             "another repository or delete them first.")
                           % {"name": repository.name, "plans": ", ".join(plans)})
        if repository.runs.filter(outcome=Outcome.RUNNING).exists():
            raise Conflict(_("A run of repository %(name)s is in progress; try again once it "
                             "has ended.") % {"name": repository.name})
        audit.record("backups.repository.delete", repository, acting_user=acting_user,
                     before={**audit.snapshot(repository, REPOSITORY_FIELDS),
                             "runs": repository.runs.count()})
        repository.delete()


def do_init_repository(repository: Repository, *, acting_user: Account | None) -> Repository:
    """Create the restic repository at its location, or adopt the one already there.

    An existing repository is adopted when the password opens it. Raise
    InvalidInput for a wrong password, Conflict when a prune or check holds
    it, BackupError when restic fails (location unreachable, disk full …).
    """
    client = engine.restic_for(repository)
    if repository.kind == RepositoryKind.LOCAL:
        Path(repository.location).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with engine.repository_lock(repository, exclusive=True):
        try:
            try:
                client.init()
                created = True
            except restic_adapter.RepositoryExists:
                client.exists()  # raises WrongPassword when the password does not open it
                created = False
        except restic_adapter.ResticError as error:
            raise as_chaton_error(error, repository=repository.name) from None
    with transaction.atomic():
        repository.initialised_at = clock.now()
        repository.save(update_fields=["initialised_at"])
        audit.record("backups.repository.init", repository, acting_user=acting_user,
                     after={"created": created, "location": repository.location})
    return repository


# -- plans and sources ------------------------------------------------------------------------


def _clean_plan_settings(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name == "enabled":
            if not isinstance(value, bool):
                raise InvalidInput(_("Expected true or false."), field=name)
            cleaned[name] = value
        elif name == "interval_minutes":
            cleaned[name] = _clean_count(value, name, minimum=5)
        elif name == "stale_after_hours":
            cleaned[name] = _clean_count(value, name, minimum=1)
        else:
            cleaned[name] = _clean_count(value, name)
    return cleaned


def do_create_plan(name: str, repository: Repository, *, acting_user: Account | None,
                   enabled: bool = True, interval_minutes: int = 24 * 60, keep_last: int = 0,
                   keep_daily: int = 7, keep_weekly: int = 4, keep_monthly: int = 6,
                   keep_yearly: int = 0, stale_after_hours: int = 36,
                   drill_interval_days: int = 7) -> Plan:
    """Create a backup plan (add its sources with :func:`do_add_source`).

    Raise InvalidInput for a bad value, Conflict for a name in use.
    """
    name = clean_name(name)
    values = _clean_plan_settings({
        "enabled": enabled, "interval_minutes": interval_minutes, "keep_last": keep_last,
        "keep_daily": keep_daily, "keep_weekly": keep_weekly, "keep_monthly": keep_monthly,
        "keep_yearly": keep_yearly, "stale_after_hours": stale_after_hours,
        "drill_interval_days": drill_interval_days})
    with transaction.atomic():
        if Plan.objects.filter(name=name).exists():
            raise Conflict(_("A plan named %(name)s exists already.") % {"name": name},
                           field="name")
        plan = Plan.objects.create(name=name, repository=repository, created_at=clock.now(),
                                   **values)
        audit.record("backups.plan.create", plan, acting_user=acting_user,
                     after=audit.snapshot(plan, PLAN_FIELDS))
    return plan


def do_update_plan(plan: Plan, *, acting_user: Account | None, **changes: Any) -> Plan:
    """Change a plan's settings: any of ``enabled``, ``interval_minutes``, ``keep_last``,
    ``keep_daily``, ``keep_weekly``, ``keep_monthly``, ``keep_yearly``,
    ``stale_after_hours``, ``drill_interval_days``, ``repository`` (None values are
    left as they are).

    The name cannot change: it is the restic tag of the plan's snapshots.
    Raise InvalidInput for an unknown setting or a bad value.
    """
    unknown = sorted(set(changes) - set(PLAN_SETTINGS))
    if unknown:
        raise InvalidInput(_("Unknown plan setting: %(names)s.") % {"names": ", ".join(unknown)},
                           field=unknown[0])
    given = {name: value for name, value in changes.items() if value is not None}
    repository = given.pop("repository", None)
    values = _clean_plan_settings(given)
    if repository is not None:
        if not isinstance(repository, Repository):
            raise InvalidInput(_("Unknown repository."), field="repository")
        values["repository"] = repository
    before = audit.snapshot(plan, PLAN_FIELDS)
    for name, value in values.items():
        setattr(plan, name, value)
    if not values:
        return plan
    with transaction.atomic():
        plan.save(update_fields=list(values))
        audit.record("backups.plan.update", plan, acting_user=acting_user, before=before,
                     after=audit.snapshot(plan, PLAN_FIELDS))
    return plan


def do_delete_plan(plan: Plan, *, acting_user: Account | None) -> None:
    """Delete a plan with its sources and history; its snapshots stay in the repository.

    Raise Conflict while one of its runs is in progress.
    """
    with engine.plan_lock(plan), transaction.atomic():
        audit.record("backups.plan.delete", plan, acting_user=acting_user,
                     before=audit.snapshot(plan, PLAN_FIELDS))
        plan.delete()


def do_add_source(plan: Plan, kind: str, name: str, params: dict[str, Any] | None = None, *,
                  acting_user: Account | None) -> Source:
    """Add a data source of ``kind`` to ``plan``, its parameters checked by the kind.

    Secret parameters (passwords) are stored encrypted. Raise InvalidInput for
    an unknown kind or a bad parameter, Conflict for a name used in the plan.
    """
    name = clean_name(name)
    if not isinstance(params or {}, dict):
        raise InvalidInput(_("The parameters must be a mapping."), field="params")
    cleaned = kind_class(kind).clean_params(params or {})
    with transaction.atomic():
        if plan.sources.filter(name=name).exists():
            raise Conflict(_("Plan %(plan)s has a source named %(name)s already.")
                           % {"plan": plan.name, "name": name}, field="name")
        source = Source.objects.create(plan=plan, kind=kind, name=name,
                                       params=engine.encrypt_params(kind, cleaned),
                                       created_at=clock.now())
        audit.record("backups.source.add", source, acting_user=acting_user,
                     after={"kind": kind, "name": name,
                            "params": engine.shown_params(kind, source.params)})
    return source


def do_remove_source(source: Source, *, acting_user: Account | None) -> None:
    """Remove a data source from its plan; its snapshots and history stay."""
    with transaction.atomic():
        audit.record("backups.source.remove", source, acting_user=acting_user,
                     before={"kind": source.kind, "name": source.name,
                             "params": engine.shown_params(source.kind, source.params)})
        source.delete()


# -- the embedded default ----------------------------------------------------------------------

#: The names ``do_create_default_plan`` gives.
DEFAULT_REPOSITORY = "local"
DEFAULT_PLAN = "chaton"


def do_create_default_plan(*, acting_user: Account | None) -> Plan:
    """Create, once, the embedded default: a local repository and a plan for Chaton itself.

    The repository is ``backups.default_repository`` (``data_dir/backups/
    repository``), with a generated password (encrypted in the database; keep
    the secrets key apart from the backups, see :mod:`chaton.core.secrets`),
    initialised at once. The plan ``chaton`` backs up Chaton's database, its
    directory and its secrets key daily. What exists already is returned as it is. Raise
    BackupError when the repository cannot be initialised.
    """
    plan = Plan.objects.filter(name=DEFAULT_PLAN).first()
    if plan is not None:
        return plan
    repository = Repository.objects.filter(name=DEFAULT_REPOSITORY).first()
    if repository is None:
        repository = do_create_repository(
            DEFAULT_REPOSITORY, kind=RepositoryKind.LOCAL,
            location=engine.default_repository_location(),
            password=random.token_urlsafe(32), acting_user=acting_user)
    if repository.initialised_at is None:
        do_init_repository(repository, acting_user=acting_user)
    plan = do_create_plan(DEFAULT_PLAN, repository, acting_user=acting_user)
    do_add_source(plan, "chaton", "database", {}, acting_user=acting_user)
    do_add_source(plan, "ldap", "directory", {"chaton_directory": True},
                  acting_user=acting_user)
    # Inside the encrypted repository: the kit's repository password alone gives it back.
    do_add_source(plan, "secrets_key", "secrets-key", {}, acting_user=acting_user)
    return plan
