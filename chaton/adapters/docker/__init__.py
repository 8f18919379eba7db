"""The Docker adapter: what Chaton needs of one Docker Engine endpoint.

The :class:`Engine` protocol is what apps call; the real client is
:class:`chaton.adapters.docker.client.DockerEngine`, over the Docker SDK
(``docker``), and :class:`chaton.adapters.docker.fake.FakeEngine` the same
interface in memory, for unit tests. One ``DockerEngine`` talks to one
endpoint: a local socket (``unix:///var/run/docker.sock``), TCP with TLS files
(``tcp://host:2376``), or SSH (``ssh://user@host``, through the ``ssh`` program, which the SDK
starts itself). On a Swarm manager (``swarm=True``) the workloads are Swarm
services published in host mode; elsewhere they are containers.

Everything Chaton creates carries its labels, and only what carries them is
ever listed, changed or removed::

    org.chaton.owned=1               Chaton made it
    org.chaton.instance=<slug>       for this instance
    org.chaton.role=<role>           app, database (workloads only)
    org.chaton.spec=<hash>           the hash of the desired spec it was made from
    org.chaton.workload=<name>       on a Swarm config: the service it is a file of

A no-op reconcile reads a host in three or four list calls (workloads,
networks, volumes, and a Swarm's tasks) and never inspects one object.

Exceptions::

    DockerError(Exception)
    ├── EngineUnreachable(DockerError, ConnectionError)  the endpoint does not answer
    ├── ImageNotFound(DockerError, LookupError)          the image is not on the engine and may
    │                                                    not (or could not) be pulled
    ├── ObjectNotFound(DockerError, LookupError)         a container, service, network or volume
    │                                                    is gone
    ├── PortInUse(DockerError, OSError)                  a published host port is taken
    └── EngineError(DockerError, RuntimeError)           the engine refused a request

Nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import re
import tarfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

from chaton.adapters import Slot

logger = logging.getLogger("chaton.docker")

LABEL_OWNED = "org.chaton.owned"
LABEL_INSTANCE = "org.chaton.instance"
LABEL_ROLE = "org.chaton.role"
LABEL_SPEC = "org.chaton.spec"
LABEL_WORKLOAD = "org.chaton.workload"
OWNED_FILTER = f"{LABEL_OWNED}=1"

#: Seconds a container has to stop on SIGTERM before it is killed.
STOP_TIMEOUT = 10
#: Seconds to wait for a removed Swarm service's tasks to be gone (they hold its port).
SERVICE_GONE_TIMEOUT = 30

WorkloadKind = Literal["container", "service"]


class DockerError(Exception):
    """Something went wrong with the Docker engine; the message says what, for people."""


class EngineUnreachable(DockerError, ConnectionError):
    pass


class ImageNotFound(DockerError, LookupError):
    pass


class ObjectNotFound(DockerError, LookupError):
    pass


class PortInUse(DockerError, OSError):
    def __init__(self, message: str, *, port: int | None = None) -> None:
        super().__init__(message)
        self.port = port


class EngineError(DockerError, RuntimeError):
    pass


# -- what Chaton wants ---------------------------------------------------------------------------


def owned_labels(instance: str) -> dict[str, str]:
    """Given an instance's slug, return the labels that mark an object as Chaton's, for it."""
    return {LABEL_OWNED: "1", LABEL_INSTANCE: instance}


@dataclass(frozen=True)
class NetworkSpec:
    """An instance's own network: its workloads find each other there by alias."""

    name: str
    instance: str


@dataclass(frozen=True)
class VolumeSpec:
    """A named volume of an instance (its data)."""

    name: str
    instance: str


@dataclass(frozen=True)
class Port:
    """A published port: ``host_ip:host_port`` on the engine's host → ``container_port``.

    An empty ``host_ip`` binds every interface. A Swarm service cannot choose:
    its node's gateway bridge decides (``host_binding_ipv4``).
    """

    container_port: int
    host_port: int
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class WorkloadSpec:
    """Everything a container (or Swarm service) of an instance is made from.

    Its hash, in the ``org.chaton.spec`` label, is how a reconcile tells
    "as wanted" from "changed" without inspecting anything; it is also part of
    the name, so that an upgrade's new container can run next to the old one.
    """

    instance: str
    role: str
    image: str
    network: str
    #: The name the other workloads of the instance reach this one by ("database").
    alias: str
    #: Sorted (name, value) pairs; values may hold secrets and are never logged.
    environment: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    #: (volume name, path inside) pairs.
    mounts: tuple[tuple[str, str], ...] = ()
    port: Port | None = None
    #: (absolute path inside, text) pairs written before it starts (a configuration file).
    files: tuple[tuple[str, str], ...] = ()

    @cached_property
    def spec_hash(self) -> str:
        """The hex SHA-256 of the spec (20 characters are plenty to tell specs apart)."""
        data = {
            "instance": self.instance, "role": self.role, "image": self.image,
            "network": self.network, "alias": self.alias,
            "environment": [list(pair) for pair in self.environment],
            "command": list(self.command), "mounts": [list(pair) for pair in self.mounts],
            "port": None if self.port is None else [self.port.container_port,
                                                    self.port.host_port, self.port.host_ip],
            "files": [list(pair) for pair in self.files],
        }
        encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:20]

    @property
    def name(self) -> str:
        """The container's (or service's) name: ``chaton-<instance>-<role>-<hash prefix>``."""
        return f"chaton-{self.instance}-{self.role}-{self.spec_hash[:8]}"

    def labels(self) -> dict[str, str]:
        return {**owned_labels(self.instance), LABEL_ROLE: self.role,
                LABEL_SPEC: self.spec_hash}


# -- what the engine holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One container, or Swarm service, that carries Chaton's labels, as the engine lists it.

    ``state`` is the container's (``running``, ``exited``, ``created``,
    ``restarting``, ``paused``, ``dead``), or for a service its newest task's
    (``running``, ``starting``, ``pending``, ``failed`` … and ``missing``
    when it has none). ``health`` is Docker's health status when the image
    has a HEALTHCHECK (``healthy``, ``unhealthy``, ``starting``), else ``none``.
    """

    id: str
    name: str
    kind: WorkloadKind
    instance: str
    role: str
    spec_hash: str
    image: str
    state: str
    health: str = "none"
    #: The host ports it publishes.
    ports: tuple[int, ...] = ()
    #: A service's environment as its spec holds it (None for a container: not listed).
    environment: tuple[tuple[str, str], ...] | None = None
    #: A service's replica count (None for a container).
    replicas: int | None = None
    #: Why a service's task is not running, when the engine says.
    detail: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class Snapshot:
    """What one engine holds of Chaton's: networks and volumes by name (→ instance slug),
    and every workload."""

    networks: dict[str, str]
    volumes: dict[str, str]
    workloads: tuple[Workload, ...]


@dataclass(frozen=True)
class EngineInfo:
    """Who answered: the engine's version, its name, and whether it manages a Swarm."""

    version: str
    name: str
    swarm_manager: bool


@dataclass(frozen=True)
class LoadedImage:
    """An image an archive brought onto an engine: its ``repository:tag`` (empty for an
    untagged one), its id (``sha256:<64 hex>``, the digest of its configuration: the same
    on every engine it is loaded on), and its size in bytes."""

    reference: str
    image_id: str
    size: int


#: An image id as the engine gives it; also how an instance is pinned to a loaded image.
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TCP endpoint with TLS: its CA, this client's certificate and key."""

    ca: str
    certificate: str
    key: str


@runtime_checkable
class Engine(Protocol):
    """What the services' reconciler needs of one Docker endpoint."""

    swarm: bool

    def info(self) -> EngineInfo: ...

    def snapshot(self) -> Snapshot: ...

    def workload(self, name: str) -> Workload | None: ...

    def published_ports(self) -> set[int]: ...

    def has_image(self, image: str) -> bool: ...

    def ensure_image(self, image: str, *, pull: bool, dry_run: bool = False) -> None: ...

    def load_images(self, archive: BinaryIO) -> list[LoadedImage]: ...

    def create_network(self, spec: NetworkSpec, *, dry_run: bool = False) -> None: ...

    def remove_network(self, name: str, *, dry_run: bool = False) -> None: ...

    def create_volume(self, spec: VolumeSpec, *, dry_run: bool = False) -> None: ...

    def remove_volume(self, name: str, *, dry_run: bool = False) -> None: ...

    def volume_mountpoint(self, name: str) -> str: ...

    def run(self, spec: WorkloadSpec, *, dry_run: bool = False) -> str: ...

    def start(self, workload: Workload, *, dry_run: bool = False) -> None: ...

    def remove(self, workload: Workload, *, dry_run: bool = False) -> None: ...

    def probe(self, address: str, port: int, path: str, *, timeout: float = 2.0) -> int: ...

    def execute(self, workload: Workload, command: Sequence[str], *, user: str = "",
                workdir: str = "") -> tuple[int, str]: ...

    def logs(self, workload: Workload, *, tail: int = 50) -> str: ...

    def close(self) -> None: ...


# -- helpers shared by the real engine and the fake ----------------------------------------------


_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def health_from_status(status: str) -> str:
    """Given a container's listed status ("Up 3 minutes (healthy)"), return its health."""
    found = _HEALTH.search(status)
    if not found:
        return "none"
    return "starting" if found.group(1) == "health: starting" else found.group(1)


def http_status(address: str, port: int, path: str, *, timeout: float = 2.0) -> int:
    """GET ``http://address:port/path`` and return the status code.

    Raise OSError (refused, reset, timed out) when nothing answers in HTTP.
    """
    # http.client, not urllib: no proxy from the environment may stand in between.
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "chaton-health"})
        response = connection.getresponse()
        response.read(65536)
        return response.status
    except http.client.HTTPException as error:
        raise OSError(f"not an HTTP answer: {error!r}") from None
    finally:
        connection.close()


def files_archive(files: Sequence[tuple[str, str]]) -> bytes:
    """Given (absolute path, text) pairs, return a tar of them, paths relative to ``/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, text in files:
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


#: Where a test's replacement for the real client sits (see :mod:`chaton.adapters`).
slot: Slot[Engine] = Slot("docker", Engine)


def use_docker(replacement: Engine | Callable[[Any], Engine]
              ) -> AbstractContextManager[Engine | Callable[[Any], Engine]]:
    """Within the block, every docker client comes from ``replacement``: an Engine, or a
    function of the host returning one (tests, benchmarks)."""
    return slot.use(replacement)
