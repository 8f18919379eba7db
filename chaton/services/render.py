"""Render a catalogue entry for one instance: what must run, as values (the first step of a
reconcile).

Given an instance and its secrets in clear (:mod:`chaton.services.instance_secrets`
reads or makes them: that is the one database write before a plan), :func:`desired_for`
returns a :class:`Desired` — its network, volumes, and the specs of its companion
database and its application, with every ``{placeholder}`` of the manifest filled
(``{domain}``, ``{secret.X}``, ``{setting.Y}``, ``{ldap.url}``, ``{database.host}`` …)
and the files and setup commands of its ``app.py``. Nothing here writes or talks to an
engine: :mod:`chaton.services.plan` compares the result with what a host runs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chaton.adapters.docker import NetworkSpec, Port, VolumeSpec, WorkloadSpec
from chaton.adapters.ldap import escape_dn_value, escape_filter_value
from chaton.services import accounts, catalog
from chaton.services.catalog import Manifest
from chaton.services.instance_secrets import secret_lengths
from chaton.services.models import Deployment, Host, Instance

APP = "app"
DATABASE = "database"
#: The port each kind of companion database listens on, inside the instance's network.
DATABASE_PORTS = {"postgres": 5432, "mariadb": 3306}
#: The key of ``Instance.applied`` that holds the hash of the setup commands last run.
SETUP_KEY = "setup"


class RenderError(ValueError):
    """A manifest names a placeholder that does not exist."""


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z][a-z_]*(?:\.[A-Za-z0-9_]+)?)\}")


def render(template: str, context: Mapping[str, str]) -> str:
    """Given a value with ``{placeholders}`` and their values, return it filled in.

    ``{{`` and ``}}`` stand for literal braces. Raise RenderError for an unknown
    placeholder.
    """
    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in context:
            raise RenderError(f"unknown placeholder {{{name}}}")
        return context[name]

    return _PLACEHOLDER.sub(substitute, template)


def setting_text(value: Any) -> str:
    """Return a setting's value as an environment variable holds it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def database_name(manifest: Manifest) -> str:
    """The companion database's name and user: the application's name, as SQL likes it."""
    return manifest.name.replace("-", "_")


def ldap_context(instance: Instance, secret_values: Mapping[str, str]) -> dict[str, str]:
    """Given an instance and its secrets in clear, return its ``{ldap.*}`` placeholders.

    ``bind_dn`` and ``bind_password`` are the instance's own read-only service
    account (:mod:`chaton.services.accounts`); empty for an application without
    LDAP login. ``user_filter`` selects the people who may log in: with a login
    group, only its members (``memberOf``, kept by slapd's memberof overlay).
    """
    from chaton.directory.backend import base_dn

    base = base_dn()
    group = instance.login_group
    group_dn = f"cn={escape_dn_value(group.name)},ou=groups,{base}" if group else ""
    user_filter = "(objectClass=inetOrgPerson)"
    if group_dn:
        user_filter = f"(&{user_filter}(memberOf={escape_filter_value(group_dn)}))"
    url = instance.host.ldap_url or settings.CHATON.ldap.url
    bind_dn = bind_password = ""
    if accounts.has_account(instance):
        bind_dn = accounts.account_dn(instance.slug, base)
        bind_password = secret_values.get(accounts.PASSWORD_SECRET, "")
    return {
        "ldap.url": url, "ldap.base_dn": base, "ldap.people_dn": f"ou=people,{base}",
        "ldap.groups_dn": f"ou=groups,{base}", "ldap.group": group.name if group else "",
        "ldap.group_dn": group_dn, "ldap.user_filter": user_filter,
        "ldap.bind_dn": bind_dn, "ldap.bind_password": bind_password,
    }


def placeholder_context(instance: Instance, manifest: Manifest,
                        secret_values: Mapping[str, str]) -> dict[str, str]:
    """Return every placeholder a manifest may name, for one instance."""
    context = {"domain": instance.domain, "slug": instance.slug,
               "url": f"https://{instance.domain}"}
    context.update({f"secret.{name}": value for name, value in secret_values.items()})
    values = {setting.name: setting.default for setting in manifest.settings}
    values.update(instance.settings)
    context.update({f"setting.{name}": setting_text(value) for name, value in values.items()})
    context.update(ldap_context(instance, secret_values))
    if manifest.database is not None:
        context.update({
            "database.kind": manifest.database.kind, "database.host": DATABASE,
            "database.port": str(DATABASE_PORTS[manifest.database.kind]),
            "database.name": database_name(manifest), "database.user": database_name(manifest),
            "database.password": secret_values.get("database_password", ""),
        })
    return context


_LDAP_PLACEHOLDERS = ("url", "base_dn", "people_dn", "groups_dn", "group", "group_dn",
                      "user_filter", "bind_dn", "bind_password")
_DATABASE_PLACEHOLDERS = ("kind", "host", "port", "name", "user", "password")


def known_placeholders(manifest: Manifest) -> set[str]:
    """Return every placeholder an instance of ``manifest`` can fill (for checking manifests
    without any instance)."""
    names = {"domain", "slug", "url"}
    names |= {f"secret.{name}" for name in secret_lengths(manifest)}
    names |= {f"setting.{setting.name}" for setting in manifest.settings}
    names |= {f"ldap.{name}" for name in _LDAP_PLACEHOLDERS}
    if manifest.database is not None:
        names |= {f"database.{name}" for name in _DATABASE_PLACEHOLDERS}
    return names


def placeholders_in(template: str) -> set[str]:
    """Return the placeholder names a value uses."""
    return {match.group(1) for match in _PLACEHOLDER.finditer(template) if match.group(1)}



def network_name(slug: str) -> str:
    return f"chaton-{slug}"


def volume_name(slug: str, volume: str) -> str:
    return f"chaton-{slug}-{volume}"


def bind_ip(host: Host) -> str:
    """Where a host's published ports are bound: its address when it is an IP, else everywhere."""
    try:
        return str(ipaddress.ip_address(host.address))
    except ValueError:
        return ""


def upstream(host: Host, port: int) -> str:
    """The ``host:port`` the proxy dials for a port published on ``host``."""
    address = host.address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Setup:
    """The commands an application's ``app.py`` wants run in its container once healthy."""

    commands: tuple[tuple[str, ...], ...]
    user: str
    workdir: str

    @property
    def setup_hash(self) -> str:
        encoded = json.dumps([[list(command) for command in self.commands], self.user,
                              self.workdir]).encode()
        return hashlib.sha256(encoded).hexdigest()[:20]


@dataclass(frozen=True)
class Desired:
    """What must run for one instance: its network, volumes and workloads by role, and the
    setup commands of its application (if its ``app.py`` has some)."""

    network: NetworkSpec
    volumes: tuple[VolumeSpec, ...]
    workloads: dict[str, WorkloadSpec]
    setup: Setup | None = None


def _hook(manifest: Manifest, name: str) -> Callable[..., Any] | None:
    """Return one of the application's ``app.py`` hooks (see catalog.app_module), or None."""
    hook = getattr(catalog.app_module(manifest.name), name, None)
    return hook if callable(hook) else None


def _setup(manifest: Manifest, values: Mapping[str, Any],
           context: Mapping[str, str]) -> Setup | None:
    hook = _hook(manifest, "setup_commands")
    if hook is None:
        return None
    module = catalog.app_module(manifest.name)
    commands = tuple(tuple(str(part) for part in command) for command in hook(values, context))
    if not commands:
        return None
    return Setup(commands, str(getattr(module, "SETUP_USER", "")),
                 str(getattr(module, "SETUP_DIRECTORY", "")))


def desired_for(instance: Instance, secret_values: Mapping[str, str], *,
                upgrade: Deployment | None = None) -> Desired:
    """Given a running instance, its secrets in clear (see
    :func:`chaton.services.instance_secrets.ensure`) and its upgrade under way, return
    what must run for it.

    During an upgrade the application's spec is the new version's, on the
    upgrade's own port. Raise KeyError when the application left the
    catalogue, RenderError for an unknown placeholder.
    """
    manifest = instance.manifest
    slug = instance.slug
    host = instance.host
    context = placeholder_context(instance, manifest, secret_values)
    network = network_name(slug)
    volumes = [VolumeSpec(volume_name(slug, volume.name), slug) for volume in manifest.volumes]
    workloads: dict[str, WorkloadSpec] = {}
    if manifest.database is not None:
        database = manifest.database
        name = database_name(manifest)
        password = secret_values["database_password"]
        if database.kind == "postgres":
            environment = {"POSTGRES_DB": name, "POSTGRES_USER": name,
                           "POSTGRES_PASSWORD": password}
            if database.path != "/var/lib/postgresql/data":
                environment["PGDATA"] = database.path
        else:
            environment = {"MARIADB_DATABASE": name, "MARIADB_USER": name,
                           "MARIADB_PASSWORD": password,
                           "MARIADB_ROOT_PASSWORD": secret_values["database_root_password"]}
        database_volume = VolumeSpec(volume_name(slug, DATABASE), slug)
        volumes.append(database_volume)
        workloads[DATABASE] = WorkloadSpec(
            instance=slug, role=DATABASE, image=database.image, network=network, alias=DATABASE,
            environment=tuple(sorted(environment.items())),
            mounts=((database_volume.name, database.path),))
    environment = {name: render(value, context) for name, value in manifest.environment.items()}
    values = {setting.name: setting.default for setting in manifest.settings}
    values.update(instance.settings)
    for setting in manifest.settings:
        if setting.env:
            environment[setting.env] = setting_text(values[setting.name])
    port = upgrade.to_port if upgrade is not None and upgrade.to_port else instance.port
    files_hook = _hook(manifest, "files")
    files = files_hook(values, context) if files_hook is not None else {}
    workloads[APP] = WorkloadSpec(
        instance=slug, role=APP, image=instance.image, network=network, alias=APP,
        environment=tuple(sorted(environment.items())),
        command=tuple(render(part, context) for part in manifest.command),
        mounts=tuple((volume_name(slug, volume.name), volume.path)
                     for volume in manifest.volumes),
        port=Port(manifest.port, port, bind_ip(host)),
        files=tuple(sorted((str(path), str(text)) for path, text in files.items())))
    return Desired(NetworkSpec(network, slug), tuple(volumes), workloads,
                   _setup(manifest, values, context))

