"""A small typed client of one Docker Engine endpoint, over the Docker SDK (``docker``).

One :class:`DockerEngine` talks to one endpoint: a local socket
(``unix:///var/run/docker.sock``), TCP with TLS files (``tcp://host:2376``),
or SSH (``ssh://user@host``, through the ``ssh`` program, which the SDK
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

:class:`FakeEngine` has the same interface, in memory, for unit tests.
Nothing here imports Django.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import json
import logging
import re
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, BinaryIO, Literal, Protocol

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


def _split_environment(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        name, _sign, value = item.partition("=")
        pairs.append((name, value))
    return tuple(sorted(pairs))


# -- the real engine ----------------------------------------------------------------------------


_PORT_TAKEN = re.compile(r"address already in use|port is already allocated|"
                         r"host-mode port already in use", re.IGNORECASE)


class DockerEngine:
    """One Docker endpoint. The connection opens at the first call, never in the constructor.

    Every method raises EngineUnreachable when the endpoint does not answer,
    and EngineError when the engine refuses; the others are named per method.
    """

    def __init__(self, url: str, *, swarm: bool = False, tls: TlsFiles | None = None,
                 timeout: float = 30, stop_timeout: int = STOP_TIMEOUT) -> None:
        """Given an endpoint URL, whether it is a Swarm manager (workloads become services),
        TLS files for ``tcp://``, the seconds a call may take and a container has to stop."""
        self.url = url
        self.swarm = swarm
        self.tls = tls
        self.timeout = timeout
        self.stop_timeout = stop_timeout
        self._api: Any = None

    # -- plumbing

    @property
    def api(self) -> Any:
        """The SDK's low-level client (``docker.APIClient``), connected on first use."""
        if self._api is None:
            import docker
            import docker.tls

            tls: Any = False
            if self.tls is not None:
                tls = docker.tls.TLSConfig(client_cert=(self.tls.certificate, self.tls.key),
                                           ca_cert=self.tls.ca, verify=True)
            with self._errors():
                self._api = docker.APIClient(
                    base_url=self.url, version="auto", timeout=self.timeout, tls=tls,
                    use_ssh_client=self.url.startswith("ssh://"))
        return self._api

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        if self._api is not None:
            self._api.close()
            self._api = None

    @contextmanager
    def _errors(self, *, image: str | None = None, port: int | None = None,
                what: str = "") -> Iterator[None]:
        """Turn the SDK's and the transport's exceptions into this module's tree."""
        import docker.errors
        import requests.exceptions

        try:
            yield
        except docker.errors.ImageNotFound as error:
            raise ImageNotFound(f"image {image or ''} is not on the engine {self.url}: "
                                f"{_explanation(error)}") from None
        except docker.errors.NotFound as error:
            raise ObjectNotFound(f"{what or 'object'} not found on {self.url}: "
                                 f"{_explanation(error)}") from None
        except docker.errors.APIError as error:
            explanation = _explanation(error)
            if _PORT_TAKEN.search(explanation):
                raise PortInUse(f"port {port or '?'} is already in use on the host of "
                                f"{self.url}: {explanation}", port=port) from None
            raise EngineError(f"{self.url}: {explanation}") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                docker.errors.DockerException, OSError) as error:
            # The SDK raises its base class when it cannot even read the API version.
            raise EngineUnreachable(f"the Docker engine at {self.url} does not answer: "
                                    f"{_short(error)}") from None

    # -- reading

    def info(self) -> EngineInfo:
        """Return the engine's version, name and whether it is a Swarm manager."""
        with self._errors():
            information = self.api.info()
        swarm = information.get("Swarm") or {}
        return EngineInfo(version=str(information.get("ServerVersion", "")),
                          name=str(information.get("Name", "")),
                          swarm_manager=bool(swarm.get("ControlAvailable")))

    def snapshot(self) -> Snapshot:
        """Return every network, volume and workload that carries Chaton's labels."""
        with self._errors():
            networks = self.api.networks(filters={"label": [OWNED_FILTER]})
            volumes = self.api.volumes(filters={"label": [OWNED_FILTER]}).get("Volumes") or []
            workloads = self._services() if self.swarm else self._containers()
        return Snapshot(
            networks={network["Name"]: (network.get("Labels") or {}).get(LABEL_INSTANCE, "")
                      for network in networks},
            volumes={volume["Name"]: (volume.get("Labels") or {}).get(LABEL_INSTANCE, "")
                     for volume in volumes},
            workloads=tuple(workloads))

    def workload(self, name: str) -> Workload | None:
        """Return the workload called ``name`` as listed now, or None when there is none."""
        with self._errors():
            found = (self._services(name=name) if self.swarm
                     else self._containers(name=name))
        exact = [workload for workload in found if workload.name == name]
        return exact[0] if exact else None

    def _containers(self, *, name: str | None = None) -> list[Workload]:
        filters: dict[str, Any] = {"label": [OWNED_FILTER]}
        if name:
            filters["name"] = [f"^/{name}$"]
        workloads = []
        for item in self.api.containers(all=True, filters=filters):
            labels = item.get("Labels") or {}
            workloads.append(Workload(
                id=item["Id"], name=(item.get("Names") or ["/?"])[0].lstrip("/"),
                kind="container", instance=labels.get(LABEL_INSTANCE, ""),
                role=labels.get(LABEL_ROLE, ""), spec_hash=labels.get(LABEL_SPEC, ""),
                image=item.get("Image", ""), state=item.get("State", ""),
                health=health_from_status(item.get("Status", "")),
                ports=tuple(sorted({port["PublicPort"] for port in item.get("Ports") or []
                                    if port.get("PublicPort")}))))
        return workloads

    def _services(self, *, name: str | None = None) -> list[Workload]:
        filters: dict[str, Any] = {"label": [OWNED_FILTER]}
        if name:
            filters["name"] = [name]
        services = self.api.services(filters=filters)
        if not services:
            return []
        task_filters: dict[str, Any] = {"desired-state": ["running"]}
        if name:
            task_filters["service"] = [service["ID"] for service in services]
        tasks: dict[str, list[dict[str, Any]]] = {}
        for task in self.api.tasks(filters=task_filters):
            tasks.setdefault(task.get("ServiceID", ""), []).append(task)
        return [self._service_workload(service, tasks.get(service["ID"], []))
                for service in services]

    @staticmethod
    def _service_workload(service: dict[str, Any], tasks: list[dict[str, Any]]) -> Workload:
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        ports = tuple(sorted(port["PublishedPort"] for port in
                             (spec.get("EndpointSpec") or {}).get("Ports") or []
                             if port.get("PublishedPort")))
        # The newest task is the one that counts: an older one may be shutting down.
        tasks = sorted(tasks, key=lambda task: task.get("CreatedAt", ""))
        state, detail = "missing", ""
        if tasks:
            status = tasks[-1].get("Status") or {}
            state = status.get("State", "missing")
            detail = status.get("Err") or (status.get("Message", "") if state != "running"
                                            else "")
        return Workload(
            id=service["ID"], name=spec.get("Name", ""), kind="service",
            instance=labels.get(LABEL_INSTANCE, ""), role=labels.get(LABEL_ROLE, ""),
            spec_hash=labels.get(LABEL_SPEC, ""), image=container.get("Image", ""),
            state=state, ports=ports,
            environment=_split_environment(container.get("Env") or []),
            replicas=replicas if isinstance(replicas, int) else None, detail=detail)

    def published_ports(self) -> set[int]:
        """Return every host port published on the engine, by Chaton's workloads or others'."""
        with self._errors():
            ports = {port["PublicPort"] for item in self.api.containers(all=False)
                     for port in item.get("Ports") or [] if port.get("PublicPort")}
            if self.swarm:
                ports |= {port["PublishedPort"] for service in self.api.services()
                          for port in ((service.get("Spec") or {}).get("EndpointSpec") or {})
                          .get("Ports") or [] if port.get("PublishedPort")}
        return ports

    def has_image(self, image: str) -> bool:
        """Return whether ``image`` is on the engine."""
        try:
            with self._errors(image=image, what="image"):
                self.api.inspect_image(image)
        except (ImageNotFound, ObjectNotFound):
            return False
        return True

    def ensure_image(self, image: str, *, pull: bool, dry_run: bool = False) -> None:
        """Make sure ``image`` is on the engine: pull it when it is not and ``pull`` allows it.

        Raise ImageNotFound when it is not there and may not, or could not, be pulled.
        """
        if self.has_image(image):
            return
        if not pull:
            raise ImageNotFound(f"image {image} is not on the engine {self.url} (local images "
                                "are never pulled)")
        if dry_run:
            logger.info("dry run: would pull %s on %s", image, self.url)
            return
        logger.info("pulling %s on %s", image, self.url)
        try:
            with self._errors(image=image, what="image"):
                self.api.pull(image)
        except (EngineError, ObjectNotFound) as error:
            raise ImageNotFound(f"image {image} cannot be pulled on {self.url}: {error}") from None
        if not self.has_image(image):
            raise ImageNotFound(f"image {image} is still not on {self.url} after a pull")

    def load_images(self, archive: BinaryIO) -> list[LoadedImage]:
        """Load the images of an archive in ``docker save`` format (``docker load``) and
        return them, each with its id and size, in the order the engine named them.

        Raise EngineError when the engine refuses the archive (not an image
        archive, a layer that does not match …), EngineUnreachable.
        """
        names: list[str] = []
        with self._errors(what="image archive"):
            for message in self.api.load_image(archive):
                if not isinstance(message, dict):
                    continue
                if message.get("error"):
                    raise EngineError(f"{self.url} refused the image archive: "
                                      f"{message['error']}")
                text = str(message.get("stream", "")).strip()
                for prefix in ("Loaded image ID: ", "Loaded image: "):
                    if text.startswith(prefix):
                        names.append(text.removeprefix(prefix).strip())
        if not names:
            raise EngineError(f"{self.url} loaded no image from the archive: is it made by "
                              "docker save?")
        loaded = []
        for name in names:
            with self._errors(image=name, what="image"):
                details = self.api.inspect_image(name)
            loaded.append(LoadedImage(reference="" if IMAGE_ID.match(name) else name,
                                      image_id=str(details["Id"]),
                                      size=int(details.get("Size") or 0)))
        return loaded

    def logs(self, workload: Workload, *, tail: int = 50) -> str:
        """Return the last ``tail`` lines a workload wrote (stdout and stderr)."""
        with self._errors(what=workload.name):
            if workload.kind == "service":
                chunks = self.api.service_logs(workload.id, stdout=True, stderr=True,
                                               tail=tail, follow=False)
                raw = b"".join(chunks)
            else:
                raw = self.api.logs(workload.id, stdout=True, stderr=True, tail=tail)
        return bytes(raw).decode("utf-8", errors="replace")

    def probe(self, address: str, port: int, path: str, *, timeout: float = 2.0) -> int:
        """Return the HTTP status of ``GET http://address:port/path``. Raise OSError."""
        return http_status(address, port, path, timeout=timeout)

    # -- writing

    def create_network(self, spec: NetworkSpec, *, dry_run: bool = False) -> None:
        """Create an instance's network (overlay and attachable on a Swarm)."""
        if dry_run:
            logger.info("dry run: would create network %s on %s", spec.name, self.url)
            return
        with self._errors(what=f"network {spec.name}"):
            self.api.create_network(spec.name, driver="overlay" if self.swarm else "bridge",
                                    attachable=True if self.swarm else None,
                                    labels=owned_labels(spec.instance), check_duplicate=True)

    def remove_network(self, name: str, *, dry_run: bool = False) -> None:
        """Remove a network; one already gone is fine."""
        if dry_run:
            logger.info("dry run: would remove network %s on %s", name, self.url)
            return
        try:
            with self._errors(what=f"network {name}"):
                self.api.remove_network(name)
        except ObjectNotFound:
            pass

    def create_volume(self, spec: VolumeSpec, *, dry_run: bool = False) -> None:
        """Create a named volume (the local driver)."""
        if dry_run:
            logger.info("dry run: would create volume %s on %s", spec.name, self.url)
            return
        with self._errors(what=f"volume {spec.name}"):
            self.api.create_volume(spec.name, driver="local",
                                   labels=owned_labels(spec.instance))

    def remove_volume(self, name: str, *, dry_run: bool = False) -> None:
        """Remove a volume and the data in it; one already gone is fine."""
        if dry_run:
            logger.info("dry run: would remove volume %s on %s", name, self.url)
            return
        try:
            with self._errors(what=f"volume {name}"):
                self.api.remove_volume(name)
        except ObjectNotFound:
            pass

    def volume_mountpoint(self, name: str) -> str:
        """Return the directory that holds a volume's data on the engine's machine (any
        volume, Chaton's or not). Raise ObjectNotFound when there is no such volume."""
        with self._errors(what=f"volume {name}"):
            volume = self.api.inspect_volume(name)
        return str(volume.get("Mountpoint") or "")

    def run(self, spec: WorkloadSpec, *, dry_run: bool = False) -> str:
        """Create and start a container (a service on a Swarm) from ``spec``; return its id.

        A container that cannot start is removed again: nothing is left half
        made. Raise ImageNotFound, PortInUse, or EngineError (a name in use …).
        """
        if dry_run:
            logger.info("dry run: would create %s on %s", spec.name, self.url)
            return ""
        if not self.has_image(spec.image):
            raise ImageNotFound(f"image {spec.image} is not on the engine {self.url}")
        return self._run_service(spec) if self.swarm else self._run_container(spec)

    def _run_container(self, spec: WorkloadSpec) -> str:
        api = self.api
        port_bindings: dict[int, Any] = {}
        if spec.port is not None:
            port_bindings[spec.port.container_port] = (spec.port.host_ip, spec.port.host_port)
        host_config = api.create_host_config(
            port_bindings=port_bindings or None,
            binds={volume: {"bind": path, "mode": "rw"} for volume, path in spec.mounts} or None,
            restart_policy={"Name": "unless-stopped"},
            network_mode=spec.network)
        networking = api.create_networking_config(
            {spec.network: api.create_endpoint_config(aliases=[spec.alias])})
        port = spec.port.host_port if spec.port else None
        with self._errors(image=spec.image, port=port, what=spec.name):
            created = api.create_container(
                spec.image, command=list(spec.command) or None, name=spec.name,
                environment=[f"{name}={value}" for name, value in spec.environment],
                labels=spec.labels(), host_config=host_config, networking_config=networking,
                ports=[spec.port.container_port] if spec.port else None, detach=True)
        identifier: str = created["Id"]
        try:
            with self._errors(image=spec.image, port=port, what=spec.name):
                if spec.files:
                    api.put_archive(identifier, "/", files_archive(spec.files))
                api.start(identifier)
        except DockerError:
            self._force_remove(identifier)
            raise
        return identifier

    def _force_remove(self, identifier: str) -> None:
        try:
            with self._errors():
                self.api.remove_container(identifier, force=True)
        except DockerError as error:
            logger.warning("cannot remove the container %s that did not start: %s",
                           identifier, error)

    def _run_service(self, spec: WorkloadSpec) -> str:
        import docker.types

        container = docker.types.ContainerSpec(
            spec.image, args=list(spec.command) or None,
            env=[f"{name}={value}" for name, value in spec.environment],
            mounts=[docker.types.Mount(target=path, source=volume, type="volume")
                    for volume, path in spec.mounts],
            configs=[self._config(spec, path, text) for path, text in spec.files] or None,
            stop_grace_period=self.stop_timeout * 1_000_000_000)
        template = docker.types.TaskTemplate(
            container, restart_policy=docker.types.RestartPolicy(condition="any"),
            networks=[docker.types.NetworkAttachmentConfig(spec.network,
                                                           aliases=[spec.alias])])
        endpoint = None
        if spec.port is not None:
            # Host mode: the routing mesh needs IPVS, and the proxy dials the host anyway.
            endpoint = docker.types.EndpointSpec(ports={
                spec.port.host_port: (spec.port.container_port, "tcp", "host")})
        port = spec.port.host_port if spec.port else None
        with self._errors(image=spec.image, port=port, what=spec.name):
            created = self.api.create_service(
                template, name=spec.name, labels=spec.labels(),
                mode=docker.types.ServiceMode("replicated", replicas=1),
                endpoint_spec=endpoint)
        identifier: str = created["ID"]
        return identifier

    def _config(self, spec: WorkloadSpec, path: str, text: str) -> Any:
        """Return a reference to a Swarm config holding one of a service's files, made once
        (configs cannot change: a new content is a new spec, hence a new name)."""
        import docker.types

        digest = hashlib.sha256(f"{path}\n{text}".encode()).hexdigest()[:12]
        name = f"{spec.name}-{digest}"
        with self._errors(what=f"config {name}"):
            found = self.api.configs(filters={"name": [name]})
            exact = [config for config in found if config["Spec"]["Name"] == name]
            if exact:
                identifier = exact[0]["ID"]
            else:
                identifier = self.api.create_config(
                    name, text.encode(), labels={**spec.labels(), LABEL_WORKLOAD: spec.name}
                )["ID"]
        return docker.types.ConfigReference(identifier, name, filename=path, mode=0o444)

    def _remove_configs(self, workload: Workload) -> None:
        with self._errors(what=f"configs of {workload.name}"):
            for config in self.api.configs(
                    filters={"label": [f"{LABEL_WORKLOAD}={workload.name}"]}):
                try:
                    with self._errors(what=f"config {config['ID']}"):
                        self.api.remove_config(config["ID"])
                except (ObjectNotFound, EngineError) as error:
                    logger.warning("cannot remove the config %s: %s", config["ID"], error)

    def execute(self, workload: Workload, command: Sequence[str], *, user: str = "",
                workdir: str = "") -> tuple[int, str]:
        """Run ``command`` in a running workload (a service: its task's container on this
        engine); return (exit code, output). Raise ObjectNotFound when none runs."""
        with self._errors(what=workload.name):
            identifier = workload.id
            if workload.kind == "service":
                running = self.api.containers(filters={
                    "label": [f"com.docker.swarm.service.id={workload.id}"]})
                if not running:
                    raise ObjectNotFound(f"no task of {workload.name} runs on {self.url}")
                identifier = running[0]["Id"]
            execution = self.api.exec_create(identifier, list(command), user=user or "",
                                             workdir=workdir or None)
            output = self.api.exec_start(execution["Id"])
            code = self.api.exec_inspect(execution["Id"]).get("ExitCode")
        return (code if isinstance(code, int) else -1,
                bytes(output).decode("utf-8", errors="replace"))

    def start(self, workload: Workload, *, dry_run: bool = False) -> None:
        """Start a stopped container (a service is scaled back to one task)."""
        if dry_run:
            logger.info("dry run: would start %s on %s", workload.name, self.url)
            return
        with self._errors(what=workload.name):
            if workload.kind == "container":
                self.api.start(workload.id)
            else:
                import docker.types

                version = self.api.inspect_service(workload.id)["Version"]["Index"]
                self.api.update_service(workload.id, version=version,
                                        mode=docker.types.ServiceMode("replicated", replicas=1),
                                        fetch_current_spec=True)

    def remove(self, workload: Workload, *, dry_run: bool = False) -> None:
        """Stop and remove a workload; one already gone is fine.

        A container gets ``stop_timeout`` seconds to stop on SIGTERM. A
        service's removal returns once its tasks are gone, since they hold its
        published port.
        """
        if dry_run:
            logger.info("dry run: would remove %s on %s", workload.name, self.url)
            return
        try:
            with self._errors(what=workload.name):
                if workload.kind == "container":
                    if workload.state in ("running", "restarting", "paused"):
                        self.api.stop(workload.id, timeout=self.stop_timeout)
                    self.api.remove_container(workload.id, force=True)
                else:
                    self.api.remove_service(workload.id)
        except ObjectNotFound:
            return
        if workload.kind == "service":
            self._wait_service_gone(workload)
            self._remove_configs(workload)

    def _wait_service_gone(self, workload: Workload) -> None:
        limit = SERVICE_GONE_TIMEOUT + self.stop_timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._errors():
                containers = self.api.containers(
                    filters={"label": [f"com.docker.swarm.service.id={workload.id}"]})
            if not containers:
                return
            time.sleep(0.2)
        logger.warning("the tasks of the removed service %s are still there after %d s",
                       workload.name, limit)


def _explanation(error: Any) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    # urllib3's messages nest the whole connection pool; the last part says what went wrong.
    return text.rsplit(": ", 1)[-1].rstrip(")'\"") if len(text) > 200 else text


# -- the fake ------------------------------------------------------------------------------------


@dataclass
class _FakeWorkload:
    spec: WorkloadSpec
    workload: Workload


@dataclass
class FakeEngine:
    """An in-memory engine for unit tests, with the same interface as DockerEngine.

    ``images`` are present; an image in ``broken_images`` runs but never
    answers its health path. Set ``available`` false to make every call raise
    EngineUnreachable, put ports in ``taken_ports`` to make them clash, set
    ``fail_after`` to make the writes after that many raise EngineUnreachable
    (a run interrupted half way). ``calls`` counts each method's calls. Tests
    change workloads "by hand" with :meth:`stop_by_hand`, :meth:`remove_by_hand`
    and :meth:`relabel_by_hand`.
    """

    swarm: bool = False
    images: set[str] = field(default_factory=set)
    broken_images: set[str] = field(default_factory=set)
    taken_ports: set[int] = field(default_factory=set)
    available: bool = True
    networks: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    #: Volumes made "by hand" (not Chaton's), by name: their directory.
    mountpoints: dict[str, str] = field(default_factory=dict)
    workloads: dict[str, _FakeWorkload] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    fail_after: int | None = None
    writes: int = 0
    #: Every command executed: (workload name, command, user, working directory).
    executed: list[tuple[str, tuple[str, ...], str, str]] = field(default_factory=list)
    #: Make every executed command exit 1.
    failing_commands: bool = False
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _call(self, name: str, *, write: bool = False) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if not self.available:
            raise EngineUnreachable("the fake engine is down")
        if write:
            self.writes += 1
            if self.fail_after is not None and self.writes > self.fail_after:
                raise EngineUnreachable("the fake engine went away half way")

    def info(self) -> EngineInfo:
        self._call("info")
        return EngineInfo(version="fake", name="fake", swarm_manager=self.swarm)

    def snapshot(self) -> Snapshot:
        self._call("snapshot")
        return Snapshot(networks=dict(self.networks), volumes=dict(self.volumes),
                        workloads=tuple(item.workload for item in self.workloads.values()))

    def workload(self, name: str) -> Workload | None:
        self._call("workload")
        for item in self.workloads.values():
            if item.workload.name == name:
                return item.workload
        return None

    def published_ports(self) -> set[int]:
        self._call("published_ports")
        return set(self.taken_ports) | {port for item in self.workloads.values()
                                        for port in item.workload.ports}

    def has_image(self, image: str) -> bool:
        self._call("has_image")
        return image in self.images

    def ensure_image(self, image: str, *, pull: bool, dry_run: bool = False) -> None:
        if not self.has_image(image):
            raise ImageNotFound(f"image {image} is not on the fake engine")

    def load_images(self, archive: BinaryIO) -> list[LoadedImage]:
        """Read a ``docker save`` archive's ``manifest.json``: each entry's tags (or none)
        and its configuration's digest as the id; the images become present."""
        self._call("load_images", write=True)
        try:
            with tarfile.open(fileobj=archive, mode="r:*") as tar:
                member = tar.extractfile("manifest.json")
                entries = json.loads(member.read()) if member is not None else None
        except (tarfile.TarError, KeyError, ValueError) as error:
            raise EngineError(f"the fake engine refused the image archive: {error}") from None
        if not isinstance(entries, list) or not entries:
            raise EngineError("the fake engine loaded no image from the archive")
        loaded = []
        for entry in entries:
            image_id = "sha256:" + str(entry["Config"]).removeprefix("blobs/sha256/") \
                .removesuffix(".json")
            self.images.add(image_id)
            for reference in entry.get("RepoTags") or [""]:
                if reference:
                    self.images.add(reference)
                loaded.append(LoadedImage(reference, image_id, 0))
        return loaded

    def create_network(self, spec: NetworkSpec, *, dry_run: bool = False) -> None:
        self._call("create_network", write=not dry_run)
        if not dry_run:
            if spec.name in self.networks:
                raise EngineError(f"network {spec.name} already exists")
            self.networks[spec.name] = spec.instance

    def remove_network(self, name: str, *, dry_run: bool = False) -> None:
        self._call("remove_network", write=not dry_run)
        if not dry_run:
            if any(item.spec.network == name for item in self.workloads.values()):
                raise EngineError(f"network {name} is in use")
            self.networks.pop(name, None)

    def create_volume(self, spec: VolumeSpec, *, dry_run: bool = False) -> None:
        self._call("create_volume", write=not dry_run)
        if not dry_run:
            self.volumes[spec.name] = spec.instance

    def remove_volume(self, name: str, *, dry_run: bool = False) -> None:
        self._call("remove_volume", write=not dry_run)
        if not dry_run:
            self.volumes.pop(name, None)
            self.mountpoints.pop(name, None)

    def volume_mountpoint(self, name: str) -> str:
        """Return ``mountpoints[name]``, else where the local driver would keep a volume
        created here. Raise ObjectNotFound for a volume in neither."""
        self._call("volume_mountpoint")
        if name in self.mountpoints:
            return self.mountpoints[name]
        if name in self.volumes:
            return f"/var/lib/docker/volumes/{name}/_data"
        raise ObjectNotFound(f"volume {name} not found on the fake engine")

    def run(self, spec: WorkloadSpec, *, dry_run: bool = False) -> str:
        self._call("run", write=not dry_run)
        if dry_run:
            return ""
        if spec.image not in self.images:
            raise ImageNotFound(f"image {spec.image} is not on the fake engine")
        if any(item.workload.name == spec.name for item in self.workloads.values()):
            raise EngineError(f"the name {spec.name} is already in use")
        if spec.network not in self.networks:
            raise EngineError(f"network {spec.network} not found")
        in_use = set(self.taken_ports) | {port for item in self.workloads.values()
                                          for port in item.workload.ports}
        if spec.port is not None and spec.port.host_port in in_use:
            raise PortInUse(f"port {spec.port.host_port} is already in use",
                            port=spec.port.host_port)
        identifier = f"fake{next(self._ids):06d}"
        self.workloads[identifier] = _FakeWorkload(spec, Workload(
            id=identifier, name=spec.name, kind="service" if self.swarm else "container",
            instance=spec.instance, role=spec.role, spec_hash=spec.spec_hash,
            image=spec.image, state="running",
            health="unhealthy" if spec.image in self.broken_images else "healthy",
            ports=(spec.port.host_port,) if spec.port else (),
            environment=spec.environment if self.swarm else None,
            replicas=1 if self.swarm else None))
        return identifier

    def start(self, workload: Workload, *, dry_run: bool = False) -> None:
        self._call("start", write=not dry_run)
        if not dry_run and workload.id in self.workloads:
            item = self.workloads[workload.id]
            item.workload = replace(item.workload, state="running",
                                    replicas=1 if self.swarm else None)

    def remove(self, workload: Workload, *, dry_run: bool = False) -> None:
        self._call("remove", write=not dry_run)
        if not dry_run:
            self.workloads.pop(workload.id, None)

    def probe(self, address: str, port: int, path: str, *, timeout: float = 2.0) -> int:
        self._call("probe")
        for item in self.workloads.values():
            if port in item.workload.ports and item.workload.running:
                return 404 if item.workload.image in self.broken_images else 200
        raise ConnectionRefusedError(f"nothing listens on {address}:{port}")

    def execute(self, workload: Workload, command: Sequence[str], *, user: str = "",
                workdir: str = "") -> tuple[int, str]:
        self._call("execute", write=True)
        if workload.id not in self.workloads or not self.workloads[workload.id].workload.running:
            raise ObjectNotFound(f"{workload.name} does not run")
        self.executed.append((workload.name, tuple(command), user, workdir))
        return (1, "refused\n") if self.failing_commands else (0, "")

    def logs(self, workload: Workload, *, tail: int = 50) -> str:
        self._call("logs")
        return f"{workload.name} started\n"

    def close(self) -> None:
        pass

    # -- what people do by hand, for the drift tests

    def _find(self, instance: str, role: str) -> _FakeWorkload:
        for item in self.workloads.values():
            if item.workload.instance == instance and item.workload.role == role:
                return item
        raise KeyError(f"no {role} workload for {instance}")

    def stop_by_hand(self, instance: str, role: str = "app") -> None:
        """``docker stop`` (a service: scaled to zero)."""
        item = self._find(instance, role)
        item.workload = replace(item.workload, state="exited",
                                replicas=0 if self.swarm else None)

    def remove_by_hand(self, instance: str, role: str = "app") -> None:
        """``docker rm -f``."""
        item = self._find(instance, role)
        del self.workloads[item.workload.id]

    def relabel_by_hand(self, instance: str, role: str = "app",
                        labels: Mapping[str, str] | None = None) -> None:
        """Replace a workload as ``docker run`` by hand would: another spec behind its labels."""
        item = self._find(instance, role)
        item.workload = replace(item.workload, spec_hash=(labels or {}).get(LABEL_SPEC, "hand"))
