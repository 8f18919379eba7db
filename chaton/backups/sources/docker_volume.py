"""A named volume of the local Docker Engine, backed up as the directory it lives in.

Parameter: ``volume``, the volume's name. ``docker volume inspect`` gives its
mountpoint, which is then a :mod:`paths <chaton.backups.sources.paths>` source.
For a consistent copy of a database's volume, back up the database instead
(or stop its container first). Docker is not installed on the test machines
yet, so this source has unit tests only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    ResticClient,
    Verification,
)
from chaton.backups.sources.paths import PathsSource
from chaton.core import runner
from chaton.core.errors import InvalidInput

_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DockerVolumeSource(DataSource):
    kind = "docker_volume"
    label = gettext_lazy("Docker volume")

    @classmethod
    def clean_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        cls.reject_unknown(params, ("volume",))
        volume = cls.require_text(params, "volume")
        if not _VOLUME_NAME.match(volume):
            raise InvalidInput(_("“%(name)s” is not a Docker volume name.") % {"name": volume},
                               field="volume")
        return {"volume": volume}

    def mountpoint(self) -> str:
        """Return the volume's directory on this machine. Raise CommandError (no such volume,
        no Docker)."""
        completed = runner.run(["docker", "volume", "inspect", "--format", "{{.Mountpoint}}",
                                self.params["volume"]], timeout=30)
        return completed.stdout.strip()

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
