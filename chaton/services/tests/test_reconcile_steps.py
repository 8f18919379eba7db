"""The reconcile's steps apart: the secrets step is the only write before a plan; rendering
and planning write nothing; an instance whose secrets do not decrypt is reported and left
running, never touched."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chaton.adapters.docker.fake import FakeEngine
from chaton.services import actions, instance_secrets, reconcile, render
from chaton.services.models import Host, Instance
from chaton.services.plan import Action, pending_upgrades, plan_host

pytestmark = pytest.mark.django_db(transaction=True)


def create(host: Host, domain: str = "pad.example.org") -> Instance:
    return actions.do_create_instance("webtest", domain, host, acting_user=None)


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries
            if query["sql"].split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def test_a_missing_secret_is_made_by_the_secrets_step_only(host: Host,
                                                           engine: FakeEngine) -> None:
    instance = create(host)
    instance.secrets.pop("token")
    instance.save(update_fields=["secrets"])
    instance = Instance.objects.select_related("host", "login_group").get(pk=instance.pk)
    snapshot = engine.snapshot()
    # Rendering and planning are given the secrets; without them the instance is not planned.
    with CaptureQueriesContext(connection) as queries:
        unread = plan_host(host, snapshot, [instance],
                           secret_values=instance_secrets.SecretValues(),
                           upgrades=pending_upgrades([instance]))
    assert not writes(queries)
    assert list(unread.errors) == ["box/pad"] and not unread.steps
    assert "token" not in Instance.objects.get(pk=instance.pk).secrets
    # The secrets step makes it once and saves it …
    found = instance_secrets.ensure_all([instance])
    assert len(found.of("pad")["token"]) == 24
    stored = Instance.objects.get(pk=instance.pk).secrets["token"]
    assert instance_secrets.ensure_all([instance]).of("pad") == found.of("pad")
    assert Instance.objects.get(pk=instance.pk).secrets["token"] == stored
    # … and with it the plan replaces the application (its environment changed), writing
    # nothing.
    with CaptureQueriesContext(connection) as queries:
        planned = plan_host(host, snapshot, [instance], secret_values=found,
                            upgrades=pending_upgrades([instance]))
        desired = render.desired_for(instance, found.of("pad"))
    assert not writes(queries)
    assert [step.action for step in planned.steps] == [Action.REPLACE]
    assert dict(desired.workloads[render.APP].environment)["WEBTEST_SECRET"] == \
        found.of("pad")["token"]


def test_secrets_that_do_not_decrypt_leave_the_instance_running_and_untouched(
        host: Host, engine: FakeEngine) -> None:
    create(host)
    create(host, "other.example.org")
    Instance.objects.filter(slug="pad").update(secrets={"token": "not a ciphertext"})
    before = dict(engine.workloads)
    plan, result = reconcile.reconcile()
    assert list(plan.errors) == ["box/pad"], plan.errors
    assert not [step for step in plan.steps if step.instance == "pad"], plan.lines()
    assert result.ok
    assert engine.workloads.keys() == before.keys()
    assert Instance.objects.get(slug="pad").secrets == {"token": "not a ciphertext"}
