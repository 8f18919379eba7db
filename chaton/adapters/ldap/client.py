"""The real directory client, on python-ldap (OpenLDAP's libldap).

One :class:`LdapDirectory` may serve many threads (the web server's, the
worker's lanes): each thread gets its own bound connection, opened on first
use, because a python-ldap connection carries one conversation at a time and
interleaved results would mix. A connection that the server dropped (a restart,
an idle timeout, ``Can't contact LDAP server: Broken pipe``) is reopened and the
call retried once; only when that fails too does the directory count as
unreachable (:class:`LdapUnavailable`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
#: The errors that mean "this connection is gone", worth one reconnection. A timeout is
#: not one of them: the server is there but slow, and a retry would only double the wait.
_DROPPED = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR)

Result = TypeVar("Result")


class _Link:
    """One thread's bound connection (a holder, so that the directory can list them weakly)."""

    __slots__ = ("__weakref__", "connection", "generation")

    def __init__(self, connection: Any, generation: int) -> None:
        self.connection = connection
        self.generation = generation


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
        self._local = threading.local()
        #: Every thread's link, to close them all; weak, so a finished thread's goes with it.
        self._links: weakref.WeakSet[_Link] = weakref.WeakSet()
        self._links_lock = threading.Lock()
        #: Raised by close(): a link of an older generation was closed, and is reopened.
        self._generation = 0

    def _new_connection(self) -> Any:
        connection = ldap.initialize(self.url, bytes_mode=False)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        connection.set_option(ldap.OPT_TIMEOUT, max(self.timeout, 60.0))
        connection.set_option(ldap.OPT_REFERRALS, 0)
        connection.protocol_version = 3
        return connection

    def _connect(self) -> Any:
        """Return this thread's bound connection, opening it if needed. Raise LdapError."""
        link: _Link | None = getattr(self._local, "link", None)
        if link is None or link.generation != self._generation:
            connection = self._new_connection()
            try:
                if self.bind_dn:
                    connection.simple_bind_s(self.bind_dn, self._bind_password)
                elif self.url.startswith("ldapi://"):
                    connection.sasl_non_interactive_bind_s("EXTERNAL")
            except ldap.LDAPError as error:
                raise _translate(error) from None
            link = _Link(connection, self._generation)
            self._local.link = link
            with self._links_lock:
                self._links.add(link)
        return link.connection

    def _drop(self) -> None:
        """Forget this thread's connection (the server dropped it): the next call reopens."""
        link: _Link | None = getattr(self._local, "link", None)
        self._local.link = None
        if link is not None:
            with self._links_lock:
                self._links.discard(link)
            _unbind(link.connection)

    def _call(self, operation: Callable[[Any, bool], Result]) -> Result:
        """Run ``operation(connection, retrying)`` on this thread's connection; return its result.

        When the connection turns out dropped, reopen it and run the operation once more
        with ``retrying`` true. Raise LdapUnavailable when that fails too, or the adapter's
        error for any other failure.
        """
        retrying = False
        while True:
            connection = self._connect()
            try:
                return operation(connection, retrying)
            except ldap.LDAPError as error:
                translated = _translate(error)
                if isinstance(translated, LdapUnavailable):
                    self._drop()
                    if isinstance(error, _DROPPED) and not retrying:
                        retrying = True
                        continue
                raise translated from None

    def close(self) -> None:
        """Close every thread's connection (none may be in use); a later call reopens one."""
        self._local.link = None
        with self._links_lock:
            self._generation += 1
            links, self._links = list(self._links), weakref.WeakSet()
        for link in links:
            _unbind(link.connection)

    def read_subtree(self, base: str, attributes: Sequence[str]) -> dict[str, Attributes]:
        normalized_base = normalize_dn(base)

        def operation(connection: Any, retrying: bool) -> dict[str, Attributes]:
            entries: dict[str, Attributes] = {}
            page = SimplePagedResultsControl(True, size=PAGE_SIZE, cookie="")
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

        return self._call(operation)

    def exists(self, dn: str) -> bool:
        def operation(connection: Any, retrying: bool) -> bool:
            try:
                connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
            except ldap.NO_SUCH_OBJECT:
                return False
            return True

        return self._call(operation)

    def read(self, dns: Sequence[str], attributes: Sequence[str]) -> dict[str, Attributes]:
        def operation(connection: Any, retrying: bool) -> dict[str, Attributes]:
            entries: dict[str, Attributes] = {}
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

        return self._call(operation)

    def search(self, base: str, filter_template: str, values: Sequence[str],
               attributes: Sequence[str]) -> dict[str, Attributes]:
        search_filter = ldap.filter.filter_format(filter_template.replace("{}", "%s"),
                                                  list(values))

        def operation(connection: Any, retrying: bool) -> list[tuple[str | None, Any]]:
            try:
                found: list[tuple[str | None, Any]] = connection.search_s(
                    base, ldap.SCOPE_SUBTREE, search_filter, list(attributes))
            except ldap.NO_SUCH_OBJECT:
                return []
            return found

        return {normalize_dn(dn): {name.lower(): list(items) for name, items in found.items()}
                for dn, found in self._call(operation) if dn is not None}

    def apply(self, changes: Sequence[Change]) -> list[LdapError | None]:
        """Apply ``changes`` in order; return each one's error or None (see the protocol).

        When the connection drops half way, the changes whose answer came back stay
        counted and the others are sent again on a new connection. A change that was
        sent but not answered may have been applied: sent again, an add that meets its
        entry, or a delete that meets none, counts as done.
        """
        outcomes: list[LdapError | None] = []
        #: Index past the last change sent on a connection that then dropped.
        sent_before_drop = 0
        sent = 0

        def operation(connection: Any, retrying: bool) -> list[LdapError | None]:
            nonlocal sent_before_drop, sent
            if retrying:
                sent_before_drop = sent
            for start in range(len(outcomes), len(changes), PIPELINE_WINDOW):
                window = changes[start:start + PIPELINE_WINDOW]
                # Send the whole window, then collect: the server works while we wait.
                message_ids = []
                for change in window:
                    message_ids.append(self._send(connection, change))
                    sent = max(sent, start + len(message_ids))
                for index, message_id in enumerate(message_ids, start):
                    try:
                        connection.result3(message_id)
                        outcomes.append(None)
                    except ldap.LDAPError as error:
                        translated = _translate(error)
                        if isinstance(translated, LdapUnavailable):
                            raise
                        outcomes.append(None if index < sent_before_drop and _already_done(
                            changes[index], translated) else translated)
            return outcomes

        return self._call(operation)

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
            _unbind(connection)
        return True


def _unbind(connection: Any) -> None:
    """Close ``connection``, whatever state it is in."""
    try:
        connection.unbind_s()
    except ldap.LDAPError:
        pass


def _already_done(change: Change, error: LdapError) -> bool:
    """Return whether ``error``, met by ``change`` sent again after a drop, means it was applied."""
    return ((change.kind == "add" and isinstance(error, LdapAlreadyExists))
            or (change.kind == "delete" and isinstance(error, LdapNoSuchEntry)))
