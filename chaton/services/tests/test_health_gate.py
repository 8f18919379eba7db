"""The upgrade's health gate (``apply.wait_healthy``) on a scripted engine and clock:
Docker's own verdict counts when the image declares a health check, and a new version
must stay healthy for the whole stability window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chaton.adapters.docker import Workload
from chaton.services.apply import HEALTH_POLL_SECONDS, wait_healthy
from chaton.services.catalog import Health

HEALTH = Health(path="/health", status=200, timeout=10)


@dataclass
class Clock:
    now: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedEngine:
    """An engine whose one workload's Docker health and HTTP answer depend on the time."""

    clock: Clock
    #: Given the time, return (Docker's health, the HTTP status or None for no answer).
    script: Callable[[float], tuple[str, int | None]]
    looks: list[float] = field(default_factory=list)

    def workload(self, name: str) -> Workload | None:
        self.looks.append(self.clock.now)
        health, _status = self.script(self.clock.now)
        return Workload(id="1", name=name, kind="container", instance="pad", role="app",
                        spec_hash="x", image="web:2", state="running", health=health)

    def probe(self, address: str, port: int, path: str, *, timeout: float = 2.0) -> int:
        _health, status = self.script(self.clock.now)
        if status is None:
            raise ConnectionRefusedError("nothing listens")
        return status


def gate(script: Callable[[float], tuple[str, int | None]], stability: float
         ) -> tuple[bool, str, Clock]:
    clock = Clock()
    engine = ScriptedEngine(clock, script)
    healthy, detail = wait_healthy(engine, "new", "127.0.0.1", 8080, HEALTH,  # type: ignore[arg-type]
                                   stability=stability, monotonic=clock.monotonic,
                                   sleep=clock.sleep)
    return healthy, detail, clock


def test_an_http_200_while_docker_still_says_starting_is_not_healthy() -> None:
    # The page answers at once; Docker's check calls it healthy only at 3 s.
    healthy, detail, clock = gate(lambda now: ("healthy" if now >= 3 else "starting", 200),
                                  stability=5)
    assert healthy, detail
    assert "Docker says healthy" in detail
    assert clock.now >= 3 + 5  # the window starts once Docker says healthy


def test_docker_turning_unhealthy_within_the_window_fails_the_gate() -> None:
    healthy, detail, clock = gate(
        lambda now: ("healthy" if 1 <= now < 4 else "unhealthy" if now >= 4 else "starting",
                     200), stability=30)
    assert not healthy
    assert "unhealthy" in detail
    assert 4 <= clock.now < 5  # as soon as Docker says so, not at the end of the window


def test_without_a_docker_check_the_http_check_must_pass_over_the_whole_window() -> None:
    # No HEALTHCHECK in the image: its first 200, then 404 two seconds later.
    healthy, detail, clock = gate(lambda now: ("none", 200 if now < 2 else 404), stability=30)
    assert not healthy
    assert "healthy at first" in detail and "404" in detail
    assert 2 <= clock.now < 2 + 2 * HEALTH_POLL_SECONDS


def test_one_missed_answer_within_the_window_fails_the_gate() -> None:
    healthy, detail, _clock = gate(lambda now: ("none", None if 5 <= now < 5.3 else 200),
                                   stability=30)
    assert not healthy and "nothing listens" in detail


def test_steadily_healthy_passes_after_the_window_and_without_one_at_once() -> None:
    healthy, detail, clock = gate(lambda now: ("none", 200), stability=30)
    assert healthy and "steadily for 30 s" in detail
    assert 30 <= clock.now < 30 + 2 * HEALTH_POLL_SECONDS
    healthy, _detail, clock = gate(lambda now: ("none", 200), stability=0)
    assert healthy and clock.now == 0


def test_never_healthy_times_out_with_the_last_reason() -> None:
    healthy, detail, clock = gate(lambda now: ("starting", 200), stability=30)
    assert not healthy
    assert "within 10 s" in detail and "still says starting" in detail
    assert 10 <= clock.now < 11
