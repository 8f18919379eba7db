"""Where the monitoring app gets its probe engine: :func:`probe_engine`, :func:`use_probes`.

The engine's contract (``ProbeSpec``, ``ProbeResult``, ``parse_condition`` …)
is the probes adapter's, :mod:`chaton.adapters.probes`, re-exported here; the
real engine is its :class:`~chaton.adapters.probes.client.AsyncProbeEngine`,
the fast tests' its :class:`~chaton.adapters.probes.fake.FakeProbeEngine`.

:func:`engine_in_use` is how a cycle takes the engine: the real one is made for
the cycle and closed after it (it holds a thread pool for LDAP), a test's
replacement is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from chaton.adapters import probes as adapter
from chaton.adapters.probes import (
    KINDS,
    PLACEHOLDERS_BY_KIND,
    BadCondition,
    BadSpec,
    Condition,
    ProbeEngine,
    ProbeError,
    ProbeResult,
    ProbeSpec,
    check_conditions,
    parse_condition,
    parse_conditions,
    validate_spec,
)
from chaton.adapters.probes.client import AsyncProbeEngine
from chaton.adapters.probes.fake import FakeProbeEngine

__all__ = ["KINDS", "PLACEHOLDERS_BY_KIND", "AsyncProbeEngine", "BadCondition", "BadSpec",
           "Condition", "FakeProbeEngine", "ProbeEngine", "ProbeError", "ProbeResult", "ProbeSpec",
           "check_conditions", "engine_in_use", "parse_condition", "parse_conditions",
           "probe_engine", "real_engine", "use_probes", "validate_spec"]


def real_engine() -> AsyncProbeEngine:
    """Return the engine that talks to real servers; close it after use."""
    return AsyncProbeEngine()


def probe_engine() -> ProbeEngine:
    """Return the engine to use now: the one :func:`use_probes` set, else a real one."""
    return adapter.slot.current() or real_engine()


@contextmanager
def engine_in_use() -> Iterator[ProbeEngine]:
    """Yield the engine to use for one cycle; a real one is closed at the end of the block."""
    engine = probe_engine()
    try:
        yield engine
    finally:
        if isinstance(engine, AsyncProbeEngine):
            engine.close()


def use_probes(engine: ProbeEngine) -> AbstractContextManager[Any]:
    """Within the block, run every probe of this process through ``engine``."""
    return adapter.use_probes(engine)
