"""The Docker adapter's contract: the same assertions on the fake and on the real client.

``FakeEngine`` stands for a Docker engine in every fast test of the services;
here it must answer as :class:`~chaton.adapters.docker.client.DockerEngine`
does against the session's own dockerd: networks, volumes and workloads made,
read and removed; a missing image, a gone workload and an engine that does not
answer raise the same errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chaton.adapters.docker import (
    EngineError,
    EngineUnreachable,
    ImageNotFound,
    NetworkSpec,
    ObjectNotFound,
    Port,
    VolumeSpec,
    WorkloadSpec,
)
from chaton.adapters.docker.client import DockerEngine
from chaton.adapters.docker.fake import FakeEngine
from chaton.core.servers import free_port

SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]
INSTANCE = "contract"
NETWORK = NetworkSpec("chaton-contract-net", INSTANCE)
VOLUME = VolumeSpec("chaton-contract-data", INSTANCE)


@dataclass
class Side:
    engine: FakeEngine | DockerEngine
    image: str
    missing_image: str


@pytest.fixture(params=SIDE)
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    """Yield an engine holding the test image and nothing of Chaton's: fake, or the real one."""
    if request.param == "fake":
        yield Side(FakeEngine(images={"chaton-test/web:1"}), "chaton-test/web:1",
                   "chaton-test/web:missing")
        return
    dockerd = request.getfixturevalue("docker_engine")  # cleans what Chaton made, after too
    images = request.getfixturevalue("web_images")
    engine = DockerEngine(dockerd.url, timeout=30, stop_timeout=1)
    try:
        yield Side(engine, images.one, images.missing)
    finally:
        engine.close()


@pytest.fixture(params=SIDE)
def down(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[FakeEngine | DockerEngine]:
    """Yield an engine that does not answer."""
    if request.param == "fake":
        yield FakeEngine(available=False)
        return
    engine = DockerEngine("unix:///nonexistent/chaton-contract/docker.sock", timeout=2)
    try:
        yield engine
    finally:
        engine.close()


def spec(image: str, *, port: int | None = None) -> WorkloadSpec:
    return WorkloadSpec(instance=INSTANCE, role="app", image=image, network=NETWORK.name,
                        alias="app", mounts=((VOLUME.name, "/data"),),
                        port=Port(8080, port) if port else None)


def test_networks_and_volumes_are_made_listed_and_removed(side: Side) -> None:
    engine = side.engine
    engine.create_network(NETWORK)
    engine.create_volume(VOLUME)
    snapshot = engine.snapshot()
    assert snapshot.networks == {NETWORK.name: INSTANCE}
    assert snapshot.volumes == {VOLUME.name: INSTANCE}
    assert engine.volume_mountpoint(VOLUME.name).endswith(f"/volumes/{VOLUME.name}/_data")
    with pytest.raises(ObjectNotFound):
        engine.volume_mountpoint("chaton-contract-nothing")
    with pytest.raises(EngineError):
        engine.create_network(NETWORK)  # the name is taken
    engine.remove_volume(VOLUME.name)
    engine.remove_network(NETWORK.name)
    engine.remove_network(NETWORK.name)  # one already gone is fine
    engine.remove_volume(VOLUME.name)
    after = engine.snapshot()
    assert after.networks == {} and after.volumes == {}


def test_a_workload_runs_is_read_and_is_removed(side: Side) -> None:
    engine = side.engine
    engine.create_network(NETWORK)
    engine.create_volume(VOLUME)
    port = free_port()
    wanted = spec(side.image, port=port)
    identifier = engine.run(wanted)
    workload = engine.workload(wanted.name)
    assert workload is not None and workload.id == identifier
    assert (workload.name, workload.kind, workload.instance, workload.role, workload.spec_hash,
            workload.image, workload.ports) == (
        wanted.name, "container", INSTANCE, "app", wanted.spec_hash, side.image, (port,))
    assert [item.name for item in engine.snapshot().workloads] == [wanted.name]
    assert port in engine.published_ports()
    with pytest.raises(EngineError):
        engine.run(wanted)  # the name is in use
    engine.remove(workload)
    engine.remove(workload)  # one already gone is fine
    assert engine.workload(wanted.name) is None
    assert engine.snapshot().workloads == ()
    with pytest.raises(ObjectNotFound):
        engine.execute(workload, ["true"])
    engine.remove_network(NETWORK.name)


def test_a_missing_image_is_named(side: Side) -> None:
    engine = side.engine
    assert engine.has_image(side.image) and not engine.has_image(side.missing_image)
    with pytest.raises(ImageNotFound) as raised:
        engine.ensure_image(side.missing_image, pull=False)
    assert isinstance(raised.value, LookupError)
    engine.create_network(NETWORK)
    with pytest.raises(ImageNotFound):
        engine.run(spec(side.missing_image))
    assert engine.snapshot().workloads == ()
    engine.remove_network(NETWORK.name)


def test_an_engine_that_does_not_answer_is_unreachable(down: FakeEngine | DockerEngine) -> None:
    with pytest.raises(EngineUnreachable) as raised:
        down.info()
    assert isinstance(raised.value, ConnectionError)
    with pytest.raises(EngineUnreachable):
        down.snapshot()
    with pytest.raises(EngineUnreachable):
        down.create_network(NETWORK)
