"""An in-memory Docker engine for unit tests: same interface, same errors."""

from __future__ import annotations

import itertools
import json
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from chaton.adapters.docker import (
    LABEL_SPEC,
    EngineError,
    EngineInfo,
    EngineUnreachable,
    ImageNotFound,
    LoadedImage,
    NetworkSpec,
    ObjectNotFound,
    PortInUse,
    Snapshot,
    VolumeSpec,
    Workload,
    WorkloadSpec,
)


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
