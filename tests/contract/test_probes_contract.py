"""The probe engine's contract: the same assertions against the fake and the real engine
(which asks real servers on free loopback ports), so the fake cannot drift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaton.adapters.probes import ProbeEngine, ProbeResult, ProbeSpec
from chaton.adapters.probes.client import AsyncProbeEngine
from chaton.adapters.probes.fake import FakeProbeEngine
from chaton.testing.probe_targets import ProbeTargets, probe_targets
from chaton.testing.pytest_plugin import hold_closed_port

pytestmark = pytest.mark.integration


class Servers:
    """The addresses both engines are given: a real server that answers, a closed port."""

    def __init__(self, targets: ProbeTargets, closed_port: int) -> None:
        self.up = ProbeSpec("web:up", "http", f"http://127.0.0.1:{targets.ports.http}/ok",
                            ("[STATUS] == 200",))
        self.failing = ProbeSpec("web:failing", "http",
                                 f"http://127.0.0.1:{targets.ports.http}/fail",
                                 ("[STATUS] == 200",))
        self.refused = ProbeSpec("tcp:refused", "tcp", f"127.0.0.1:{closed_port}")
        self.hanging = ProbeSpec("web:hanging", "http",
                                 f"http://127.0.0.1:{targets.ports.http}/slow", timeout=0.3)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    held = hold_closed_port()
    try:
        with probe_targets(tmp_path_factory.mktemp("contract"), slow_seconds=30,
                           with_smtp=False) as targets:
            yield Servers(targets, held.getsockname()[1])
    finally:
        held.close()


@pytest.fixture(params=["fake", "real"])
def engine(request: pytest.FixtureRequest, servers: Servers) -> Iterator[ProbeEngine]:
    if request.param == "real":
        real = AsyncProbeEngine()
        yield real
        real.close()
        return
    # The fake answers as the real servers do.
    yield FakeProbeEngine({
        servers.failing.key: ProbeResult("", False, 2.0, "[STATUS] (503) == 200", status=503),
        servers.refused.key: ProbeResult("", False, 1.0, "connection refused"),
        servers.hanging.key: ProbeResult("", False, 300.0, "timed out after 0.3 s"),
    })


def test_one_result_per_spec_in_order(engine: ProbeEngine, servers: Servers) -> None:
    specs = [servers.refused, servers.up, servers.failing, servers.up, servers.hanging]
    results = engine.run(specs, concurrency=3)
    assert [result.key for result in results] == [spec.key for spec in specs]
    assert [result.ok for result in results] == [False, True, False, True, False]


def test_a_failure_is_a_result_never_an_exception(engine: ProbeEngine, servers: Servers) -> None:
    failing, refused, hanging = engine.run([servers.failing, servers.refused, servers.hanging])
    assert (failing.ok, failing.error, failing.status) == (False, "[STATUS] (503) == 200", 503)
    assert (refused.ok, refused.error) == (False, "connection refused")
    assert (hanging.ok, hanging.error) == (False, "timed out after 0.3 s")


def test_an_up_probe_has_no_error_and_a_duration(engine: ProbeEngine, servers: Servers) -> None:
    [up] = engine.run([servers.up])
    assert up.ok and up.error == "" and up.duration_ms > 0


def test_a_spec_that_cannot_run_is_a_failed_result(engine: ProbeEngine,
                                                   servers: Servers) -> None:
    bad_condition = ProbeSpec("custom:1", "http", servers.up.target, ("[STATUS] = 200",))
    bad_kind = ProbeSpec("custom:2", "gopher", "127.0.0.1:70")
    bad_target = ProbeSpec("custom:3", "smtp", "no port here")
    results = engine.run([bad_condition, servers.up, bad_kind, bad_target])
    assert [result.ok for result in results] == [False, True, False, False]
    assert all(result.error.startswith("bad probe: ") for result in results if not result.ok)
    assert "expected an operator" in results[0].error


def test_an_empty_cycle(engine: ProbeEngine) -> None:
    assert engine.run([]) == []
