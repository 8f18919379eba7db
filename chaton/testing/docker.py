"""Pytest fixtures of the services tests: a real dockerd, local test images, a Swarm.

Loaded by :mod:`chaton.testing.pytest_plugin`. Nothing is ever pulled: the
images are ``docker import``-ed from a rootfs made here around the static
``/bin/busybox``::

    chaton-test/web:1        busybox httpd on 8080: "chaton-test web version 1", /health answers
    chaton-test/web:2        the same, version 2
    chaton-test/web:broken   starts and serves its page, but /health is 404 and its Docker
                             HEALTHCHECK fails: it never becomes healthy

and, for the upgrade's stability window (fixture ``flaky_images``)::

    chaton-test/web:flaky          /health keeps answering 200, but its Docker HEALTHCHECK
                                   (on /alive, gone after a few seconds) turns unhealthy
                                   soon after its first success
    chaton-test/web:flaky-nocheck  no HEALTHCHECK; /health answers 200 for a few seconds,
                                   then 404

Each container writes what it received (the greeting setting, the length of
its secret) next to its page, and appends its version to ``/data/history.txt``
(a volume), which it also serves: a test sees settings, secrets and data
survive an upgrade without entering the container.

The daemon (:class:`TemporaryDockerd`) runs from a short folder under /tmp,
binds published ports to 127.0.0.1, creates no ``docker0`` bridge and leaves
the host's iptables alone; its networks come from a private address pool
that no route of the machine uses, so two test sessions never clash. It is
stopped by its own pid and its folder removed. A daemon that does not start
is an error, never a skip.

The test catalogue (applications ``webtest`` and ``webtestdb`` on these
images) is in ``chaton/services/tests/catalog``, added to the catalogue by
the ``test_catalog`` fixture only.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaton.core import runner
from chaton.core.servers import free_port

DOCKERD = "/usr/sbin/dockerd"
BUSYBOX = Path("/bin/busybox")
#: The folder of the test applications (never part of the real catalogue).
TEST_CATALOG = Path(__file__).resolve().parent.parent / "services" / "tests" / "catalog"
WEB_REPOSITORY = "chaton-test/web"
WEB_PORT = 8080
OWNED_FILTER = "org.chaton.owned=1"
SWARM_TASK_LABEL = "com.docker.swarm.service.id"


class DockerdError(RuntimeError):
    """The test dockerd could not be started, or stopped."""


def _routed_networks() -> list[ipaddress.IPv4Network]:
    """Return the IPv4 networks the machine has routes for (from /proc/net/route)."""
    networks: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return networks
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        try:
            networks.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
        except ValueError:
            continue
    return [network for network in networks if network.prefixlen > 0]


def free_address_pool(avoid: tuple[str, ...] = ()) -> str:
    """Return a 10.X.0.0/16 no route of this machine overlaps (nor any of ``avoid``).

    Raise DockerdError when none is left.
    """
    taken = _routed_networks() + [ipaddress.IPv4Network(pool) for pool in avoid]
    candidates = list(range(64, 250))
    secrets.SystemRandom().shuffle(candidates)
    for second in candidates:
        pool = ipaddress.IPv4Network(f"10.{second}.0.0/16")
        if not any(pool.overlaps(network) for network in taken):
            return str(pool)
    raise DockerdError("no free 10.X.0.0/16 address pool for the test dockerd")


def _free_udp_port(low: int = 40000, high: int = 49151) -> int:
    """Return a UDP port in [low, high] that was free a moment ago (VXLAN wants < 49152)."""
    for _attempt in range(200):
        port = low + secrets.randbelow(high - low + 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DockerdError("no free UDP port for the Swarm's data path")


class TemporaryDockerd:
    """A dockerd of the tests' own, with everything in one folder, stopped by its pid."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).absolute()
        self.address_pool = ""
        self.swarm_pool = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._api: Any = None
        self._gateway_bridge = ""

    @property
    def socket_path(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.poll() is None else None

    @property
    def api(self) -> Any:
        """The SDK's low-level client of this daemon."""
        if self._api is None:
            import docker

            self._api = docker.APIClient(base_url=self.url, version="auto", timeout=60)
        return self._api

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def start(self, timeout: float = 60) -> None:
        """Start the daemon and return once it answers. Raise DockerdError."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "daemon.json").write_text("{}\n", encoding="ascii")
        self.address_pool = free_address_pool()
        command = [
            DOCKERD, "--host", self.url, "--data-root", str(self.directory / "root"),
            "--exec-root", str(self.directory / "exec"),
            "--pidfile", str(self.directory / "docker.pid"),
            "--config-file", str(self.directory / "daemon.json"),
            # Published ports on loopback only; no docker0 bridge, no iptables rules and no
            # sysctl change: nothing another daemon on this machine could trip over.
            "--ip", "127.0.0.1", "--bridge", "none", "--iptables=false", "--ip-forward=false",
            "--default-address-pool", f"base={self.address_pool},size=24",
        ]
        try:
            self._process = runner.start(command, log_path=str(self.log_path))
        except runner.CommandNotFound as error:
            raise DockerdError(f"cannot start dockerd: {error}") from None
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise DockerdError(f"dockerd exited ({self._process.returncode}):\n"
                                   f"{self._log_tail()}")
            if self.socket_path.exists():
                try:
                    self.api.ping()
                    return
                except Exception:  # not ready yet: the socket comes before the API
                    self._api = None
            if time.monotonic() > deadline:
                self.stop()
                raise DockerdError(f"dockerd did not answer within {timeout:g} s:\n"
                                   f"{self._log_tail()}")
            time.sleep(0.1)

    # -- the test images

    def build_web_images(self) -> dict[str, str]:
        """Import the test images (see the module's docstring); return them by tag."""
        images = {}
        for tag, healthy in (("1", True), ("2", True), ("broken", False)):
            name = f"{WEB_REPOSITORY}:{tag}"
            self.api.import_image_from_data(
                web_rootfs(f"chaton-test web version {tag}", healthy=healthy),
                repository=WEB_REPOSITORY, tag=tag, changes=web_image_changes(tag))
            images[tag] = name
        return images

    def build_flaky_images(self, healthy_seconds: int = 5) -> dict[str, str]:
        """Import the images healthy for ``healthy_seconds`` only (see the module's
        docstring); return them by tag."""
        images = {}
        for tag, docker_check in (("flaky", True), ("flaky-nocheck", False)):
            self.api.import_image_from_data(
                web_rootfs(f"chaton-test web version {tag}", healthy=True),
                repository=WEB_REPOSITORY, tag=tag,
                changes=flaky_image_changes(tag, docker_check=docker_check,
                                            healthy_seconds=healthy_seconds))
            images[tag] = f"{WEB_REPOSITORY}:{tag}"
        return images

    # -- a Swarm on the same daemon

    def init_swarm(self) -> None:
        """Make the daemon a single-node Swarm manager.

        Its ``docker_gwbridge`` is made first, with its own bridge name and host
        ports bound to 127.0.0.1, so that Swarm services published in host mode
        listen on loopback, as everything else here.
        """
        self._gateway_bridge = f"cgw{secrets.token_hex(4)}"
        self.api.create_network("docker_gwbridge", driver="bridge", options={
            "com.docker.network.bridge.name": self._gateway_bridge,
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false",
            "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
        })
        self.swarm_pool = free_address_pool(avoid=(self.address_pool,))
        self.api.init_swarm(advertise_addr="127.0.0.1", listen_addr=f"127.0.0.1:{free_port()}",
                            default_addr_pool=[self.swarm_pool], subnet_size=24,
                            data_path_port=_free_udp_port())

    def leave_swarm(self) -> None:
        """Remove every service, leave the Swarm and remove its gateway bridge."""
        for service in self.api.services():
            self.api.remove_service(service["ID"])
        self._wait_no_containers(label=SWARM_TASK_LABEL)
        self.api.leave_swarm(force=True)
        for network in self.api.networks(names=["docker_gwbridge"]):
            try:
                self.api.remove_network(network["Id"])
            except Exception:  # still in use for a moment after the Swarm left
                time.sleep(1)
                self.api.remove_network(network["Id"])

    def _wait_no_containers(self, *, label: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.api.containers(all=True, filters={"label": [label]}):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

    # -- cleaning

    def remove_owned(self) -> None:
        """Remove every service, container, network and volume that Chaton labelled."""
        api = self.api
        if (api.info().get("Swarm") or {}).get("ControlAvailable"):
            for service in api.services(filters={"label": [OWNED_FILTER]}):
                api.remove_service(service["ID"])
        # The tasks of removed services linger a few seconds: remove their containers too.
        for label in (OWNED_FILTER, SWARM_TASK_LABEL):
            for container in api.containers(all=True, filters={"label": [label]}):
                _gone_is_fine(api.remove_container, container["Id"], force=True)
        self._wait_no_containers(label=OWNED_FILTER)
        self._wait_no_containers(label=SWARM_TASK_LABEL)
        for network in api.networks(filters={"label": [OWNED_FILTER]}):
            _gone_is_fine(api.remove_network, network["Id"])
        for volume in api.volumes(filters={"label": [OWNED_FILTER]}).get("Volumes") or []:
            _gone_is_fine(api.remove_volume, volume["Name"], force=True)

    def _remove_everything(self) -> None:
        """Remove every container and user network: their bridges would outlive the daemon."""
        api = self.api
        if (api.info().get("Swarm") or {}).get("LocalNodeState") == "active":
            self.leave_swarm()
        for container in api.containers(all=True):
            api.remove_container(container["Id"], force=True)
        for network in api.networks():
            if network["Name"] not in ("bridge", "host", "none"):
                api.remove_network(network["Id"])

    def stop(self, timeout: float = 30) -> None:
        """Remove what runs, stop the daemon (SIGTERM, then SIGKILL) by its pid, unmount what
        it left mounted and remove its folder."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                self._remove_everything()
            except Exception as error:  # stopping matters more than a clean slate
                print(f"test dockerd: cleaning before stopping failed: {error}")
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._api is not None:
            self._api.close()
            self._api = None
        self._process = None
        self._unmount_leftovers()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        """Unmount (lazily) whatever is still mounted under the folder, deepest first."""
        try:
            mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        prefix = f"{self.directory}/"
        points = [line.split()[4] for line in mounts if len(line.split()) > 4]
        for point in sorted((point for point in points if point.startswith(prefix)),
                            key=len, reverse=True):
            runner.run(["umount", "-l", point], check=False, timeout=30)


def _gone_is_fine(remove: Any, *args: Any, **kwargs: Any) -> None:
    """Call ``remove``; an object already gone is fine (a Swarm removes its tasks and
    networks itself, a little later)."""
    import docker.errors

    try:
        remove(*args, **kwargs)
    except docker.errors.APIError as error:
        text = str(error.explanation or error).lower()
        if error.status_code != 404 and "not found" not in text and "no such" not in text:
            raise


def web_rootfs(page: str, *, healthy: bool) -> bytes:
    """Return a tar of a rootfs: busybox, a page, and (when ``healthy``) a health file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        def add_directory(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            archive.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            archive.addfile(info, io.BytesIO(data))

        for directory in ("bin", "www", "data", "tmp"):
            add_directory(directory)
        add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
        add_file("www/index.html", f"{page}\n".encode())
        if healthy:
            add_file("www/health", b"ok\n")
    return buffer.getvalue()


#: The program of the test images: note what it received, keep a history in the volume,
#: serve, and stop at once on SIGTERM (a shell as pid 1 would otherwise ignore it).
_WEB_PROGRAM = (
    'trap "exit 0" TERM; '
    'echo "$WEBTEST_GREETING" > /www/greeting.txt; '
    'echo "${#WEBTEST_SECRET}" > /www/secret-length.txt; '
    '/bin/busybox mkdir -p /data; '
    'echo "VERSION" >> /data/history.txt; '
    '/bin/busybox cp /data/history.txt /www/history.txt; '
    f'/bin/busybox httpd -f -p {WEB_PORT} -h /www & wait'
)


def web_image_changes(tag: str) -> list[str]:
    """Return the Dockerfile instructions ``docker import`` gives a test image."""
    program = _WEB_PROGRAM.replace("VERSION", tag)
    health = ["/bin/busybox", "wget", "-q", "-O", "/dev/null",
              f"http://127.0.0.1:{WEB_PORT}/health"]
    return [
        f"CMD {json.dumps(['/bin/busybox', 'sh', '-c', program])}",
        f"EXPOSE {WEB_PORT}",
        f"HEALTHCHECK --interval=2s --timeout=2s --retries=2 CMD {json.dumps(health)}",
    ]


def flaky_image_changes(tag: str, *, docker_check: bool, healthy_seconds: int) -> list[str]:
    """Return the instructions of an image that is healthy for ``healthy_seconds`` only.

    With ``docker_check``, its HEALTHCHECK reads ``/alive``, which goes after
    ``healthy_seconds`` while ``/health`` stays: only Docker's verdict sees it
    fail. Without, ``/health`` itself goes: only the HTTP check sees it.
    """
    gone = "/www/alive" if docker_check else "/www/health"
    program = _WEB_PROGRAM.replace("VERSION", tag).replace(
        "/bin/busybox httpd",
        "/bin/busybox cp /www/health /www/alive; "
        f"( /bin/busybox sleep {healthy_seconds}; /bin/busybox rm -f {gone} ) & "
        "/bin/busybox httpd")
    changes = [f"CMD {json.dumps(['/bin/busybox', 'sh', '-c', program])}",
               f"EXPOSE {WEB_PORT}"]
    if docker_check:
        alive = ["/bin/busybox", "wget", "-q", "-O", "/dev/null",
                 f"http://127.0.0.1:{WEB_PORT}/alive"]
        changes.append(f"HEALTHCHECK --interval=1s --timeout=1s --retries=1 "
                       f"CMD {json.dumps(alive)}")
    return changes


@dataclass(frozen=True)
class FlakyImages:
    """Images healthy for a few seconds only: ``docker_check`` (Docker's HEALTHCHECK turns
    unhealthy) and ``http_check`` (no HEALTHCHECK; the manifest's path turns 404)."""

    docker_check: str
    http_check: str


@dataclass(frozen=True)
class WebImages:
    """The test images' names: ``one``, ``two``, ``broken``, and one that does not exist."""

    one: str
    two: str
    broken: str
    missing: str = f"{WEB_REPOSITORY}:missing"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dockerd() -> Iterator[TemporaryDockerd]:
    """Yield a dockerd running for the session. Raise DockerdError (an error, not a skip)."""
    if os.geteuid() != 0:
        raise DockerdError("the test dockerd runs as root")
    server = TemporaryDockerd(Path(tempfile.mkdtemp(prefix="chaton-docker-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def web_images(dockerd: TemporaryDockerd) -> WebImages:
    """Import the test images into the session's dockerd once; return their names."""
    images = dockerd.build_web_images()
    return WebImages(one=images["1"], two=images["2"], broken=images["broken"])


@pytest.fixture(scope="session")
def flaky_images(dockerd: TemporaryDockerd) -> FlakyImages:
    """Import the images that turn unhealthy after a few seconds; return their names."""
    images = dockerd.build_flaky_images()
    return FlakyImages(docker_check=images["flaky"], http_check=images["flaky-nocheck"])


@pytest.fixture
def docker_engine(dockerd: TemporaryDockerd, web_images: WebImages
                  ) -> Iterator[TemporaryDockerd]:
    """Yield the session's dockerd with nothing of Chaton's on it, and clean it after the test
    (its database rows are gone then: what they described must go too)."""
    dockerd.remove_owned()
    try:
        yield dockerd
    finally:
        dockerd.remove_owned()


@pytest.fixture(scope="module")
def swarm(dockerd: TemporaryDockerd) -> Iterator[TemporaryDockerd]:
    """Make the session's dockerd a single-node Swarm for a test module; leave it after."""
    dockerd.remove_owned()
    dockerd.init_swarm()
    try:
        yield dockerd
    finally:
        dockerd.leave_swarm()


@pytest.fixture
def test_catalog() -> Iterator[Path]:
    """Add the test applications (``webtest``, ``webtestdb``) to the catalogue for a test."""
    from chaton.services import catalog

    with catalog.extra_folder(TEST_CATALOG):
        yield TEST_CATALOG
