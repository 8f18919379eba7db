"""``make run``'s first hour: ``chaton init`` and ``chaton demo`` on a fresh data directory
open the collective's home page, whose image Chaton builds itself (no registry), and it
answers over HTTPS with a certificate of Caddy's own authority.

The commands run in child processes, as a person runs them, against the
session's test dockerd and a Caddy of the test's own (``tls = "internal"``, an
ACME server that nobody answers at): nothing here reaches a default port or
the system's Docker engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from django.conf import settings

import chaton
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.servers import free_port
from chaton.services.demo import DOMAIN
from chaton.testing.acme import wait_for_https
from chaton.testing.docker import TemporaryDockerd

pytestmark = [pytest.mark.integration]

SOURCE_ROOT = Path(chaton.__file__).resolve().parent.parent
#: What the demo's home page says (its title, chaton.services.demo.SETTINGS).
TITLE = b"<h1>Chaton du Rutabaga</h1>"


@pytest.fixture(autouse=True)
def no_home_page_image(docker_engine: TemporaryDockerd) -> None:
    """Each test starts from an engine without the home page's image: it must be built."""
    import docker.errors

    try:
        docker_engine.api.remove_image("chaton-catalog/homepage:1", force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture
def base() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="chaton-demo-"))
    directory.chmod(0o711)  # slapd drops to the openldap user
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _environment(base: Path, docker_url: str) -> dict[str, str]:
    proxy = settings.CHATON.proxy  # the test's Caddy (fixture ``caddy``)
    configuration = base / "chaton.toml"
    configuration.touch()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("CHATON_", "RESTIC_", "DJANGO_"))}
    environment.update({
        "PYTHONPATH": str(SOURCE_ROOT),
        "CHATON_CONFIG": str(configuration),
        "CHATON_DATA_DIR": str(base / "var"),
        "CHATON_LANGUAGE": "en",
        "CHATON_LDAP_MANAGED": "true",
        "CHATON_LDAP_URL": f"ldap://127.0.0.1:{free_port()}",
        "CHATON_LDAP_BASE_DN": "dc=demo,dc=test",
        "CHATON_BACKUPS_DEFAULT_REPOSITORY": str(base / "repository"),
        "CHATON_BACKUPS_SCRATCH_DIR": str(base / "scratch"),
        "CHATON_SERVICES_DOCKER_URL": docker_url,
        "CHATON_SERVICES_DOCKER_MANAGED": "no",
        "CHATON_PROXY_MANAGED": "false",
        "CHATON_PROXY_ADMIN_URL": proxy.admin_url,
        "CHATON_PROXY_HTTP_PORT": str(proxy.http_port),
        "CHATON_PROXY_HTTPS_PORT": str(proxy.https_port),
        "CHATON_PROXY_TLS": "internal",
        "CHATON_PROXY_ACME_CA": "https://127.0.0.1:1/never-asked",
        "CHATON_PROXY_LOG_FILE": proxy.log_file,
    })
    (base / "scratch").mkdir(exist_ok=True, mode=0o711)
    return environment


def _chaton(environment: dict[str, str], *arguments: str, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "chaton", *arguments], env=environment,
        cwd=Path(environment["CHATON_CONFIG"]).parent, capture_output=True, text=True,
        timeout=300, check=False)
    if check:
        assert completed.returncode == 0, (arguments, completed.stdout, completed.stderr)
    return completed


def _internal_root(path: Path) -> Path:
    """Write the root of the test Caddy's own authority (what /services/root.crt serves)."""
    from chaton.services.proxy import root_certificate

    path.write_text(root_certificate(), encoding="ascii")
    return path


def _assert_served_by_the_internal_authority(base: Path) -> None:
    port = settings.CHATON.proxy.https_port
    root = _internal_root(base / "root.crt")
    answer = wait_for_https(DOMAIN, port, roots=root, expect=TITLE, timeout=60)
    names = answer.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert DOMAIN in [name.value for name in names]
    # Only that root opens it: the system's roots (and so any other client) refuse it.
    import ssl

    from chaton.testing.acme import https_get

    with pytest.raises(ssl.SSLError):
        https_get(DOMAIN, port, roots=Path("/etc/ssl/certs/ca-certificates.crt"))


@pytest.mark.django_db(transaction=True)
def test_the_demo_opens_its_home_page_over_https_with_the_internal_authority(
        base: Path, docker_engine: TemporaryDockerd, caddy: ManagedCaddy) -> None:
    environment = _environment(base, docker_engine.url)
    _chaton(environment, "init", "--admin-uid", "admin", "--no-input")
    demo = _chaton(environment, "demo", "--verbose")
    assert f"home page https://{DOMAIN}, deployed on local" in demo.stdout, demo.stdout
    # Built here, loaded without a registry, run by its tag.
    assert docker_engine.api.inspect_image("chaton-catalog/homepage:1")["Config"]["User"] \
        == "65534:65534"
    _assert_served_by_the_internal_authority(base)
    # Loaded again: nothing more is created or built.
    again = _chaton(environment, "demo")
    assert "nothing changed" in again.stdout


@pytest.mark.django_db(transaction=True)
def test_an_engine_that_answers_only_later_gets_the_home_page_from_the_worker(
        base: Path, docker_engine: TemporaryDockerd, caddy: ManagedCaddy) -> None:
    """At ``chaton demo`` no engine answers yet (``chaton serve`` starts it later): the
    instance is recorded, and the worker's reconcile deploys it once the engine answers."""
    socket_path = base / "engine.sock"
    environment = _environment(base, f"unix://{socket_path}")
    _chaton(environment, "init", "--admin-uid", "admin", "--no-input")
    demo = _chaton(environment, "demo", "--verbose")
    assert "deployed by the worker once the Docker engine of local answers" in demo.stdout, \
        demo.stdout
    # The engine comes up at the configured socket.
    socket_path.symlink_to(docker_engine.socket_path)
    _chaton(environment, "worker", "--once", check=False)
    _assert_served_by_the_internal_authority(base)
