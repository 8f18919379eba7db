"""Checks on what people type, before anything reaches the database or the directory.

uids and group names are restricted to a safe alphabet, so they never carry
LDAP special characters (``*()\\,=+<>#;"`` or NUL) into a DN or a filter.
Free text (display names) may hold most characters: it is always escaped by
the adapter, and control characters are refused.

Nothing is trimmed silently: a value with spaces at its start or end is
refused, naming the field, rather than stored as something else than what
was sent (`` trailing `` never becomes the uid ``trailing``). Lengths come from
:mod:`chaton.core.limits`, which the models, forms and API schemas share.
The checks on free text and addresses that other apps share (``clean_text``,
``clean_email``) live in :mod:`chaton.core.validation` and are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

from django.utils.translation import gettext as _

from chaton.core import limits
from chaton.core.errors import InvalidInput
from chaton.core.validation import C1_CONTROL, CONTROL
from chaton.core.validation import check_length as check_length
from chaton.core.validation import clean_email as clean_email
from chaton.core.validation import clean_text as clean_text
from chaton.core.validation import refuse_surrounding_space as refuse_surrounding_space
from chaton.directory.names import (
    GROUP_PATTERN,
    RESERVED_GROUP_NAMES,
    RESERVED_UIDS,
    SSH_KEY_TYPES,
    UID_PATTERN,
)


def clean_uid(value: str) -> str:
    """Return the uid, or raise InvalidInput saying what a uid may hold."""
    refuse_surrounding_space(value, field="uid")
    uid = value
    if not UID_PATTERN.fullmatch(uid):
        # The numbers are limits.UID_MIN_LENGTH and UID_MAX_LENGTH (a test checks they agree).
        raise InvalidInput(
            _("A user name is 2 to 32 characters: lower-case letters, digits, '.', '_' or '-', "
              "starting with a letter."), field="uid")
    if uid in RESERVED_UIDS:
        raise InvalidInput(_("The user name “%(uid)s” is reserved.") % {"uid": uid}, field="uid")
    return uid


def clean_group_name(value: str) -> str:
    """Return the group name, or raise InvalidInput saying what a group name may hold."""
    refuse_surrounding_space(value, field="name")
    name = value
    if not GROUP_PATTERN.fullmatch(name):
        # The numbers are limits.GROUP_NAME_MIN_LENGTH and GROUP_NAME_MAX_LENGTH (tested).
        raise InvalidInput(
            _("A group name is 2 to 64 characters: lower-case letters, digits, '_' or '-', "
              "starting with a letter."), field="name")
    if name in RESERVED_GROUP_NAMES:
        raise InvalidInput(_("The group name “%(name)s” is reserved.") % {"name": name},
                           field="name")
    return name


def clean_password(value: str, *, field: str = "password") -> str:
    """Return the password unchanged, or raise InvalidInput for what could never be typed again.

    Control characters (NUL, tab, escape …) are refused: a login form or a
    service's client would not send them back. Spaces are kept, even at the
    ends: a password is never trimmed. The strength rules are Django's
    validators, checked by the actions.
    """
    if CONTROL.search(value) or C1_CONTROL.search(value):
        raise InvalidInput(_("A password cannot contain control characters."), field=field)
    check_length(value, field=field, max_length=limits.PASSWORD_MAX_LENGTH)
    return value


def parse_ssh_key(value: str) -> tuple[str, str]:
    """Given one line of authorized_keys, return (normalized key, SHA256 fingerprint).

    Options before the key type (``command="…"``, ``from=…``) are refused: a
    key in the directory grants a plain login, nothing else.
    """
    check_length(value, field="key", max_length=limits.SSH_KEY_MAX_LENGTH)
    # Around the key, white space (a final newline of a .pub file) is no part of it.
    text = value.strip()
    if CONTROL.search(text):
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
