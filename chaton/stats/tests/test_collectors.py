"""The collectors against the applications' documented API answers, served by a local HTTP
server; PrivateBin against a folder laid out like its data. A service that is down, answers
401 or hangs leaves a gap and a warning, never a failed collection."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from chaton.core.servers import free_port
from chaton.stats.collect import collect_day
from chaton.stats.models import Gap, Sample
from chaton.stats.tests.conftest import make_source

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 11, 30)


def values(subject: str) -> dict[str, float]:
    return {sample.figure: sample.value
            for sample in Sample.objects.filter(subject=subject, day=DAY)}


def mattermost_routes(server, posts: dict[str, int], active: dict[str, int]) -> None:
    # /api/v4/analytics/old: the standard rows; ?name=…: one row per day that had posts
    # (the days without any are skipped), newest first, for the last 30 days.
    def analytics(body, headers, query):
        if headers.get("Authorization") != "Bearer token":
            return 401, {"id": "api.context.session_expired.app_error", "status_code": 401}
        if query == "name=post_counts_day":
            return 200, [{"name": day, "value": value} for day, value in posts.items()]
        if query == "name=user_counts_with_posts_day":
            return 200, [{"name": day, "value": value} for day, value in active.items()]
        return 200, [{"name": "channel_open_count", "value": 12},
                     {"name": "channel_private_count", "value": 3},
                     {"name": "post_count", "value": 4321},
                     {"name": "unique_user_count", "value": 40},
                     {"name": "team_count", "value": 2},
                     {"name": "total_websocket_connections", "value": 7}]
    server.routes["/api/v4/analytics/old"] = analytics


def test_mattermost_keeps_every_day_of_its_window_a_skipped_day_being_zero(api_server,
                                                                          make_instance):
    make_instance("mattermost", "chat")
    mattermost_routes(api_server, {"2026-11-30": 282, "2026-11-28": 838, "2026-11-02": 5},
                      {"2026-11-30": 31, "2026-11-28": 44})
    result = collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert result.gaps == {}
    assert values("chat")["mattermost.users"] == 40
    assert values("chat")["mattermost.teams"] == 2
    assert values("chat")["mattermost.channels"] == 12
    posts = dict(Sample.objects.filter(figure="mattermost.posts", subject="chat")
                 .values_list("day", "value"))
    assert len(posts) == 30 and min(posts) == dt.date(2026, 11, 1)
    assert posts[dt.date(2026, 11, 28)] == 838
    assert posts[dt.date(2026, 11, 29)] == 0  # skipped by Mattermost: no post that day
    assert posts[dt.date(2026, 11, 2)] == 5
    # The history outlives Mattermost's window: 40 days later the old days are still here.
    mattermost_routes(api_server, {"2027-01-09": 10}, {})
    collect_day(DAY + dt.timedelta(days=40), make_source=make_source(api_server.url),
                access_log="")
    kept = dict(Sample.objects.filter(figure="mattermost.posts", subject="chat")
                .values_list("day", "value"))
    assert kept[dt.date(2026, 11, 28)] == 838 and kept[dt.date(2027, 1, 9)] == 10


def test_nextcloud_reads_serverinfo_as_its_administrator(api_server, make_instance):
    make_instance("nextcloud", "cloud")
    seen = {}

    def info(body, headers, query):
        seen.update(headers=headers, query=query)
        return 200, {"ocs": {"meta": {"status": "ok", "statuscode": 200, "message": "OK"},
                             "data": {"nextcloud": {
                                 "system": {"version": "31.0.7.1"},
                                 "storage": {"num_users": 1501, "num_files": 48210,
                                             "num_storages": 1503,
                                             "num_storages_local": 1, "num_storages_home": 1501,
                                             "num_storages_other": 1},
                                 "shares": {"num_shares": 96}},
                                 "server": {"webserver": "Apache"},
                                 "activeUsers": {"last5minutes": 2, "last1hour": 9,
                                                 "last24hours": 180}}}}
    api_server.routes["/ocs/v2.php/apps/serverinfo/api/v1/info"] = info
    collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert values("cloud") == {"nextcloud.users": 1501, "nextcloud.files": 48210,
                               "nextcloud.active_users": 180}
    assert seen["headers"]["OCS-APIRequest"] == "true"
    assert seen["headers"]["Authorization"].startswith("Basic ")
    assert "format=json" in seen["query"]


def test_kanboard_counts_projects_and_their_open_and_closed_tasks(api_server, make_instance):
    make_instance("kanboard", "boards")
    tasks = {(1, 1): 3, (1, 0): 2, (2, 1): 4, (2, 0): 0}

    def rpc(body, headers, query):
        call = json.loads(body)
        assert headers["Authorization"].startswith("Basic ")
        if call["method"] == "getAllProjects":
            result = [{"id": "1", "name": "Garden", "is_active": "1"},
                      {"id": "2", "name": "Festival", "is_active": "1"}]
        else:
            params = call["params"]
            result = [{"id": str(index)} for index in
                      range(tasks[(params["project_id"], params["status_id"])])]
        return 200, {"jsonrpc": "2.0", "id": call["id"], "result": result}
    api_server.routes["/jsonrpc.php"] = rpc
    collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert values("boards") == {"kanboard.projects": 2, "kanboard.tasks": 9}


def test_bookstack_reads_the_totals_of_its_listings(api_server, make_instance):
    make_instance("bookstack", "wiki")
    api_server.routes["/api/books"] = (200, {"data": [{"id": 1, "name": "Handbook"}],
                                             "total": 14})
    api_server.routes["/api/pages"] = (200, {"data": [{"id": 1, "name": "Welcome"}],
                                             "total": 233})
    collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert values("wiki") == {"bookstack.books": 14, "bookstack.pages": 233}
    assert all(headers["Authorization"] == "Token token"
               for _method, _path, headers in api_server.requests)


def test_privatebin_counts_the_pastes_in_its_data_folder(tmp_path: Path, make_instance):
    make_instance("privatebin", "paste")
    data = tmp_path / "data"
    for name in ("ab/cd/abcd0123456789ef.php", "ab/ef/abef0123456789ef.php",
                 "12/34/12340123456789ef.php"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("<?php http_response_code(403); /*{}*/")
    (data / ".htaccess").write_text("Require all denied")
    (data / "salt.php").write_text("<?php /* salt */")
    (data / "purge_limiter.php").write_text("<?php")
    collect_day(DAY, make_source=make_source("http://127.0.0.1:9", folders={"data": data}),
                access_log="")
    assert values("paste") == {"privatebin.pastes": 3}


def test_a_service_that_is_down_leaves_a_gap_and_a_warning_and_the_others_are_collected(
        api_server, make_instance, caplog):
    make_instance("bookstack", "wiki")
    make_instance("kanboard", "boards")
    api_server.routes["/api/books"] = (200, {"data": [], "total": 1})
    api_server.routes["/api/pages"] = (200, {"data": [], "total": 2})

    def source(instance, day, client):
        url = api_server.url if instance.slug == "wiki" else f"http://127.0.0.1:{free_port()}"
        return make_source(url)(instance, day, client)
    result = collect_day(DAY, make_source=source, access_log="")
    assert set(result.gaps) == {"boards"}
    assert values("wiki") == {"bookstack.books": 1, "bookstack.pages": 2}
    assert values("boards") == {}  # a gap, not a zero
    assert Gap.objects.get(subject="boards", day=DAY).collector == "kanboard"
    assert "boards" in caplog.text
    assert values("chaton")["chaton.members"] == 0  # the collective's figures still came


def test_a_refused_token_and_a_hanging_service_are_gaps_too(api_server, make_instance):
    make_instance("mattermost", "chat")
    mattermost_routes(api_server, {}, {})
    result = collect_day(DAY, make_source=make_source(api_server.url,
                                                      secrets={"stats_token": "stolen"}),
                         access_log="")
    assert "401" in result.gaps["chat"]
    api_server.delay = 2.0
    result = collect_day(DAY, make_source=make_source(api_server.url), access_log="",
                         timeout=0.3)
    assert "0.3 s" in result.gaps["chat"]
    assert not Sample.objects.filter(subject="chat").exists()


def test_an_instance_without_its_api_token_is_a_gap_that_names_the_secret(api_server,
                                                                         make_instance):
    make_instance("bookstack", "wiki")
    result = collect_day(DAY, make_source=make_source(api_server.url, secrets={}),
                         access_log="")
    assert "stats_token" in result.gaps["wiki"]
    assert api_server.requests == []


def test_a_later_success_replaces_the_days_gap(api_server, make_instance):
    make_instance("bookstack", "wiki")
    collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert Gap.objects.filter(subject="wiki").exists()
    api_server.routes["/api/books"] = (200, {"data": [], "total": 1})
    api_server.routes["/api/pages"] = (200, {"data": [], "total": 2})
    collect_day(DAY, make_source=make_source(api_server.url), access_log="")
    assert not Gap.objects.filter(subject="wiki").exists()
