"""Fixtures of the transparency fast tier: English, an administrator, a member, a host and
instances as rows (nothing is deployed: the files are written from the desired state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def public_url(settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(settings.CHATON, "public_url", "https://chaton.example.org")
    return "https://chaton.example.org"


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
def host() -> Any:
    from chaton.services.models import Host

    return Host.objects.create(name="main", docker_url="unix:///run/docker.sock",
                               is_default=True)


def make_instance(host: Any, slug: str, application: str = "etherpad", **fields: Any) -> Any:
    from chaton.services.models import Instance

    port = 20000 + Instance.objects.count()
    return Instance.objects.create(slug=slug, application=application,
                                   domain=f"{slug}.example.org", host=host, port=port, **fields)


@pytest.fixture
def tech(directory: Any, admin: Any) -> Any:
    from chaton.directory import actions

    group = actions.do_create_group("tech", acting_user=None, description="Tech team")
    actions.do_add_to_group(group, admin, acting_user=None)
    return group
