"""The adapters: the only code that talks to the servers Chaton drives. Nothing here imports Django.

Each adapter is one package of one shape, ``chaton/adapters/<name>/``:

- ``__init__.py``: the protocol apps call, its values, its exception tree (drawn in the
  docstring), and ``use_<name>()``;
- ``client.py``: the real client;
- ``fake.py``: an in-memory fake with the same interface and the same errors, for the fast
  tests (``tests/contract/`` runs the same assertions against both).

Today: ``ldap``, ``docker``, ``restic``, ``caddy``. The modules beside them (``slapd.py``,
``dockerd.py``, ``postgres.py``, and ``caddy/server.py``) start and stop servers Chaton runs
itself; they are not clients apps call, so they have no fake.

**One injection shape.** Each app asks for its client in one place (``directory.backend.
get_directory``, ``services.engine.engine_for``, ``services.proxy.proxy_admin``,
``backups.engine.restic_for``), which first asks the adapter's :class:`Slot`. Tests and
benchmarks fill the slot for a block::

    with use_docker(FakeEngine()):          # this client for every host
        ...
    with use_restic(lambda repository: …):  # a client made per key (host, repository)
        ...

A replacement is either a client (an object with the protocol's methods), used for every
key, or a function of the key returning one. The key is what names a server: the ``Host``
for Docker, the ``Repository`` for restic, None for LDAP and Caddy (one server each). The
slot is the process's, not the thread's: worker lanes and live servers started in the block
reach the replacement too. Blocks nest; leaving one puts the previous replacement back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

Client = TypeVar("Client")


@dataclass(frozen=True)
class _Held(Generic[Client]):
    """What a slot holds: the replacement, whether it is a client itself, and its details."""

    replacement: Client | Callable[[Any], Client]
    is_client: bool
    details: dict[str, Any]


class Slot(Generic[Client]):
    """Where an adapter's replacement sits while a test or a benchmark holds one."""

    def __init__(self, name: str, protocol: type[Any]) -> None:
        """Given the adapter's name and its protocol, return an empty slot.

        The protocol is runtime-checkable: a replacement that has its methods is a client,
        anything else callable is a function of the key. (``type[Any]``: a protocol is not
        a concrete class a type checker accepts as ``type[Client]``.)
        """
        self.name = name
        self.protocol = protocol
        # One reference, swapped whole: a reader never sees a replacement with the
        # details of another.
        self._held: _Held[Client] | None = None

    def current(self, key: Any = None) -> Client | None:
        """Given the key of a server, return the replacement's client for it, or None when
        the slot is empty (then the app makes its real client)."""
        held = self._held
        if held is None:
            return None
        if held.is_client:
            return cast(Client, held.replacement)
        return cast(Callable[[Any], Client], held.replacement)(key)

    def detail(self, name: str) -> Any:
        """Return a detail given with the replacement (the LDAP base DN), or None."""
        held = self._held
        return held.details.get(name) if held is not None else None

    @contextmanager
    def use(self, replacement: Client | Callable[[Any], Client], **details: Any
            ) -> Iterator[Client | Callable[[Any], Client]]:
        """Within the block, every client of this adapter comes from ``replacement``; yield it.

        Raise TypeError when ``replacement`` is neither a client nor callable.
        """
        is_client = isinstance(replacement, self.protocol)
        if not is_client and not callable(replacement):
            raise TypeError(f"use_{self.name}() takes a client or a function of the key, "
                            f"not {type(replacement).__name__}")
        previous, self._held = self._held, _Held(replacement, is_client, details)
        try:
            yield replacement
        finally:
            self._held = previous
