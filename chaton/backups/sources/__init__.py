"""The kinds of data a plan backs up: one module each, one contract (:mod:`.base`).

Adding a kind means adding one module with a :class:`~.base.DataSource`
subclass, and listing it in :data:`KINDS` (and in ``SourceKind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    ResticClient,
    RestoreRefused,
    Verification,
)
from chaton.backups.sources.chaton import ChatonSource
from chaton.backups.sources.docker_volume import DockerVolumeSource
from chaton.backups.sources.ldap import LdapSource
from chaton.backups.sources.mariadb import MariadbSource
from chaton.backups.sources.paths import PathsSource
from chaton.backups.sources.postgres import PostgresSource
from chaton.backups.sources.secrets_key import SecretsKeySource
from chaton.core.errors import InvalidInput

#: Every kind, by the value of ``Source.kind``.
KINDS: dict[str, type[DataSource]] = {
    kind.kind: kind for kind in (PostgresSource, MariadbSource, LdapSource, ChatonSource,
                                 PathsSource, DockerVolumeSource, SecretsKeySource)
}

__all__ = ["KINDS", "BackupContext", "BackupResult", "DataSource", "ResticClient",
           "RestoreRefused", "Verification", "build", "kind_class"]


def kind_class(kind: str) -> type[DataSource]:
    """Given a kind name, return its class. Raise InvalidInput for an unknown kind."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidInput(_("Unknown kind of data source “%(kind)s” (known: %(known)s).")
                           % {"kind": kind, "known": ", ".join(sorted(KINDS))},
                           field="kind") from None


def build(kind: str, name: str, params: Mapping[str, Any]) -> DataSource:
    """Given a kind, a name and decrypted parameters, return the data source."""
    return kind_class(kind)(name, params)
