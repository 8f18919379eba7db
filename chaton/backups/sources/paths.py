"""Plain directories, backed up by ``restic backup`` itself.

Parameters: ``paths``, a list of absolute directories, and optionally
``exclude``, a list of restic exclude patterns.

The fingerprint costs no extra pass over the data: it is what restic itself
read (the number of files and their bytes) and the paths. The files' content
hashes are restic's own: every chunk of every file is stored under its
SHA-256, computed at backup time. A drill restores into a scratch directory
with ``restic restore --verify``, which reads each restored file back and
checks it against those hashes, then counts the files and bytes restored and
compares them with what was read at backup time.

An in-place restore writes the snapshot's files back at their paths (files
created since are left alone; restic 0.14 has no ``--delete``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import field_validator

from chaton.backups import evidence
from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    Lines,
    Param,
    ResticClient,
    SourceParams,
    Verification,
)


def tree_summary(roots: Sequence[Path]) -> dict[str, Any]:
    """Given restored directories, return their regular files' count, bytes and content digest.

    The digest (SHA-256 over each file's relative path and SHA-256) is
    evidence for the record: two drills of one snapshot find the same.
    """
    files = 0
    size = 0
    listing: list[str] = []
    for root in roots:
        for directory, _subdirectories, names in os.walk(root):
            for name in names:
                path = Path(directory) / name
                if not path.is_file() or path.is_symlink():
                    continue
                files += 1
                size += path.stat().st_size
                digest = hashlib.sha256()
                with path.open("rb") as file:
                    for block in iter(lambda: file.read(1 << 20), b""):
                        digest.update(block)
                listing.append(f"{path.relative_to(root)}\0{digest.hexdigest()}")
    listing.sort()
    return {"files": files, "bytes": size,
            "content_sha256": hashlib.sha256("\n".join(listing).encode()).hexdigest()}


class PathsParams(SourceParams):
    paths: Annotated[Lines, Param(gettext_lazy("Directories"),
                                  gettext_lazy("One absolute path per line."))]
    exclude: Annotated[Lines, Param(gettext_lazy("Excluded patterns"),
                                    gettext_lazy("One restic exclude pattern per line."))] = []

    @field_validator("paths", mode="after")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        if not paths:
            raise ValueError(_("Give at least one directory to back up."))
        for path in paths:
            if not path.startswith("/") or "\0" in path or "\n" in path:
                raise ValueError(_("“%(path)s” is not an absolute path.") % {"path": path})
        return [os.path.normpath(path) for path in paths]

    @field_validator("exclude", mode="after")
    @classmethod
    def _patterns(cls, exclude: list[str]) -> list[str]:
        return [item for item in exclude if item.strip()]


class PathsSource(DataSource):
    kind = "paths"
    label = gettext_lazy("directories")
    Params = PathsParams

    @property
    def paths(self) -> list[str]:
        return list(self.params["paths"])

    def backup(self, context: BackupContext) -> BackupResult:
        """Back up the directories. Raise SourceFailed for a missing directory or
        unreadable files, ResticError."""
        from chaton.adapters.restic import SourceFailed

        missing = [path for path in self.paths if not os.path.exists(path)]
        if missing:
            raise SourceFailed(_("No such directory: %(paths)s") % {"paths": ", ".join(missing)})
        summary = context.restic.backup_paths(
            self.paths, tags=context.tags, host=context.host, exclude=self.params["exclude"],
            time=context.time, progress=context.progress, timeout=context.timeout)
        return BackupResult.of(summary, {"paths": self.paths, "files": summary.files_processed,
                                         "bytes": summary.bytes_processed})

    def restore_to(self, restic: ResticClient, snapshot_id: str, target: Path) -> str:
        """Restore every path of the snapshot under ``target`` (``target/<absolute path>``)."""
        restic.restore(snapshot_id, target)
        return str(target)

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        restic.restore(snapshot_id, "/")
        return _("%(paths)s restored in place") % {"paths": ", ".join(self.paths)}

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        target = scratch / "files"
        # --verify: restic reads each file back and checks it against its chunks' SHA-256.
        restic.restore(snapshot_id, target, verify=True)
        paths = list(fingerprint.get("paths") or self.paths)
        found = tree_summary([target / path.lstrip("/") for path in paths])
        verification = Verification()
        verification.compared.append(evidence.item("file_contents"))
        verification.compare("files", fingerprint.get("files"), found["files"])
        verification.compare("bytes", fingerprint.get("bytes"), found["bytes"])
        verification.expected = {key: fingerprint.get(key) for key in ("paths", "files", "bytes")}
        verification.found = found
        return verification
