"""The alphabets of uids, group names and SSH key types, with no dependency at all.

Their lengths come from :mod:`chaton.core.limits`, like every other limit.

:mod:`chaton.directory.validation` (which needs Django) checks what people type
with these; ``chaton ssh-keys`` (which must start without Django, because sshd
runs it at every login) refuses any other name with the very same patterns.
Keep this module stdlib-only.
"""

from __future__ import annotations

import re

from chaton.core.limits import (
    GROUP_NAME_MAX_LENGTH,
    GROUP_NAME_MIN_LENGTH,
    UID_MAX_LENGTH,
    UID_MIN_LENGTH,
)

#: A uid: 2 to 32 characters, lower-case letters, digits, ``.``, ``_`` or ``-``, a letter first.
#: None of them is special in a DN or a search filter.
UID_PATTERN = re.compile(rf"[a-z][a-z0-9._-]{{{UID_MIN_LENGTH - 1},{UID_MAX_LENGTH - 1}}}")
#: A group name: 2 to 64 characters, lower-case letters, digits, ``_`` or ``-``, a letter first.
GROUP_PATTERN = re.compile(
    rf"[a-z][a-z0-9_-]{{{GROUP_NAME_MIN_LENGTH - 1},{GROUP_NAME_MAX_LENGTH - 1}}}")
#: Names of system accounts and roles that no directory account may take.
RESERVED_UIDS = frozenset({"root", "admin", "administrator", "nobody", "daemon", "bin", "sys",
                           "sshd", "openldap", "postgres", "www-data", "mail", "postmaster",
                           # the web pages' /accounts/new/ would hide an account named "new"
                           "new"})
#: Group names the web pages use as paths (/groups/new/).
RESERVED_GROUP_NAMES = frozenset({"new"})
#: The public key types Chaton accepts and publishes (first word of an authorized_keys line).
SSH_KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
