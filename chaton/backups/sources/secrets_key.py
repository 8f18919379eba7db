"""Chaton's secrets key (``data_dir/secrets.key`` or ``$CHATON_SECRETS_KEY``).

No parameters: the key is the one this Chaton encrypts its secrets with
(:mod:`chaton.core.secrets`).

Every secret Chaton stores — repository passwords among them — is encrypted
with this key, so a backup of the database is of no use without it. The key
goes into the repository as the file ``secrets.key``, streamed from memory:
inside the repository it is encrypted with the repository's password, like
everything else there. Who holds the recovery kit (the repository's password)
can therefore get the key back from the repository alone
(``chaton restore --from-repository``).

The fingerprint is the key's *id*, the first 16 hexadecimal digits of its
SHA-256, never the key: a drill dumps the file and compares its id. An
in-place restore is refused: the running Chaton uses its key, and replacing it
would make every stored secret unreadable.
"""

from __future__ import annotations

import hashlib
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
    RestoreRefused,
    Verification,
)
from chaton.core import secrets

#: The name of the file in the snapshot, and in the data directory.
FILENAME = "secrets.key"


def key_id(key: str) -> str:
    """Given a key, return its id: enough to tell two keys apart, nothing to rebuild it."""
    return hashlib.sha256(key.strip().encode("ascii")).hexdigest()[:16]


class SecretsKeySource(DataSource):
    kind = "secrets_key"
    label = gettext_lazy("Chaton's secrets key")

    @property
    def filename(self) -> str:
        return FILENAME

    def backup(self, context: BackupContext) -> BackupResult:
        """Stream the key into restic. Raise ResticError."""
        key = secrets.current_key()
        summary = context.restic.backup_stream(
            (key + "\n").encode("ascii"), filename=self.filename, tags=context.tags,
            host=context.host, time=context.time, progress=context.progress,
            timeout=context.timeout, secrets=[key])
        return BackupResult.of(summary, {"key_id": key_id(key)})

    def in_place_refusal(self) -> str | None:
        return _("The running Chaton encrypts its secrets with its key: replacing it would make "
                 "them unreadable. Restore it to a scratch place, or use “chaton restore” on "
                 "a new machine.")

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        raise RestoreRefused(self.in_place_refusal())

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        key = restic.dump(snapshot_id, f"/{self.filename}").decode("ascii", "replace").strip()
        verification = Verification()
        verification.compare("key_well_formed", True, secrets.is_valid_key(key))
        verification.compare("key_id", fingerprint.get("key_id"), key_id(key))
        verification.expected = dict(fingerprint)
        verification.found = {"key_id": key_id(key)}
        return verification
