"""Errors that every interface turns into a clear message.

::

    ChatonError                      code, message, status
    ├── InvalidInput(ValueError)     400 a field has a bad value (``field`` says which)
    ├── NotFound(LookupError)        404
    ├── Conflict                     409 the value is taken (duplicate uid, email …)
    ├── Forbidden(PermissionError)   403
    └── Unauthorized(PermissionError) 401 no valid credentials (API token missing or unknown)

The web shows ``message`` next to the form, the API answers
``{"code": …, "message": …, "field": …}`` with ``status``, and the CLI prints
``message`` on one line of stderr and exits 2.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise


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
