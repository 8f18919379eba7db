"""A named volume of a Docker Engine, backed up as the directory it lives in.

Parameters: ``volume``, the volume's name, and ``engine``, the engine's
endpoint (empty: ``$DOCKER_HOST``, else the local socket). The Docker adapter
(:meth:`~chaton.adapters.docker.Engine.volume_mountpoint`) gives the
volume's directory, which is then a :mod:`paths <chaton.backups.sources.paths>`
source: the engine must run on this machine. For a consistent copy of a
database's volume, back up the database instead (or stop its container first).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import field_validator

from chaton.adapters import docker as docker_adapter
from chaton.adapters.docker import Engine
from chaton.adapters.docker.client import DockerEngine
from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    Param,
    RequiredText,
    ResticClient,
    SourceParams,
    Text,
    Verification,
)
from chaton.backups.sources.paths import PathsSource

_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The endpoint of the local engine when neither the source nor ``$DOCKER_HOST`` names one.
LOCAL_ENGINE = "unix:///var/run/docker.sock"


def connect(url: str) -> Engine:
    """Given an endpoint URL, return the Docker engine there, or the replacement a test put
    in the adapter's slot (:func:`chaton.adapters.docker.use_docker`; its key is the URL)."""
    replacement = docker_adapter.slot.current(url)
    return replacement if replacement is not None else DockerEngine(url)


class DockerVolumeParams(SourceParams):
    volume: Annotated[RequiredText, Param(gettext_lazy("Docker volume"),
                                          gettext_lazy("The volume's name."))]
    engine: Annotated[Text, Param(gettext_lazy("Docker endpoint"), gettext_lazy(
        "Empty: $DOCKER_HOST, else the local socket. The engine must run on this "
        "machine."))] = ""

    @field_validator("volume", mode="after")
    @classmethod
    def _volume_name(cls, volume: str) -> str:
        if not _VOLUME_NAME.match(volume):
            raise ValueError(_("“%(name)s” is not a Docker volume name.") % {"name": volume})
        return volume


class DockerVolumeSource(DataSource):
    kind = "docker_volume"
    label = gettext_lazy("Docker volume")
    Params = DockerVolumeParams

    def mountpoint(self) -> str:
        """Return the volume's directory on this machine. Raise ObjectNotFound (no such
        volume), EngineUnreachable (no Docker)."""
        url = self.params.get("engine") or os.environ.get("DOCKER_HOST") or LOCAL_ENGINE
        engine = connect(url)
        try:
            return engine.volume_mountpoint(self.params["volume"])
        finally:
            engine.close()

    def _paths(self, mountpoint: str | None = None) -> PathsSource:
        return PathsSource(self.name, {"paths": [mountpoint or self.mountpoint()],
                                       "exclude": []})

    def backup(self, context: BackupContext) -> BackupResult:
        result = self._paths().backup(context)
        result.fingerprint["volume"] = self.params["volume"]
        return result

    def restore_to(self, restic: ResticClient, snapshot_id: str, target: Path) -> str:
        restic.restore(snapshot_id, target)
        return str(target)

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        return self._paths().restore_in_place(restic, snapshot_id)

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        paths = fingerprint.get("paths") or [""]
        return self._paths(paths[0]).drill(restic, snapshot_id, fingerprint, scratch)
