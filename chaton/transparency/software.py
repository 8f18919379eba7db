"""The list of software the collective runs: each instance's image and version, and the
Debian packages of the hosts whose packages Chaton can read.

The hosts hold no SSH access in the services app, and an exec of ``dpkg-query``
through the Docker engine needs an image holding the host's package database,
which a container does not see. So the packages are read where Chaton runs:
``dpkg-query -W`` on this machine, for the hosts whose engine is local (a
``unix://`` socket). A remote host's packages are listed as not read, with the
reason, in the list's notes.
"""

from __future__ import annotations

from typing import Any

from chaton.core import runner
from chaton.services.models import Host, Instance
from chaton.transparency.chatonsinfos import image_version, public_instances

DPKG_QUERY = ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"]


def _is_local(host: Host) -> bool:
    return host.docker_url.startswith("unix://")


def _image_entry(instance: Instance) -> dict[str, Any]:
    try:
        image = instance.image
    except KeyError:
        image = instance.image_override
    name = image.split("@", 1)[0]
    repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return {"host": instance.host.name, "kind": "image", "name": repository,
            "version": image_version(image), "instance": instance.slug}


def local_packages() -> list[tuple[str, str]]:
    """Return ``(package, version)`` of this machine's Debian packages.

    Raise runner.CommandError when dpkg-query is missing or fails.
    """
    completed = runner.run(DPKG_QUERY, timeout=60)
    packages = []
    for line in completed.stdout.splitlines():
        name, _, version = line.partition("\t")
        if name and version:
            packages.append((name, version))
    return sorted(packages)


def collect() -> tuple[list[dict[str, Any]], list[str]]:
    """Return the entries of a new software list and its notes (how each host was read)."""
    entries = [_image_entry(instance) for instance in public_instances()]
    notes: list[str] = []
    for host in Host.objects.order_by("name"):
        if not _is_local(host):
            notes.append(f"{host.name}: packages not read (no SSH access is configured; "
                         "images only)")
            continue
        try:
            packages = local_packages()
        except runner.CommandError as error:
            notes.append(f"{host.name}: packages not read ({error})")
            continue
        notes.append(f"{host.name}: {len(packages)} Debian packages (dpkg-query -W)")
        entries += [{"host": host.name, "kind": "package", "name": name, "version": version,
                     "instance": ""} for name, version in packages]
    return entries, notes


def as_text(entries: list[dict[str, Any]], notes: list[str], *, generated: str) -> str:
    """Return the list as plain text: one ``host kind name version`` line per entry."""
    lines = [f"# Software list, generated {generated}", *(f"# {note}" for note in notes), ""]
    for entry in entries:
        lines.append("\t".join([entry["host"], entry["kind"], entry["name"], entry["version"],
                                entry.get("instance", "")]).rstrip())
    return "\n".join(lines) + "\n"
