"""Checks on what people type, before anything reaches the database or the directory.

uids and group names are restricted to a safe alphabet, so they never carry
LDAP special characters (``*()\\,=+<>#;"`` or NUL) into a DN or a filter.
Free text (display names) may hold most characters: it is always escaped by
the adapter, and control characters are refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from chaton.core.errors import InvalidInput
from chaton.directory.names import (
    GROUP_PATTERN,
    RESERVED_GROUP_NAMES,
    RESERVED_UIDS,
    SSH_KEY_TYPES,
    UID_PATTERN,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_uid(value: str) -> str:
    """Return the uid, or raise InvalidInput saying what a uid may hold."""
    uid = value.strip()
    if not UID_PATTERN.fullmatch(uid):
        raise InvalidInput(
            _("A user name is 2 to 32 characters: lower-case letters, digits, '.', '_' or '-', "
              "starting with a letter."), field="uid")
    if uid in RESERVED_UIDS:
        raise InvalidInput(_("The user name “%(uid)s” is reserved.") % {"uid": uid}, field="uid")
    return uid


def clean_group_name(value: str) -> str:
    name = value.strip()
    if not GROUP_PATTERN.fullmatch(name):
        raise InvalidInput(
            _("A group name is 2 to 64 characters: lower-case letters, digits, '_' or '-', "
              "starting with a letter."), field="name")
    if name in RESERVED_GROUP_NAMES:
        raise InvalidInput(_("The group name “%(name)s” is reserved.") % {"name": name},
                           field="name")
    return name


def clean_text(value: str, *, field: str, required: bool = True, max_length: int = 150,
               multiline: bool = False) -> str:
    """Return trimmed free text; refuse control characters (NUL included) and overlong text.

    ``multiline`` lets line breaks through (a description), as ``\n`` only.
    """
    text = value.strip()
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(text.replace("\n", "") if multiline else text):
        raise InvalidInput(_("This text contains control characters."), field=field)
    if required and not text:
        raise InvalidInput(_("This field is required."), field=field)
    if len(text) > max_length:
        raise InvalidInput(_("At most %(count)d characters.") % {"count": max_length},
                           field=field)
    return text


def clean_email(value: str, *, field: str = "email") -> str:
    email = value.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("“%(value)s” is not a valid email address.") % {"value": email},
                           field=field) from None
    if _CONTROL.search(email):
        raise InvalidInput(_("This text contains control characters."), field=field)
    return email.lower()


def parse_ssh_key(value: str) -> tuple[str, str]:
    """Given one line of authorized_keys, return (normalized key, SHA256 fingerprint).

    Options before the key type (``command="…"``, ``from=…``) are refused: a
    key in the directory grants a plain login, nothing else.
    """
    text = value.strip()
    if _CONTROL.search(text):
        raise InvalidInput(_("An SSH key is one line, without control characters."), field="key")
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise InvalidInput(
            _("This is not an SSH public key: expected a line such as “ssh-ed25519 AAAA… "
              "name@host”."), field="key")
    key_type, blob_text = parts[0], parts[1]
    try:
        blob = base64.b64decode(blob_text, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded_type = blob[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise InvalidInput(_("The key's data is damaged (not valid base64)."),
                           field="key") from None
    if embedded_type != key_type:
        raise InvalidInput(_("The key's data does not match its type."), field="key")
    comment = parts[2] if len(parts) > 2 else ""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    normalized = f"{key_type} {blob_text}" + (f" {comment}" if comment else "")
    return normalized, f"SHA256:{digest}"
