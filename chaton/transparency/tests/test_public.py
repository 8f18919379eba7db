"""The public /transparency/ page: published reports (never drafts), the latest figures, the
files; no login, French and English."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chaton.core import clock
from chaton.reports.models import Report, ReportFile
from chaton.stats.models import Sample
from chaton.transparency.tests.conftest import make_instance

pytestmark = pytest.mark.django_db


def test_published_reports_and_figures_are_listed_drafts_are_not(client: Any, host: Any) -> None:
    published = Report.objects.create(name="A25", starts_on=dt.date(2025, 6, 21),
                                      ends_on=dt.date(2026, 1, 9), state="published",
                                      published_at=clock.now())
    ReportFile.objects.create(report=published, format="pdf", content=b"%PDF", sha256="0" * 64,
                              built_at=clock.now())
    Report.objects.create(name="P26", starts_on=dt.date(2026, 1, 10),
                          ends_on=dt.date(2026, 6, 20))
    make_instance(host, "pads")
    Sample.objects.create(figure="etherpad.pads", subject="pads", day=dt.date(2026, 11, 30),
                          value=1234.0, collected_at=clock.now())
    Sample.objects.create(figure="etherpad.pads", subject="pads", day=dt.date(2026, 12, 1),
                          value=1240.0, collected_at=clock.now())

    body = client.get("/transparency/?lang=en").content.decode()
    assert "A25" in body and 'href="/reports/A25.pdf"' in body
    assert "P26" not in body
    assert 'href="/reports/"' in body
    assert "1240" in body and "1234" not in body and "Pads" in body
    assert 'href="/.well-known/chatonsinfos/pads.properties"' in body

    french = client.get("/transparency/?lang=fr")
    assert french["Content-Language"] == "fr"
    assert '<html lang="fr">' in french.content.decode()


def test_the_page_needs_no_login_and_no_script(client: Any) -> None:
    response = client.get("/transparency/")
    assert response.status_code == 200
    assert "<script" not in response.content.decode()


def test_the_page_and_the_files_do_not_grow_in_queries(client: Any, host: Any,
                                                        django_assert_max_num_queries: Any
                                                        ) -> None:
    from chaton.transparency import actions

    def grow(start: int, count: int) -> None:
        for index in range(start, start + count):
            make_instance(host, f"pads{index}")
            report = Report.objects.create(name=f"A{index}", starts_on=dt.date(2020, 1, 1),
                                           ends_on=dt.date(2020, 6, 1), state="published",
                                           published_at=clock.now())
            ReportFile.objects.create(report=report, format="pdf", content=b"%PDF",
                                      sha256="0" * 64, built_at=clock.now())
            row = actions.do_add_authority_request(
                acting_user=None, received_on=dt.date(2026, 1, 1), authority="Court",
                kind="identification", asked="private")
            actions.do_publish_authority_request(row, acting_user=None, published_text="public")

    grow(0, 2)
    with django_assert_max_num_queries(12) as few:
        client.get("/transparency/")
        client.get("/.well-known/chatonsinfos/organization.properties")
    grow(2, 15)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/transparency/")
        client.get("/.well-known/chatonsinfos/organization.properties")


def test_the_api_schema_documents_the_public_endpoints_without_a_token(client: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    for path in ["/api/v1/transparency/profile", "/api/v1/transparency/requests",
                 "/api/v1/transparency/requests/{request_id}/publish",
                 "/api/v1/transparency/public/requests", "/api/v1/transparency/public/software"]:
        assert path in paths, path
    assert not paths["/api/v1/transparency/public/requests"]["get"].get("security")
    assert paths["/api/v1/transparency/requests"]["get"]["security"] == [{"AdminToken": []}]
    public = schema["components"]["schemas"]["PublicRequestOut"]["properties"]
    assert set(public) == {"received_on", "authority", "kind", "published_text"}
