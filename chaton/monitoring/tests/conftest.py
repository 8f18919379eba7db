"""Fixtures of the monitoring fast tier: a fake probe engine, a fake notifier, an admin, the
tech group with one member, a team channel's webhook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from chaton.adapters.notifications.fake import FakeNotifier
from chaton.core import clock
from chaton.monitoring.engine import FakeProbeEngine, use_probes
from chaton.notifications.outbox import use_notifications

WEBHOOK = "https://chat.example.org/hooks/monitoring-secret"


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def clock_back() -> Iterator[None]:
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def engine() -> Iterator[FakeProbeEngine]:
    fake = FakeProbeEngine()
    with use_probes(fake):
        yield fake


@pytest.fixture
def notifier(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[FakeNotifier]:
    monkeypatch.setattr(settings.CHATON.governance, "webhook_url", WEBHOOK)
    fake = FakeNotifier()
    with use_notifications(fake):
        yield fake


@pytest.fixture
def admin(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                     email="wren@example.org", is_admin=True)


@pytest.fixture
def member(directory: Any) -> Any:
    from chaton.directory import actions

    return actions.do_create_account("robin", acting_user=None, display_name="Robin",
                                     email="robin@example.org")


@pytest.fixture
def tech(directory: Any, admin: Any) -> Any:
    from chaton.directory import actions

    group = actions.do_create_group("tech", acting_user=None, description="Tech team")
    actions.do_add_to_group(group, admin, acting_user=None)
    return group
