"""Images Chaton builds itself: a catalogue entry's recipe made into an image archive.

A catalogue entry whose manifest has a ``[build]`` table names a recipe in its
folder (``rootfs()``, ``CONFIG``). :func:`build_archive` turns it into an
archive in ``docker save`` format — one layer, the configuration, the
``repository:tag`` of the manifest's ``image`` — with fixed times and owners, so
the same inputs give the same image id on every machine. :func:`do_build_image`
loads it onto a host through the engine's ``docker load`` (no registry is
asked) and records it as a loaded image (:class:`~chaton.services.models.HostImage`),
as ``chaton service image import`` does for an archive brought by hand.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile
from typing import Any

from django.db import transaction

from chaton.adapters.docker import Engine
from chaton.core import audit, clock
from chaton.directory.models import Account
from chaton.services import catalog
from chaton.services.catalog import Manifest
from chaton.services.models import Host, HostImage

#: Docker's names of this machine's architectures.
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


class RootFs:
    """A root file system being written as a tar, with fixed times and owners."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.open(fileobj=self._buffer, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime, info.uid, info.gid = mode, 0, 0, 0
        return info

    def directory(self, name: str, *, mode: int = 0o755) -> None:
        """Add the folder ``name`` (relative, without a leading slash)."""
        info = self._info(name, mode)
        info.type = tarfile.DIRTYPE
        self._tar.addfile(info)

    def file(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        """Add the file ``name`` holding ``data``."""
        info = self._info(name, mode)
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))

    def tar(self) -> bytes:
        """Close the file system and return its tar."""
        self._tar.close()
        return self._buffer.getvalue()


def _tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def archive_of(rootfs: bytes, reference: str, config: dict[str, Any]) -> bytes:
    """Given a root file system (tar), the ``repository:tag`` to load it as and the image's
    configuration, return an image archive in ``docker save`` format. Its id (the digest
    of its configuration) depends on nothing else."""
    layer_digest = hashlib.sha256(rootfs).hexdigest()
    image_config = {
        "architecture": _ARCHITECTURES.get(platform.machine(), platform.machine()),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "chaton build"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{config_digest}.json", "RepoTags": [reference],
                 "Layers": [f"{layer_digest}/layer.tar"]}]
    return _tar_of({
        f"{layer_digest}/layer.tar": rootfs,
        f"{config_digest}.json": config_bytes,
        "manifest.json": json.dumps(manifest, separators=(",", ":")).encode(),
    })


def build_archive(manifest: Manifest) -> bytes:
    """Return the image archive of a catalogue entry that Chaton builds.

    Raise ValueError for an entry whose image is not built, OSError when the
    recipe's inputs (busybox …) are missing, ImportError for a bad recipe.
    """
    recipe = catalog.build_recipe(manifest.name)
    return archive_of(recipe.rootfs(), manifest.image, dict(recipe.CONFIG))


def do_build_image(host: Host, engine: Engine, manifest: Manifest, *,
                   acting_user: Account | None) -> HostImage | None:
    """Build the image of ``manifest`` and load it onto ``host`` through ``engine``, unless
    the engine holds it already; return the record of the loaded image (None: it was there).

    Raise DockerError (the engine refused or went away), OSError, ValueError as
    :func:`build_archive`.
    """
    if engine.has_image(manifest.image):
        return None
    loaded = engine.load_images(io.BytesIO(build_archive(manifest)))
    label = acting_user.get_username() if acting_user else "system"
    record: HostImage | None = None
    with transaction.atomic():
        for image in loaded:
            record, created = HostImage.objects.get_or_create(
                host=host, reference=image.reference, image_id=image.image_id,
                defaults={"size": image.size, "loaded_at": clock.now(), "loaded_by": label})
            if not created:
                record.loaded_at, record.loaded_by = clock.now(), label
                record.save(update_fields=["loaded_at", "loaded_by"])
            audit.record("host.image_build", host, acting_user=acting_user,
                         after={"application": manifest.name, "reference": image.reference,
                                "image_id": image.image_id, "size": image.size})
    return record
