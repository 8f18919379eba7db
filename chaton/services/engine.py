"""The embedded default host's engine: is it up, who runs it, and a dockerd of Chaton's own.

Where systemd runs, Debian's ``docker.service`` is the local engine. Elsewhere
(a container, a machine without an init system) ``chaton serve`` starts a
:class:`~chaton.adapters.dockerd.ManagedDockerd` on the socket of
``services.docker_url``, as it starts its slapd and Caddy
(``services.docker_managed``). :func:`unreachable_advice` tells people, in
their language, what to do when an engine does not answer. :func:`engine_for`
is where every app gets the client of a host's engine.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.adapters import docker
from chaton.adapters.docker import Engine, TlsFiles
from chaton.adapters.docker.client import DockerEngine
from chaton.adapters.dockerd import ManagedDockerd, engine_answers
from chaton.project.config import ConfigError

if TYPE_CHECKING:
    from chaton.services.models import Host

#: ``services.docker_managed`` values.
MANAGED_CHOICES = ("auto", "yes", "no")


def systemd_runs() -> bool:
    """Return whether systemd is this machine's init system (it then runs Docker's service)."""
    return Path("/run/systemd/system").is_dir()


def docker_directory() -> Path:
    """Return the folder of the dockerd Chaton runs itself."""
    return Path(settings.DATA_DIR) / "docker"


def _socket_path(docker_url: str) -> Path | None:
    return Path(docker_url.removeprefix("unix://")) if docker_url.startswith("unix://") else None


def managed_dockerd() -> ManagedDockerd:
    """Return (not started) the dockerd Chaton runs on ``services.docker_url``'s socket.

    Raise ConfigError when that endpoint is not a ``unix://`` socket.
    """
    config = settings.CHATON.services
    socket_path = _socket_path(config.docker_url)
    if socket_path is None:
        raise ConfigError(f"services.docker_url = {config.docker_url!r}: a managed dockerd "
                          "listens on a unix:///path socket")
    return ManagedDockerd(
        docker_directory(), socket_path=socket_path,
        data_root=Path(config.docker_data_root) if config.docker_data_root else None,
        exec_root=Path(config.docker_exec_root) if config.docker_exec_root else None,
        arguments=config.docker_arguments)


def should_manage() -> bool:
    """Return whether ``chaton serve`` starts its own dockerd now.

    "yes": always; "no": never; "auto": when nothing answers on the default
    host's socket and no systemd runs. Raise ConfigError for another value.
    """
    choice = settings.CHATON.services.docker_managed.strip().lower()
    if choice not in MANAGED_CHOICES:
        raise ConfigError(f"services.docker_managed = {choice!r}: expected auto, yes or no")
    if choice != "auto":
        return choice == "yes"
    docker_url = settings.CHATON.services.docker_url
    return (_socket_path(docker_url) is not None and not systemd_runs()
            and not engine_answers(docker_url))


def unreachable_advice(docker_url: str, *, is_default: bool) -> str:
    """Given a host's endpoint that does not answer, return what to do, for people."""
    if not docker_url.startswith("unix://"):
        return _("Check that the Docker engine runs on that machine and that this server "
                 "can reach %(url)s (network, firewall, TLS files).") % {"url": docker_url}
    if systemd_runs():
        return _("Start Docker's service on this machine, as root: systemctl enable --now "
                 "docker. Then reload this page.")
    if is_default:
        return _("No init system runs Docker here: “chaton serve” starts its own Docker "
                 "engine when the setting [services] docker_managed is “auto” or “yes”, and "
                 "it runs as root. Restart Chaton as root, or start dockerd yourself on "
                 "%(socket)s.") % {"socket": docker_url.removeprefix("unix://")}
    return _("Start a Docker engine on %(socket)s (dockerd, as root).") % {
        "socket": docker_url.removeprefix("unix://")}


# -- the client of a host's engine --------------------------------------------------------------


#: This thread's clients, one per endpoint (see :func:`engine_for`).
_engines = threading.local()


def _tls(host: Host) -> TlsFiles | None:
    if host.tls_ca or host.tls_certificate or host.tls_key:
        return TlsFiles(ca=host.tls_ca, certificate=host.tls_certificate, key=host.tls_key)
    return None


def engine_for(host: Host) -> Engine:
    """Given a host, return the engine to talk to (one client per endpoint and thread).

    Nothing is sent yet: the first call connects, and raises EngineUnreachable
    if the endpoint does not answer. Inside :func:`chaton.adapters.docker.use_docker`,
    return the replacement's engine.
    """
    replacement = docker.slot.current(host)
    if replacement is not None:
        return replacement
    cache: dict[tuple[Any, ...], Engine] = getattr(_engines, "cache", None) or {}
    _engines.cache = cache
    key = (host.docker_url, host.swarm, _tls(host))
    engine = cache.get(key)
    if engine is None:
        engine = cache[key] = DockerEngine(host.docker_url, swarm=host.swarm, tls=_tls(host))
    return engine
