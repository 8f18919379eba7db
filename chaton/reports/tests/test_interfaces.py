"""The reports through the API, the pages and the command. From the attacker's side: a
member neither reads nor writes drafts; a published report never changes, whoever asks and
however; its files keep their SHA-256; drafts never show publicly."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from chaton.cli import runtime
from chaton.cli.app import app
from chaton.core.actions import do_create_api_token
from chaton.core.errors import Conflict, Forbidden
from chaton.core.models import AuditLog
from chaton.reports import actions
from chaton.reports.models import Report, ReportFile
from chaton.testing.second_factor import login_with_second_factor

API = "/api/v1/reports"
pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, client: Any, key: str | None) -> None:
        self.client = client
        self.headers = {"Accept-Language": "en"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> Any:
        return self.client.get(API + path, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        return getattr(self.client, method)(
            API + path, json.dumps(body) if body is not None else None,
            content_type="application/json", headers=self.headers)


@pytest.fixture
def api(client: Any, admin: Any) -> Api:
    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def member_api(client: Any, member: Any) -> Api:
    _token, key = do_create_api_token(member, "tests", acting_user=None)
    return Api(client, key)


@pytest.fixture
def published(draft: Any, admin: Any) -> Report:
    return actions.do_publish_report(draft, acting_user=admin)


def test_api_creates_builds_publishes_and_lists_publicly(api: Api, client: Any) -> None:
    created = api.send("post", "", {"name": "A18", "starts_on": "2018-06-21",
                                    "ends_on": "2019-01-09", "language": "en",
                                    "sections": {"introduction": "Hello"}})
    assert created.status_code == 201, created.content
    assert created.json()["state"] == "draft"
    changed = api.send("patch", "/A18", {"sections": {"events": "A fair"}})
    assert changed.json()["sections"] == {"introduction": "Hello", "events": "A fair"}
    built = api.send("post", "/A18/build", {"formats": ["md", "html"]})
    assert sorted(item["format"] for item in built.json()["files"]) == ["html", "md"]
    markdown = api.get("/A18/files/md")
    assert markdown["Content-Type"].startswith("text/markdown")
    assert b"# Activity report A18" in markdown.content
    assert client.get(API + "/published").json() == []  # a draft is not public
    published = api.send("post", "/A18/publish")
    assert published.json()["state"] == "published"
    files = {item["format"]: item["sha256"] for item in published.json()["files"]}
    assert sorted(files) == ["html", "md", "pdf"]
    public = client.get(API + "/published").json()
    assert [item["name"] for item in public] == ["A18"] and "sections" not in public[0]
    pdf = client.get("/reports/A18.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == files["pdf"]
    assert AuditLog.objects.filter(action="report.publish").count() == 1


def test_bad_input_is_a_coded_error(api: Api) -> None:
    backwards = api.send("post", "", {"name": "B19", "starts_on": "2019-06-01",
                                      "ends_on": "2019-01-01"})
    assert backwards.status_code == 400 and backwards.json()["field"] == "ends_on"
    bad_name = api.send("post", "", {"name": "../x", "starts_on": "2019-01-01",
                                     "ends_on": "2019-06-01"})
    assert bad_name.status_code == 400 and bad_name.json()["field"] == "name"
    bad_section = api.send("post", "", {"name": "B19", "starts_on": "2019-01-01",
                                        "ends_on": "2019-06-01", "sections": {"script": "x"}})
    assert bad_section.status_code == 400
    assert api.get("/nothing").status_code == 404
    api.send("post", "", {"name": "B19", "starts_on": "2019-01-01", "ends_on": "2019-06-01"})
    twice = api.send("post", "", {"name": "B19", "starts_on": "2019-01-01",
                                  "ends_on": "2019-06-01"})
    assert twice.status_code == 409
    assert api.send("post", "/B19/build", {"formats": ["docx"]}).status_code == 400
    assert api.get("/B19/files/pdf").status_code == 404


def test_a_published_report_never_changes_through_the_api(api: Api, published: Report) -> None:
    before = {item.format: (item.sha256, bytes(item.content)) for item in published.files.all()}
    for method, path, body in [("patch", "/A18", {"sections": {"introduction": "rewritten"}}),
                               ("patch", "/A18", {"ends_on": "2030-01-01"}),
                               ("post", "/A18/build", None), ("post", "/A18/publish", None),
                               ("delete", "/A18", None)]:
        answer = api.send(method, path, body)
        assert answer.status_code == 409, (method, path, answer.content)
        assert answer.json()["code"] == "conflict"
    after = {item.format: (item.sha256, bytes(item.content))
             for item in ReportFile.objects.filter(report=published)}
    assert after == before
    for sha256, content in after.values():
        assert hashlib.sha256(content).hexdigest() == sha256
    assert Report.objects.get().sections["introduction"] == "We **grew** this semester."


def test_a_published_report_never_changes_through_the_actions_or_pages(
        client: Any, admin: Any, published: Report, english: None) -> None:
    for attempt in (lambda: actions.do_update_report(published, acting_user=admin,
                                                     sections={"events": "x"}),
                    lambda: actions.do_build_report(published, acting_user=admin),
                    lambda: actions.do_publish_report(published, acting_user=admin),
                    lambda: actions.do_delete_report(published, acting_user=admin)):
        with pytest.raises(Conflict):
            attempt()
    stale = Report.objects.get(pk=published.pk)
    stale.state = "draft"  # an object read before the publication: the row decides
    with pytest.raises(Conflict):
        actions.do_update_report(stale, acting_user=admin, sections={"events": "x"})
    login_with_second_factor(client, admin)
    sha = {item.format: item.sha256 for item in ReportFile.objects.filter(report=published)}
    page = client.post("/reports/admin/A18/", {
        "starts_on": "2018-06-21", "ends_on": "2019-01-09", "language": "en",
        "introduction": "rewritten", "events": "", "outreach": "", "conclusion": ""})
    assert page.status_code == 200 and b"can no longer change" in page.content
    client.post("/reports/admin/A18/build/")
    client.post("/reports/admin/A18/publish/")
    assert {item.format: item.sha256
            for item in ReportFile.objects.filter(report=published)} == sha
    assert Report.objects.get().sections["introduction"] == "We **grew** this semester."


def test_members_and_visitors_see_no_draft(client: Any, member_api: Api, member: Any,
                                           draft: Report, admin: Any) -> None:
    actions.do_build_report(draft, formats=["md"], acting_user=admin)
    assert member_api.get("").status_code == 403
    assert member_api.get("/A18/files/md").status_code == 403
    assert member_api.send("post", "/A18/publish").status_code == 403
    with pytest.raises(Forbidden):
        actions.do_publish_report(draft, acting_user=member)
    assert client.get("/reports/A18.md").status_code == 404
    assert client.get(API + "/A18").status_code == 401
    assert b"A18" not in client.get("/reports/").content
    login_with_second_factor(client, member)
    assert client.get("/reports/admin/").status_code == 403
    assert client.post("/reports/admin/A18/publish/").status_code == 403
    assert Report.objects.get().state == "draft"


def test_the_pages_create_edit_build_and_publish(client: Any, admin: Any,
                                                 english: None) -> None:
    login_with_second_factor(client, admin)
    refused = client.post("/reports/admin/", {"name": "A18", "starts_on": "2019-01-09",
                                              "ends_on": "2018-06-21", "language": "en"})
    assert b"ends before it starts" in refused.content
    assert b'value="A18"' in refused.content  # nothing typed is lost
    created = client.post("/reports/admin/", {"name": "A18", "starts_on": "2018-06-21",
                                              "ends_on": "2019-01-09", "language": "en"})
    assert created.status_code == 302
    saved = client.post("/reports/admin/A18/", {
        "starts_on": "2018-06-21", "ends_on": "2019-01-09", "language": "en",
        "introduction": "<script>alert(1)</script> *Hello*", "events": "", "outreach": "",
        "conclusion": ""})
    assert saved.status_code == 302
    preview = client.get("/reports/admin/A18/preview/")
    assert b"&lt;script&gt;" in preview.content and b"<em>Hello</em>" in preview.content
    assert "default-src 'none'" in preview["Content-Security-Policy"]
    client.post("/reports/admin/A18/build/")
    assert client.get("/reports/admin/A18/md/").status_code == 200
    client.post("/reports/admin/A18/publish/")
    public = client.get("/reports/")
    assert b"/reports/A18.pdf" in public.content
    assert client.get("/reports/A18.html")["Content-Type"].startswith("text/html")


def test_the_command_creates_builds_and_publishes(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Any, english: None) -> None:
    monkeypatch.setattr(runtime, "_console", Console(width=300, highlight=False,
                                                     soft_wrap=True))
    runner = CliRunner()
    made = runner.invoke(app, ["report", "new", "A18", "--from", "2018-06-21",
                               "--to", "2019-01-09", "--language", "en"])
    assert made.exit_code == 0, made.output
    built = runner.invoke(app, ["report", "build", "A18", "--format", "md",
                                "--output", str(tmp_path)])
    assert built.exit_code == 0, built.output
    assert (tmp_path / "A18.md").read_text().startswith("# Activity report A18")
    backwards = runner.invoke(app, ["report", "new", "B19", "--from", "2019-06-01",
                                    "--to", "2019-01-01"])
    assert backwards.exit_code == 2 and "ends before it starts" in backwards.output
    assert len(backwards.output.strip().splitlines()) == 1
    published = runner.invoke(app, ["report", "publish", "A18"])
    assert published.exit_code == 0, published.output
    again = runner.invoke(app, ["report", "build", "A18"])
    assert again.exit_code == 2 and "can no longer change" in again.output
