"""An operation is done when its effect is real, on a real dockerd.

An administrator opens a pad by an ordinary action. The engine answers the
checks, then is unreachable when the deployment runs after the commit (a job
of the long lane): the operation is failed with the reason, nothing is left on
the engine or in the database, the decision says "failed", and nothing raises
from the commit. Once the engine is back, the administrator's retry opens the
pad, which answers.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.servers import free_port
from chaton.governance import actions as governance
from chaton.governance import queries
from chaton.governance.models import OperationStatus
from chaton.governance.tests.test_api import api_for, make_account
from chaton.services import actions
from chaton.services import engine as service_engine
from chaton.services.models import Instance
from chaton.testing.docker import TemporaryDockerd
from chaton.testing.jobs import finish_jobs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]


class _Pipe(socketserver.BaseRequestHandler):
    """Carry one TCP connection to the dockerd's socket, both ways."""

    server: _Relay

    def handle(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(str(self.server.target))
            self.server.connections.append(self.request)

            def back() -> None:
                try:
                    while data := upstream.recv(65536):
                        self.request.sendall(data)
                except OSError:
                    pass
                finally:
                    _close(self.request)

            threading.Thread(target=back, daemon=True).start()
            try:
                while data := self.request.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()


class _Relay(socketserver.ThreadingTCPServer):
    """The engine as a host reaches it over TCP; :meth:`cut` makes it unreachable."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, target: Path) -> None:
        super().__init__(("127.0.0.1", port), _Pipe)
        self.target = target
        self.connections: list[socket.socket] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def cut(self) -> None:
        self.shutdown()
        self.server_close()
        for connection in self.connections:
            _close(connection)


@pytest.fixture
def relay(docker_engine: TemporaryDockerd) -> Iterator[dict[str, _Relay]]:
    port = free_port()
    relays = {"now": _Relay(port, docker_engine.socket_path)}
    relays["now"].port = port  # type: ignore[attr-defined]
    try:
        yield relays
    finally:
        relays["now"].cut()


def test_a_deployment_that_fails_after_the_commit_fails_its_operation_and_a_retry_opens_it(
        client, relay: dict[str, _Relay], docker_engine: TemporaryDockerd,
        test_catalog: Path, caddy: ManagedCaddy, monkeypatch: pytest.MonkeyPatch) -> None:
    port = relay["now"].port  # type: ignore[attr-defined]
    wren = make_account("wren", is_admin=True)
    actions.do_create_host("box", f"tcp://127.0.0.1:{port}", acting_user=None,
                           address="127.0.0.1", is_default=True)
    # The engine goes away between the commit and the deployment.
    deploy = actions._deploy_created

    def unreachable_first(primary_key: int, acting_user: object) -> object:
        relay["now"].cut()
        service_engine._engines.cache = {}  # no connection kept from the checks
        return deploy(primary_key, acting_user)  # type: ignore[arg-type]

    monkeypatch.setattr(actions, "_deploy_created", unreachable_first)
    decision = governance.do_act("A pad", [{"type": "service.open", "params": {
        "application": "webtest", "domain": "pad.example.org", "host": "box"}}],
        acting_user=wren)
    finish_jobs()  # the deployment runs in the long lane, after the commit
    row = decision.operations.get()
    assert row.status == OperationStatus.FAILED
    assert "does not answer" in row.message, row.message
    assert queries.row(decision).execution == "failed"
    assert not Instance.objects.exists()
    assert not docker_engine.api.containers(all=True,
                                            filters={"label": ["org.chaton.owned=1"]})

    # The engine is back: the administrator's retry deploys the pad, which answers.
    monkeypatch.setattr(actions, "_deploy_created", deploy)
    relay["now"] = _Relay(port, docker_engine.socket_path)
    service_engine._engines.cache = {}
    body = api_for(client, wren).post(f"/governance/decisions/{decision.pk}/retry", {}).json()
    finish_jobs()
    assert body["operations"][0]["status"] == "done", body
    assert body["execution"] == "executed"
    instance = Instance.objects.get(domain="pad.example.org")
    assert docker_engine.api.containers(filters={"label": [
        f"org.chaton.instance={instance.slug}", "org.chaton.role=app"]})
