"""The services' reconciler and actions against the in-memory engine: the plans it makes
(create, no-op, drift, removal, upgrade), what it refuses, and what it leaves behind."""

from __future__ import annotations

import json

import pytest

from chaton.adapters.docker import LABEL_SPEC
from chaton.adapters.docker.fake import FakeEngine
from chaton.core.errors import Conflict, InvalidInput
from chaton.core.models import AuditLog
from chaton.core.worker import Schedule
from chaton.directory import actions as directory_actions
from chaton.services import actions, apply, jobs, queries, reconcile
from chaton.services.actions import EngineUnavailable
from chaton.services.models import (
    Deployment,
    DeploymentKind,
    DesiredState,
    Host,
    Instance,
    Outcome,
)
from chaton.services.tests.conftest import ADDRESS, FakeEngines, RecordedProxy

pytestmark = pytest.mark.django_db(transaction=True)


def create(host: Host, domain: str = "pad.example.org", **options: object) -> Instance:
    return actions.do_create_instance("webtest", domain, host, acting_user=None,
                                      **options)  # type: ignore[arg-type]


def apps(engine: FakeEngine, slug: str) -> list:
    return [item for item in engine.workloads.values()
            if item.workload.instance == slug and item.workload.role == "app"]


def environment(engine: FakeEngine, slug: str) -> dict[str, str]:
    (item,) = apps(engine, slug)
    return dict(item.spec.environment)


def test_create_deploys_network_volume_container_and_route(
        host: Host, engine: FakeEngine, recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    assert (instance.slug, instance.port, instance.state) == ("pad", 20000, "running")
    assert engine.networks == {"chaton-pad": "pad"}
    assert engine.volumes == {"chaton-pad-data": "pad"}
    (item,) = apps(engine, "pad")
    assert item.workload.running and item.workload.ports == (20000,)
    assert item.spec.port is not None and item.spec.port.host_ip == ADDRESS
    assert item.spec.mounts == (("chaton-pad-data", "/data"),)
    values = environment(engine, "pad")
    assert values["WEBTEST_DOMAIN"] == "pad.example.org"
    assert values["WEBTEST_GREETING"] == "bonjour"
    assert values["WEBTEST_MAX_SIZE_MB"] == "10"
    assert values["WEBTEST_BRACES"] == "{literal}"
    assert values["WEBTEST_DIRECTORY"] == "dc=chaton,dc=test"
    assert len(values["WEBTEST_SECRET"]) == 24
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:20000"}
    (event,) = instance.deployments.all()
    assert (event.kind, event.outcome, event.to_image) == ("create", "done", "chaton-test/web:1")
    # The secret is stored encrypted, and appears in no audit row.
    assert values["WEBTEST_SECRET"] not in json.dumps(instance.secrets)
    rows = json.dumps(list(AuditLog.objects.values("before", "after")))
    assert values["WEBTEST_SECRET"] not in rows
    assert instance.applied["app"] == item.workload.spec_hash


def test_second_reconcile_is_a_noop_reading_the_host_once(host: Host,
                                                          engine: FakeEngine) -> None:
    create(host)
    create(host, "team.example.org")
    before = dict(engine.calls)
    plan, result = reconcile.reconcile()
    assert plan.is_noop, plan.lines()
    assert result.ok
    spent = {name: count - before.get(name, 0) for name, count in engine.calls.items()
             if count != before.get(name, 0)}
    assert spent == {"snapshot": 1}


@pytest.mark.parametrize(("by_hand", "reason"), [
    (lambda engine: engine.stop_by_hand("pad"), "stopped by hand"),
    (lambda engine: engine.remove_by_hand("pad"), "removed by hand"),
    (lambda engine: engine.relabel_by_hand("pad", labels={LABEL_SPEC: "edited"}),
     "changed by hand"),
])
def test_drift_is_reported_then_repaired(host: Host, engine: FakeEngine, by_hand: object,
                                         reason: str) -> None:
    instance = create(host)
    by_hand(engine)  # type: ignore[operator]
    plan, _engines, _planned = reconcile.plan()
    assert [step.reason for step in plan.drift] == [f"application {reason}" + {
        "stopped by hand": ": started again", "removed by hand": ": created again",
        "changed by hand": ": replaced"}[reason]]
    assert plan.lines()[0].startswith("! box: chaton-pad-app-")
    plan, result = reconcile.reconcile()
    assert result.ok and result.applied == 1
    (item,) = apps(engine, "pad")
    assert item.workload.running and item.workload.spec_hash == instance.applied["app"]
    repair = instance.deployments.get(kind=DeploymentKind.REPAIR)
    assert reason in repair.message
    assert AuditLog.objects.filter(action="instance.repair", target_id=str(instance.pk)).exists()
    assert reconcile.reconcile()[0].is_noop


def test_dry_run_shows_the_plan_and_changes_nothing(host: Host, engine: FakeEngine) -> None:
    create(host)
    engine.remove_by_hand("pad")
    writes = engine.writes
    plan, _result = reconcile.reconcile(dry_run=True)
    assert [step.action for step in plan.steps] == ["run"]
    assert engine.writes == writes and not apps(engine, "pad")
    assert engine.calls["run"] >= 2  # the dry run reached the engine
    assert not Deployment.objects.filter(kind=DeploymentKind.REPAIR).exists()


def test_settings_change_replaces_the_container(host: Host, engine: FakeEngine) -> None:
    instance = create(host)
    (old,) = apps(engine, "pad")
    actions.do_update_instance_settings(instance, {"greeting": "salut"}, acting_user=None)
    (new,) = apps(engine, "pad")
    assert new.workload.name != old.workload.name
    assert environment(engine, "pad")["WEBTEST_GREETING"] == "salut"
    instance.refresh_from_db()
    assert instance.settings == {"greeting": "salut", "max_size_mb": 10}
    assert instance.deployments.filter(kind=DeploymentKind.SETTINGS).exists()
    assert not instance.deployments.filter(kind=DeploymentKind.REPAIR).exists()


@pytest.mark.parametrize(("values", "field"), [
    ({"max_size_mb": 1000}, "settings.max_size_mb"),
    ({"max_size_mb": "ten"}, "settings.max_size_mb"),
    ({"colour": "red"}, "settings.colour"),
])
def test_invalid_settings_are_refused_with_nothing_changed(
        host: Host, engine: FakeEngine, values: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(host, settings=values)
    assert refused.value.field == field
    assert not Instance.objects.exists() and not engine.workloads and not engine.networks
    instance = create(host)
    with pytest.raises(InvalidInput):
        actions.do_update_instance_settings(instance, values, acting_user=None)
    instance.refresh_from_db()
    assert instance.settings == {"greeting": "bonjour", "max_size_mb": 10}


def test_domains_are_checked_and_unique(host: Host, engine: FakeEngine) -> None:
    for bad in ("pad", "pad..example.org", "-pad.example.org", "pad example.org", "1.2.3.4"):
        with pytest.raises(InvalidInput) as refused:
            create(host, bad)
        assert refused.value.field == "domain"
    first = create(host, "Pad.Example.org.")
    assert first.domain == "pad.example.org"
    with pytest.raises(Conflict) as taken:
        create(host, "pad.example.org")
    assert taken.value.field == "domain"
    second = create(host, "pad.example.net")
    assert second.slug == "pad-2"
    assert create(host, "bücher.example.org").domain == "xn--bcher-kva.example.org"


def test_port_clashes_leave_nothing_behind(host: Host, engine: FakeEngine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = create(host)
    with pytest.raises(Conflict, match="used by the instance pad"):
        create(host, "team.example.org", port=first.port)
    engine.taken_ports.add(21000)
    with pytest.raises(Conflict, match="already in use"):
        create(host, "team.example.org", port=21000)
    # Taken between the checks and the deployment: the deployment is undone, row and all.
    monkeypatch.setattr(engine, "published_ports", lambda: set())
    with pytest.raises(Conflict) as clash:
        create(host, "team.example.org", port=21000)
    assert clash.value.field == "port"
    assert list(Instance.objects.values_list("slug", flat=True)) == ["pad"]
    assert set(engine.networks) == {"chaton-pad"} and set(engine.volumes) == {"chaton-pad-data"}
    assert {item.workload.instance for item in engine.workloads.values()} == {"pad"}
    assert AuditLog.objects.filter(action="instance.create_failed").count() == 1


def test_unreachable_engine_and_missing_image_change_nothing(host: Host,
                                                             engine: FakeEngine) -> None:
    with pytest.raises(InvalidInput, match="image") as missing:
        create(host, image="chaton-test/web:missing")
    assert missing.value.field == "image"
    engine.available = False
    with pytest.raises(EngineUnavailable, match="does not answer"):
        create(host)
    assert not Instance.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="instance.").exists()
    plan, result = reconcile.reconcile()
    assert list(plan.errors) == ["box"] and result.ok


def test_upgrade_switches_the_route_before_removing_the_old_version(
        host: Host, engine: FakeEngine, recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    recorded_proxy.watch = lambda: len(apps(engine, "pad"))
    deployment = actions.do_upgrade_instance(instance, "chaton-test/web:2", acting_user=None)
    assert deployment.outcome == Outcome.HEALTHY, deployment.message
    instance.refresh_from_db()
    assert instance.image == "chaton-test/web:2" and instance.port == deployment.to_port != 20000
    (item,) = apps(engine, "pad")
    assert item.workload.image == "chaton-test/web:2"
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:{deployment.to_port}"}
    assert recorded_proxy.seen[0] == 2, "the route switched while the old version still ran"
    assert AuditLog.objects.filter(action="instance.upgrade_healthy").exists()
    assert reconcile.reconcile()[0].is_noop


def test_upgrade_to_a_broken_image_rolls_back(host: Host, engine: FakeEngine,
                                              recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    (old,) = apps(engine, "pad")
    deployment = actions.do_upgrade_instance(instance, "chaton-test/web:broken",
                                             acting_user=None)
    assert deployment.outcome == Outcome.ROLLED_BACK
    assert "rolled back" in deployment.message and "unhealthy" in deployment.message
    instance.refresh_from_db()
    assert (instance.image, instance.image_override, instance.port) == (
        "chaton-test/web:1", "", 20000)
    assert apps(engine, "pad") == [old]
    assert all(call_routes == [] or {route.upstream for route in call_routes}
               == {f"{ADDRESS}:20000"} for call_routes in recorded_proxy.calls)
    row = AuditLog.objects.get(action="instance.upgrade_rolled_back")
    assert row.after is not None and row.after["attempted"] == "chaton-test/web:broken"
    assert reconcile.reconcile()[0].is_noop


def test_upgrade_refusals(host: Host, engine: FakeEngine) -> None:
    instance = create(host)
    with pytest.raises(InvalidInput, match="already runs"):
        actions.do_upgrade_instance(instance, "chaton-test/web:1", acting_user=None)
    with pytest.raises(InvalidInput, match="does not exist"):
        actions.do_upgrade_instance(instance, "chaton-test/web:missing", acting_user=None)
    with pytest.raises(InvalidInput, match="pinned"):
        actions.do_upgrade_instance(instance, "not an image", acting_user=None)
    assert not instance.deployments.filter(kind=DeploymentKind.UPGRADE).exists()
    actions.do_upgrade_instance(instance, "chaton-test/web:2", acting_user=None, wait=False)
    with pytest.raises(Conflict, match="under way"):
        actions.do_upgrade_instance(instance, "chaton-test/web:broken", acting_user=None)


def test_an_upgrade_left_under_way_is_taken_up(host: Host, engine: FakeEngine,
                                               recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    deployment = actions.do_upgrade_instance(instance, "chaton-test/web:2", acting_user=None,
                                             wait=False)
    assert deployment.outcome == Outcome.PENDING
    # While it is under way, the proxy keeps the old port.
    assert {route.upstream for route in apply.routes()} == {f"{ADDRESS}:20000"}
    assert jobs.work_waiting()
    # The process dies right after starting the new version: it runs, unchecked.
    engine.fail_after = engine.writes + 1
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.steps] == ["upgrade"]
    assert len(apps(engine, "pad")) == 2 or result.failures
    engine.fail_after = None
    plan, result = reconcile.reconcile()
    deployment.refresh_from_db()
    assert deployment.outcome == Outcome.HEALTHY
    assert [item.workload.image for item in apps(engine, "pad")] == ["chaton-test/web:2"]
    assert not jobs.work_waiting()


def test_an_interrupted_run_is_completed_by_the_next(host: Host, engine: FakeEngine) -> None:
    create(host)
    create(host, "team.example.org")
    create(host, "notes.example.org")
    # The host is wiped (a new machine, the same database); the first run dies half way.
    engine.workloads.clear()
    engine.networks.clear()
    engine.volumes.clear()
    engine.fail_after = engine.writes + 4
    plan, result = reconcile.reconcile()
    assert len(plan.steps) == 9 and result.applied == 4 and len(result.failures) == 5
    engine.fail_after = None
    plan, result = reconcile.reconcile()
    assert len(plan.steps) == 5 and result.ok
    assert len(engine.workloads) == 3 and len(engine.networks) == 3
    assert reconcile.reconcile()[0].is_noop


def test_removal_keeps_data_unless_asked(host: Host, engine: FakeEngine,
                                         recorded_proxy: RecordedProxy,
                                         closing_is_ordinary: None) -> None:
    keep = create(host)
    wipe = create(host, "team.example.org")
    with pytest.raises(InvalidInput) as refused:
        actions.do_remove_instance(keep, confirm="team", acting_user=None)
    assert refused.value.field == "confirm"
    actions.do_remove_instance(keep, confirm="pad", acting_user=None)
    actions.do_remove_instance(wipe, confirm="team", acting_user=None, delete_data=True)
    assert not Instance.objects.exists() and not engine.workloads and not engine.networks
    assert engine.volumes == {"chaton-pad-data": "pad"}
    assert recorded_proxy.last == {}
    plan, _engines, _planned = reconcile.plan()
    assert plan.is_noop and plan.kept == [
        "box: volume chaton-pad-data of no instance (pad): kept"]
    # The kept data is never taken over by a new instance.
    with pytest.raises(Conflict, match="keeps the data") as refused:
        create(host, "elsewhere.example.org", slug="pad")
    assert refused.value.field == "slug"
    assert create(host, "pad.example.org").slug == "pad-2"
    actions.do_remove_instance(Instance.objects.get(slug="pad-2"), confirm="pad-2",
                               acting_user=None, delete_data=True)
    reconcile.reconcile(delete_orphan_volumes=True)
    assert not engine.volumes
    assert AuditLog.objects.filter(action="instance.removed").count() == 3


def test_removal_while_the_engine_is_down_finishes_later(host: Host, engine: FakeEngine,
                                                         closing_is_ordinary: None) -> None:
    instance = create(host)
    engine.available = False
    actions.do_remove_instance(instance, confirm="pad", acting_user=None)
    instance.refresh_from_db()
    assert instance.state == DesiredState.REMOVED
    assert jobs.work_waiting()
    engine.available = True
    result = jobs.reconcile_job("test")
    assert result is not None and result.ok
    assert not Instance.objects.exists() and not engine.workloads


def test_stopped_instance_keeps_network_and_data(host: Host, engine: FakeEngine,
                                                 recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    actions.do_set_instance_state(instance, DesiredState.STOPPED, acting_user=None)
    assert not engine.workloads and engine.networks and engine.volumes
    assert recorded_proxy.last == {}
    actions.do_set_instance_state(instance, DesiredState.RUNNING, acting_user=None)
    assert len(apps(engine, "pad")) == 1
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:20000"}


def test_what_belongs_to_no_instance_is_removed_and_its_data_kept(
        host: Host, engine: FakeEngine) -> None:
    create(host)
    create(host, "team.example.org")
    Instance.objects.filter(slug="team").delete()  # a database restored from before it
    plan, _result = reconcile.reconcile()
    assert sorted((step.action, step.target.rsplit("-", 1)[0]) for step in plan.steps) == [
        ("remove", "chaton-team-app"), ("remove-network", "chaton")]
    assert "volume chaton-team-data of no instance (team): kept" in plan.kept[0]
    assert set(engine.networks) == {"chaton-pad"} and "chaton-team-data" in engine.volumes


def test_companion_database_is_wired_and_started_first(host: Host, engine: FakeEngine) -> None:
    team = directory_actions.do_create_group("pads", acting_user=None)
    instance = actions.do_create_instance("webtestdb", "db.example.org", host,
                                          acting_user=None, login_group=team)
    names = [item.workload.role for item in engine.workloads.values()]
    assert names == ["database", "app"]
    assert set(engine.volumes) == {"chaton-db-database"}
    database = next(item for item in engine.workloads.values()
                    if item.workload.role == "database")
    database_environment = dict(database.spec.environment)
    assert database.spec.alias == "database" and database.spec.port is None
    assert database_environment["POSTGRES_DB"] == "webtestdb"
    password = database_environment["POSTGRES_PASSWORD"]
    values = environment(engine, instance.slug)
    assert values["WEBTEST_DATABASE_URL"] == (
        f"postgres://webtestdb:{password}@database:5432/webtestdb")
    assert values["WEBTEST_LDAP_GROUP"] == "cn=pads,ou=groups,dc=chaton,dc=test"
    with pytest.raises(InvalidInput, match="no accounts") as refused:
        create(host, "other.example.org", login_group=team)
    assert refused.value.field == "login_group"


def test_swarm_host_runs_services_and_sees_environment_edits(engines: FakeEngines,
                                                             recorded_proxy: RecordedProxy
                                                             ) -> None:
    engines.engines["cluster"] = FakeEngine(swarm=True, images={"chaton-test/web:1"})
    host = actions.do_create_host("cluster", "tcp://10.0.0.1:2376", acting_user=None,
                                  address=ADDRESS)
    assert host.swarm
    instance = create(host)
    engine = engines["cluster"]
    (item,) = apps(engine, instance.slug)
    assert item.workload.kind == "service"
    from dataclasses import replace

    item.workload = replace(item.workload, environment=(("EDITED", "by hand"),))
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.steps] == ["replace"] and plan.steps[0].drift
    assert result.ok and reconcile.reconcile()[0].is_noop
    engines.engines["plain"] = FakeEngine(swarm=False)
    with pytest.raises(InvalidInput, match="not a Swarm manager"):
        actions.do_create_host("plain", "unix:///run/plain.sock", acting_user=None, swarm=True)


def test_worker_job_reports_only_what_it_did(host: Host, engine: FakeEngine) -> None:
    create(host)
    schedule = Schedule()
    due = jobs.due_jobs(schedule)
    assert [name for name, _job in due] == ["services.reconcile"]
    assert due[0][1]() is None  # nothing to do: nothing reported
    assert jobs.due_jobs(schedule) == []
    engine.remove_by_hand("pad")
    result = jobs.reconcile_job("periodic reconcile")
    assert result is not None and result.ok and "by hand repaired" in result.summary


def test_live_state_reads_each_host_once(host: Host, engine: FakeEngine) -> None:
    create(host)
    create(host, "team.example.org")
    engine.stop_by_hand("team")
    before = engine.calls["snapshot"]
    states = {row.instance.slug: row.live.state for row in queries.instances_with_state()}
    assert states == {"pad": "running", "team": "stopped"}
    assert engine.calls["snapshot"] == before + 1
    engine.available = False
    assert {row.live.state for row in queries.instances_with_state()} == {"unreachable"}


def test_hosts_are_checked(engines: FakeEngines, recorded_proxy: RecordedProxy) -> None:
    with pytest.raises(InvalidInput) as refused:
        actions.do_create_host("box", "http://example.org", acting_user=None)
    assert refused.value.field == "docker_url"
    first = actions.do_create_host("one", "unix:///run/one.sock", acting_user=None,
                                   is_default=True)
    second = actions.do_create_host("two", "unix:///run/two.sock", acting_user=None,
                                    is_default=True)
    first.refresh_from_db()
    assert not first.is_default and second.is_default
    assert queries.default_host() == second
    with pytest.raises(Conflict):
        actions.do_create_host("one", "unix:///run/other.sock", acting_user=None)
    engines(Host(name="down", swarm=False)).available = False
    with pytest.raises(EngineUnavailable):
        actions.do_create_host("down", "unix:///run/down.sock", acting_user=None)
    assert not Host.objects.filter(name="down").exists()


def test_app_module_hooks_validate_write_files_and_set_up_once(host: Host,
                                                                engine: FakeEngine) -> None:
    with pytest.raises(InvalidInput, match="do not go together") as refused:
        create(host, settings={"greeting": "x" * 11, "max_size_mb": 1})
    assert refused.value.field == "settings"
    instance = create(host, settings={"max_size_mb": 3})
    (item,) = apps(engine, "pad")
    assert item.spec.files == (("/www/settings.txt", "max_size_mb=3\n"),)
    assert engine.executed == [(item.workload.name, (
        "/bin/busybox", "sh", "-c", "echo set up for pad.example.org > setup.txt"), "0", "/www")]
    instance.refresh_from_db()
    assert "setup" in instance.applied
    # A new file means a new container; the same commands are not run again.
    actions.do_update_instance_settings(instance, {"max_size_mb": 4}, acting_user=None)
    (item,) = apps(engine, "pad")
    assert item.spec.files == (("/www/settings.txt", "max_size_mb=4\n"),)
    assert len(engine.executed) == 1
    assert reconcile.reconcile()[0].is_noop


def test_failing_setup_commands_are_reported_and_tried_again(host: Host,
                                                             engine: FakeEngine) -> None:
    engine.failing_commands = True
    instance = create(host)  # the deployment itself worked: the instance stays
    plan, result = reconcile.reconcile()
    assert [step.action for step in plan.steps] == ["setup"]
    assert "exited with 1: refused" in str(result.failures[0])
    engine.failing_commands = False
    plan, result = reconcile.reconcile()
    assert result.ok and len(engine.executed) == 3
    instance.refresh_from_db()
    assert "setup" in instance.applied
    assert reconcile.reconcile()[0].is_noop


def test_a_proxy_down_at_the_switch_keeps_the_old_version_until_it_is_back(
        host: Host, engine: FakeEngine, recorded_proxy: RecordedProxy) -> None:
    instance = create(host)
    recorded_proxy.fail = True
    deployment = actions.do_upgrade_instance(instance, "chaton-test/web:2", acting_user=None)
    assert deployment.outcome == Outcome.HEALTHY
    assert len(apps(engine, "pad")) == 2, "the old version serves until the proxy switches"
    plan, result = reconcile.reconcile()
    assert plan.steps[0].after_switch and result.proxy_error
    assert len(apps(engine, "pad")) == 2
    recorded_proxy.fail = False
    plan, result = reconcile.reconcile()
    assert result.ok
    assert [item.workload.image for item in apps(engine, "pad")] == ["chaton-test/web:2"]
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:{deployment.to_port}"}
