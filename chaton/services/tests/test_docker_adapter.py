"""The Docker adapter's pieces that need no engine: specs, labels, health, files, errors."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace

import pytest

from chaton.adapters.docker import (
    EngineUnreachable,
    Port,
    WorkloadSpec,
    files_archive,
    health_from_status,
)
from chaton.adapters.docker.client import DockerEngine
from chaton.core.servers import free_port

SPEC = WorkloadSpec(instance="pad", role="app", image="chaton-test/web:1", network="chaton-pad",
                    alias="app", environment=(("A", "1"),), mounts=(("chaton-pad-data", "/data"),),
                    port=Port(8080, 20000))


def test_a_spec_is_named_and_labelled_after_its_hash() -> None:
    assert SPEC.name == f"chaton-pad-app-{SPEC.spec_hash[:8]}"
    assert SPEC.labels() == {"org.chaton.owned": "1", "org.chaton.instance": "pad",
                             "org.chaton.role": "app", "org.chaton.spec": SPEC.spec_hash}
    same = replace(SPEC)  # a copy computes its hash again: the same
    assert same.spec_hash == SPEC.spec_hash
    for changed in (replace(SPEC, environment=(("A", "2"),)),
                    replace(SPEC, image="chaton-test/web:2"),
                    replace(SPEC, port=Port(8080, 20001)),
                    replace(SPEC, files=(("/etc/a", "b"),))):
        assert changed.spec_hash != SPEC.spec_hash and changed.name != SPEC.name


@pytest.mark.parametrize(("status", "health"), [
    ("Up 3 minutes (healthy)", "healthy"), ("Up 2 seconds (health: starting)", "starting"),
    ("Up 1 minute (unhealthy)", "unhealthy"), ("Up 5 minutes", "none"),
    ("Exited (0) 2 seconds ago", "none"),
])
def test_health_is_read_from_the_listed_status(status: str, health: str) -> None:
    assert health_from_status(status) == health


def test_files_become_a_tar_relative_to_the_root() -> None:
    archive = tarfile.open(fileobj=io.BytesIO(files_archive(
        [("/srv/cfg/conf.php", "; Chaton\n"), ("/www/a.txt", "é")])))
    members = {member.name: member for member in archive.getmembers()}
    assert set(members) == {"srv/cfg/conf.php", "www/a.txt"}
    assert members["srv/cfg/conf.php"].mode == 0o644
    extracted = archive.extractfile(members["www/a.txt"])
    assert extracted is not None and extracted.read() == "é".encode()


@pytest.mark.parametrize("url", [
    "unix:///tmp/chaton-no-such-engine/docker.sock",
    f"tcp://127.0.0.1:{free_port()}",
])
def test_an_endpoint_that_does_not_answer_is_engine_unreachable(url: str) -> None:
    engine = DockerEngine(url, timeout=3)  # nothing is sent yet
    with pytest.raises(EngineUnreachable, match="does not answer"):
        engine.info()
    with pytest.raises(ConnectionError):  # the built-in it also is
        engine.snapshot()
