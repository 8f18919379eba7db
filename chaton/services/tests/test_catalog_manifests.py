"""Every catalogue entry against the manifest contract, without running anything.

The entries are whatever folders ``chaton/services/catalog/`` holds: a new
entry is checked by every test here without being named in any. The tests'
own applications (``chaton/services/tests/catalog``) are checked for what the
reconciler needs too.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest

from chaton.services import catalog
from chaton.services.catalog import Manifest, Setting
from chaton.services.render import (
    DATABASE_PORTS,
    RenderError,
    known_placeholders,
    placeholders_in,
    render,
)
from chaton.testing.docker import TEST_CATALOG

MANIFESTS = catalog.real_manifests()
#: Every entry of the catalogue folder.
EVERY = sorted(MANIFESTS)
#: Entries whose image Chaton builds itself (``[build]``) …
BUILT = [name for name in EVERY if MANIFESTS[name].build is not None]
#: … and those that run an image pinned by digest.
APPLICATIONS = [name for name in EVERY if name not in BUILT]
#: ``{ldap.*}`` placeholders the reconciler fills (chaton.services.render.ldap_context).
LDAP_PLACEHOLDERS = ("url", "base_dn", "people_dn", "groups_dn", "group", "group_dn",
                     "user_filter", "bind_dn", "bind_password")
DATABASE_PLACEHOLDERS = ("kind", "host", "port", "name", "user", "password")


def _with_test_applications() -> list[Manifest]:
    manifests = list(MANIFESTS.values())
    with catalog.extra_folder(TEST_CATALOG):
        manifests += [manifest for name, manifest in sorted(catalog.all_manifests().items())
                      if name not in MANIFESTS]
    return manifests


#: The catalogue's entries and the tests' own applications.
ENTRIES = _with_test_applications()


def placeholder_context(manifest: Manifest) -> dict[str, str]:
    """Return a value for every placeholder a manifest may name (as the reconciler does)."""
    context = {"domain": "app.example.org", "slug": "app", "url": "https://app.example.org"}
    context.update({f"secret.{secret.name}": "s" * secret.length for secret in manifest.secrets})
    context.update({f"setting.{setting.name}": str(setting.default)
                    for setting in manifest.settings})
    context.update({f"ldap.{name}": f"ldap-{name}" for name in LDAP_PLACEHOLDERS})
    context["ldap.url"] = "ldap://10.0.0.1:389"
    if manifest.database is not None:
        context.update({f"database.{name}": f"db-{name}" for name in DATABASE_PLACEHOLDERS})
        context["secret.database_password"] = "p" * 32
    return context


def values_beyond(setting: Setting) -> list[Any]:
    """Return values of the setting's type that its schema must refuse."""
    if setting.type in ("integer", "duration_days"):
        bad: list[Any] = ["12", 1.5]
        if setting.maximum is not None:
            bad.append(setting.maximum + 1)
        if setting.minimum is not None:
            bad.append(setting.minimum - 1)
        return bad
    if setting.type == "boolean":
        return ["yes", 1]
    if setting.type == "choice":
        return ["not-a-choice", 3]
    return [7, "x" * ((setting.maximum or 500) + 1)]


def test_the_catalogue_folder_holds_only_valid_entries() -> None:
    folders = [folder.name for folder in catalog.CATALOG_DIR.iterdir()
               if (folder / "manifest.toml").is_file()]
    assert EVERY == sorted(folders)
    assert APPLICATIONS, "the catalogue offers applications"
    for name, manifest in MANIFESTS.items():
        assert manifest.name == name
        assert not manifest.local, f"{name} is a catalogue entry, not a local test image"
        # Loading again through the public entry point gives the same manifest.
        assert catalog.get(name) == manifest
    assert "webtest" not in catalog.all_manifests(), "test applications stay out of the catalogue"


@pytest.mark.parametrize("manifest", ENTRIES, ids=[manifest.name for manifest in ENTRIES])
def test_manifest_is_deployable(manifest: Manifest) -> None:
    defaults = manifest.validate_settings({})
    assert set(defaults) == {setting.name for setting in manifest.settings}
    known = known_placeholders(manifest)
    for name, value in [*manifest.environment.items(),
                        *((f"command[{index}]", part) for index, part
                          in enumerate(manifest.command))]:
        unknown = placeholders_in(value) - known
        assert not unknown, f"{manifest.name}: {name} names unknown placeholders {unknown}"
    volume_names = [volume.name for volume in manifest.volumes]
    assert len(volume_names) == len(set(volume_names))
    assert "database" not in volume_names, "the companion database's volume has that name"
    assert manifest.local or manifest.build is not None or catalog.is_pinned(manifest.image)
    if manifest.database is not None:
        assert manifest.database.kind in DATABASE_PORTS
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
    assert render("https://{domain}/?t={secret.token}", context) == (
        "https://pad.example.org/?t=s3cr3t")
    assert render('{{"json": true}}', context) == '{"json": true}'
    with pytest.raises(RenderError, match=r"setting\.nope"):
        render("{setting.nope}", context)


@pytest.mark.parametrize("name", APPLICATIONS)
def test_images_are_pinned_by_tag_and_digest(name: str) -> None:
    manifest = MANIFESTS[name]
    images = [manifest.image] + ([manifest.database.image] if manifest.database else [])
    for image in images:
        assert catalog.is_pinned(image), image
        reference, _, digest = image.partition("@sha256:")
        assert re.fullmatch(r"[0-9a-f]{64}", digest), image
        assert ":" in reference.rsplit("/", 1)[-1], f"{image}: a tag as well as the digest"
        assert not reference.endswith(":latest"), image


@pytest.mark.parametrize("name", EVERY)
def test_default_settings_validate_and_are_complete(name: str) -> None:
    manifest = MANIFESTS[name]
    values = manifest.validate_settings({})
    assert values == {setting.name: setting.default for setting in manifest.settings}
    # Each value given back alone is valid too.
    assert manifest.validate_settings(values) == values


@pytest.mark.parametrize("name", EVERY)
def test_bad_settings_are_refused_with_the_setting_named(name: str) -> None:
    manifest = MANIFESTS[name]
    assert manifest.settings, f"{name} has settings its administrators change"
    for setting in manifest.settings:
        for bad in values_beyond(setting):
            with pytest.raises(pydantic.ValidationError) as refused:
                manifest.validate_settings({setting.name: bad})
            problem = refused.value.errors()[0]
            assert problem["loc"][0] == setting.name, (setting.name, bad, problem)
            assert problem["msg"], problem
    with pytest.raises(pydantic.ValidationError) as unknown:
        manifest.validate_settings({"no_such_setting": 1})
    assert unknown.value.errors()[0]["loc"] == ("no_such_setting",)


@pytest.mark.parametrize("name", EVERY)
def test_every_placeholder_is_one_the_reconciler_fills(name: str) -> None:
    manifest = MANIFESTS[name]
    context = placeholder_context(manifest)
    for variable, value in manifest.environment.items():
        try:
            render(value, context)
        except RenderError as error:
            pytest.fail(f"{name}: {variable}: {error}")
    for part in manifest.command:
        render(part, context)


@pytest.mark.parametrize("name", EVERY)
def test_each_setting_reaches_the_application(name: str) -> None:
    """A setting goes to an environment variable, is named in one, or an app.py uses it."""
    manifest = MANIFESTS[name]
    named = " ".join(manifest.environment.values())
    module = catalog.app_module(name)
    hook_text = ""
    if module is not None:
        values = manifest.validate_settings({})
        context = placeholder_context(manifest)
        for hook in ("files", "setup_commands"):
            if hasattr(module, hook):
                hook_text += repr(getattr(module, hook)(values, context))
    mapped = [setting.env for setting in manifest.settings if setting.env]
    assert len(mapped) == len(set(mapped)), f"{name}: two settings set one variable"
    for setting in manifest.settings:
        if setting.env:
            assert setting.env not in manifest.environment, (
                f"{name}: {setting.env} is both a setting and a fixed variable")
            continue
        assert f"{{setting.{setting.name}}}" in named or _hook_reads(module, setting.name), (
            f"{name}: the setting {setting.name} reaches nothing")
    placeholder = r"\{(?:domain|slug|url|(?:secret|setting|ldap|database)\.\w+)\}"
    unfilled = re.findall(placeholder, hook_text)
    assert not unfilled, f"{name}: placeholders left unfilled by app.py: {unfilled}"


def _hook_reads(module: Any, setting_name: str) -> bool:
    """Return whether an app.py module reads a setting (its source names it as a key)."""
    if module is None or module.__file__ is None:
        return False
    with open(module.__file__, encoding="utf-8") as source:
        text = source.read()
    return f'values["{setting_name}"]' in text or f"values['{setting_name}']" in text


@pytest.mark.parametrize("name", EVERY)
def test_login_through_ldap_or_a_reason(name: str) -> None:
    manifest = MANIFESTS[name]
    if manifest.ldap.supported:
        wiring = " ".join(manifest.environment.values())
        module = catalog.app_module(name)
        if module is not None and hasattr(module, "setup_commands"):
            wiring += repr(module.setup_commands(manifest.validate_settings({}),
                                                 placeholder_context(manifest)))
        assert "{ldap.url}" in wiring or "ldap://10.0.0.1" in wiring, (
            f"{name} says it logs in through LDAP but names no directory")
    else:
        assert len(manifest.ldap.reason) > 40, f"{name}: say why there is no LDAP login"


@pytest.mark.parametrize("name", EVERY)
def test_backups_health_probes_and_usage_when_given(name: str) -> None:
    """``user_data``, ``probes`` and ``usage`` are optional; what an entry gives is sound."""
    manifest = MANIFESTS[name]
    volumes = {volume.name for volume in manifest.volumes}
    assert set(manifest.user_data) <= volumes
    paths = [volume.path for volume in manifest.volumes]
    assert len(paths) == len(set(paths)), f"{name}: two volumes at one path"
    assert manifest.health.path.startswith("/")
    assert all(probe.path.startswith("/") for probe in manifest.probes)
    for figure in manifest.usage:
        if figure.source == "sql":
            assert manifest.database is not None, f"{name}: {figure.name} reads no database"
            assert figure.query.upper().startswith("SELECT"), figure.query
        if figure.source == "volume":
            assert figure.query.split(":", 1)[0] in volumes, figure.query


def test_probes_usage_and_user_data_may_be_left_out(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "manifest.toml").write_text(
        'name = "bare"\nlabel = "Bare"\ndescription = "Nothing but a page"\n'
        'image = "chaton-test/web:1"\nlocal = true\nport = 8080\n'
        '[ldap]\nsupported = false\nreason = "A page without accounts."\n', encoding="utf-8")
    with catalog.extra_folder(tmp_path):
        manifest = catalog.get("bare")
    assert (manifest.probes, manifest.usage, manifest.user_data) == ([], [], [])


def test_a_manifest_that_breaks_the_contract_is_refused_with_its_file_named(
        tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    text = (catalog.CATALOG_DIR / "privatebin" / "manifest.toml").read_text(encoding="utf-8")
    (folder / "manifest.toml").write_text(
        text.replace('name = "privatebin"', 'name = "broken"')
            .replace("@sha256:", ":again@sha256:", 1), encoding="utf-8")
    with pytest.raises(catalog.ManifestError, match=r"broken/manifest.toml: image"):
        with catalog.extra_folder(tmp_path):
            pass


# -- the applications whose settings need an app.py ------------------------------------------


def test_privatebin_defaults_and_its_conf_php() -> None:
    manifest = MANIFESTS["privatebin"]
    values = manifest.validate_settings({})
    assert values["max_paste_size_mb"] == 10
    assert values["default_expiry"] == "1week"
    assert values["max_expiry"] == "1year"
    module = catalog.app_module("privatebin")
    assert module is not None
    conf = module.files(values, placeholder_context(manifest))["/srv/cfg/conf.php"]
    assert conf.startswith(";<?php http_response_code(403); /*")
    assert "sizelimit = 10485760" in conf
    assert 'default = "1week"' in conf
    assert "1year = 31536000" in conf
    assert "never = 0" not in conf  # longer than the longest offered


def test_privatebin_refuses_a_default_expiry_longer_than_the_longest() -> None:
    with pytest.raises(pydantic.ValidationError, match="longer than the longest"):
        MANIFESTS["privatebin"].validate_settings({"default_expiry": "1month",
                                                   "max_expiry": "1week"})
    values = MANIFESTS["privatebin"].validate_settings({"max_expiry": "never",
                                                        "default_expiry": "never"})
    assert values["default_expiry"] == "never"


def test_nextcloud_wires_user_ldap_with_occ() -> None:
    manifest = MANIFESTS["nextcloud"]
    module = catalog.app_module("nextcloud")
    assert module is not None
    context = placeholder_context(manifest) | {"ldap.bind_password": "secret"}
    commands = module.setup_commands(manifest.validate_settings({"default_quota_gb": 0}), context)
    flat = [" ".join(command) for command in commands]
    assert all(command[:2] == ["php", "occ"] for command in commands)
    assert "php occ --no-interaction app:enable user_ldap" in flat
    assert "php occ --no-interaction config:app:set user_ldap s01ldap_host --value " \
           "ldap://10.0.0.1" in flat
    assert "php occ --no-interaction config:app:set user_ldap s01ldap_port --value 389" in flat
    # user_ldap keeps the bind password base64-encoded.
    assert "php occ --no-interaction config:app:set user_ldap s01ldap_agent_password " \
           "--value c2VjcmV0" in flat
    assert "php occ --no-interaction config:app:set files default_quota --value none" in flat
    assert module.ldap_server("ldaps://ldap.example.org") == ("ldaps://ldap.example.org", "636")


def test_settings_that_carry_a_unit_into_the_environment() -> None:
    """Megabytes become what the image reads (bytes, or PHP's "M")."""
    mattermost = MANIFESTS["mattermost"]
    rendered = render(mattermost.environment["MM_FILESETTINGS_MAXFILESIZE"],
                      placeholder_context(mattermost))
    assert rendered == "100000000"
    nextcloud = MANIFESTS["nextcloud"]
    assert render(nextcloud.environment["PHP_UPLOAD_LIMIT"],
                  placeholder_context(nextcloud)) == "512M"
    bookstack = MANIFESTS["bookstack"]
    # BookStack's own ${user} survives Chaton's placeholders.
    context = placeholder_context(bookstack) | {"ldap.user_filter": "(objectClass=inetOrgPerson)"}
    assert render(bookstack.environment["LDAP_USER_FILTER"], context) \
        == "(&(objectClass=inetOrgPerson)(uid=${user}))"


#: The entries whose login a login group restricts, by a filter of the application's own.
LOGIN_FILTERED = ["bookstack", "kanboard", "nextcloud"]


def _wiring(name: str, context: dict[str, str]) -> str:
    """Return everything an instance of ``name`` is handed: its environment and app.py's
    commands and files, rendered with ``context``."""
    manifest = MANIFESTS[name]
    text = " ".join(render(value, context) for value in manifest.environment.values())
    module = catalog.app_module(name)
    values = manifest.validate_settings({})
    for hook in ("files", "setup_commands"):
        if module is not None and hasattr(module, hook):
            text += " " + repr(getattr(module, hook)(values, context))
    return text


@pytest.mark.django_db
@pytest.mark.parametrize("name", [name for name in APPLICATIONS
                                  if MANIFESTS[name].ldap.supported])
def test_ldap_wired_entries_search_with_their_service_account_and_login_group(
        name: str, directory: object) -> None:
    from chaton.directory.models import Group
    from chaton.services import accounts
    from chaton.services.models import Host, Instance
    from chaton.services.render import ldap_context

    host = Host(name="box", docker_url="unix:///run/fake/docker.sock")
    group = Group(name="staff")
    instance = Instance(slug="app", application=name, domain="app.example.org", host=host,
                        login_group=group, port=20000)
    secret = "b" * 32
    context = placeholder_context(MANIFESTS[name]) | ldap_context(
        instance, {accounts.PASSWORD_SECRET: secret})
    assert context["ldap.bind_dn"] == "cn=app,ou=services,dc=chaton,dc=test"
    assert context["ldap.user_filter"] == (
        "(&(objectClass=inetOrgPerson)(memberOf=cn=staff,ou=groups,dc=chaton,dc=test))")
    wiring = _wiring(name, context)
    # Never an administrator's bind, always the instance's own read-only account.
    assert "cn=admin" not in wiring
    assert "cn=app,ou=services,dc=chaton,dc=test" in wiring, f"{name} binds as nobody"
    assert secret in wiring or base64.b64encode(secret.encode()).decode() in wiring, (
        f"{name} is not handed its service account's password")
    if name in LOGIN_FILTERED:
        assert "(memberOf=cn=staff,ou=groups,dc=chaton,dc=test)" in wiring, (
            f"{name} lets in people outside its login group")
    # Without a login group, every account of the directory, and still the service account.
    instance.login_group = None
    open_context = context | ldap_context(instance, {accounts.PASSWORD_SECRET: secret})
    assert open_context["ldap.user_filter"] == "(objectClass=inetOrgPerson)"
    assert "memberOf" not in _wiring(name, open_context)


def test_an_application_without_ldap_gets_no_service_account() -> None:
    from chaton.services import accounts
    from chaton.services.instance_secrets import secret_lengths

    for name, manifest in MANIFESTS.items():
        wanted = manifest.ldap.supported
        assert (accounts.PASSWORD_SECRET in secret_lengths(manifest)) == wanted, name
