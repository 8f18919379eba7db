"""What every ``chaton`` command shares: Django's lazy start, the consoles, parsing, the directory.

Django starts only when a command runs (:func:`setup_django`), after the
options are parsed, so ``chaton --help`` and a bad option answer at once and
``--config`` is honoured. Functions here that touch models import them inside,
because a module-level model import would need Django before it is set up.
"""

from __future__ import annotations

import datetime as dt
import socket
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from chaton.core.startup import setup_django as setup_django
from chaton.project.config import ConfigError

if TYPE_CHECKING:
    from chaton.adapters.slapd import ManagedSlapd
    from chaton.directory.models import Account


@dataclass
class Invocation:
    """The global options of the running command, set by the root callback."""

    #: The uid named by ``--as``: the account recorded as acting in the audit log.
    acting_uid: str | None = None


invocation = Invocation()

_console: Console | None = None


def console() -> Console:
    """Return the Rich console that writes to standard output (created on first use).

    Rich looks up ``sys.stdout`` at each write, so a test runner that swaps the
    stream still captures what is printed.
    """
    global _console
    if _console is None:
        # highlight=False: Rich would otherwise colour numbers and paths in plain messages;
        # soft_wrap: a long message stays one line, for grep and for scripts.
        _console = Console(highlight=False, soft_wrap=True)
    return _console


def cell(value: object, style: str = "") -> Text:
    """Return ``value`` as Rich text taken literally: a ``[`` in a name is never markup."""
    return Text("" if value is None else str(value), style=style)


def acting_user() -> Account | None:
    """Return the account named by ``--as``, or None when the command acts as the system.

    Raise NotFound when no account has that uid.
    """
    from chaton.directory.queries import account_by_uid

    if not invocation.acting_uid:
        return None
    return account_by_uid(invocation.acting_uid)


# -- dates -------------------------------------------------------------------


def parse_date(text: str, *, field: str) -> dt.date:
    """Given ``YYYY-MM-DD`` typed on the command line, return the date.

    Raise InvalidInput naming the expected format otherwise.
    """
    from django.utils.translation import gettext as _

    from chaton.core.errors import InvalidInput

    value = text.strip()
    try:
        # Only the plain calendar form: fromisoformat would also take "2025W011".
        if len(value) != 10:
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            _("“%(value)s” is not a date: expected YYYY-MM-DD, for example %(example)s.")
            % {"value": value, "example": "2025-03-31"}, field=field) from None


def parse_until(text: str, *, field: str) -> dt.datetime:
    """Given ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``, return the moment an access ends.

    A plain date means "through that day": the access ends at midnight at the
    end of it, in the collective's time zone. A time without a zone is taken in
    that zone too. Raise InvalidInput for anything else.
    """
    from django.utils import timezone
    from django.utils.translation import gettext as _

    from chaton.core import clock
    from chaton.core.errors import InvalidInput

    value = text.strip()
    if len(value) == 10:
        day = parse_date(value, field=field)
        return clock.start_of_day(day + dt.timedelta(days=1))
    try:
        if len(value) < 16 or value[10] not in "T ":
            raise ValueError(value)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            _("“%(value)s” is not a date: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM, for "
              "example %(example)s.") % {"value": value, "example": "2025-03-31"},
            field=field) from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


# -- the managed directory -----------------------------------------------------


def managed_slapd() -> ManagedSlapd:
    """Return (not started) the slapd Chaton manages in its data directory.

    Raise ConfigError when ``ldap.url`` is not a loopback ``ldap://`` URL, the
    only kind a managed slapd listens on.
    """
    from django.conf import settings

    from chaton.adapters.slapd import ManagedSlapd
    from chaton.directory.backend import managed_admin_password, managed_slapd_dir

    config = settings.CHATON.ldap
    url = urllib.parse.urlsplit(config.url)
    if url.scheme != "ldap" or url.hostname not in {"127.0.0.1", "localhost"}:
        raise ConfigError(f"ldap.url = {config.url!r}: a managed slapd listens on "
                          "ldap://127.0.0.1:PORT; set ldap.managed = false for another server")
    try:
        port = url.port or 389
    except ValueError:
        raise ConfigError(f"ldap.url = {config.url!r}: the port is not a number") from None
    return ManagedSlapd(managed_slapd_dir(), port=port, base_dn=config.base_dn,
                        admin_password=managed_admin_password())


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether something accepts TCP connections on ``host:port`` right now."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@contextmanager
def directory_running() -> Iterator[None]:
    """Make sure the managed slapd answers for the duration of a one-shot command.

    With an unmanaged directory, or when the managed slapd already runs (say
    under ``chaton serve``), do nothing. Otherwise start it, and stop it at the
    end. Raise SlapdError when it does not start.
    """
    from django.conf import settings

    if not settings.CHATON.ldap.managed:
        yield
        return
    slapd = managed_slapd()
    if port_answers(slapd.port):
        yield
        return
    slapd.stop_stale()
    slapd.start()
    try:
        yield
    finally:
        slapd.stop()
