"""``/api/v1/backups``: repositories, plans, sources, runs, retention, drills, restores, errors.

On the fake restic and the fake directory, except one test on a real restic
repository (init, backup, restore, wrong password): the errors restic itself gives.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from chaton.backups import actions, engine, runs
from chaton.backups.models import Drill, DrillOutcome, Plan, Repository, Run, RunKind, Source
from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog, Job
from chaton.directory import actions as directory_actions
from chaton.testing import jobs as accepted

API = "/api/v1/backups"
PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db


class Api:
    """The Django test client with a bearer token and JSON bodies."""

    def __init__(self, client, key: str) -> None:
        self.client = client
        # In English: the collective's language may be another.
        self.headers = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}

    def get(self, path: str, **params):
        return self.client.get(API + path, params, headers=self.headers)

    def post(self, path: str, body=None, *, raw: str | None = None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.client.post(API + path, data, content_type="application/json",
                                headers=self.headers)

    def patch(self, path: str, body):
        return self.client.patch(API + path, json.dumps(body), content_type="application/json",
                                 headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(API + path, headers=self.headers)

    def result(self, path: str, body=None) -> dict:
        """POST to an endpoint that answers a job; run it; return its result."""
        return accepted.result_of(self.client, self.post(path, body), self.headers)

    def job_error(self, path: str, body, status: int, code: str,
                  field: str | None = None) -> dict:
        """POST to an endpoint that answers a job; run it; return its error."""
        return accepted.error_of(self.client, self.post(path, body), self.headers, status,
                                 code, field)


@pytest.fixture
def admin(directory):
    return directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                               email="wren@example.org", is_admin=True)


@pytest.fixture
def api(client, admin):
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def repository(fake_restic):
    return actions.do_create_repository("offsite", kind="local", location="/srv/backups/repo",
                                        password=PASSWORD, acting_user=None)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "bylaws.txt").write_text("article 1: the collective hosts services")
    return folder


@pytest.fixture
def plan(repository, files):
    plan = actions.do_create_plan("nightly", repository, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]}, acting_user=None)
    return plan


@pytest.fixture(autouse=True)
def clock_back():
    yield
    clock.travel(dt.timedelta(0))


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


# -- access ------------------------------------------------------------------------------


def test_members_and_anonymous_callers_are_refused(client, directory, plan):
    member = directory_actions.do_create_account("moss", acting_user=None, display_name="Moss",
                                                 email="moss@example.org")
    _token, key = do_create_api_token(member, "laptop", acting_user=member)
    assert_error(Api(client, key).get("/plans"), 403, "forbidden")
    assert_error(Api(client, key).post("/plans/nightly/run"), 403, "forbidden")
    assert_error(client.get(f"{API}/plans"), 401, "unauthorized")
    assert not Run.objects.exists()


# -- repositories ----------------------------------------------------------------------------


def test_repositories_are_created_initialised_and_never_show_secrets(api, fake_restic):
    fake_restic.initialised = False
    response = api.post("/repositories", {
        "name": "s3", "kind": "s3", "location": "s3:https://objects.example.org/chaton",
        "password": "a secret that stays", "environment": {"AWS_SECRET_ACCESS_KEY": "aws-key"},
        "initialise": True})
    assert response.status_code == 202, response.content
    job = accepted.run_accepted(api.client, response, api.headers)
    body = job["result"]
    assert body["initialised_at"] and body["environment"] == ["AWS_SECRET_ACCESS_KEY"]
    assert body["plan_count"] == 0
    assert "a secret" not in json.dumps(job) and "aws-key" not in json.dumps(job)
    assert "a secret" not in json.dumps(list(Job.objects.values()), default=str)
    for answer in (response, api.get("/repositories"), api.get("/repositories/s3")):
        text = answer.content.decode()
        assert answer.status_code in (200, 202)
        assert "a secret that stays" not in text and "aws-key" not in text
    assert [item["name"] for item in api.get("/repositories").json()] == ["s3"]

    patched = api.patch("/repositories/s3", {"check_interval_days": 2, "password": "another one!"})
    assert patched.json()["check_interval_days"] == 2
    assert Repository.objects.get().password() == "another one!"


@pytest.mark.parametrize("body, field", [
    ({"kind": "tape"}, "kind"),
    ({"location": "relative/path"}, "location"),
    ({"password": "short"}, "password"),
    ({"name": "Not A Slug"}, "name"),
    ({"environment": {"RESTIC_PASSWORD": "x"}}, "environment"),
    ({"check_interval_days": "7"}, "check_interval_days"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_repository_input_is_a_coded_400(api, fake_restic, body, field):
    payload = {"name": "repo", "kind": "local", "location": "/srv/repo", "password": PASSWORD,
               **body}
    assert_error(api.post("/repositories", payload), 400, "invalid", field)
    assert not Repository.objects.exists()


def test_a_wrong_password_at_init_is_400_and_a_duplicate_409(api, repository, fake_restic):
    fake_restic.repository_password = "the password it was made with"
    api.job_error("/repositories/offsite/init", None, 400, "invalid", "password")
    assert Repository.objects.get().initialised_at is None
    assert_error(api.post("/repositories", {"name": "offsite", "kind": "local",
                                            "location": "/srv/other", "password": PASSWORD}),
                 409, "conflict", "name")
    assert_error(api.post("/repositories/nowhere/init"), 404, "not_found")
    assert_error(api.get("/repositories/%00"), 404, "not_found")


def test_a_check_answers_its_run(api, repository):
    response = api.post("/repositories/offsite/check", {"read_data_subset": "1/10"})
    assert response.status_code == 200, response.content
    run = response.json()
    assert run["kind"] == "check" and run["outcome"] == "succeeded"
    assert run["details"]["read_data_subset"] == "1/10"
    assert_error(api.post("/repositories/offsite/check", {"read_data_subset": "lots"}), 400,
                 "invalid", "check_read_data_subset")


# -- plans and sources -----------------------------------------------------------------------


def test_plans_are_created_changed_listed_and_deleted(api, repository, files):
    response = api.post("/plans", {"name": "shop", "repository": "offsite", "keep_daily": 10})
    assert response.status_code == 201, response.content
    assert response.json()["keep_daily"] == 10 and response.json()["sources"] == []
    assert_error(api.post("/plans", {"name": "shop", "repository": "offsite"}), 409,
                 "conflict", "name")
    assert_error(api.post("/plans", {"name": "other", "repository": "nowhere"}), 404,
                 "not_found", "repository")
    assert_error(api.post("/plans", {"name": "fast", "repository": "offsite",
                                     "interval_minutes": 1}), 400, "invalid",
                 "interval_minutes")
    assert_error(api.post("/plans", {"name": "x", "repository": "offsite",
                                     "enabled": "yes"}), 400, "invalid", "enabled")

    source = api.post("/plans/shop/sources", {"kind": "postgres", "name": "db",
                                              "params": {"database": "shop",
                                                         "password": "pg-secret"}})
    assert source.status_code == 201, source.content
    assert source.json()["params"]["password"] == "***"
    assert_error(api.post("/plans/shop/sources", {"kind": "tape", "name": "t"}), 400,
                 "invalid", "kind")
    assert_error(api.post("/plans/shop/sources", {"kind": "postgres", "name": "db2",
                                                  "params": {"port": 99999,
                                                             "database": "x"}}),
                 400, "invalid", "port")
    assert_error(api.post("/plans/shop/sources", {"kind": "paths", "name": "p",
                                                  "params": {"paths": ["relative"]}}),
                 400, "invalid", "paths")
    assert_error(api.post("/plans/shop/sources", {"kind": "chaton", "name": "db"}), 409,
                 "conflict", "name")

    patched = api.patch("/plans/shop", {"enabled": False, "keep_yearly": 2})
    assert patched.status_code == 200, patched.content
    assert patched.json()["enabled"] is False and patched.json()["keep_yearly"] == 2
    assert_error(api.patch("/plans/shop", {"name": "renamed"}), 400, "invalid", "name")

    listed = api.get("/plans").json()
    assert [plan["name"] for plan in listed] == ["shop"]
    assert listed[0]["sources"][0]["params"] == {"database": "shop", "host": "127.0.0.1",
                                                 "port": 5432, "user": "postgres",
                                                 "password": "***"}
    assert "pg-secret" not in api.get("/plans/shop").content.decode()

    assert api.delete("/plans/shop/sources/db").status_code == 204
    assert_error(api.delete("/plans/shop/sources/db"), 404, "not_found", "source")
    assert api.delete("/plans/shop").status_code == 204
    assert_error(api.get("/plans/shop"), 404, "not_found")
    assert AuditLog.objects.filter(action="backups.plan.delete").exists()


def test_the_plan_list_flags_stale_plans_with_a_constant_number_of_queries(
        api, repository, files, django_assert_max_num_queries):
    def make(count: int, start: int = 0) -> None:
        for number in range(start, start + count):
            plan = actions.do_create_plan(f"plan-{number}", repository, acting_user=None,
                                          stale_after_hours=1)
            actions.do_add_source(plan, "paths", "files", {"paths": [str(files)]},
                                  acting_user=None)
            runs.run_backup(plan)
            runs.run_drill(plan, check=False)

    make(2)
    api.get("/plans")  # the token's first use is recorded once: not part of the count
    with django_assert_max_num_queries(12) as few:
        assert api.get("/plans").status_code == 200
    make(18, start=2)
    with django_assert_max_num_queries(12) as many:
        plans = api.get("/plans").json()
    assert len(few.captured_queries) == len(many.captured_queries)
    assert len(plans) == 20 and not any(plan["stale"] for plan in plans)
    assert plans[0]["last_backup_outcome"] == "succeeded"
    assert plans[0]["last_drill"]["outcome"] == "passed"
    clock.travel(dt.timedelta(hours=2))
    assert len(api.get("/plans", stale="true").json()) == 20
    assert api.get("/plans", stale="false").json() == []


# -- runs, retention, drills -----------------------------------------------------------------


def test_a_run_answers_its_snapshots_and_a_second_run_is_409(api, plan):
    run = api.result("/plans/nightly/run")
    assert run["outcome"] == "succeeded" and run["kind"] == "backup"
    [result] = run["results"]
    assert result["source"] == "files" and len(result["snapshot_id"]) >= 8
    assert run["bytes_processed"] == len("article 1: the collective hosts services")
    assert run["triggered_by"] == "wren"

    with engine.plan_lock(plan):
        for path in ("/plans/nightly/run", "/plans/nightly/drill", "/plans/nightly/retention",
                     "/plans/nightly/sources/files/restore"):
            body = {"target": "/tmp/never-used"} if path.endswith("restore") else None
            api.job_error(path, body, 409, "conflict")
        assert api.get("/plans/nightly").json()["running"] is True
    assert Run.objects.count() == 1

    runs = api.get("/plans/nightly/runs").json()
    assert runs["count"] == 1 and runs["items"][0]["results"][0]["source"] == "files"
    assert api.get("/plans/nightly/runs", kind="check").json()["count"] == 0
    assert_error(api.get("/plans/nightly/runs", kind="nap"), 400, "invalid", "kind")
    assert_error(api.post("/plans/nowhere/run"), 404, "not_found")


@pytest.mark.django_db(transaction=True)
def test_a_backup_asked_through_the_api_is_a_job_polled_until_done(api, plan):
    """The request answers at once; the worker's lane in this process does the work."""
    response = api.post("/plans/nightly/run")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["kind"] == "backups.run" and job["target"] == "nightly"
    deadline = time.monotonic() + 30
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        polled = api.client.get(job["url"], headers=api.headers)
        assert polled.status_code == 200, polled.content
        job = polled.json()
    assert job["state"] == "succeeded" and job["progress"] == 100, job
    assert job["result"]["kind"] == "backup" and job["result"]["outcome"] == "succeeded"
    assert Run.objects.get().pk == job["result"]["id"]


def test_a_failed_run_is_a_done_job_that_says_why(api, plan, fake_restic):
    fake_restic.repository_password = "not the stored one"
    run = api.result("/plans/nightly/run")
    assert run["outcome"] == "failed" and "Wrong repository password" in run["error"]
    assert_error(api.get("/plans/nightly/retention"), 400, "invalid", "password")


def test_undecryptable_stored_secrets_are_a_coded_502(api, plan):
    Repository.objects.update(password_encrypted="not a token", environment_encrypted="nope")
    assert_error(api.get("/plans/nightly/retention"), 502, "backup_error")
    api.job_error("/repositories/offsite/init", None, 502, "backup_error")
    assert api.get("/repositories/offsite").json()["environment"] == []
    assert api.result("/plans/nightly/run")["outcome"] == "failed"


def test_retention_preview_gives_reasons_and_apply_records_a_run(api, plan):
    start = clock.now() - dt.timedelta(days=3)
    for day in range(3):
        runs.run_backup(plan, time=start + dt.timedelta(days=day))
    runs.run_backup(plan, time=start + dt.timedelta(days=2, hours=1))
    preview = api.get("/plans/nightly/retention").json()
    assert preview["dry_run"] is True and preview["run"] is None
    [group] = preview["groups"]
    assert group["label"] == "files"
    assert [len(group["kept"]), len(group["removed"])] == [3, 1]
    assert "daily" in group["kept"][0]["reasons"]
    assert group["removed"][0]["reasons"] == []

    body = api.result("/plans/nightly/retention")
    assert body["dry_run"] is False and body["run"]["kind"] == "forget"
    assert body["run"]["outcome"] == "succeeded"


def test_drills_are_run_listed_and_summarised(api, plan):
    api.result("/plans/nightly/run")
    report = api.result("/plans/nightly/drill")
    assert report["passed"] is True and report["check"]["kind"] == "check"
    [drill] = report["drills"]
    assert drill["outcome"] == "passed" and drill["compared"]
    assert drill["check_outcome"] == "succeeded"

    one = api.result("/plans/nightly/drill", {"source": "files", "check": False})
    assert one["check"] is None and len(one["drills"]) == 1
    assert_error(api.post("/plans/nightly/drill", {"source": "nothing"}), 404, "not_found")

    Drill.objects.create(plan=plan, source_name="files", source_kind="paths",
                         started_at=clock.now() - dt.timedelta(days=300),
                         outcome=DrillOutcome.FAILED)
    summary = api.get("/drills/summary").json()
    assert (summary["tested"], summary["failed"], summary["text"]) == (
        2, 0, "restores tested: 2, all passed")
    everything = api.get("/drills/summary", since="2000-01-01").json()
    assert everything["text"] == "restores tested: 3, 1 failed"
    assert api.get("/drills", plan="nightly").json()["count"] == 3
    assert api.get("/plans/nightly/drills").json()["count"] == 3
    assert api.get("/drills", since=clock.now().isoformat()).json()["count"] == 0
    assert_error(api.get("/drills", since="yesterday"), 400, "invalid")


# -- restore ---------------------------------------------------------------------------------


def test_restore_needs_a_target_or_a_confirmed_in_place(api, plan, tmp_path):
    api.result("/plans/nightly/run")
    assert_error(api.post("/plans/nightly/sources/files/restore", {}), 400, "invalid",
                 "target")
    assert_error(api.post("/plans/nightly/sources/files/restore",
                          {"target": str(tmp_path / "x"), "in_place": True}), 400, "invalid",
                 "target")
    assert_error(api.post("/plans/nightly/sources/files/restore", {"in_place": True}), 400,
                 "invalid", "confirm")
    api.job_error("/plans/nightly/sources/files/restore", {"target": "relative"}, 400,
                  "invalid", "target")
    api.job_error("/plans/nightly/sources/files/restore",
                  {"target": str(tmp_path / "y"), "snapshot": "zz"}, 400, "invalid", "snapshot")
    api.job_error("/plans/nightly/sources/files/restore",
                  {"target": str(tmp_path / "y"), "snapshot": "abcdef0123"}, 404, "not_found",
                  "snapshot")

    run = api.result("/plans/nightly/sources/files/restore",
                     {"target": str(tmp_path / "restored")})
    assert run["kind"] == "restore" and run["outcome"] == "succeeded"
    restored = list((tmp_path / "restored").rglob("bylaws.txt"))
    assert restored and "hosts services" in restored[0].read_text()

    snapshots = api.get("/plans/nightly/sources/files/snapshots").json()
    assert snapshots["count"] == 1 and snapshots["items"][0]["safety"] is False

    in_place = api.result("/plans/nightly/sources/files/restore",
                          {"in_place": True, "confirm": True})
    assert in_place["outcome"] == "succeeded", in_place
    assert in_place["details"]["safety_snapshot"]
    assert any(result["safety"] for result in in_place["results"])


def test_refused_in_place_restore_gives_the_reason(api, repository):
    plan = actions.do_create_plan("itself", repository, acting_user=None)
    actions.do_add_source(plan, "chaton", "database", {}, acting_user=None)
    body = api.job_error("/plans/itself/sources/database/restore",
                         {"in_place": True, "confirm": True}, 400, "invalid", "in_place")
    assert "restore" in body["message"].lower()


def test_bad_bodies_are_400_never_500(api, plan):
    assert_error(api.post("/plans/nightly/sources", raw="{not json"), 400, "invalid")
    assert_error(api.post("/plans/nightly/sources", {"kind": "paths", "name": "x",
                                                     "params": "not a mapping"}), 400,
                 "invalid", "params")
    assert_error(api.post("/plans", [1, 2]), 400, "invalid")
    assert_error(api.get("/plans/%00/runs"), 404, "not_found")
    assert Source.objects.count() == 1 and Plan.objects.count() == 1


# -- a real restic -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory) -> Path:
    """A real restic repository, initialised once for the module (init costs seconds)."""
    location = tmp_path_factory.mktemp("restic") / "template"
    subprocess.run(["restic", "init", "--repo", str(location)], check=True,
                   env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
                   capture_output=True, timeout=60)
    return location


def test_on_a_real_repository(client, admin, template_repository, files, tmp_path):
    """Adopt a real repository, refuse a wrong password, back up and restore for real."""
    _token, key = do_create_api_token(admin, "real", acting_user=None)
    api = Api(client, key)
    location = tmp_path / "repository"
    shutil.copytree(template_repository, location)
    api.job_error("/repositories", {"name": "real", "kind": "local",
                                    "location": str(location), "password": "not the password",
                                    "initialise": True}, 400, "invalid", "password")
    assert api.get("/repositories/real").json()["initialised_at"] is None
    api.patch("/repositories/real", {"password": PASSWORD})
    adopted = api.result("/repositories/real/init")
    assert adopted["initialised_at"]
    api.post("/plans", {"name": "real", "repository": "real"})
    api.post("/plans/real/sources", {"kind": "paths", "name": "files",
                                     "params": {"paths": [str(files)]}})
    run = api.result("/plans/real/run")
    assert run["outcome"] == "succeeded", run
    restore = api.result("/plans/real/sources/files/restore",
                         {"target": str(tmp_path / "out")})
    assert restore["outcome"] == "succeeded", restore
    assert list((tmp_path / "out").rglob("bylaws.txt"))
    assert RunKind.RESTORE in set(Run.objects.values_list("kind", flat=True))


def test_openapi_schema_documents_the_backups_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, method in [("/repositories", "post"), ("/repositories/{name}/init", "post"),
                         ("/repositories/{name}/check", "post"), ("/plans", "get"),
                         ("/plans/{name}", "patch"), ("/plans/{name}/sources", "post"),
                         ("/plans/{name}/run", "post"), ("/plans/{name}/retention", "get"),
                         ("/plans/{name}/drill", "post"), ("/drills/summary", "get"),
                         ("/plans/{name}/sources/{source}/restore", "post")]:
        operation = paths[f"{API}{path}"][method]
        assert operation["security"] == [{"AdminToken": []}], path
        assert "409" in operation["responses"], path
    assert "502" in paths[f"{API}/plans/{{name}}/run"]["post"]["responses"]
    for path in ("/repositories/{name}/init", "/plans/{name}/run", "/plans/{name}/retention",
                 "/plans/{name}/drill", "/plans/{name}/sources/{source}/restore"):
        assert "202" in paths[f"{API}{path}"]["post"]["responses"], path
    assert "/api/v1/jobs/{job_id}" in paths
