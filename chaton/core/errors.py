"""Errors that every interface turns into a clear message.

::

    ChatonError                      code, message, status
    ├── InvalidInput(ValueError)     400 a field has a bad value (``field`` says which)
    ├── NotFound(LookupError)        404
    ├── Conflict                     409 the value is taken (duplicate uid, email …)
    ├── Forbidden(PermissionError)   403
    ├── Unauthorized(PermissionError) 401 no valid credentials (API token missing or unknown)
    └── ServerFailure                5xx a server Chaton drives failed (see ADAPTER_ERRORS)

The web shows ``message`` next to the form, the API answers
``{"code": …, "message": …, "field": …}`` with ``status``, and the CLI prints
``message`` on one line of stderr and exits 2.

An adapter's own error that no app wrapped reaches people through one table,
:data:`ADAPTER_ERRORS`: :func:`coded` turns it into a :class:`ServerFailure` with
the table's code, status and message. The API's exception handler
(``project/api.py``), the pages' middleware
(:class:`chaton.core.middleware.ErrorPagesMiddleware`), the jobs'
recorded error (``core/jobs.py``) and the CLI (``cli/app.py`` ``error_message``)
all read it, so a server that is down shows the same coded error everywhere,
never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from chaton.adapters import caddy, docker, ldap, opendkim, restic
from chaton.adapters import dns as dns_adapter


class ChatonError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str | Promise, *, field: str | None = None, **params: Any) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field
        self.params = params

    def __str__(self) -> str:
        return str(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self.message), "field": self.field}


class InvalidInput(ChatonError, ValueError):
    code = "invalid"
    status = 400


class NotFound(ChatonError, LookupError):
    code = "not_found"
    status = 404


class Conflict(ChatonError):
    code = "conflict"
    status = 409


class Forbidden(ChatonError, PermissionError):
    code = "forbidden"
    status = 403


class Unauthorized(ChatonError, PermissionError):
    code = "unauthorized"
    status = 401


class ServerFailure(ChatonError):
    """A server Chaton drives failed: an adapter's error, coded by :data:`ADAPTER_ERRORS`."""

    code = "server_unavailable"
    status = 503

    def __init__(self, message: str | Promise, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class AdapterError:
    """One row of :data:`ADAPTER_ERRORS`: an adapter's exception class and what people see.

    ``message`` may name ``%(error)s``, the adapter's own one-line account (adapters
    mask secrets in their messages).
    """

    exception: type[Exception]
    status: int
    code: str
    message: str | Promise


#: Adapter errors → coded errors, most specific first: the first row that matches wins.
ADAPTER_ERRORS: tuple[AdapterError, ...] = (
    AdapterError(ldap.LdapUnavailable, 503, "directory_unavailable",
                 # No detail: members read it too, and the server's address is not theirs.
                 gettext_lazy("The directory server cannot be reached; try again later.")),
    AdapterError(ldap.LdapError, 502, "directory_error",
                 gettext_lazy("The directory server refused the change: %(error)s")),
    AdapterError(docker.EngineUnreachable, 503, "engine_unreachable",
                 gettext_lazy("A Docker engine does not answer: %(error)s. Nothing was "
                              "changed.")),
    AdapterError(docker.DockerError, 502, "engine_error",
                 gettext_lazy("A Docker engine refused the request: %(error)s")),
    AdapterError(caddy.ProxyUnreachable, 503, "proxy_unavailable",
                 gettext_lazy("The reverse proxy (Caddy) cannot be reached: %(error)s.")),
    AdapterError(caddy.CaddyError, 502, "proxy_refused",
                 gettext_lazy("The reverse proxy refused the request: %(error)s")),
    AdapterError(restic.RepositoryUnreachable, 503, "backup_unavailable",
                 gettext_lazy("The backup repository cannot be reached: %(error)s")),
    AdapterError(restic.ResticError, 502, "backup_error",
                 gettext_lazy("restic failed: %(error)s")),
    AdapterError(dns_adapter.DnsUnavailable, 503, "dns_unavailable",
                 gettext_lazy("The DNS server does not answer: %(error)s. Nothing was "
                              "changed.")),
    AdapterError(dns_adapter.TsigRefused, 502, "dns_refused",
                 gettext_lazy("The DNS server refused the key: %(error)s")),
    AdapterError(dns_adapter.UpdateRefused, 502, "dns_refused",
                 gettext_lazy("The DNS server refused the update: %(error)s")),
    AdapterError(dns_adapter.NotOurZone, 502, "dns_not_our_zone",
                 gettext_lazy("The DNS server does not serve this zone: %(error)s")),
    AdapterError(dns_adapter.DnsError, 502, "dns_error",
                 gettext_lazy("The DNS server failed: %(error)s")),
    AdapterError(opendkim.SignerUnavailable, 503, "signer_unavailable",
                 gettext_lazy("The DKIM signer (OpenDKIM) did not take the keys: %(error)s. "
                              "It signs with the keys it held before.")),
    AdapterError(opendkim.SignerError, 502, "signer_refused",
                 gettext_lazy("The DKIM signer refused the keys: %(error)s")),
)


def _one_line(error: BaseException) -> str:
    text = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def coded(error: BaseException, *, with_detail: bool = False) -> ChatonError | None:
    """Given an exception, return the error to show people: itself when it is a ChatonError,
    its :data:`ADAPTER_ERRORS` row as a ServerFailure when an adapter raised it, else None
    (a bug, shown as such).

    With ``with_detail`` (the CLI, whose reader runs the servers), a message that does not
    name the adapter's own account gets it appended in parentheses.
    """
    if isinstance(error, ChatonError):
        return error
    for row in ADAPTER_ERRORS:
        if isinstance(error, row.exception):
            template = str(row.message)
            if "%(error)s" in template:
                message = template % {"error": _one_line(error)}
            else:
                message = f"{template} ({_one_line(error)})" if with_detail else template
            return ServerFailure(message, code=row.code, status=row.status)
    return None
