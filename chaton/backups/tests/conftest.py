"""Fixtures of the backups unit tests: a fake restic behind every repository."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaton.adapters.restic import use_restic
from chaton.adapters.restic.fake import FakeRestic


@pytest.fixture
def fake_restic(db: None) -> Iterator[FakeRestic]:
    """Yield one in-memory repository that every Chaton call to restic reaches."""

    fake = FakeRestic(password="correct horse battery staple",
                      repository_password="correct horse battery staple")

    def client(repository: object) -> FakeRestic:
        fake.password = repository.password()  # type: ignore[attr-defined]
        return fake

    with use_restic(client):
        yield fake


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    """Messages in English, whatever the collective's language: the tests read them."""
    from django.utils import translation

    with translation.override("en"):
        yield
