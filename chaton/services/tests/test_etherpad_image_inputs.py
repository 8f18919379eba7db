"""The Etherpad test image is built from pinned inputs only: fresh machines build what CI built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaton.testing import etherpad


def _read(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((etherpad.IMAGE_FILES / name).read_text("utf-8"))
    return loaded


def test_every_direct_dependency_is_an_exact_version_and_the_lockfile_agrees() -> None:
    package = _read("package.json")
    lock = _read("package-lock.json")
    dependencies = package["dependencies"]
    assert isinstance(dependencies, dict)
    assert dependencies["ep_etherpad-lite"] == etherpad.ETHERPAD_VERSION
    assert dependencies["ldapauth-fork"] == etherpad.LDAPAUTH_VERSION
    packages = lock["packages"]
    assert isinstance(packages, dict)
    assert packages[""]["dependencies"] == dependencies
    for name, version in dependencies.items():
        if not version.startswith("file:"):
            assert packages[f"node_modules/{name}"]["version"] == version
    # Every package that npm ci installs is named with its integrity hash.
    installed = {path: entry for path, entry in packages.items()
                 if path.startswith("node_modules/") and not entry.get("link")
                 and not entry.get("inBundle")}
    assert installed
    assert all(entry.get("integrity") for entry in installed.values())


def test_a_changed_lockfile_is_a_new_cache_key(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "image"
    shutil.copytree(etherpad.IMAGE_FILES, copy)
    monkeypatch.setattr(etherpad, "IMAGE_FILES", copy)
    monkeypatch.setattr(etherpad, "node_version", lambda node: "v20.0.0")
    before = etherpad.cache_key(Path("/usr/bin/node"))
    lock = copy / "package-lock.json"
    lock.write_text(lock.read_text("utf-8").replace('"1.8.14"', '"1.8.13"', 1), "utf-8")
    assert etherpad.cache_key(Path("/usr/bin/node")) != before
