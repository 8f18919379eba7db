"""The fake engine (fast tier): canned results by key, functions of the spec, cycles kept."""

from __future__ import annotations

from chaton.adapters.probes import ProbeResult, ProbeSpec
from chaton.adapters.probes.fake import FakeProbeEngine

UP = ProbeSpec("instance:pads:https", "http", "https://pads.chaton.test/")
DOWN = ProbeSpec("directory", "ldap", "ldap://127.0.0.1:1")


def test_unknown_keys_are_up_and_canned_ones_keep_the_spec_key() -> None:
    engine = FakeProbeEngine({DOWN.key: ProbeResult("anything", False, 3.0, "connection refused")})
    up, down = engine.run([UP, DOWN])
    assert (up.key, up.ok) == (UP.key, True)
    assert (down.key, down.ok, down.error) == (DOWN.key, False, "connection refused")
    assert engine.cycles == [[UP, DOWN]]


def test_a_canned_function_sees_the_spec_and_may_change_between_cycles() -> None:
    engine = FakeProbeEngine({UP.key: lambda spec: ProbeResult(spec.key, False, 1.0, spec.target)})
    assert engine.run([UP])[0].error == UP.target
    engine.results[UP.key] = ProbeResult(UP.key, True, 1.0)
    assert engine.run([UP])[0].ok
    assert len(engine.cycles) == 2


def test_a_canned_function_that_raises_is_a_failed_result() -> None:
    def broken(spec: ProbeSpec) -> ProbeResult:
        raise RuntimeError("secret-token-in-message")

    [result] = FakeProbeEngine({UP.key: broken}).run([UP])
    assert not result.ok and result.error == "unexpected error: RuntimeError"
