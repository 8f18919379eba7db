"""``chaton ssh-keys [--config PATH] USER``: sshd's ``AuthorizedKeysCommand``.

sshd runs it at every login attempt with the user name; it prints that user's
SSH public keys, one per line, if and only if the user is an account in the
directory, a member of the SSH group (``directory.ssh_group``, ``tech`` by
default) and not past its ``shadowExpire`` (a day of the collective's time
zone, ``time_zone``). Otherwise it prints nothing and exits 0, and sshd
refuses the key. In ``sshd_config``::

    AuthorizedKeysCommand /usr/local/bin/chaton ssh-keys %u
    AuthorizedKeysCommandUser root

The Unix account itself (uid, home, shell) comes from nss (nslcd or sssd)
reading the same directory: sshd asks for it before it runs this command.

Exit status: 0 keys printed or none granted; 1 the configuration is unusable
or the directory cannot be reached (one line on stderr, no key: sshd treats it
as "no keys"); 2 bad usage.

It runs at every connection, so it starts fast: no Django, no typer, no rich,
and python-ldap's C module ``_ldap`` rather than the ``ldap`` package built on
it, whose import (schema parsing, urllib, pyasn1 controls) costs about 70 ms —
more than the rest of the lookup. The calls used (initialize, set_option,
simple_bind, sasl_bind_s, search_ext, result4, unbind_ext) are the thin
wrappers of libldap that ``ldap.ldapobject`` itself calls; the integration
tests (tests/integration/test_ssh_login.py) run them against a real slapd, so
a change in python-ldap shows there.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from chaton.core import clock
from chaton.directory.names import RESERVED_UIDS, SSH_KEY_TYPES, UID_PATTERN
from chaton.project import config as config_module

USAGE = "usage: chaton ssh-keys [--config PATH] USER"

#: What ``chaton ssh-keys --help`` prints (help texts are in English, as for every command).
HELP = f"""{USAGE}

Print USER's SSH public keys, one per line, if USER is an account in the
directory, a member of the SSH group (directory.ssh_group) and not expired;
print nothing otherwise. sshd runs it as its AuthorizedKeysCommand:

    AuthorizedKeysCommand /usr/local/bin/chaton ssh-keys --config /etc/chaton/ssh-keys.toml %u
    AuthorizedKeysCommandUser root

Options:
  --config PATH  The configuration file (default: $CHATON_CONFIG, then ./chaton.toml).
                 sshd starts the command in / with an empty environment: give it.
                 A relative data_dir in it is read from the file's folder.
  -h, --help     Show this message and exit.

Exit status: 0 keys printed or none granted; 1 the configuration is unusable
or the directory cannot be reached (one line on stderr); 2 bad usage.
"""

_EPOCH = dt.date(1970, 1, 1)


#: Set from the configuration once it is read; messages before that are in English.
_language = "en"


def _(message: str) -> str:
    """Return ``message`` translated into the configured language (stdlib gettext).

    Loaded only when a message is printed: the usual, silent run pays nothing.
    """
    import gettext
    from pathlib import Path

    language = os.environ.get("CHATON_LANGUAGE") or _language
    catalogue = gettext.translation(
        "django", localedir=Path(__file__).resolve().parent.parent / "locale",
        languages=[language], fallback=True)
    return catalogue.gettext(message)


def escape_filter_value(value: str) -> str:
    """Given a string, return it escaped for a search filter value (RFC 4515).

    The same as ``ldap.filter.escape_filter_chars``, which cannot be imported
    without the whole ``ldap`` package.
    """
    return (value.replace("\\", r"\5c").replace("*", r"\2a").replace("(", r"\28")
            .replace(")", r"\29").replace("\x00", r"\00"))


def parse_arguments(argv: Sequence[str]) -> tuple[str | None, str]:
    """Given the arguments after ``ssh-keys``, return (configuration path or None, user).

    Raise ValueError with a one-line message for bad usage.
    """
    config_path: str | None = None
    positional: list[str] = []
    arguments = list(argv)
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument == "--config":
            if index + 1 >= len(arguments):
                raise ValueError(_("--config needs a path"))
            config_path = arguments[index + 1]
            index += 2
            continue
        if argument.startswith("--config="):
            config_path = argument.removeprefix("--config=")
        elif argument == "--":
            positional += arguments[index + 1:]
            break
        elif argument.startswith("-") and argument != "-":
            raise ValueError(_("unknown option %(option)s") % {"option": argument})
        else:
            positional.append(argument)
        index += 1
    if len(positional) != 1:
        raise ValueError(_("expected exactly one user name"))
    if config_path == "":
        raise ValueError(_("--config needs a path"))
    return config_path, positional[0]


def is_acceptable_uid(user: str) -> bool:
    """Return whether ``user`` could be a Chaton account at all (the uid alphabet, not reserved).

    Any other name is refused before the directory is asked: it cannot carry
    filter or DN syntax, and bots trying ``root`` cost nothing.
    """
    return UID_PATTERN.fullmatch(user) is not None and user not in RESERVED_UIDS


def connection_target(ldap_config: config_module.LdapConfig,
                      data_dir: os.PathLike[str] | str) -> tuple[str, str]:
    """Given the ``[ldap]`` configuration and the data directory, return (URL, bind method).

    The method is ``simple`` when a bind DN is configured, ``external`` (SASL
    EXTERNAL: the server knows the local user from the socket) for an ldapi://
    URL, else ``anonymous``. A managed slapd without a bind DN is reached on
    its ldapi socket in ``<data_dir>/slapd``: it refuses anonymous reads, and
    the admin password is Django-encrypted.
    """
    if ldap_config.bind_dn:
        return ldap_config.url, "simple"
    if ldap_config.url.startswith("ldapi://"):
        return ldap_config.url, "external"
    if ldap_config.managed:
        socket_path = os.path.join(os.fspath(data_dir), "slapd", "ldapi")
        return "ldapi://" + urllib.parse.quote(socket_path, safe=""), "external"
    return ldap_config.url, "anonymous"


def reads_managed_socket(ldap_config: config_module.LdapConfig) -> bool:
    """Return whether the directory is reached on the managed slapd's socket in the data
    directory (the case where :func:`connection_target` needs ``data_dir``)."""
    return (not ldap_config.bind_dn and not ldap_config.url.startswith("ldapi://")
            and ldap_config.managed)


class DirectoryUnreachable(Exception):
    """The directory could not be reached, refused the bind, or answered too slowly."""


def _describe(error: Exception) -> str:
    """Return a one-line description of a python-ldap error."""
    detail = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    text = str(detail.get("desc") or error or type(error).__name__)
    if detail.get("info"):
        text += f": {detail['info']}"
    return " ".join(text.split())


def fetch(settings: config_module.Config, user: str) -> tuple[list[bytes], list[bytes], bool]:
    """Given the configuration and a valid uid, return what the directory says of them.

    Return (``sshPublicKey`` values, ``shadowExpire`` values, whether the
    account is a member of the SSH group); empty lists when the account does
    not exist. The two base searches (account, group with a ``member``
    filter) are sent together, so the lookup costs one round trip after the
    bind. Raise DirectoryUnreachable for any failure to connect, bind or search.
    """
    import _ldap  # see the module docstring for why not ``ldap``

    ldap_config = settings.ldap
    base = ldap_config.base_dn
    account_dn = f"uid={user},ou=people,{base}"
    group_dn = f"cn={settings.directory.ssh_group},ou=groups,{base}"
    timeout = ldap_config.timeout
    url, method = connection_target(ldap_config, settings.data_dir)
    try:
        password = ldap_config.resolved_bind_password() if method == "simple" else ""
    except config_module.ConfigError as error:
        raise DirectoryUnreachable(str(error)) from None
    connection: Any = None
    try:
        connection = _ldap.initialize(url)
        connection.set_option(_ldap.OPT_PROTOCOL_VERSION, _ldap.VERSION3)
        connection.set_option(_ldap.OPT_NETWORK_TIMEOUT, timeout)
        connection.set_option(_ldap.OPT_TIMEOUT, timeout)
        connection.set_option(_ldap.OPT_REFERRALS, 0)
        if method == "simple":
            connection.result4(connection.simple_bind(ldap_config.bind_dn, password, None, None),
                               1, timeout, 0, 0, 0)
        elif method == "external":
            connection.sasl_bind_s("", "EXTERNAL", b"", None, None)
        account_search = connection.search_ext(
            account_dn, _ldap.SCOPE_BASE, "(objectClass=*)", ["sshPublicKey", "shadowExpire"],
            0, None, None, timeout, 0)
        group_search = connection.search_ext(
            group_dn, _ldap.SCOPE_BASE, f"(member={escape_filter_value(account_dn)})", ["1.1"],
            0, None, None, timeout, 0)
        attributes: dict[str, list[bytes]] = {}
        try:
            _kind, found, *_rest = connection.result4(account_search, 1, timeout, 0, 0, 0)
            for dn, values in found:
                if dn is not None:
                    attributes = {name.lower(): values[name] for name in values}
        except _ldap.NO_SUCH_OBJECT:
            pass  # no such account
        in_group = False
        try:
            _kind, found, *_rest = connection.result4(group_search, 1, timeout, 0, 0, 0)
            in_group = any(dn is not None for dn, _values in found)
        except _ldap.NO_SUCH_OBJECT:
            pass  # no such group: nobody may log in
    except _ldap.LDAPError as error:
        raise DirectoryUnreachable(f"{url}: {_describe(error)}") from None
    finally:
        if connection is not None:
            try:
                connection.unbind_ext(None, None)
            except _ldap.LDAPError:
                pass  # the link never opened, or is already gone: nothing to release
    return attributes.get("sshpublickey", []), attributes.get("shadowexpire", []), in_group


def is_expired(shadow_expire: list[bytes], now: float | None = None,
               zone: dt.tzinfo = dt.UTC) -> bool:
    """Given ``shadowExpire`` values (days since 1970-01-01), return whether the account expired.

    Expired from the first second of that day in ``zone``, the collective's
    time zone, where Chaton counts it (:func:`chaton.core.clock.first_day_after`).
    (pam_unix counts UTC days, so it is off by the zone's offset from UTC; the
    worker removes the entry itself at the collective's midnight.) ``now`` is a Unix time (default:
    the current one); ``-1`` or no value means never. An unreadable value
    counts as expired.
    """
    if not shadow_expire:
        return False
    try:
        day = int(shadow_expire[0])
    except ValueError:
        return True
    if day < 0:
        return False
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return (clock.local_day(moment, zone) - _EPOCH).days >= day


def authorized_lines(keys: list[bytes]) -> list[str]:
    """Given ``sshPublicKey`` values, return those that are plain one-line public keys.

    A value edited by hand into the directory with options (``command=…``,
    ``from=…``) or several lines would grant more than a login: it is dropped.
    """
    lines = []
    for value in keys:
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if not text or any(character in text for character in "\r\n\x00"):
            continue
        if text.split(None, 1)[0] in SSH_KEY_TYPES:
            lines.append(text)
    return lines


def main(argv: list[str]) -> int:
    """Given the arguments after ``ssh-keys``, print the user's keys if they may log in.

    Return the exit status: 0 (keys printed, or none granted), 1 (configuration
    or directory unusable: one line on stderr), 2 (bad usage: one line on stderr).
    """
    global _language
    options = argv[:argv.index("--")] if "--" in argv else argv
    if "--help" in options or "-h" in options:
        sys.stdout.write(HELP)
        return 0
    try:
        config_path, user = parse_arguments(argv)
    except ValueError as error:
        print(f"chaton ssh-keys: {error} ({USAGE})", file=sys.stderr)
        return 2
    if not is_acceptable_uid(user):
        return 0
    try:
        settings = config_module.load(config_path)
        zone = settings.resolved_time_zone()
    except config_module.ConfigError as error:
        print(f"chaton ssh-keys: {error}", file=sys.stderr)
        return 1
    _language = settings.language
    if settings.data_dir_from_working_directory and reads_managed_socket(settings.ldap):
        # sshd runs this in /: the data directory would be /var, and every login refused
        # with a misleading "cannot reach the directory".
        print(_("chaton ssh-keys: the data directory would be taken from the working "
                "directory (%(path)s): give --config FILE, whose data_dir is absolute or "
                "relative to the file") % {"path": settings.data_dir}, file=sys.stderr)
        return 1
    try:
        keys, shadow_expire, in_group = fetch(settings, user)
    except DirectoryUnreachable as error:
        print(_("chaton ssh-keys: cannot read the directory, no key given: %(error)s")
              % {"error": error}, file=sys.stderr)
        return 1
    if not in_group or is_expired(shadow_expire, zone=zone):
        return 0
    lines = authorized_lines(keys)
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
