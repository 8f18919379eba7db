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
