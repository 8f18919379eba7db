"""The errors of the backups actions, and how restic's become them.

``BackupError`` (code ``backup_error``, status 502) is a failure of the
outside world — restic, a database to dump, a full disk — that the person can
only fix there; wrong input and conflicts stay InvalidInput and Conflict.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from chaton.adapters import restic
from chaton.core.errors import ChatonError, Conflict, InvalidInput


class BackupError(ChatonError):
    code = "backup_error"
    status = 502


def describe(error: BaseException) -> str:
    """Given an exception from a backup, a restore or a drill, return one line for people."""
    detail = str(error).strip()
    if isinstance(error, restic.NoSpace):
        return _("No space left on the repository's disk: %(detail)s") % {"detail": detail}
    if isinstance(error, restic.WrongPassword):
        return _("Wrong repository password: it opens no key of the repository.")
    if isinstance(error, restic.RepositoryMissing):
        return _("There is no initialised restic repository at this location.")
    if isinstance(error, restic.RepositoryLocked):
        return _("The repository is locked by another restic process: %(detail)s") % {
            "detail": detail}
    if isinstance(error, restic.RepositoryUnreachable):
        return _("The repository cannot be reached: %(detail)s") % {"detail": detail}
    if isinstance(error, restic.CorruptRepository):
        return _("Damaged data in the repository: %(detail)s") % {"detail": detail}
    if isinstance(error, restic.ResticTimeout):
        return _("restic took too long and was stopped: %(detail)s") % {"detail": detail}
    if isinstance(error, restic.SourceFailed):
        return _("The data source failed: %(detail)s") % {"detail": detail}
    return detail or type(error).__name__


def as_chaton_error(error: restic.ResticError, *, repository: str) -> ChatonError:
    """Given a restic failure on ``repository``, return the error to raise to an interface."""
    if isinstance(error, restic.WrongPassword):
        return InvalidInput(_("The password does not open repository %(name)s.")
                            % {"name": repository}, field="password")
    if isinstance(error, restic.RepositoryMissing):
        return Conflict(_("Repository %(name)s is not initialised yet.") % {"name": repository})
    if isinstance(error, (restic.RepositoryExists, restic.RepositoryLocked)):
        return Conflict(describe(error))
    return BackupError(describe(error))
