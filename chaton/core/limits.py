"""How long each text people type may be: one number per field, for every interface.

The models' ``max_length``, the forms' ``max_length``, the API schemas'
``maxLength`` and the actions' own checks all read these constants, so that
what the OpenAPI schema promises is exactly what the server keeps (a test
sends N characters, then N + 1, through the API for each of them).

Standard library only: ``chaton ssh-keys`` builds the uid pattern from
:data:`UID_MAX_LENGTH` without loading Django.
"""

from __future__ import annotations

# -- accounts and groups (the directory) ------------------------------------------------------

#: A uid: at least 2 characters (a letter first), at most 32 (the Unix tools' limit).
UID_MIN_LENGTH = 2
UID_MAX_LENGTH = 32
#: An account's display name (LDAP ``cn`` / ``displayName``).
DISPLAY_NAME_MAX_LENGTH = 150
#: An email address (RFC 5321 path limit), for accounts, persons and organizations.
EMAIL_MAX_LENGTH = 254
#: A password: long pass phrases are welcome; beyond this it is a mistake or an attack.
PASSWORD_MAX_LENGTH = 1024
#: A group name: at least 2 characters, at most 64.
GROUP_NAME_MIN_LENGTH = 2
GROUP_NAME_MAX_LENGTH = 64
#: A group's description.
GROUP_DESCRIPTION_MAX_LENGTH = 255
#: One authorized_keys line (an RSA 16384-bit key with a comment fits).
SSH_KEY_MAX_LENGTH = 16384

# -- API tokens --------------------------------------------------------------------------------

#: What a token is for ("laptop", "CI").
TOKEN_NAME_MAX_LENGTH = 100

# -- members -----------------------------------------------------------------------------------

#: A person's full name.
PERSON_NAME_MAX_LENGTH = 150
#: A phone number as typed (spaces, dots, a leading +).
PHONE_MAX_LENGTH = 40
#: An organization's name.
ORGANIZATION_NAME_MAX_LENGTH = 150
#: An organization's short name (slug).
ORGANIZATION_SLUG_MAX_LENGTH = 64
