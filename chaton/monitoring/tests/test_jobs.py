"""The worker runs monitoring in its long lane: a cycle held up by slow probes never delays
the directory's sync and expiries."""

from __future__ import annotations

import threading
import time

import pytest

from chaton.core import worker
from chaton.monitoring import jobs
from chaton.monitoring.cycle import run_cycle
from chaton.monitoring.engine import FakeProbeEngine, ProbeResult, ProbeSpec, use_probes
from chaton.monitoring.models import Probe, Result, Source

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_monitoring_jobs_run_in_the_long_lane() -> None:
    assert {"monitoring.cycle", "monitoring.rollup"} <= jobs.LONG_JOBS
    names = [name for name, _job in jobs.due_jobs(worker.Schedule())]
    assert names == ["monitoring.cycle", "monitoring.rollup"]


def test_a_slow_cycle_never_holds_up_the_directory_jobs(directory: object) -> None:
    release = threading.Event()

    def slow(spec: ProbeSpec) -> ProbeResult:
        release.wait(20)
        return ProbeResult(spec.key, True, 20_000.0)

    Probe.objects.create(key="custom:slow", name="Slow", kind="http",
                         target="https://slow.example.org/", service="Slow",
                         source=Source.CUSTOM)
    lane = worker.LongLane()
    with use_probes(FakeProbeEngine({"custom:slow": slow})):
        started = time.monotonic()
        results = worker.run_jobs(worker.Schedule(), lane)
        took = time.monotonic() - started
        try:
            assert [result.job for result in results][:2] == ["directory.sync",
                                                              "directory.expiry"]
            assert took < 10
            assert "monitoring.cycle" in lane.running()
        finally:
            release.set()
        assert lane.wait(30)
    assert Probe.objects.get(key="custom:slow").last_duration_ms == 20_000.0


def test_the_workers_cycle_and_a_second_one_never_check_a_probe_twice() -> None:
    """While one cycle runs (here the worker's, its probe held by a slow server), a second
    one on the machine — ``chaton monitor run`` — checks nothing and says so."""
    release = threading.Event()
    entered = threading.Event()

    def slow(spec: ProbeSpec) -> ProbeResult:
        entered.set()
        release.wait(20)
        return ProbeResult(spec.key, True, 5.0)

    Probe.objects.create(key="custom:slow", name="Slow", kind="http",
                         target="https://slow.example.org/", service="Slow",
                         source=Source.CUSTOM)
    engine = FakeProbeEngine({"custom:slow": slow})
    [(name, job)] = [due for due in jobs.due_jobs(worker.Schedule())
                     if due[0] == "monitoring.cycle"]
    lane = worker.LongLane()
    with use_probes(engine):
        assert lane.start(name, job)  # as the worker does: under the lock of the job's name
        try:
            assert entered.wait(10)
            second = run_cycle(every=True)
            assert second.busy and second.checked == 0
            assert "Another monitoring cycle is running" in second.summary()
        finally:
            release.set()
            assert lane.wait(30)
        slow_results = Result.objects.filter(probe__key="custom:slow")
        assert len(engine.cycles) == 1 and slow_results.count() == 1
        # Once the first is over, the next cycle runs.
        third = run_cycle(every=True)
    assert not third.busy and third.checked >= 1
    assert len(engine.cycles) == 2 and slow_results.count() == 2
