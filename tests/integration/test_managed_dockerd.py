"""The Docker engine Chaton runs itself where no init system runs Docker's service.

Each test runs a real dockerd from a folder of its own under /tmp, on a socket
there (never the system's), with the same arguments as the tests' session
dockerd: published ports on loopback, no ``docker0`` bridge, the machine's
iptables left alone. It is stopped by its own pid, never by name. Nothing
here skips: a dockerd that does not start is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.dockerd import DockerdError, ManagedDockerd, engine_answers
from chaton.core.servers import process_is_alive
from chaton.testing.docker import free_address_pool
from chaton.testing.serve import serve_environment, start_serve

pytestmark = [pytest.mark.integration]



def _quiet_arguments(pool: str) -> list[str]:
    """Nothing another daemon of this machine could trip over (see chaton.testing.docker)."""
    return ["--ip", "127.0.0.1", "--bridge", "none", "--iptables=false", "--ip-forward=false",
            "--default-address-pool", f"base={pool},size=24"]


@pytest.fixture
def folder() -> Iterator[Path]:
    """A short folder of the test's own (sockets under it must stay short)."""
    path = Path(tempfile.mkdtemp(prefix="chaton-md-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _dockerd(folder: Path) -> ManagedDockerd:
    return ManagedDockerd(folder / "docker", socket_path=folder / "docker.sock",
                          arguments=_quiet_arguments(free_address_pool()))


def test_managed_dockerd_answers_on_its_socket_and_stops_by_its_pid(folder: Path) -> None:
    dockerd = _dockerd(folder)
    assert not engine_answers(dockerd.url)
    try:
        dockerd.start()
        pid = dockerd.pid
        assert pid is not None and process_is_alive(pid)
        assert engine_answers(dockerd.url)
        assert int(dockerd.pid_path.read_text().split()[0]) == pid
        # Its state is in its folder: data and exec roots, configuration, log.
        assert (folder / "docker" / "data").is_dir() and (folder / "docker" / "exec").is_dir()
        assert dockerd.config_path.is_file() and dockerd.log_path.is_file()
        dockerd.start()  # already running: nothing happens
        assert dockerd.pid == pid
        # A second engine on the same socket is refused, and the first keeps running.
        other = ManagedDockerd(folder / "other", socket_path=folder / "docker.sock",
                               arguments=_quiet_arguments(free_address_pool()))
        with pytest.raises(DockerdError, match="another Docker engine already answers"):
            other.start()
        assert process_is_alive(pid) and engine_answers(dockerd.url)
    finally:
        dockerd.stop()
    assert not process_is_alive(pid)
    assert not engine_answers(dockerd.url)
    assert not dockerd.pid_path.exists()


def test_a_dockerd_left_by_a_killed_run_is_stopped_at_the_next_start(folder: Path) -> None:
    first = _dockerd(folder)
    first.start()
    stale = first.pid
    assert stale is not None
    # The process that started it dies without stopping it: the next run takes over.
    first._process = None
    second = _dockerd(folder)
    try:
        second.start()
        assert second.pid != stale and not process_is_alive(stale)
        assert engine_answers(second.url)
    finally:
        second.stop()
        if process_is_alive(stale):  # only if the test failed: by its pid, never by name
            os.kill(stale, signal.SIGKILL)


def test_a_missing_dockerd_or_a_too_long_exec_root_is_an_error(folder: Path) -> None:
    missing = ManagedDockerd(folder / "docker", socket_path=folder / "docker.sock",
                             dockerd=str(folder / "no-dockerd"))
    with pytest.raises(DockerdError, match="not installed"):
        missing.start()
    deep = ManagedDockerd(folder / "docker", socket_path=folder / "docker.sock",
                          exec_root=folder / ("x" * 80))
    with pytest.raises(DockerdError, match="too long"):
        deep.start()


def test_serve_starts_its_dockerd_where_none_answers_and_stops_it(folder: Path) -> None:
    """``chaton serve`` with ``docker_managed = "yes"``: the default host's socket answers
    while the pages do, and nothing runs from its folder once it stopped."""
    data = folder / "data"
    configuration = folder / "chaton.toml"
    # In the file: the address pool's argument holds a comma, which a list in an
    # environment variable would split.
    arguments = ", ".join(f'"{argument}"' for argument in
                          _quiet_arguments(free_address_pool()))
    configuration.write_text(f"[services]\ndocker_arguments = [{arguments}]\n")
    socket_path = folder / "engine.sock"
    environment = serve_environment(data, configuration, CHATON_PROXY_MANAGED="false",
                                    CHATON_SERVICES_DOCKER_MANAGED="yes",
                                    CHATON_SERVICES_DOCKER_URL=f"unix://{socket_path}")
    server = start_serve(environment, timeout=90)
    try:
        if not engine_answers(f"unix://{socket_path}"):
            server.send_signal(signal.SIGTERM)
            raise AssertionError(server.communicate(timeout=60)[0])
        pid = int((data / "docker" / "dockerd.pid").read_text().split()[0])
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, output
    assert f"Docker engine: dockerd (pid {pid}) on unix://{socket_path}." in output
    assert not process_is_alive(pid)
    assert not engine_answers(f"unix://{socket_path}")
