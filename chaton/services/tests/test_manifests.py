"""Every catalogue entry, whichever are there, loads, validates and names only known
placeholders; so do the tests' own applications."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaton.services import catalog, reconcile
from chaton.services.catalog import Manifest
from chaton.testing.docker import TEST_CATALOG


def _entries() -> list[Manifest]:
    manifests = list(catalog.real_manifests().values())
    with catalog.extra_folder(TEST_CATALOG):
        manifests += [catalog.get(name) for name in ("webtest", "webtestdb")]
    return manifests


ENTRIES = _entries()


def test_the_catalogue_folder_holds_only_valid_entries() -> None:
    folders = [folder.name for folder in catalog.CATALOG_DIR.iterdir()
               if (folder / "manifest.toml").is_file()]
    assert sorted(catalog.real_manifests()) == sorted(folders)
    assert "webtest" not in catalog.all_manifests(), "test applications stay out of the catalogue"


@pytest.mark.parametrize("manifest", ENTRIES, ids=[manifest.name for manifest in ENTRIES])
def test_manifest_is_deployable(manifest: Manifest) -> None:
    defaults = manifest.validate_settings({})
    assert set(defaults) == {setting.name for setting in manifest.settings}
    known = reconcile.known_placeholders(manifest)
    for name, value in [*manifest.environment.items(),
                        *((f"command[{index}]", part) for index, part
                          in enumerate(manifest.command))]:
        unknown = reconcile.placeholders_in(value) - known
        assert not unknown, f"{manifest.name}: {name} names unknown placeholders {unknown}"
    volume_names = [volume.name for volume in manifest.volumes]
    assert len(volume_names) == len(set(volume_names))
    assert "database" not in volume_names, "the companion database's volume has that name"
    assert manifest.local or manifest.build is not None or catalog.is_pinned(manifest.image)
    if manifest.database is not None:
        assert manifest.database.kind in reconcile.DATABASE_PORTS
        assert manifest.local or catalog.is_pinned(manifest.database.image)


def test_extra_folder_refuses_a_name_defined_twice(tmp_path: Path) -> None:
    (tmp_path / "webtest").mkdir()
    (tmp_path / "webtest" / "manifest.toml").write_text(
        (TEST_CATALOG / "webtest" / "manifest.toml").read_text(encoding="utf-8"),
        encoding="utf-8")
    with catalog.extra_folder(TEST_CATALOG):
        with pytest.raises(catalog.ManifestError, match="already in the catalogue"):
            with catalog.extra_folder(tmp_path):
                pass
        assert "webtest" in catalog.all_manifests()
    assert "webtest" not in catalog.all_manifests()


def test_render_fills_placeholders_and_keeps_literal_braces() -> None:
    context = {"domain": "pad.example.org", "secret.token": "s3cr3t"}
    assert reconcile.render("https://{domain}/?t={secret.token}", context) == (
        "https://pad.example.org/?t=s3cr3t")
    assert reconcile.render('{{"json": true}}', context) == '{"json": true}'
    with pytest.raises(reconcile.RenderError, match=r"setting\.nope"):
        reconcile.render("{setting.nope}", context)
