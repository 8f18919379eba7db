"""The catalogue: one folder per application, a ``manifest.toml`` of data, and where needed
an ``app.py`` module.

A manifest says everything Chaton needs to run the application and nothing
about any instance of it; an instance adds its domain, host, owner, settings
and secrets. This module loads and validates manifests (pydantic), so a test
can check every entry without running anything::

    name = "privatebin"
    label = "PrivateBin"
    description = "Encrypted paste bin"
    image = "privatebin/nginx-fpm-alpine:1.7.4@sha256:…"   # tag and digest: a pin
    port = 8080                                            # the HTTP port inside the container
    user_data = ["data"]                    # optional: volumes a backup must hold

    [[volumes]]
    name = "data"
    path = "/srv/data"

    [environment]            # values may name {domain}, {secret.X}, {setting.Y},
    TZ = "Europe/Paris"      # {ldap.url}, {database.host} …

    [[secrets]]
    name = "admin_password"                                # generated once per instance
    length = 32

    [database]                                             # optional companion container
    kind = "postgres"
    image = "postgres:16.4@sha256:…"

    [ldap]
    supported = false
    reason = "PrivateBin has no accounts: anyone with the link reads the paste."

    [health]
    path = "/"
    status = 200

    [[settings]]
    name = "max_paste_size_mb"
    type = "integer"
    default = 10
    minimum = 1
    maximum = 100
    label = "Maximum paste size (MB)"

Placeholders in ``environment`` (and in files an ``app.py`` renders) are
filled for one instance by :mod:`chaton.services.render`. ``probes``
(``[[probes]]`` path, status, contains), ``usage`` (``[[usage]]`` figures) and
``user_data`` are optional, read by the apps that need them (monitoring,
statistics, backups) and by the lifecycle test every entry goes through
(:mod:`chaton.testing.catalog_entry`). Adding an entry, step by step:
``docs/how-to/add-a-catalogue-entry.md``.

An entry whose image Chaton builds itself names it by ``repository:tag`` and
says where its recipe is (see :class:`Build` and :mod:`chaton.services.images`)::

    image = "chaton-catalog/homepage:1"
    [build]
    recipe = "image.py"
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pydantic

CATALOG_DIR = Path(__file__).parent

#: ``repository[:tag]@sha256:<64 hex>``, or a local test image ``repository:tag`` when
#: ``local = true`` (built on the machine, never pulled).
_PINNED = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$")
_TAGGED = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,30}$")


def is_pinned(image: str) -> bool:
    """Return whether ``image`` is pinned by digest: ``repository[:tag]@sha256:<64 hex>``."""
    return bool(_PINNED.match(image))


def is_tagged(image: str) -> bool:
    """Return whether ``image`` is ``repository:tag`` (how a local test image is named)."""
    return bool(_TAGGED.match(image))


class ManifestError(ValueError):
    """A manifest that does not load or does not validate; the message names the file."""


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Volume(Model):
    name: str = pydantic.Field(pattern=_NAME.pattern)
    path: str = pydantic.Field(pattern=r"^/")


class Secret(Model):
    name: str = pydantic.Field(pattern=r"^[a-z][a-z0-9_]*$")
    length: int = pydantic.Field(default=32, ge=16, le=128)


class Database(Model):
    kind: Literal["postgres", "mariadb"]
    image: str
    #: Where the companion keeps its data (a volume of the instance, backed up by dump).
    path: str = "/var/lib/postgresql/data"


class Ldap(Model):
    supported: bool
    #: Why not, when it is not: shown on the catalogue page.
    reason: str = ""
    #: Which group's members may log in is the instance's ``login_group``; the
    #: environment names ``{ldap.url}``, ``{ldap.base_dn}``, ``{ldap.bind_dn}``,
    #: ``{ldap.bind_password}``, ``{ldap.user_filter}``.

    @pydantic.model_validator(mode="after")
    def _reason_when_unsupported(self) -> Ldap:
        if not self.supported and not self.reason.strip():
            raise ValueError("an application without LDAP login says why in ldap.reason")
        return self


class Health(Model):
    path: str = pydantic.Field(default="/", pattern=r"^/")
    status: int = pydantic.Field(default=200, ge=100, le=599)
    #: Seconds a new container has to answer before it is rolled back.
    timeout: int = pydantic.Field(default=60, ge=1, le=900)


class Probe(Model):
    path: str = pydantic.Field(pattern=r"^/")
    status: int = 200
    #: Text the page must contain, if any.
    contains: str = ""


class UsageFigure(Model):
    name: str = pydantic.Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    #: How it is read: ``sql`` from the companion database, ``http`` from an API, ``volume``.
    source: Literal["sql", "http", "volume"]
    query: str


class Setting(Model):
    """One per-instance setting an administrator actually changes."""

    name: str = pydantic.Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["integer", "boolean", "string", "choice", "duration_days"]
    label: str
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    choices: list[str] = []
    #: The environment variable that receives it (or empty: an ``app.py`` uses it).
    env: str = ""
    help: str = ""


class Build(Model):
    """An image Chaton builds itself, from a recipe in the entry's folder, and loads onto a
    host like an image archive (no registry is asked).

    The recipe is a module with ``rootfs() -> bytes`` (a tar of the root file
    system) and ``CONFIG`` (the image's configuration: ``Cmd``, ``ExposedPorts``,
    ``Healthcheck`` … as Docker names them); :mod:`chaton.services.images` makes
    the archive, the same bytes on every machine with the same inputs.
    """

    recipe: str = pydantic.Field(default="image.py", pattern=r"^[a-z][a-z0-9_]*\.py$")


class Manifest(Model):
    name: str = pydantic.Field(pattern=_NAME.pattern)
    label: str
    description: str
    #: The official project's page, for people.
    homepage: str = ""
    image: str
    #: A test image built on this machine (``docker import``), pinned by tag only.
    local: bool = False
    #: An image Chaton builds from a recipe of the entry's folder; ``image`` is then the
    #: ``repository:tag`` it is loaded as, never pulled.
    build: Build | None = None
    port: int = pydantic.Field(ge=1, le=65535)
    volumes: list[Volume] = []
    environment: dict[str, str] = {}
    secrets: list[Secret] = []
    database: Database | None = None
    ldap: Ldap
    health: Health = Health()
    #: Optional. What a visitor's request must get: read by the lifecycle test
    #: (chaton.testing.catalog_entry) and by monitoring, once it exists.
    probes: list[Probe] = []
    #: Optional. Figures of use (pads, accounts …): read by statistics, once it exists.
    usage: list[UsageFigure] = []
    settings: list[Setting] = []
    #: Optional. Volume names that hold user data (the database is dumped too): shown as
    #: what is backed up (catalogue page, API, CLI), backed up and restored by the
    #: lifecycle test, and read by the backups of instances, once they exist.
    user_data: list[str] = []
    #: The command, when the image's own is not the one to run.
    command: list[str] = []

    @pydantic.field_validator("image")
    @classmethod
    def _pinned(cls, image: str, info: pydantic.ValidationInfo) -> str:
        if not (_PINNED.match(image) or _TAGGED.match(image)):
            raise ValueError("image must be repository:tag@sha256:<digest> (or repository:tag "
                             "for a local image)")
        return image

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.build is not None:
            if self.local:
                raise ValueError("an image is either built by Chaton (build) or a local test "
                                 "image (local), not both")
            if not _TAGGED.match(self.image):
                raise ValueError("an image built by Chaton is named repository:tag, without "
                                 "a digest (it is never pulled)")
        elif not self.local and not _PINNED.match(self.image):
            raise ValueError("image must be pinned by digest: repository:tag@sha256:<digest>")
        volume_names = {volume.name for volume in self.volumes}
        missing = [name for name in self.user_data if name not in volume_names]
        if missing:
            raise ValueError(f"user_data names unknown volumes: {', '.join(missing)}")
        for setting in self.settings:
            settings_model_field(setting)  # raises for a default that does not fit
        return self

    def settings_model(self) -> type[pydantic.BaseModel]:
        """Return the pydantic model of this application's per-instance settings."""
        fields: dict[str, Any] = {setting.name: settings_model_field(setting)
                                  for setting in self.settings}
        return pydantic.create_model(
            f"{self.name.title().replace('-', '')}Settings",
            __config__=pydantic.ConfigDict(extra="forbid", strict=True), **fields)

    def validate_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Given settings (some or none), return all of them with defaults, validated.

        Raise pydantic.ValidationError for an unknown name or a bad value, or when the
        application's ``app.py`` (its ``validate``) refuses the combination.
        """
        complete: dict[str, Any] = (self.settings_model().model_validate(values)
                                    .model_dump(mode="json"))
        check = getattr(app_module(self.name), "validate", None)
        if check is not None:
            try:
                check(complete)
            except ValueError as error:
                raise pydantic.ValidationError.from_exception_data(
                    f"{self.name} settings",
                    [{"type": "value_error", "loc": ("settings",), "input": values,
                      "ctx": {"error": error}}]) from None
        return complete


def settings_model_field(setting: Setting) -> tuple[Any, Any]:
    """Return the (type, FieldInfo) of one setting for ``pydantic.create_model``.

    Raise ValueError when the setting's default does not satisfy its own bounds.
    """
    constraints: dict[str, Any] = {"title": setting.label, "description": setting.help or None}
    python_type: Any
    if setting.type in ("integer", "duration_days"):
        python_type = int
        if setting.minimum is not None:
            constraints["ge"] = setting.minimum
        if setting.maximum is not None:
            constraints["le"] = setting.maximum
    elif setting.type == "boolean":
        python_type = bool
    elif setting.type == "choice":
        if not setting.choices:
            raise ValueError(f"setting {setting.name}: a choice lists its choices")
        python_type = Literal[tuple(setting.choices)]
    else:
        python_type = str
        constraints["max_length"] = setting.maximum or 500
    info = pydantic.Field(default=setting.default, **constraints)
    # The default must itself be valid: check it through a throwaway model.
    probe = pydantic.create_model(
        "Probe", __config__=pydantic.ConfigDict(strict=True), value=(python_type, info))
    try:
        probe.model_validate({"value": setting.default})
    except pydantic.ValidationError as error:
        raise ValueError(f"setting {setting.name}: default {setting.default!r} is invalid: "
                         f"{error.errors()[0]['msg']}") from None
    return python_type, info


def _read(folder: Path) -> Manifest:
    path = folder / "manifest.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{path}: {error}") from None
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        location = ".".join(str(part) for part in problem.get("loc", ()))
        raise ManifestError(f"{path}: {location}: {problem.get('msg')}") from None
    if manifest.name != folder.name:
        raise ManifestError(f"{path}: name {manifest.name!r} differs from its folder")
    if manifest.build is not None and not (folder / manifest.build.recipe).is_file():
        raise ManifestError(f"{path}: build.recipe: no file {manifest.build.recipe} in "
                            f"{folder}")
    return manifest


#: Further catalogue folders (tests' own applications), registered by :func:`extra_folder`.
_extra_folders: list[Path] = []


def _read_folder(catalog: Path) -> dict[str, Manifest]:
    return {folder.name: _read(folder) for folder in sorted(catalog.iterdir())
            if (folder / "manifest.toml").is_file()}


def real_manifests() -> dict[str, Manifest]:
    """Return the applications of the catalogue itself, without any extra folder.

    Raise ManifestError for a bad one.
    """
    return _read_folder(CATALOG_DIR)


@cache
def all_manifests() -> dict[str, Manifest]:
    """Return every application of the catalogue (and of the extra folders) by name.

    Raise ManifestError for a bad one, or for a name that two folders define.
    """
    manifests = _read_folder(CATALOG_DIR)
    for catalog in _extra_folders:
        for name, manifest in _read_folder(catalog).items():
            if name in manifests:
                raise ManifestError(f"{catalog / name}: the application {name!r} is already "
                                    "in the catalogue")
            manifests[name] = manifest
    return manifests


def folder_of(name: str) -> Path | None:
    """Return the folder of an application (in the catalogue or an extra folder), or None."""
    for catalog in (CATALOG_DIR, *_extra_folders):
        if (catalog / name / "manifest.toml").is_file():
            return catalog / name
    return None


@cache
def app_module(name: str) -> ModuleType | None:
    """Return the ``app.py`` module of an application, or None when it has none.

    What the reconciler calls in it, each optional::

        validate(values)                 raise ValueError for settings that do not go
                                         together (each one alone is valid)
        files(values, context)           {path in the container: text}, written before
                                         the application starts
        setup_commands(values, context)  [[argument, …], …] run in the application's
                                         container once it is healthy, as SETUP_USER
                                         in SETUP_DIRECTORY (module constants), again
                                         only when the commands change

    ``values`` are the instance's complete settings, ``context`` its placeholders
    (``domain``, ``secret.X``, ``ldap.url`` …); see also :data:`APP_HOOKS`. An
    application of an extra folder (the tests') may have one too. Raise
    ImportError for a module that does not load.
    """
    folder = folder_of(name)
    if folder is None or not (folder / "app.py").is_file():
        return None
    path = folder / "app.py"
    if folder.parent == CATALOG_DIR:
        return importlib.import_module(f"{__name__}.{name}.app")
    # An extra folder is no package: load the file under a name of its own.
    spec = importlib.util.spec_from_file_location(f"chaton_extra_catalog_{name}_app", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_recipe(name: str) -> ModuleType:
    """Return the recipe module of an application whose image Chaton builds.

    Raise KeyError for an unknown application, ValueError for one whose image
    is not built, ImportError for a recipe that does not load.
    """
    manifest = get(name)
    folder = folder_of(name)
    if manifest.build is None or folder is None:
        raise ValueError(f"the image of {name} is not built by Chaton")
    module_name = manifest.build.recipe.removesuffix(".py")
    if folder.parent == CATALOG_DIR:
        return importlib.import_module(f"{__name__}.{name}.{module_name}")
    spec = importlib.util.spec_from_file_location(
        f"chaton_extra_catalog_{name}_{module_name}", folder / manifest.build.recipe)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {folder / manifest.build.recipe}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def extra_folder(catalog: Path) -> Iterator[None]:
    """Within the block, add the applications under ``catalog`` to the catalogue.

    For tests and benchmarks, whose applications (a web page from a local test
    image) must never appear in the real catalogue. Raise ManifestError on
    entry when one of them does not validate.
    """
    _extra_folders.append(Path(catalog))
    all_manifests.cache_clear()
    app_module.cache_clear()
    try:
        all_manifests()
        yield
    finally:
        _extra_folders.remove(Path(catalog))
        all_manifests.cache_clear()
        app_module.cache_clear()


def get(name: str) -> Manifest:
    """Return one application's manifest. Raise KeyError for an unknown name."""
    return all_manifests()[name]


#: What an application's ``app.py`` may define, when data is not enough (all optional):
#:
#: - ``validate(values)``: given complete settings, raise ValueError for a combination
#:   that each value alone does not reveal (called by :meth:`Manifest.validate_settings`);
#: - ``files(values, context) -> {path in the container: text}``: files the reconciler
#:   writes into the application's container before it starts (PrivateBin's conf.php);
#: - ``setup_commands(values, context) -> [[argument, …], …]``: commands the reconciler
#:   runs in the container, as ``SETUP_USER`` in ``SETUP_DIRECTORY``, once the health
#:   check passed; each must be safe to run again (Nextcloud's occ calls).
#:
#: ``values`` are the instance's complete settings, ``context`` the placeholders of its
#: manifest (``ldap.url``, ``domain`` …).
APP_HOOKS = ("validate", "files", "setup_commands")

