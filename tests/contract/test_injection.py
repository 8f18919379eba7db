"""One injection shape for every adapter: ``use_<name>(client or function of the key)``."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from chaton.adapters.caddy import use_caddy
from chaton.adapters.caddy.fake import FakeCaddyAdmin
from chaton.adapters.docker import slot as docker_slot
from chaton.adapters.docker import use_docker
from chaton.adapters.docker.fake import FakeEngine
from chaton.adapters.ldap import slot as ldap_slot
from chaton.adapters.ldap import use_ldap
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.adapters.restic import slot as restic_slot
from chaton.adapters.restic import use_restic
from chaton.adapters.restic.fake import FakeRestic


def test_a_client_serves_every_key_and_a_function_is_called_with_the_key() -> None:
    fake = FakeEngine()
    with use_docker(fake):
        assert docker_slot.current("box") is fake and docker_slot.current("other") is fake
    made: dict[str, FakeEngine] = {}

    def per_host(host: str) -> FakeEngine:
        return made.setdefault(host, FakeEngine())

    with use_docker(per_host):
        assert docker_slot.current("box") is docker_slot.current("box") is made["box"]
        assert docker_slot.current("other") is made["other"] is not made["box"]
    assert docker_slot.current("box") is None


def test_blocks_nest_and_put_the_previous_one_back() -> None:
    outer, inner = FakeRestic(), FakeRestic()
    with use_restic(outer):
        with use_restic(inner):
            assert restic_slot.current(None) is inner
        assert restic_slot.current(None) is outer
    assert restic_slot.current(None) is None


def test_the_slot_is_the_processs_not_the_threads() -> None:
    fake = FakeDirectory("dc=example,dc=org")
    seen: list[object] = []
    with use_ldap(fake):
        thread = threading.Thread(target=lambda: seen.append(ldap_slot.current()))
        thread.start()
        thread.join()
        assert ldap_slot.detail("base_dn") == "dc=example,dc=org"  # the fake's own base
    assert seen == [fake]
    assert ldap_slot.detail("base_dn") is None


def test_something_else_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="use_caddy"), use_caddy(SimpleNamespace()):  # type: ignore[arg-type]
        pass
    with use_caddy(FakeCaddyAdmin()) as admin:
        assert isinstance(admin, FakeCaddyAdmin)


def test_the_apps_ask_the_slot_first(db: None) -> None:
    from chaton.backups.engine import restic_for
    from chaton.backups.models import Repository
    from chaton.directory.backend import base_dn, get_directory
    from chaton.services.engine import engine_for
    from chaton.services.models import Host
    from chaton.services.proxy import proxy_admin

    directory, engine, admin, restic = (FakeDirectory("dc=x,dc=test"), FakeEngine(),
                                        FakeCaddyAdmin(), FakeRestic())
    with use_ldap(directory), use_docker(engine), use_caddy(admin), use_restic(restic):
        assert get_directory() is directory and base_dn() == "dc=x,dc=test"
        assert engine_for(Host(name="box", docker_url="unix:///nowhere.sock")) is engine
        assert proxy_admin() is admin
        assert restic_for(Repository(name="r", location="/nowhere")) is restic
