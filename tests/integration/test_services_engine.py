"""The services on a real dockerd: deploy, drift, upgrades with rollback, bad input, crashes.

The session's dockerd (``chaton.testing.docker``) runs the local test images
``chaton-test/web:1``, ``:2`` and ``:broken`` (nothing is pulled); each test
gets a real Caddy whose certificates come from the session's pebble
(``chaton.testing.acme``), so an instance is checked the way people reach it:
https://<domain>. The last tests turn the same daemon into a single-node Swarm.
Nothing here skips: a server that does not start is a failure.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.adapters.docker import EngineUnreachable, use_docker
from chaton.core.errors import Conflict, InvalidInput
from chaton.core.models import AuditLog
from chaton.core.servers import free_port
from chaton.services import actions, queries, reconcile
from chaton.services.actions import EngineUnavailable
from chaton.services.engine import engine_for
from chaton.services.models import DeploymentKind, Host, Instance, Outcome
from chaton.testing.acme import Pebble, https_get, wait_for_https
from chaton.testing.docker import FlakyImages, TemporaryDockerd, WebImages

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]


def new_domain(name: str) -> str:
    """A domain no other test used (each sees its own certificate issued)."""
    return f"{name}-{secrets.token_hex(3)}.chaton.test"


def get(port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path; return (status, body). Raise OSError."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as error:
        raise OSError(repr(error)) from None
    finally:
        connection.close()


def wait_for(port: int, expect: bytes, path: str = "/", timeout: float = 20) -> bytes:
    """Poll a published port until ``path`` answers 200 with ``expect`` in it."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = get(port, path)
            if status == 200 and expect in body:
                return body
            last = (status, body[:100])
        except OSError as error:
            last = error
        time.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port}{path} did not answer {expect!r}: {last}")


def assert_settled() -> None:
    """Reconcile: at most the setup commands of an application that was not answering yet are
    left to do; then nothing is."""
    plan, result = reconcile.reconcile()
    assert result.ok, result.failures
    assert {step.action for step in plan.steps} <= {"setup"}, plan.lines()
    assert reconcile.reconcile()[0].is_noop


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not so after {timeout:g} s")
        time.sleep(0.1)


@dataclass
class Poller:
    """Fetches a page again and again from a thread, keeping every answer (or error)."""

    fetch: Callable[[], bytes]
    answers: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(self.fetch())
            except Exception as error:  # every failure counts, whatever it is
                self.errors.append(repr(error))
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)


@pytest.fixture
def host(docker_engine: TemporaryDockerd, test_catalog: Path, caddy: ManagedCaddy) -> Host:
    """The session's dockerd as a host (its published ports on 127.0.0.1), behind a real
    Caddy whose certificates come from pebble."""
    return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)


def https_page(domain: str, roots: Path, path: str = "/") -> bytes:
    answer = https_get(domain, settings.CHATON.proxy.https_port, roots=roots, path=path)
    assert answer.status == 200, (answer.status, answer.body[:200])
    return answer.body


def create(host: Host, name: str = "pad", **options: object) -> Instance:
    return actions.do_create_instance("webtest", new_domain(name), host, acting_user=None,
                                      **options)  # type: ignore[arg-type]


def test_an_instance_answers_over_https_with_a_certificate_from_pebble(
        host: Host, pebble: Pebble, capsys: pytest.CaptureFixture[str]) -> None:
    roots = pebble.roots_path()
    domain = new_domain("pad")
    started = time.monotonic()
    instance = actions.do_create_instance("webtest", domain, host, acting_user=None,
                                          settings={"greeting": "coucou"})
    answer = wait_for_https(domain, settings.CHATON.proxy.https_port, roots=roots,
                            expect=b"chaton-test web version 1")
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nBENCH services_deploy_ready_s {elapsed:.3f} s (action to HTTPS answer, "
              "new certificate issued by pebble)")
    assert answer.issuer == pebble.intermediate().subject
    assert https_page(domain, roots, "/greeting.txt") == b"coucou\n"
    assert https_page(domain, roots, "/secret-length.txt") == b"24\n"
    assert get(instance.port, "/health")[0] == 200
    (row,) = queries.instances_with_state([instance])
    assert row.live.state in ("running", "starting")
    assert_settled()


def test_changes_made_by_hand_are_reported_and_repaired(
        host: Host, docker_engine: TemporaryDockerd) -> None:
    instance = create(host)
    api = docker_engine.api
    wait_for(instance.port, b"version 1")

    def app_container() -> dict[str, object]:
        (found,) = api.containers(all=True, filters={
            "label": [f"org.chaton.instance={instance.slug}", "org.chaton.role=app"]})
        return found  # type: ignore[no-any-return]

    # Removed by hand.
    api.remove_container(app_container()["Id"], force=True)
    plan, _engines, _planned = reconcile.plan()
    assert [step.reason for step in plan.drift] == ["application removed by hand: created again"]
    reconcile.reconcile()
    wait_for(instance.port, b"version 1")
    # Stopped by hand.
    api.stop(app_container()["Id"], timeout=5)
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.drift] == ["start"] and result.ok
    wait_for(instance.port, b"version 1")
    # Replaced by hand with a container of another spec behind the same labels.
    original = app_container()
    api.remove_container(original["Id"], force=True)
    labels = dict(original["Labels"])  # type: ignore[call-overload]
    labels["org.chaton.spec"] = "made-by-hand"
    made = api.create_container(
        "chaton-test/web:1", name="by-hand", labels=labels,
        host_config=api.create_host_config(port_bindings={8080: ("127.0.0.1", instance.port)}))
    api.start(made["Id"])
    plan, result = reconcile.reconcile()
    assert [(step.action, step.reason) for step in plan.drift] == [
        ("replace", "application changed by hand: replaced")], plan.lines()
    assert result.ok
    assert app_container()["Labels"]["org.chaton.spec"] == instance.applied["app"]  # type: ignore[index]
    wait_for(instance.port, b"version 1")
    repairs = instance.deployments.filter(kind=DeploymentKind.REPAIR)
    assert repairs.count() == 3
    assert_settled()


def test_settings_reach_the_container_and_its_app_module_sets_it_up(host: Host) -> None:
    instance = create(host)
    wait_for(instance.port, b"bonjour", "/greeting.txt")
    # The file the application's app.py writes before the container starts.
    assert get(instance.port, "/settings.txt")[1] == b"max_size_mb=10\n"
    # Its setup commands run once the page answers its health check.
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.steps] in ([], ["setup"]) and result.ok
    assert get(instance.port, "/setup.txt")[1] == f"set up for {instance.domain}\n".encode()
    instance.refresh_from_db()
    assert "setup" in instance.applied
    actions.do_update_instance_settings(instance, {"greeting": "salut", "max_size_mb": 20},
                                        acting_user=None)
    wait_for(instance.port, b"salut", "/greeting.txt")
    assert get(instance.port, "/settings.txt")[1] == b"max_size_mb=20\n"
    # The data volume outlived the container: two starts are in its history.
    assert get(instance.port, "/history.txt")[1] == b"1\n1\n"
    with pytest.raises(InvalidInput, match="do not go together"):
        actions.do_update_instance_settings(instance, {"greeting": "x" * 11, "max_size_mb": 1},
                                            acting_user=None)


def test_an_upgrade_takes_the_traffic_once_healthy_and_keeps_the_data(
        host: Host, pebble: Pebble, web_images: WebImages) -> None:
    roots = pebble.roots_path()
    instance = create(host)
    wait_for_https(instance.domain, settings.CHATON.proxy.https_port, roots=roots,
                   expect=b"version 1")
    with Poller(lambda: https_page(instance.domain, roots)) as poller:
        deployment = actions.do_upgrade_instance(instance, web_images.two, acting_user=None)
        time.sleep(0.3)
    assert deployment.outcome == Outcome.HEALTHY, deployment.message
    assert not poller.errors, poller.errors[:3]
    assert {body.strip() for body in poller.answers} <= {b"chaton-test web version 1",
                                                         b"chaton-test web version 2"}
    assert https_page(instance.domain, roots).strip() == b"chaton-test web version 2"
    instance.refresh_from_db()
    assert instance.port == deployment.to_port and instance.image == web_images.two
    assert get(instance.port, "/history.txt")[1] == b"1\n2\n"
    with pytest.raises(OSError):
        get(deployment.from_port or 0, "/")  # the old version is gone
    assert_settled()


def test_an_upgrade_to_a_broken_image_rolls_back_while_the_old_version_answers(
        host: Host, pebble: Pebble, web_images: WebImages) -> None:
    roots = pebble.roots_path()
    instance = create(host)
    wait_for_https(instance.domain, settings.CHATON.proxy.https_port, roots=roots,
                   expect=b"version 1")
    with Poller(lambda: https_page(instance.domain, roots)) as poller:
        deployment = actions.do_upgrade_instance(instance, web_images.broken, acting_user=None)
    assert deployment.outcome == Outcome.ROLLED_BACK, deployment.message
    assert "rolled back" in deployment.message
    assert not poller.errors, poller.errors[:3]
    assert len(poller.answers) > 10
    assert {body.strip() for body in poller.answers} == {b"chaton-test web version 1"}
    instance.refresh_from_db()
    assert instance.image == web_images.one and instance.image_override == ""
    with pytest.raises(OSError):
        get(deployment.to_port or 0, "/")  # the broken one was removed
    assert AuditLog.objects.filter(action="instance.upgrade_rolled_back",
                                   target_id=str(instance.pk)).exists()
    assert_settled()


@pytest.mark.parametrize("check", ["docker_check", "http_check"])
def test_an_upgrade_that_turns_unhealthy_within_the_window_rolls_back(
        host: Host, pebble: Pebble, flaky_images: FlakyImages, web_images: WebImages,
        monkeypatch: pytest.MonkeyPatch, check: str) -> None:
    # The new version passes its first checks, then fails: Docker's HEALTHCHECK turns
    # unhealthy (its /health still answers 200), or without one, /health turns 404.
    monkeypatch.setattr(settings.CHATON.services, "upgrade_stability_seconds", 15)
    roots = pebble.roots_path()
    instance = create(host)
    wait_for_https(instance.domain, settings.CHATON.proxy.https_port, roots=roots,
                   expect=b"version 1")
    image = getattr(flaky_images, check)
    started = time.monotonic()
    with Poller(lambda: https_page(instance.domain, roots)) as poller:
        deployment = actions.do_upgrade_instance(instance, image, acting_user=None)
    assert deployment.outcome == Outcome.ROLLED_BACK, deployment.message
    assert "healthy at first" in deployment.message, deployment.message
    assert ("unhealthy" if check == "docker_check" else "404") in deployment.message
    assert time.monotonic() - started < 14  # as soon as it failed, not at the window's end
    # The old version answered every poll: the new one never took the traffic.
    assert not poller.errors, poller.errors[:3]
    assert len(poller.answers) > 10
    assert {body.strip() for body in poller.answers} == {b"chaton-test web version 1"}
    instance.refresh_from_db()
    assert instance.image == web_images.one
    with pytest.raises(OSError):
        get(deployment.to_port or 0, "/")  # the flaky one was removed
    assert AuditLog.objects.filter(action="instance.upgrade_rolled_back",
                                   target_id=str(instance.pk)).exists()
    assert_settled()


def test_an_upgrade_takes_the_traffic_only_after_its_stability_window(
        host: Host, web_images: WebImages, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings.CHATON.services, "upgrade_stability_seconds", 3)
    instance = create(host)
    wait_for(instance.port, b"version 1")
    started = time.monotonic()
    deployment = actions.do_upgrade_instance(instance, web_images.two, acting_user=None)
    assert deployment.outcome == Outcome.HEALTHY, deployment.message
    assert time.monotonic() - started >= 3
    assert "Docker says healthy" in deployment.message
    assert "steadily for 3 s" in deployment.message


def test_bad_input_and_faults_leave_nothing_half_made(
        host: Host, docker_engine: TemporaryDockerd, web_images: WebImages,
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = docker_engine.api

    def nothing_left() -> None:
        assert not Instance.objects.exists()
        assert not api.containers(all=True, filters={"label": ["org.chaton.owned=1"]})
        assert not api.networks(filters={"label": ["org.chaton.owned=1"]})
        assert not api.volumes(filters={"label": ["org.chaton.owned=1"]})["Volumes"]

    with pytest.raises(InvalidInput, match="does not exist") as missing:
        create(host, image=web_images.missing)
    assert missing.value.field == "image"
    nothing_left()
    with pytest.raises(InvalidInput):
        create(host, settings={"max_size_mb": 0})
    nothing_left()
    gone = actions.do_create_host("gone", f"unix:///tmp/chaton-no-such-{secrets.token_hex(4)}"
                                  "/docker.sock", acting_user=None, check=False)
    with pytest.raises(EngineUnavailable, match="does not answer"):
        create(gone)
    nothing_left()
    with pytest.raises(EngineUnavailable):
        actions.do_create_host("down", f"tcp://127.0.0.1:{free_port()}", acting_user=None)
    # A port something else listens on.
    with listening_on(free_port()) as taken:
        with pytest.raises(Conflict, match="already in use") as clash:
            create(host, port=taken)
        assert clash.value.field == "port"
        nothing_left()
        # Taken after the checks, when the container starts: its creation is undone.
        monkeypatch.setattr(actions, "_bindable", lambda address, port: True)
        with pytest.raises(Conflict) as late:
            create(host, port=taken)
        assert late.value.field == "port"
        nothing_left()
    assert AuditLog.objects.filter(action="instance.create_failed").count() == 1
    # A port of another instance.
    first = create(host)
    with pytest.raises(Conflict, match=f"used by the instance {first.slug}"):
        create(host, "team", port=first.port)
    with pytest.raises(Conflict, match="already taken"):
        actions.do_create_instance("webtest", first.domain, host, acting_user=None)


class _Killed(BaseException):
    """The process dies: nothing catches this."""


@dataclass
class _Interrupted:
    """An engine that dies after ``writes`` changes."""

    engine: reconcile.Engine
    writes: int

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.engine, name)
        if name in ("run", "create_network", "create_volume", "remove", "start"):
            def counted(*args: object, **kwargs: object) -> object:
                if self.writes <= 0:
                    raise _Killed
                self.writes -= 1
                return attribute(*args, **kwargs)
            return counted
        return attribute


def test_a_reconcile_killed_half_way_is_completed_by_the_next(
        host: Host, docker_engine: TemporaryDockerd) -> None:
    first, second = create(host), create(host, "team")
    # The machine lost everything (same database, fresh engine); the reconcile dies half way.
    docker_engine.remove_owned()
    real = engine_for(host)
    with use_docker(lambda _host: _Interrupted(real, writes=4)):  # type: ignore[arg-type,return-value]
        with pytest.raises(_Killed):
            reconcile.reconcile()
    plan, _engines, _planned = reconcile.plan()
    assert 0 < len(plan.steps) < 6, plan.lines()
    plan, result = reconcile.reconcile()
    assert result.ok, result.failures
    wait_for(first.port, b"version 1")
    wait_for(second.port, b"version 1")
    assert_settled()


def test_the_companion_database_is_reached_by_its_alias(
        host: Host, docker_engine: TemporaryDockerd) -> None:
    from chaton.services.tests.conftest import make_closing_ordinary

    make_closing_ordinary()  # the test removes the instance at the end, without a decision
    instance = actions.do_create_instance("webtestdb", new_domain("db"), host,
                                          acting_user=None)
    wait_for(instance.port, b"version 1")
    api = docker_engine.api
    (app,) = api.containers(filters={"label": [f"org.chaton.instance={instance.slug}",
                                               "org.chaton.role=app"]})
    execution = api.exec_create(app["Id"], ["/bin/busybox", "wget", "-q", "-O", "-",
                                            "http://database:8080/"])
    assert b"chaton-test web version 1" in api.exec_start(execution["Id"])
    assert api.exec_inspect(execution["Id"])["ExitCode"] == 0
    actions.do_remove_instance(instance, confirm=instance.slug, acting_user=None,
                               delete_data=True)
    assert not api.containers(all=True, filters={"label": ["org.chaton.owned=1"]})
    assert not api.volumes(filters={"label": ["org.chaton.owned=1"]})["Volumes"]


@contextmanager
def listening_on(port: int) -> Iterator[int]:
    """Listen on 127.0.0.1:port for the block (another program holding the port)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        yield port


# -- a single-node Swarm (the same daemon, for the tests below) ------------------------------


@pytest.fixture
def swarm_host(swarm: TemporaryDockerd, docker_engine: TemporaryDockerd, test_catalog: Path,
               caddy: ManagedCaddy) -> Iterator[Host]:
    host = actions.do_create_host("cluster", swarm.url, acting_user=None, address="127.0.0.1")
    assert host.swarm, "the engine says it manages a Swarm"
    yield host


def test_on_a_swarm_services_deploy_drift_is_repaired_and_a_broken_upgrade_rolls_back(
        swarm_host: Host, swarm: TemporaryDockerd, web_images: WebImages) -> None:
    instance = create(swarm_host)
    api = swarm.api
    (service,) = api.services(filters={"label": [f"org.chaton.instance={instance.slug}"]})
    assert service["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    wait_for(instance.port, b"version 1")
    # The app module's file is a Swarm config mounted in the task.
    assert get(instance.port, "/settings.txt")[1] == b"max_size_mb=10\n"
    # A service removed by hand.
    api.remove_service(service["ID"])
    plan, result = reconcile.reconcile()
    assert [step.reason for step in plan.drift] == [
        "application removed by hand: created again"] and result.ok
    # The removed service's task lets go of the port once it has stopped (seconds later);
    # then the new service's task gets it.
    engine = engine_for(swarm_host)
    wait_until(lambda: getattr(engine.workload(plan.drift[0].target), "state", "") == "running")
    wait_for(instance.port, b"version 1", timeout=30)
    # A broken upgrade: the old service keeps answering.
    with Poller(lambda: get(instance.port)[1]) as poller:
        deployment = actions.do_upgrade_instance(instance, web_images.broken, acting_user=None)
    assert deployment.outcome == Outcome.ROLLED_BACK, deployment.message
    assert not poller.errors, poller.errors[:3]
    assert {body.strip() for body in poller.answers} == {b"chaton-test web version 1"}
    assert len(api.services(filters={"label": ["org.chaton.owned=1"]})) == 1
    # A good one: the new service takes over on its own port.
    deployment = actions.do_upgrade_instance(instance, web_images.two, acting_user=None)
    assert deployment.outcome == Outcome.HEALTHY, deployment.message
    instance.refresh_from_db()
    wait_for(instance.port, b"version 2")
    # The volume saw each start: the first, the repair, the broken one (which the Swarm
    # restarted while it failed its health check), then version 2.
    history = get(instance.port, "/history.txt")[1]
    assert history.startswith(b"1\n1\nbroken\n") and history.endswith(b"\n2\n"), history
    # The setup commands waited for a healthy version without an upgrade under way; they
    # run in the service's task.
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.steps] == ["setup"] and result.ok, result.failures
    assert get(instance.port, "/setup.txt")[1] == f"set up for {instance.domain}\n".encode()
    assert_settled()


def test_on_a_swarm_an_upgrade_that_turns_unhealthy_rolls_back(
        swarm_host: Host, flaky_images: FlakyImages, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Swarm task is running only once Docker's health check passed; when it turns
    # unhealthy, the Swarm replaces the task: not running any more, so rolled back.
    monkeypatch.setattr(settings.CHATON.services, "upgrade_stability_seconds", 15)
    instance = create(swarm_host)
    wait_for(instance.port, b"version 1", timeout=30)
    with Poller(lambda: get(instance.port)[1]) as poller:
        deployment = actions.do_upgrade_instance(instance, flaky_images.docker_check,
                                                 acting_user=None)
    assert deployment.outcome == Outcome.ROLLED_BACK, deployment.message
    assert "healthy at first" in deployment.message, deployment.message
    assert not poller.errors, poller.errors[:3]
    assert {body.strip() for body in poller.answers} == {b"chaton-test web version 1"}
    assert_settled()


def test_on_a_swarm_an_unreachable_manager_is_a_clear_error(swarm_host: Host) -> None:
    host = actions.do_create_host("elsewhere", f"tcp://127.0.0.1:{free_port()}",
                                  acting_user=None, swarm=True, check=False)
    with pytest.raises(EngineUnavailable):
        create(host)
    assert not Instance.objects.exists()
    with pytest.raises(EngineUnreachable):
        engine_for(host).snapshot()
