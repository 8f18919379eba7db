"""The collective's own figures, the collection as an audited action and a worker job; the
API, the pages and the CLI; from the attacker's side: only administrators read statistics
or start a collection."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.core.actions import do_create_api_token
from chaton.core.models import AuditLog
from chaton.core.worker import Schedule
from chaton.members import actions as members
from chaton.stats import jobs
from chaton.stats.actions import do_collect
from chaton.stats.models import Gap, Sample
from chaton.stats.own import own_figures
from chaton.testing.second_factor import login_with_second_factor

pytestmark = pytest.mark.django_db
API = "/api/v1/stats"
DAY = dt.date(2026, 11, 30)


@pytest.fixture
def samples(db):
    for day, value in ((1, 282), (2, 838), (4, 12)):
        Sample.objects.create(figure="mattermost.posts_day", subject="chat",
                              day=dt.date(2026, 11, day), value=value, collected_at=clock.now())
    Sample.objects.create(figure="chaton.members", subject="chaton", day=DAY, value=30,
                          collected_at=clock.now())
    Gap.objects.create(subject="chat", day=dt.date(2026, 11, 3), collector="mattermost",
                       message="/api/v4/analytics/old answered 502", noted_at=clock.now())


def test_the_collectives_own_figures_count_members_by_type_and_kind_and_dues(directory):
    alice = members.do_create_person("Alice Martin", "alice@example.org", acting_user=None)
    bob = members.do_create_person("Bob Durand", "bob@example.org", acting_user=None)
    partner = members.do_create_organization("Les Jardins Partagés", "contact@jardins.example",
                                             acting_user=None)
    first = members.do_start_membership(alice, acting_user=None, starts_on=dt.date(2026, 1, 1))
    members.do_start_membership(bob, acting_user=None, starts_on=dt.date(2026, 1, 1),
                                kind="support", ends_on=dt.date(2026, 6, 30))
    members.do_start_membership(partner, acting_user=None, starts_on=dt.date(2026, 3, 1))
    members.do_record_dues(first, "15.50", DAY, acting_user=None)
    figures = own_figures(DAY)
    assert figures["chaton.members"] == 2  # Bob's membership ended in June
    assert figures["chaton.members.natural"] == 1 and figures["chaton.members.legal"] == 1
    assert figures["chaton.members.regular"] == 2 and figures["chaton.members.support"] == 0
    assert own_figures(dt.date(2026, 2, 1))["chaton.members"] == 2  # Alice and Bob
    assert figures["chaton.dues"] == 15.5
    assert "chaton.backups.bytes" not in figures  # no backup yet: no sample, not a zero


def test_a_collection_is_audited_and_the_job_collects_yesterday_once(directory, admin,
                                                                      monkeypatch):
    monkeypatch.setattr("chaton.stats.collect.proxy.access_log_path", lambda: "")
    result = do_collect(day=DAY, acting_user=admin)
    assert result.samples > 0 and result.gaps == {}
    row = AuditLog.objects.get(action="stats.collect")
    assert row.actor == admin and row.after["day"] == DAY.isoformat()
    schedule = Schedule()
    [(name, job)] = jobs.due_jobs(schedule)
    assert name == "stats.collect" and "stats.collect" in jobs.LONG_JOBS
    assert "sample" in str(job())
    assert job() is None  # yesterday is in already
    assert jobs.due_jobs(schedule) == []


def test_a_day_to_come_is_refused(directory):
    with pytest.raises(Exception, match="day to come"):
        do_collect(day=clock.today() + dt.timedelta(days=1), acting_user=None)


# -- API -------------------------------------------------------------------------------------


def headers(account) -> dict[str, str]:
    _token, key = do_create_api_token(account, "tests", acting_user=None)
    return {"Authorization": f"Bearer {key}", "Accept-Language": "en"}


def test_the_api_lists_figures_gives_a_series_with_gaps_and_the_csv(client, admin, samples):
    auth = headers(admin)
    listing = client.get(f"{API}/figures", headers=auth).json()
    assert {"name": "mattermost.posts_day", "label": "Messages posted", "unit": "messages",
            "kind": "count", "subjects": ["chat"]} in listing
    series = client.get(f"{API}/series/mattermost.posts_day", {"subject": "chat",
                        "start": "2026-11-01", "end": "2026-11-05"}, headers=auth).json()
    assert [point["value"] for point in series["points"]] == [282, 838, None, 12, None]
    assert series["busiest_day"] == "2026-11-02" and series["busiest_value"] == 838
    weekly = client.get(f"{API}/series/mattermost.posts_day", {"subject": "chat", "step": "week",
                        "start": "2026-11-01", "end": "2026-11-05"}, headers=auth).json()
    assert [point["value"] for point in weekly["points"]] == [282, 850]
    csv = client.get(f"{API}/samples.csv", {"subject": "chat"}, headers=auth)
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines() == [
        "figure,subject,day,value", "mattermost.posts_day,chat,2026-11-01,282",
        "mattermost.posts_day,chat,2026-11-02,838", "mattermost.posts_day,chat,2026-11-04,12"]


def test_api_errors_are_coded_never_a_500(client, admin, samples):
    auth = headers(admin)
    bad = client.get(f"{API}/series/mattermost.posts_day", {"subject": "chat", "step": "year"},
                     headers=auth)
    assert bad.status_code == 400 and bad.json()["field"] == "step"
    bad = client.get(f"{API}/series/mattermost.posts_day", {"subject": "chat", "start": "x"},
                     headers=auth)
    assert bad.status_code == 400 and bad.json()["field"] == "start"
    missing = client.get(f"{API}/series/nothing.here", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_a_member_and_a_visitor_read_no_statistics(client, member, samples):
    auth = headers(member)
    for path in ("/figures", "/series/mattermost.posts_day?subject=chat", "/samples.csv"):
        assert client.get(API + path, headers=auth).status_code == 403
        assert client.get(API + path).status_code == 401
    answer = client.get("/stats/")
    assert answer.status_code == 302 and "login" in answer["Location"]
    client.force_login(member)
    assert client.get("/stats/").status_code == 403
    assert client.get("/stats/export.csv").status_code == 403


# -- pages -----------------------------------------------------------------------------------


def test_the_page_shows_charts_the_busiest_day_gaps_and_exports(client, admin, samples,
                                                                 english):
    login_with_second_factor(client, admin)
    page = client.get("/stats/", {"subject": "chat", "start": "2026-11-01",
                                  "end": "2026-11-30"}).content.decode()
    assert "<svg" in page and "Messages posted" in page
    assert "The busiest day: 2026-11-02 (838 messages)." in page
    assert "answered 502" in page
    monthly = client.get("/stats/", {"subject": "chat", "step": "month", "start": "2026-10-01",
                                     "end": "2026-11-30"})
    assert monthly.status_code == 200
    wrong = client.get("/stats/", {"subject": "chat", "start": "2026-11-30",
                                   "end": "2026-11-01"}).content.decode()
    assert "The end comes before the start." in wrong
    empty = client.get("/stats/", {"subject": "chat", "start": "2025-01-01",
                                   "end": "2025-01-31"}).content.decode()
    assert "No data in this period." in empty and "no data" in empty
    export = client.get("/stats/export.csv", {"subject": "chat", "start": "2026-11-01",
                                              "end": "2026-11-30"})
    assert export.content.decode().count("mattermost.posts_day") == 3


# -- CLI -------------------------------------------------------------------------------------


def cli(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


@pytest.mark.usefixtures("english")
def test_the_cli_shows_a_series_and_exports_csv(samples):
    shown = cli("stats", "show", "mattermost.posts_day", "--subject", "chat", "--start",
                "2026-11-01", "--end", "2026-11-04")
    assert shown.exit_code == 0, shown.output
    assert "2026-11-02" in shown.output and "838" in shown.output
    assert "The busiest day: 2026-11-02 (838)." in shown.output
    exported = cli("stats", "export", "--csv", "--figure", "chaton.members")
    assert exported.exit_code == 0
    assert exported.stdout.splitlines() == ["figure,subject,day,value",
                                            "chaton.members,chaton,2026-11-30,30"]


def test_cli_errors_are_one_line_and_exit_2(samples):
    for arguments in (("stats", "show", "nothing.here"),
                      ("stats", "show", "mattermost.posts_day", "--subject", "chat",
                       "--step", "year"),
                      ("stats", "collect", "--day", "tomorrow")):
        result = cli(*arguments)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_uptime_comes_from_monitorings_day_rollups_and_no_rollup_is_no_figure(
        directory, monkeypatch):
    from chaton.monitoring.models import Period, Probe, Rollup
    from chaton.services.models import Host, Instance

    monkeypatch.setattr("chaton.stats.collect.proxy.access_log_path", lambda: "")
    host = Host.objects.create(name="box", docker_url="unix:///run/fake/docker.sock")
    pads = Instance.objects.create(slug="pads", application="homepage", domain="pads.example.org",
                                   host=host, port=21001)
    start = clock.start_of_day(DAY)
    for key, service, instance, up, down in (
            ("instance:pads:https", "Pads", pads, 80000, 6400),
            ("instance:pads:cert", "Pads", pads, 86400, 0),
            ("directory:ldap", "Directory", None, 43200, 0)):
        probe = Probe.objects.create(key=key, name=key, kind="http", target="x",
                                     service=service, instance=instance)
        Rollup.objects.create(probe=probe, period=Period.DAY, start=start, up_seconds=up,
                              down_seconds=down, unknown_seconds=86400 - up - down)
    do_collect(day=DAY, acting_user=None)
    assert Sample.objects.get(figure="uptime", subject="pads", day=DAY).value == \
        pytest.approx(100 * 166400 / 172800, abs=0.001)
    assert Sample.objects.get(figure="uptime.directory", subject="chaton", day=DAY).value == 100
    do_collect(day=DAY - dt.timedelta(days=1), acting_user=None)
    assert not Sample.objects.filter(figure__startswith="uptime",
                                     day=DAY - dt.timedelta(days=1)).exists()


def test_what_a_hostile_service_answers_is_shown_as_text(client, admin, samples, english):
    Gap.objects.create(subject="chat", day=dt.date(2026, 11, 5), collector="mattermost",
                       message='<script>alert("x")</script>', noted_at=clock.now())
    login_with_second_factor(client, admin)
    page = client.get("/stats/", {"subject": "chat", "start": "2026-11-01",
                                  "end": "2026-11-30"}).content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
