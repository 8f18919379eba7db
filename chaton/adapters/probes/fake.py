"""A probe engine for the fast tests: canned results, no network."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from chaton.adapters.probes import ProbeError, ProbeResult, ProbeSpec, validate_spec

Canned = ProbeResult | Callable[[ProbeSpec], ProbeResult]


class FakeProbeEngine:
    """Answers each spec from ``results`` (by key: a result, or a function of the spec
    returning one); a key not there is up (``ok=True``, 1 ms).

    Like the real engine it returns one result per spec in order, turns a spec that
    cannot run into a failed result, and never raises for a probe: a canned function
    that raises gives a failed result. ``results`` may be changed between cycles;
    ``cycles`` keeps the specs of every cycle run.
    """

    def __init__(self, results: Mapping[str, Canned] | None = None) -> None:
        self.results: dict[str, Canned] = dict(results or {})
        self.cycles: list[list[ProbeSpec]] = []

    def run(self, specs: Sequence[ProbeSpec], *, concurrency: int = 200) -> list[ProbeResult]:
        self.cycles.append(list(specs))
        return [self._one(spec) for spec in specs]

    def _one(self, spec: ProbeSpec) -> ProbeResult:
        try:
            validate_spec(spec)
        except ProbeError as failure:
            return ProbeResult(spec.key, False, 0.0, f"bad probe: {failure}")
        canned = self.results.get(spec.key)
        if canned is None:
            return ProbeResult(spec.key, True, 1.0)
        if not isinstance(canned, ProbeResult):
            try:
                canned = canned(spec)
            except Exception as failure:  # a probe's failure is a result
                return ProbeResult(spec.key, False, 0.0,
                                   f"unexpected error: {type(failure).__name__}")
        return dataclasses.replace(canned, key=spec.key)
