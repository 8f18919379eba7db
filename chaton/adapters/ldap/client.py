"""The real directory client, on python-ldap (OpenLDAP's libldap)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ldap
import ldap.filter
from ldap.controls import SimplePagedResultsControl

from chaton.adapters.ldap import (
    Attributes,
    Change,
    LdapAlreadyExists,
    LdapAuthError,
    LdapError,
    LdapNoSuchEntry,
    LdapRejected,
    LdapUnavailable,
    normalize_dn,
)

#: Writes in flight at once on the connection: enough to hide the round trips.
PIPELINE_WINDOW = 128
PAGE_SIZE = 2000


def _translate(error: ldap.LDAPError) -> LdapError:
    """Given a python-ldap exception, return the adapter's exception for it."""
    detail = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    message = str(detail.get("desc", error)) + (
        f": {detail['info']}" if detail.get("info") else "")
    if isinstance(error, ldap.SERVER_DOWN | ldap.TIMEOUT | ldap.CONNECT_ERROR | ldap.BUSY
                  | ldap.UNAVAILABLE):
        return LdapUnavailable(message)
    if isinstance(error, ldap.INVALID_CREDENTIALS | ldap.INSUFFICIENT_ACCESS
                  | ldap.STRONG_AUTH_REQUIRED | ldap.INAPPROPRIATE_AUTH):
        return LdapAuthError(message)
    if isinstance(error, ldap.NO_SUCH_OBJECT):
        return LdapNoSuchEntry(message)
    if isinstance(error, ldap.ALREADY_EXISTS):
        return LdapAlreadyExists(message)
    return LdapRejected(message)


class LdapDirectory:
    """A connection to one LDAP server, bound as ``bind_dn`` (or SASL EXTERNAL over ldapi)."""

    def __init__(self, url: str, bind_dn: str = "", bind_password: str = "",
                 *, timeout: float = 5.0) -> None:
        self.url = url
        self.bind_dn = bind_dn
        self._bind_password = bind_password
        self.timeout = timeout
        self._connection: Any = None

    def _new_connection(self) -> Any:
        connection = ldap.initialize(self.url, bytes_mode=False)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        connection.set_option(ldap.OPT_TIMEOUT, max(self.timeout, 60.0))
        connection.set_option(ldap.OPT_REFERRALS, 0)
        connection.protocol_version = 3
        return connection

    def _connect(self) -> Any:
        if self._connection is None:
            connection = self._new_connection()
            try:
                if self.bind_dn:
                    connection.simple_bind_s(self.bind_dn, self._bind_password)
                elif self.url.startswith("ldapi://"):
                    connection.sasl_non_interactive_bind_s("EXTERNAL")
            except ldap.LDAPError as error:
                raise _translate(error) from None
            self._connection = connection
        return self._connection

    @contextmanager
    def _calls(self) -> Iterator[Any]:
        """Yield the bound connection; turn python-ldap errors into ours, drop a dead link."""
        try:
            yield self._connect()
        except ldap.LDAPError as error:
            translated = _translate(error)
            if isinstance(translated, LdapUnavailable):
                self.close()
            raise translated from None

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.unbind_s()
            except ldap.LDAPError:
                pass
            self._connection = None

    def read_subtree(self, base: str, attributes: Sequence[str]) -> dict[str, Attributes]:
        entries: dict[str, Attributes] = {}
        normalized_base = normalize_dn(base)
        page = SimplePagedResultsControl(True, size=PAGE_SIZE, cookie="")
        with self._calls() as connection:
            while True:
                try:
                    message_id = connection.search_ext(
                        base, ldap.SCOPE_SUBTREE, "(objectClass=*)", list(attributes),
                        serverctrls=[page])
                    _, results, _, controls = connection.result3(message_id)
                except ldap.NO_SUCH_OBJECT:
                    return entries
                for dn, values in results:
                    if dn is None:  # a referral
                        continue
                    key = normalize_dn(dn)
                    if key != normalized_base:
                        # python-ldap already gives fresh lists: no copy (10k entries per read).
                        entries[key] = {name.lower(): items for name, items in values.items()}
                cookie = next((control.cookie for control in controls
                               if control.controlType == SimplePagedResultsControl.controlType),
                              b"")
                if not cookie:
                    return entries
                page.cookie = cookie

    def exists(self, dn: str) -> bool:
        with self._calls() as connection:
            try:
                connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
            except ldap.NO_SUCH_OBJECT:
                return False
        return True

    def read(self, dns: Sequence[str], attributes: Sequence[str]) -> dict[str, Attributes]:
        entries: dict[str, Attributes] = {}
        with self._calls() as connection:
            message_ids = [connection.search_ext(dn, ldap.SCOPE_BASE, "(objectClass=*)",
                                                 list(attributes)) for dn in dns]
            for message_id in message_ids:
                try:
                    _, results, _, _ = connection.result3(message_id)
                except ldap.NO_SUCH_OBJECT:
                    continue
                for dn, values in results:
                    if dn is not None:
                        entries[normalize_dn(dn)] = {name.lower(): list(items)
                                                     for name, items in values.items()}
        return entries

    def search(self, base: str, filter_template: str, values: Sequence[str],
               attributes: Sequence[str]) -> dict[str, Attributes]:
        search_filter = ldap.filter.filter_format(filter_template.replace("{}", "%s"),
                                                  list(values))
        with self._calls() as connection:
            try:
                results = connection.search_s(base, ldap.SCOPE_SUBTREE, search_filter,
                                              list(attributes))
            except ldap.NO_SUCH_OBJECT:
                return {}
        return {normalize_dn(dn): {name.lower(): list(items) for name, items in found.items()}
                for dn, found in results if dn is not None}

    def apply(self, changes: Sequence[Change]) -> list[LdapError | None]:
        outcomes: list[LdapError | None] = []
        with self._calls() as connection:
            for start in range(0, len(changes), PIPELINE_WINDOW):
                window = changes[start:start + PIPELINE_WINDOW]
                # Send the whole window, then collect: the server works while we wait.
                message_ids = [self._send(connection, change) for change in window]
                for message_id in message_ids:
                    try:
                        connection.result3(message_id)
                        outcomes.append(None)
                    except ldap.LDAPError as error:
                        translated = _translate(error)
                        if isinstance(translated, LdapUnavailable):
                            raise
                        outcomes.append(translated)
        return outcomes

    @staticmethod
    def _send(connection: Any, change: Change) -> int:
        if change.kind == "add":
            return connection.add_ext(change.dn, [(name, list(values))
                                                  for name, values in change.attributes.items()])
        if change.kind == "modify":
            return connection.modify_ext(change.dn, [
                (ldap.MOD_REPLACE, name, list(values) or None)
                for name, values in change.attributes.items()])
        return connection.delete_ext(change.dn)

    def check_password(self, dn: str, password: str) -> bool:
        if not password:
            return False  # an empty password would be an anonymous bind, which always "works"
        connection = self._new_connection()
        try:
            connection.simple_bind_s(dn, password)
        except (ldap.INVALID_CREDENTIALS, ldap.NO_SUCH_OBJECT, ldap.INVALID_DN_SYNTAX):
            return False
        except ldap.LDAPError as error:
            raise _translate(error) from None
        finally:
            try:
                connection.unbind_s()
            except ldap.LDAPError:
                pass
        return True
