"""The Caddy adapter's contract: the same assertions on the fake and on the real client.

``FakeCaddyAdmin`` stands for Caddy's admin API in every fast test of the
proxy; here it must answer as :class:`~chaton.adapters.caddy.client.CaddyAdmin`
does against a real Caddy this test starts: a configuration loaded is the one
read back (routes included), a refused one leaves the previous one serving, the
own authority's root once a configuration uses it, and ProxyUnreachable when
the admin API does not answer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaton.adapters.caddy import (
    ProxyAdmin,
    ProxyRefused,
    ProxySettings,
    ProxyUnreachable,
    Route,
    build_config,
    served_routes,
)
from chaton.adapters.caddy.client import CaddyAdmin
from chaton.adapters.caddy.fake import FakeCaddyAdmin
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.servers import free_port
from chaton.testing.pytest_plugin import hold_closed_port

SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]
ROUTE = Route("pad.contract.test", "127.0.0.1:8081")


@dataclass
class Side:
    admin: ProxyAdmin
    admin_listen: str
    storage: Path


@pytest.fixture(params=SIDE)
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    """Yield an admin API: the fake, or a client of a Caddy of the test's own, on free ports."""
    directory = Path(tempfile.mkdtemp(prefix="chaton-contract-caddy-"))
    try:
        if request.param == "fake":
            yield Side(FakeCaddyAdmin(), "127.0.0.1:1", directory / "storage")
            return
        port = free_port()
        server = ManagedCaddy(directory / "caddy", admin_port=port)
        server.start()
        try:
            yield Side(CaddyAdmin(server.admin_url), f"127.0.0.1:{port}", directory / "storage")
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def config(side: Side, routes: list[Route], *, https_port: int | None = None) -> dict[str, Any]:
    """Return a whole configuration (certificates from Caddy's own authority, no ACME)."""
    return build_config(routes, ProxySettings(
        admin_listen=side.admin_listen, http_port=free_port(),
        https_port=https_port or free_port(), acme_ca="", storage_root=str(side.storage),
        tls="internal"))


def test_a_loaded_configuration_is_the_one_read_back(side: Side) -> None:
    wanted = config(side, [ROUTE])
    side.admin.load(wanted)
    assert side.admin.read_config() == wanted
    assert served_routes(side.admin.read_config()) == {ROUTE.domain: ROUTE.upstream}
    side.admin.load(config(side, []))
    assert served_routes(side.admin.read_config()) == {}


def test_a_refused_configuration_leaves_the_previous_one(side: Side) -> None:
    serving = config(side, [ROUTE])
    side.admin.load(serving)
    held = hold_closed_port()  # Caddy cannot bind a port someone holds
    try:
        if isinstance(side.admin, FakeCaddyAdmin):
            side.admin.refuse = "listen tcp: address already in use"
        with pytest.raises(ProxyRefused):
            side.admin.load(config(side, [], https_port=held.getsockname()[1]))
    finally:
        held.close()
    assert side.admin.read_config() == serving


def test_its_own_authority_has_a_root_once_used(side: Side) -> None:
    side.admin.load(config(side, [ROUTE]))
    assert "BEGIN CERTIFICATE" in side.admin.root_certificate()
    assert side.admin.certificate_failure("never.contract.test") is None


@pytest.fixture(params=SIDE)
def down(request: pytest.FixtureRequest) -> Iterator[ProxyAdmin]:
    """Yield an admin API that does not answer."""
    if request.param == "fake":
        fake = FakeCaddyAdmin()
        fake.down = True
        yield fake
        return
    held = hold_closed_port()
    try:
        yield CaddyAdmin(f"http://127.0.0.1:{held.getsockname()[1]}", timeout=2)
    finally:
        held.close()


def test_an_admin_api_that_does_not_answer_is_unreachable(down: ProxyAdmin) -> None:
    with pytest.raises(ProxyUnreachable) as raised:
        down.read_config()
    assert isinstance(raised.value, ConnectionError)
    with pytest.raises(ProxyUnreachable):
        down.load({})
    with pytest.raises(ProxyUnreachable):
        down.root_certificate()
