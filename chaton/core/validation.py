"""Checks on free text and addresses that every app shares, before anything is stored.

Nothing is trimmed silently: a value with spaces at its start or end is
refused, naming the field, rather than stored as something else than what
was sent. Lengths come from :mod:`chaton.core.limits`. The checks proper to
the directory (uids, group names, passwords, SSH keys) are in
:mod:`chaton.directory.validation`.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from chaton.core import limits
from chaton.core.errors import InvalidInput

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The C1 controls (U+0080 to U+009F): no keyboard types them either.
C1_CONTROL = re.compile(r"[\x80-\x9f]")


def refuse_surrounding_space(value: str, *, field: str) -> None:
    """Raise InvalidInput naming ``field`` when ``value`` starts or ends with white space."""
    if value != value.strip():
        raise InvalidInput(_("Spaces at the start or the end are not kept: remove them."),
                           field=field)


def clean_text(value: str, *, field: str,
               max_length: int = limits.DISPLAY_NAME_MAX_LENGTH, required: bool = True,
               multiline: bool = False) -> str:
    """Return free text as it will be kept, or raise InvalidInput naming ``field``.

    Refused: nothing at all when ``required``, spaces at the start or the end,
    control characters (NUL included), more than ``max_length`` characters.
    ``multiline`` lets line breaks through (a description), stored as ``\n``.
    """
    text = value
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if required and not text.strip():
        raise InvalidInput(_("This field is required."), field=field)
    refuse_surrounding_space(text, field=field)
    if CONTROL.search(text.replace("\n", "") if multiline else text):
        raise InvalidInput(_("This text contains control characters."), field=field)
    check_length(text, field=field, max_length=max_length)
    return text


def check_length(value: str, *, field: str, max_length: int) -> None:
    """Raise InvalidInput naming ``field`` when ``value`` is longer than ``max_length``."""
    if len(value) > max_length:
        raise InvalidInput(_("At most %(count)d characters.") % {"count": max_length},
                           field=field)


def clean_email(value: str, *, field: str = "email") -> str:
    """Return the address in lower case, or raise InvalidInput naming ``field``."""
    refuse_surrounding_space(value, field=field)
    email = value
    check_length(email, field=field, max_length=limits.EMAIL_MAX_LENGTH)
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("“%(value)s” is not a valid email address.") % {"value": email},
                           field=field) from None
    if CONTROL.search(email):
        raise InvalidInput(_("This text contains control characters."), field=field)
    return email.lower()
