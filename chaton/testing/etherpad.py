"""Pytest fixtures that build Etherpad into a local image: ``chaton-test/etherpad:<version>``.

No registry of images is reachable from the tests, so the image is made on the
machine: a root file system holding the machine's own ``node`` (and the shared
libraries ``ldd`` lists), Etherpad and Chaton's LDAP plugin installed from the
npm registry by ``npm ci`` from a committed lockfile, busybox for the one shell script Etherpad
needs (``npm ls`` at start), then ``docker import``-ed on the session's
dockerd. The catalogue folder ``chaton/services/catalog/etherpad/image/`` holds
what goes into it besides packages: the plugin, ``settings.json``, and the
``package.json`` and ``package-lock.json`` that pin every package.

The tarball of the root file system is cached under
``$CHATON_TEST_CACHE`` (default ``/var/tmp/chaton-test-cache``) in a folder
named after every version that goes into it (Etherpad, the LDAP library, node,
a digest of the plugin, settings and lockfile): a second run does not run npm
again, and a changed lockfile builds anew.

Layout inside the image, as Etherpad 1.8 expects it (it finds its root as the
parent of the ``src`` folder)::

    /opt/etherpad/settings.json
    /opt/etherpad/src/                     the ep_etherpad-lite package
    /opt/etherpad/node_modules/            its dependencies, ep_etherpad-lite -> ../src
    /opt/etherpad/plugins/ep_chaton_ldap/  Chaton's plugin (linked from node_modules)
    /usr/local/bin/node, /usr/local/bin/npm (busybox sh calling npm's own copy)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaton.core import runner

#: The Etherpad the registry serves as a package (later releases ship only as a git tree).
ETHERPAD_VERSION = "1.8.14"
#: The LDAP client of Chaton's plugin.
LDAPAUTH_VERSION = "6.1.0"
IMAGE_REPOSITORY = "chaton-test/etherpad"
IMAGE = f"{IMAGE_REPOSITORY}:{ETHERPAD_VERSION}"
#: The port Etherpad listens on inside the image (its ``PORT`` variable changes it).
PORT = 9001
IMAGE_FILES = Path(__file__).resolve().parent.parent / "services" / "catalog" / "etherpad" / "image"
BUSYBOX = Path("/bin/busybox")
#: The label that names the cache key an image was built from.
KEY_LABEL = "org.chaton.test.key"
#: npm downloads about 500 packages the first time; the registry can be slow.
NPM_TIMEOUT_SECONDS = 900


class ImageBuildError(RuntimeError):
    """The Etherpad image could not be built (no node, npm failed, docker refused the import)."""


def cache_root() -> Path:
    """Return the folder that keeps built root file systems between runs."""
    # A fixed, shared folder on purpose: the cache outlives the run (the tarball is checked by key).
    return Path(os.environ.get("CHATON_TEST_CACHE", "/var/tmp/chaton-test-cache"))  # noqa: S108


def node_binary() -> Path:
    """Return the machine's node executable, resolved. Raise ImageBuildError when there is none."""
    found = shutil.which("node") or shutil.which("nodejs")
    if not found:
        raise ImageBuildError("node is not installed: the Etherpad test image is built from it")
    return Path(found).resolve()


def node_version(node: Path) -> str:
    """Given the node executable, return its version (``v20.20.2``)."""
    return runner.run([str(node), "--version"], timeout=30).stdout.strip()


def _image_files_digest() -> str:
    """Return a digest of the plugin and settings that go into the image."""
    digest = hashlib.sha256()
    for path in sorted(IMAGE_FILES.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(IMAGE_FILES).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(node: Path) -> str:
    """Given the node executable, return the name of the cache folder for this build."""
    return (f"etherpad-{ETHERPAD_VERSION}-ldapauth-{LDAPAUTH_VERSION}-node-"
            f"{node_version(node).lstrip('v')}-files-{_image_files_digest()}")


def shared_libraries(executable: Path) -> list[Path]:
    """Given an executable, return the shared libraries ``ldd`` lists, with the loader."""
    listing = runner.run(["ldd", str(executable)], timeout=30).stdout
    libraries: list[Path] = []
    for line in listing.splitlines():
        parts = line.split()
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", "/lib64/ld-linux-x86-64.so.2 (0x…)"
        candidate = parts[2] if "=>" in parts and len(parts) >= 3 else parts[0] if parts else ""
        if candidate.startswith("/"):
            libraries.append(Path(candidate))
    return libraries


def _copy_into(root: Path, source: Path, destination: str | None = None) -> None:
    """Copy ``source`` (following links) to the same path, or ``destination``, under ``root``."""
    target = root / (destination or str(source)).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.resolve(), target)


def _npm_ci(application: Path, npm_cache: Path) -> None:
    """Install Etherpad, the LDAP library and the plugin in ``application`` from the lockfile.

    ``package.json`` and ``package-lock.json`` are committed beside the plugin: the
    same packages at the same versions on every machine, whatever the registry
    serves today. The lockfile overrides Etherpad's optional ``sqlite3`` (a git
    dependency on a host the tests do not reach) with its registry release, so
    that it is resolvable and stays optional. Raise ImageBuildError when npm fails.
    """
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(IMAGE_FILES / name, application / name)
    environment = {**os.environ, "npm_config_cache": str(npm_cache),
                   "npm_config_update_notifier": "false", "npm_config_fund": "false",
                   "npm_config_audit": "false", "npm_config_fetch_retries": "2"}
    try:
        runner.run(["npm", "ci", "--omit=dev", "--omit=optional", "--no-audit", "--no-fund",
                    "--install-links=false", "--prefix", str(application)],
                   timeout=NPM_TIMEOUT_SECONDS, env=environment)
    except runner.CommandError as error:
        raise ImageBuildError(f"npm ci of Etherpad {ETHERPAD_VERSION} failed: {error}") from None


def _check_plugin_listing(application: Path, node: Path) -> None:
    """Run the ``npm ls`` Etherpad runs at start, with its own npm, in the built tree.

    Etherpad 1.8 refuses to start when that listing reports a problem (an
    extraneous package, say): checked here, a bad tree fails the build with
    npm's words instead of an Etherpad that never answers.
    Raise ImageBuildError when the listing fails.
    """
    npm_cli = application / "node_modules" / "npm" / "bin" / "npm-cli.js"
    try:
        runner.run([str(node), str(npm_cli), "ls", "--long", "--json", "--depth=0",
                    "--no-production", "--prefix", str(application)], timeout=120,
                   env={**os.environ, "NODE_ENV": "production",
                        "npm_config_update_notifier": "false"})
    except runner.CommandError as error:
        raise ImageBuildError(f"Etherpad's own npm ls fails in the built tree, Etherpad would "
                              f"not start: {error}") from None


def build_rootfs(tarball: Path, node: Path) -> None:
    """Given where the tarball goes and the node executable, build Etherpad's root file system.

    Write the tarball atomically (a run killed half way leaves no half tarball).
    Raise ImageBuildError when node, busybox or npm fail.
    """
    if not BUSYBOX.is_file():
        raise ImageBuildError(f"{BUSYBOX} is missing: install busybox-static")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chaton-etherpad-", dir=tarball.parent) as work:
        root = Path(work) / "rootfs"
        application = root / "opt" / "etherpad"
        shutil.copytree(IMAGE_FILES / "ep_chaton_ldap", application / "plugins" / "ep_chaton_ldap")
        shutil.copy2(IMAGE_FILES / "settings.json", application / "settings.json")
        _npm_ci(application, tarball.parent.parent / "npm-cache")
        # Etherpad 1.8 takes the parent of its package's folder, named src, as its root.
        modules = application / "node_modules"
        (modules / "ep_etherpad-lite").rename(application / "src")
        (modules / "ep_etherpad-lite").symlink_to("../src")
        _check_plugin_listing(application, node)
        (application / "var").mkdir(exist_ok=True)
        _copy_into(root, node, "/usr/local/bin/node")
        for library in shared_libraries(node):
            _copy_into(root, library)
        _copy_into(root, BUSYBOX, "/bin/busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        npm = root / "usr" / "local" / "bin" / "npm"
        # Etherpad runs "npm ls" to find its plugins: npm's own copy, which Etherpad depends on.
        npm.write_text("#!/bin/sh\nexec /usr/local/bin/node "
                       "/opt/etherpad/node_modules/npm/bin/npm-cli.js \"$@\"\n", encoding="utf-8")
        npm.chmod(0o755)
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        (root / "etc").mkdir(exist_ok=True)
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/tmp:/bin/sh\n", encoding="utf-8")
        (root / "etc" / "group").write_text("root:x:0:\n", encoding="utf-8")
        partial = tarball.with_suffix(".partial")
        runner.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
                   timeout=300)
        partial.rename(tarball)


def rootfs_tarball() -> Path:
    """Return the cached root file system of the Etherpad image, building it when missing.

    Raise ImageBuildError when it cannot be built.
    """
    node = node_binary()
    try:
        tarball = cache_root() / cache_key(node) / "rootfs.tar"
        if not tarball.is_file():
            build_rootfs(tarball, node)
    except runner.CommandError as error:  # node --version, ldd, tar
        raise ImageBuildError(f"cannot build the Etherpad image: {error}") from None
    return tarball


#: What ``docker import`` sets on the image (``--change`` lines).
IMAGE_CHANGES = [
    "ENV PATH=/usr/local/bin:/bin",
    "ENV HOME=/tmp",
    "ENV NODE_ENV=production",
    "WORKDIR /opt/etherpad",
    f"EXPOSE {PORT}",
    'CMD ["/usr/local/bin/node", "/opt/etherpad/src/node/server.js"]',
]


def import_image(api: Any, tarball: Path) -> str:
    """Given a Docker SDK low-level client and the root file system, return the image, imported
    if needed.

    An image of the same tag built from the same cache key is kept as it is.
    Raise ImageBuildError when the engine refuses the import.
    """
    import docker.errors

    key = tarball.parent.name
    try:
        labels = (api.inspect_image(IMAGE).get("Config") or {}).get("Labels") or {}
        if labels.get(KEY_LABEL) == key:
            return IMAGE
    except docker.errors.ImageNotFound:
        pass
    try:
        api.import_image_from_file(
            str(tarball), repository=IMAGE_REPOSITORY, tag=ETHERPAD_VERSION,
            changes=[*IMAGE_CHANGES, f"LABEL {KEY_LABEL}={key}"])
    except docker.errors.APIError as error:
        raise ImageBuildError(f"docker import of {IMAGE} failed: {error}") from None
    return IMAGE


@pytest.fixture(scope="session")
def etherpad_rootfs() -> Path:
    """Return the tarball of the Etherpad image's root file system (built once, then cached)."""
    return rootfs_tarball()


@pytest.fixture(scope="session")
def etherpad_image(dockerd: Any, etherpad_rootfs: Path) -> Iterator[str]:
    """Yield ``chaton-test/etherpad:<version>``, imported on the session's dockerd."""
    yield import_image(dockerd.api, etherpad_rootfs)

