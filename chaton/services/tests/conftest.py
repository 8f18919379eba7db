"""The services' fast tier: every host's engine is an in-memory FakeEngine, the proxy a
recorder of the routes it is handed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from chaton.adapters import caddy
from chaton.adapters.caddy import use_caddy
from chaton.adapters.caddy.fake import FakeCaddyAdmin
from chaton.adapters.docker import use_docker
from chaton.adapters.docker.fake import FakeEngine
from chaton.services import actions, apply, proxy
from chaton.services.models import Host

IMAGES = {"chaton-test/web:1", "chaton-test/web:2", "chaton-test/web:broken"}
#: A documentation address (TEST-NET-1): nothing is ever bound on it in the fast tier.
ADDRESS = "192.0.2.10"


@dataclass
class FakeEngines:
    """One FakeEngine per host name, made on first use."""

    engines: dict[str, FakeEngine] = field(default_factory=dict)

    def __call__(self, host: Host) -> FakeEngine:
        if host.name not in self.engines:
            self.engines[host.name] = FakeEngine(swarm=host.swarm, images=set(IMAGES),
                                                 broken_images={"chaton-test/web:broken"})
        return self.engines[host.name]

    def __getitem__(self, name: str) -> FakeEngine:
        return self.engines[name]


@dataclass
class RecordedProxy:
    """Every call of sync_proxy: the routes handed over."""

    calls: list[list[proxy.Route]] = field(default_factory=list)
    fail: bool = False
    #: Called at each call, before the routes are taken (to look at the engine then).
    watch: Callable[[], object] | None = None
    seen: list[object] = field(default_factory=list)

    @property
    def last(self) -> dict[str, str]:
        return {route.domain: route.upstream for route in self.calls[-1]}

    #: An in-memory Caddy that serves what was handed over last: plans read it.
    admin: FakeCaddyAdmin = field(default_factory=FakeCaddyAdmin)

    def __call__(self, routes: Sequence[proxy.Route], *, dry_run: bool = False) -> list[str]:
        if self.watch is not None:
            self.seen.append(self.watch())
        if self.fail:
            raise proxy.ProxyUnavailable("the recorded proxy is down")
        if not dry_run:
            self.calls.append(list(routes))
            self.admin.load(caddy.build_config(routes, proxy.proxy_settings()))
        return []


@pytest.fixture(autouse=True)
def no_draining(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real requests are in flight in the fast tier: the old version goes at once."""
    monkeypatch.setattr(apply, "DRAIN_SECONDS", 0)


@pytest.fixture(autouse=True)
def no_stability_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake engine's versions are healthy or not from the start: one look is enough
    (the window itself is tested with a scripted engine and clock)."""
    monkeypatch.setattr(settings.CHATON.services, "upgrade_stability_seconds", 0)


@pytest.fixture
def engines(test_catalog: Path) -> Iterator[FakeEngines]:
    """Route every host's engine to a FakeEngine holding the test images."""
    fakes = FakeEngines()
    with use_docker(fakes):
        yield fakes


@pytest.fixture
def recorded_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedProxy]:
    recorder = RecordedProxy()
    monkeypatch.setattr(proxy, "sync_proxy", recorder)
    with use_caddy(recorder.admin):
        yield recorder


@pytest.fixture
def host(engines: FakeEngines, recorded_proxy: RecordedProxy) -> Host:
    return actions.do_create_host("box", "unix:///run/fake/docker.sock", acting_user=None,
                                  address=ADDRESS)


@pytest.fixture
def engine(host: Host, engines: FakeEngines) -> FakeEngine:
    return engines(host)


def make_closing_ordinary() -> None:
    """Let administrators close an instance at once (by default it takes a decision)."""
    from chaton.governance.policy import current

    policy = current()
    policy.classes = {**(policy.classes or {}), "service.close": "ordinary"}
    policy.save()


def age_instances(days: int = 8) -> None:
    """Make every instance opened ``days`` ago: past ``services.new_instance_days``, closing
    one takes a decision again."""
    import datetime as dt

    from chaton.core import clock
    from chaton.services.models import Instance

    Instance.objects.update(created_at=clock.now() - dt.timedelta(days=days))


@pytest.fixture
def closing_is_ordinary() -> None:
    make_closing_ordinary()


@pytest.fixture(autouse=True)
def _fake_directory(directory: object) -> None:
    """The services' accounts go to the in-memory directory (chaton.services.accounts)."""


@pytest.fixture(autouse=True)
def _in_english(english: None) -> None:
    """These tests read the engine's and the proxy's messages in English."""


def saved_archive(tags: Sequence[str], *, seed: str = "web") -> tuple[bytes, str]:
    """Return a small archive laid out as ``docker save`` makes it (``manifest.json`` naming
    each image's configuration blob and tags) and the id an engine gives the image."""
    import hashlib
    import io
    import json
    import tarfile

    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": f"blobs/sha256/{digest}", "RepoTags": list(tags),
                            "Layers": []}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in ((f"blobs/sha256/{digest}", config), ("manifest.json", manifest)):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue(), f"sha256:{digest}"
