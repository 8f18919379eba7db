"""The activity report of a made-up semester, published as PDF by WeasyPrint and read back
with pdftotext (poppler-utils): the counts, the inventory's rows with their tallies, the
usage figures, the drills, the uptime — as a reader of the PDF sees them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from chaton.reports import actions
from chaton.reports.models import ReportFile
from chaton.reports.tests.conftest import (  # noqa: F401 - the fast tier's fixtures
    END,
    START,
    admin,
    draft,
    in_english,
    semester,
    tech_team,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pdf_text(semester, draft, admin, tmp_path: Path) -> str:  # noqa: F811
    actions.do_publish_report(draft, acting_user=admin)
    path = tmp_path / "A18.pdf"
    path.write_bytes(bytes(ReportFile.objects.get(report=draft, format="pdf").content))
    result = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                            text=True, check=True, timeout=60)
    return " ".join(result.stdout.split())



def test_the_pdf_says_the_semester(pdf_text: str) -> None:
    text = pdf_text
    assert "Activity report A18" in text
    assert f"from {START} to {END}" in text
    assert "On 2019-01-09: 30 members, 28 natural persons and 2 legal persons." in text
    assert "Dues received: 30 payments, 300.00 EUR." in text
    assert "Wren Admin" in text  # the tech team
    # The partner association's instances opened in the period.
    assert re.search(r"cast-04 castopod cast-04\.example\.org Partner association 1 "
                     r"2018-08-20", text), text
    # Twelve decisions in the inventory, with their tallies.
    assert len(re.findall(r"#\d+ Decision \d+:", text)) == 12
    assert re.search(r"#1 Decision 1: open a service for partner 1 Noa Brassac "
                     r"2018-06-23 15/15 0/15", text), text
    assert re.search(r"Decision 3: .* 13/15 2/15", text)
    # Usage: a gauge's last value, the busiest day, the gap's warning.
    assert re.search(r"ethe-01 Pads (\d{3}) pads 2019-01-0\d \(\1\)", text), text
    assert re.search(r"matt-02 Messages posted [\d,]+ messages 201\d-\d\d-\d\d \([89]\d\d\)",
                     text), text
    assert "matt-02, Messages posted: no sample on 7 day(s)" in text
    assert "Restores tested: 12, all passed." in text
    assert re.search(r"ethe-01 99\.\d\d % 2018-07-11 \(25 min\), 2018-08-10 \(25 min\)", text), \
        text
    assert "venus" in text  # the infrastructure diagram's host
    assert "We grew this semester." in text
