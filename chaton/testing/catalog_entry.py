"""The lifecycle every catalogue entry goes through, as one base test class to subclass.

:class:`CatalogEntryTests` deploys one entry on the session's dockerd, behind a
real Caddy whose certificates come from pebble, and runs its stages in order:

1. **deploy** — ``do_create_instance``, then the instance answers over HTTPS at
   its domain;
2. **health** — Docker says ``healthy`` where the image declares a check, the
   manifest's health path answers its status, and a reconcile finds nothing
   left to do;
3. **settings change** — ``do_update_instance_settings`` changes one setting,
   and the application's container runs what the entry renders for the new
   values (its environment and the files of its ``app.py``);
4. **upgrade and rollback** — a healthy new version takes over, a broken one is
   rolled back while the old one keeps serving; what the entry's ``user_data``
   volumes hold survives both;
5. **backup and restore of its user_data** — each volume the manifest lists in
   ``user_data`` is backed up by the backups' ``docker_volume`` source into a
   real restic repository, damaged, restored in place, and drilled;
6. **probes** — each of the manifest's ``probes`` answers its status (and text)
   over HTTPS, as monitoring will ask them.

By default an entry runs on its **stand-in**: the entry's own manifest —
volumes, environment, secrets, settings, LDAP wiring, companion database,
``user_data``, probes — on the small local test image ``chaton-test/web``
(:mod:`chaton.testing.docker`) instead of its real image, which no test machine
can pull. The stand-in keeps the ``validate`` and ``files`` hooks of the entry's
``app.py``, leaves out its ``setup_commands`` (they call the real application),
and serves each probe's path as a file holding its expected text, so the
probe stage checks the route and the manifest, not the application. A
subclass that can build the real image overrides the fixtures
:meth:`~CatalogEntryTests.application` and :meth:`~CatalogEntryTests.images`
(Etherpad: ``tests/integration/test_etherpad.py``); then the probes are the
application's own answers.

``tests/integration/test_catalog_entries.py`` makes one subclass per folder of
``chaton/services/catalog/``: a new entry is tested without being named.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tarfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.conf import settings

from chaton.core.models import AuditLog
from chaton.services.catalog import Manifest, Setting
from chaton.testing.docker import WEB_PORT, TemporaryDockerd, WebImages

#: Seconds the stand-in has to answer its health check before an upgrade rolls back
#: (the broken test image never does; Docker calls it unhealthy sooner).
STAND_IN_HEALTH_TIMEOUT = 6
#: The text written into each user_data volume, checked after upgrades and a restore.
MARKER_FILE = ".chaton-test-marker"


# -- a manifest as TOML ----------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list) and all(not isinstance(item, dict) for item in value):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(data: Mapping[str, Any]) -> str:
    """Given a manifest's data (scalars, tables, arrays of tables), return it as TOML."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()
             if not isinstance(value, dict)
             and not (isinstance(value, list) and value and isinstance(value[0], dict))]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{json.dumps(name)} = {_toml_value(item)}" for name, item in value.items()]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for table in value:
                lines += ["", f"[[{key}]]"]
                lines += [f"{name} = {_toml_value(item)}" for name, item in table.items()]
    return "\n".join(lines) + "\n"


# -- the stand-in of an entry ----------------------------------------------------------------


def stand_in_name(entry: str) -> str:
    return f"{entry}-standin"


def write_stand_in(entry: str, catalog_folder: Path, image: str) -> str:
    """Write under ``catalog_folder`` the stand-in of a catalogue entry on the test ``image``
    (see the module's docstring); return its name."""
    from chaton.services import catalog

    source = catalog.CATALOG_DIR / entry
    data = tomllib.loads((source / "manifest.toml").read_text(encoding="utf-8"))
    name = stand_in_name(entry)
    data.update(name=name, image=image, local=True, port=WEB_PORT,
                health={"path": "/health", "status": 200, "timeout": STAND_IN_HEALTH_TIMEOUT})
    data.pop("build", None)
    data.pop("command", None)
    if "database" in data:
        data["database"]["image"] = image
    folder = catalog_folder / name
    folder.mkdir(parents=True)
    (folder / "manifest.toml").write_text(to_toml(data), encoding="utf-8")
    real = catalog.app_module(entry)
    hooks = [hook for hook in ("validate", "files") if hasattr(real, hook)]
    # The stand-in's own health file stays its own: an upgrade to the broken image must fail.
    probes = {"/www" + probe["path"] + ("index.html" if probe["path"].endswith("/") else ""):
              f"{probe.get('contains', '')}\n" for probe in data.get("probes", [])
              if probe["path"] != "/health"}
    module = [
        f'"""The stand-in of the catalogue entry {entry} (see chaton.testing.catalog_entry)."""',
        "from typing import Any",
    ]
    if hooks:
        module.append(f"from chaton.services.catalog.{entry}.app import {', '.join(hooks)}")
        module.append(f"real_files = {'files' if 'files' in hooks else 'None'}")
    else:
        module.append("real_files = None")
    module += [
        f"PROBES = {probes!r}",
        "def files(values: Any, context: Any) -> dict[str, str]:",
        "    found = dict(real_files(values, context)) if real_files is not None else {}",
        "    return {**found, **PROBES}",
    ]
    (folder / "app.py").write_text("\n".join(module) + "\n", encoding="utf-8")
    return name


def other_value(setting: Setting) -> Any:
    """Return a valid value of ``setting`` other than its default."""
    if setting.type == "boolean":
        return not setting.default
    if setting.type == "choice":
        return next(choice for choice in setting.choices if choice != setting.default)
    if setting.type in ("integer", "duration_days"):
        if setting.maximum is None or setting.default < setting.maximum:
            return setting.default + 1
        return setting.default - 1
    return f"{setting.default} (changed)"[:setting.maximum or 500]


@dataclass(frozen=True)
class UpgradeImages:
    """The images of the upgrade stage: the one deployed, a healthy new one, a broken one."""

    current: str
    healthy: str
    broken: str


# -- the stages ------------------------------------------------------------------------------


class CatalogEntryTests:
    """Subclass it with ``entry`` set to a catalogue folder's name (see the module's docstring).

    A subclass may set ``create_settings`` (given at creation) and override the
    fixtures :meth:`application` and :meth:`images`, or any stage.
    """

    entry: ClassVar[str]
    create_settings: ClassVar[dict[str, Any]] = {}
    #: Seconds the instance has to answer over HTTPS after its creation.
    ready_seconds: ClassVar[float] = 30

    @pytest.fixture
    def application(self, tmp_path: Path, web_images: WebImages) -> Iterator[str]:
        """Yield the name of the application to deploy: the entry's stand-in."""
        from chaton.services import catalog

        name = write_stand_in(self.entry, tmp_path / "catalog", web_images.one)
        with catalog.extra_folder(tmp_path / "catalog"):
            yield name

    @pytest.fixture
    def images(self, web_images: WebImages) -> UpgradeImages:
        return UpgradeImages(web_images.one, web_images.two, web_images.broken)

    @pytest.fixture
    def lifecycle_host(self, docker_engine: TemporaryDockerd, caddy: Any) -> Any:
        from chaton.services import actions

        return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                      address="127.0.0.1", is_default=True)

    def test_lifecycle(self, application: str, images: UpgradeImages, lifecycle_host: Any,
                       docker_engine: TemporaryDockerd, pebble: Any, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
        from chaton.services import apply, catalog

        # The old version of an upgrade goes at once: what it drains is tested elsewhere.
        monkeypatch.setattr(apply, "DRAIN_SECONDS", 0)
        self.dockerd = docker_engine
        self.roots = pebble.roots_path()
        self.manifest: Manifest = catalog.get(application)
        started = time.monotonic()
        instance = self.deploy(application, lifecycle_host)
        self._lap("deploy", started)
        self.check_health(instance)
        self._lap("health", started)
        self.change_settings(instance)
        self._lap("settings", started)
        self.upgrade_and_roll_back(instance, images)
        self._lap("upgrade", started)
        self.back_up_and_restore(instance, tmp_path, monkeypatch)
        self._lap("backup", started)
        self.check_probes(instance)
        self._lap("probes", started)

    def _lap(self, stage: str, started: float) -> None:
        print(f"{self.entry}: {stage} done at {time.monotonic() - started:.1f} s")

    # -- 1. deploy

    def deploy(self, application: str, host: Any) -> Any:
        from chaton.services import actions
        from chaton.testing.waiting import wait_until

        domain = f"{self.entry}-{secrets.token_hex(3)}.chaton.test"
        instance = actions.do_create_instance(application, domain, host, acting_user=None,
                                              settings=dict(self.create_settings))
        health = self.manifest.health
        wait_until(lambda: self._status(instance, health.path) == health.status,
                   self.ready_seconds)
        return instance

    # -- 2. health

    def check_health(self, instance: Any) -> None:
        from chaton.services import queries, reconcile
        from chaton.testing.waiting import wait_until

        health = self.manifest.health
        app = self.app_container(instance)
        if self.dockerd.api.inspect_container(app)["Config"].get("Healthcheck"):
            wait_until(lambda: self.dockerd.api.inspect_container(app)["State"]["Health"]
                       ["Status"] == "healthy", health.timeout)
        answer = self.https(instance, health.path)
        assert answer.status == health.status, (health.path, answer.status)
        (row,) = queries.instances_with_state([instance])
        assert row.live.state == "running", row.live
        plan, result = reconcile.reconcile()
        assert result.ok, (result.failures, result.proxy_error)
        assert reconcile.reconcile()[0].is_noop, plan.lines()

    # -- 3. settings change

    def change_settings(self, instance: Any) -> None:
        from chaton.services import actions, instance_secrets, render
        from chaton.services.models import Instance

        if not self.manifest.settings:
            return
        setting = next((setting for setting in self.manifest.settings if setting.env),
                       self.manifest.settings[0])
        value = other_value(setting)
        actions.do_update_instance_settings(instance, {setting.name: value}, acting_user=None)
        instance = Instance.objects.get(pk=instance.pk)
        assert instance.settings[setting.name] == value
        desired = render.desired_for(instance, instance_secrets.ensure(instance))
        spec = desired.workloads[render.APP]
        details = self.dockerd.api.inspect_container(self.app_container(instance))
        running = dict(item.split("=", 1) for item in details["Config"]["Env"] or [])
        assert {name: running.get(name) for name, _ in spec.environment} == dict(
            spec.environment)
        if setting.env:
            assert running[setting.env] == render.setting_text(value)
        for path, text in spec.files:
            assert self.read_file(instance, path) == text, path

    # -- 4. upgrade and rollback

    def upgrade_and_roll_back(self, instance: Any, images: UpgradeImages) -> None:
        from chaton.services import actions
        from chaton.services.models import Instance, Outcome

        self.mark_user_data(instance, "before the upgrades")
        upgraded = actions.do_upgrade_instance(instance, images.healthy, acting_user=None)
        assert upgraded.outcome == Outcome.HEALTHY, upgraded.message
        instance = Instance.objects.get(pk=instance.pk)
        assert instance.image == images.healthy
        self.https(instance, self.manifest.health.path)
        failed = actions.do_upgrade_instance(instance, images.broken, acting_user=None)
        assert failed.outcome == Outcome.ROLLED_BACK, failed.message
        instance = Instance.objects.get(pk=instance.pk)
        assert instance.image == images.healthy
        assert AuditLog.objects.filter(action="instance.upgrade_rolled_back",
                                       target_id=str(instance.pk)).exists()
        assert self.https(instance, self.manifest.health.path).status == \
            self.manifest.health.status
        self.check_user_data(instance, "before the upgrades")

    # -- 5. backup and restore of user_data

    def back_up_and_restore(self, instance: Any, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
        from chaton.adapters.restic.client import Restic
        from chaton.backups.sources import BackupContext
        from chaton.backups.sources.docker_volume import DockerVolumeSource
        from chaton.services import render

        if not self.manifest.user_data:
            return
        # The source asks the Docker adapter at the endpoint DOCKER_HOST names.
        monkeypatch.setenv("DOCKER_HOST", self.dockerd.url)
        restic = Restic(str(tmp_path / "repository"), secrets.token_urlsafe(16),
                        cache_directory=str(tmp_path / "restic-cache"))
        restic.init()
        self.mark_user_data(instance, "backed up")
        for volume in self.manifest.user_data:
            name = render.volume_name(instance.slug, volume)
            source = DockerVolumeSource(volume, DockerVolumeSource.clean_params({"volume": name}))
            result = source.backup(BackupContext(restic=restic, tags=["test"], host="test",
                                                 time=dt.datetime.now(dt.UTC)))
            self.mark_user_data(instance, "damaged", volumes=[volume])
            source.restore_in_place(restic, result.snapshot_id)
            scratch = tmp_path / f"drill-{volume}"
            scratch.mkdir()
            verification = source.drill(restic, result.snapshot_id, result.fingerprint, scratch)
            assert not verification.differences, verification.differences
        self.check_user_data(instance, "backed up")

    # -- 6. probes

    def check_probes(self, instance: Any) -> None:
        for probe in self.manifest.probes:
            answer = self.https(instance, probe.path)
            assert answer.status == probe.status, (probe.path, answer.status, answer.body[:200])
            assert probe.contains.encode() in answer.body, (probe.path, answer.body[:200])

    # -- helpers

    def https(self, instance: Any, path: str) -> Any:
        """GET https://<the instance's domain><path> through Caddy, trusting pebble's root."""
        from chaton.testing.acme import https_get

        return https_get(instance.domain, settings.CHATON.proxy.https_port, roots=self.roots,
                         path=path, timeout=10)

    def _status(self, instance: Any, path: str) -> int | None:
        """Return the status https://<domain><path> answers, or None while nothing does."""
        try:
            return int(self.https(instance, path).status)
        except OSError:
            return None

    def app_container(self, instance: Any) -> str:
        """Return the id of the instance's running application container."""
        (found,) = self.dockerd.api.containers(filters={
            "label": [f"org.chaton.instance={instance.slug}", "org.chaton.role=app"]})
        return str(found["Id"])

    def read_file(self, instance: Any, path: str) -> str:
        """Return a file of the application's container."""
        stream, _stat = self.dockerd.api.get_archive(self.app_container(instance), path)
        with tarfile.open(fileobj=BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            assert member is not None
            extracted = archive.extractfile(member)
            assert extracted is not None
            return extracted.read().decode()

    def _volume_paths(self, volumes: list[str] | None = None) -> list[str]:
        wanted = self.manifest.user_data if volumes is None else volumes
        return [volume.path for volume in self.manifest.volumes if volume.name in wanted]

    def mark_user_data(self, instance: Any, text: str, *, volumes: list[str] | None = None
                       ) -> None:
        """Write ``text`` into a file of each user_data volume (or of ``volumes``)."""
        container = self.app_container(instance)
        for path in self._volume_paths(volumes):
            buffer = BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                data = f"{text}\n".encode()
                info = tarfile.TarInfo(MARKER_FILE)
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, BytesIO(data))
            assert self.dockerd.api.put_archive(container, path, buffer.getvalue())

    def check_user_data(self, instance: Any, text: str) -> None:
        for path in self._volume_paths():
            assert self.read_file(instance, f"{path}/{MARKER_FILE}") == f"{text}\n", path
