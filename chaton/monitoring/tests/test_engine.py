"""Where the monitoring app gets its probe engine: the adapter's, its slot shared with
``use_probes``; the real one closed after each cycle."""

from __future__ import annotations

import pytest

from chaton.adapters import probes
from chaton.monitoring import engine
from chaton.monitoring.engine import AsyncProbeEngine, FakeProbeEngine


def test_the_real_engine_is_the_adapters_and_closed_after_a_cycle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(engine.real_engine(), AsyncProbeEngine)
    closed: list[AsyncProbeEngine] = []
    monkeypatch.setattr(AsyncProbeEngine, "close", lambda self: closed.append(self))
    with engine.engine_in_use() as used:
        assert isinstance(used, AsyncProbeEngine)
    assert closed == [used]


def test_use_probes_fills_the_adapters_slot_and_a_replacement_is_never_closed() -> None:
    fake = FakeProbeEngine()
    with engine.use_probes(fake):
        assert probes.slot.current() is fake and engine.probe_engine() is fake
        with engine.engine_in_use() as used:
            assert used is fake
        with probes.use_probes(FakeProbeEngine()) as inner:
            assert engine.probe_engine() is inner
        assert engine.probe_engine() is fake
    assert probes.slot.current() is None
