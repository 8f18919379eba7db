"""The activity report of a large collective, written as HTML and as PDF.

The bench's SQLite database is filled with rows (:mod:`chaton.testing.semester`):
2,000 members (1,990 natural persons, 10 partner associations), 30 instances
on one host (two of them opened mid-period), 300 decisions with closed ballots,
two years of daily samples of every figure of every instance (the two opened
mid-period: from their opening) and of the collective's members (about 64,000
samples), a year of day roll-ups of a probe
per instance with incidents, and a year of weekly backups and drills. The report
covers the last semester (184 days, charted by week).

``report_html_s``
    :func:`chaton.reports.render.to_html`: gathering every section from the
    database and writing the page with its charts (median of 3). Target ≤ 2 s.
``report_pdf_s``
    The same, then the page laid out and written as PDF by WeasyPrint (median of 2).
    Target ≤ 10 s.

``report_html_cpu_s`` and ``report_pdf_cpu_s`` are the same runs' CPU time, which a
machine busy with other work does not inflate.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path

from django.core.management import call_command

from bench.figures import Report, progress, timed
from chaton.core import clock

MEMBERS = 2000
LEGAL = 10
INSTANCES = 30
DECISIONS = 300
SAMPLE_DAYS = 730
SEMESTER_DAYS = 184
HTML_RUNS = 3
PDF_RUNS = 2


def populate() -> object:
    from chaton.reports.models import Report as ActivityReport
    from chaton.testing import semester

    end = clock.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=SEMESTER_DAYS - 1)
    partners = semester.members(start, end, natural=MEMBERS - LEGAL, legal=LEGAL)
    semester.decisions(start, DECISIONS)
    from chaton.services.models import Instance

    slugs = semester.instances(start, INSTANCES, partner=partners[0])
    first = end - dt.timedelta(days=SAMPLE_DAYS - 1)
    # Those not opened in the period run from the first day of the samples.
    Instance.objects.filter(organization__isnull=True).update(
        created_at=clock.start_of_day(first))
    count = semester.samples(slugs, first, end, gap_subject=slugs[1])
    progress(f"{count} samples")
    semester.monitoring(slugs, end - dt.timedelta(days=364), end)
    semester.backups(end - dt.timedelta(days=364), drills=52)
    return ActivityReport.objects.create(
        name="bench", starts_on=start, ends_on=end, language="fr",
        sections={"introduction": "Un semestre **chargé**.\n\n- un atelier\n- une fête"})


def run_all(workspace: Path) -> int:
    """Given a fresh workspace (Django set up on it), run the benchmarks; return the exit status."""
    from chaton.reports import render

    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    progress(f"{MEMBERS} members, {INSTANCES} instances, {DECISIONS} decisions, "
             f"{SAMPLE_DAYS} days of samples")
    activity = populate()
    report = Report()
    html_times, html_cpu = [], []
    html = ""
    for _run in range(HTML_RUNS):
        started = time.process_time()
        html, seconds = timed(lambda: render.to_html(activity))  # type: ignore[arg-type]
        html_cpu.append(time.process_time() - started)
        html_times.append(seconds)
    progress(f"HTML: {len(html) // 1024} KiB, {html.count('<svg')} charts")
    pdf_times, pdf_cpu = [], []
    pdf = b""
    for _run in range(PDF_RUNS):
        started = time.process_time()
        pdf, seconds = timed(lambda: render.to_pdf(activity))  # type: ignore[arg-type]
        pdf_cpu.append(time.process_time() - started)
        pdf_times.append(seconds)
    progress(f"PDF: {len(pdf) // 1024} KiB")
    html_s, pdf_s = statistics.median(html_times), statistics.median(pdf_times)
    # CPU time too: on a machine busy with other work the wall time grows, not this.
    report.figure("report_html_cpu_s", statistics.median(html_cpu), "s")
    report.figure("report_pdf_cpu_s", statistics.median(pdf_cpu), "s")
    report.figure("report_html_s", html_s, "s")
    report.figure("report_html_ratio", html_s / 2, "x", digits=2)
    report.target("report_html_s", html_s, 2, "s")
    report.figure("report_pdf_s", pdf_s, "s")
    report.figure("report_pdf_ratio", pdf_s / 10, "x", digits=2)
    report.target("report_pdf_s", pdf_s, 10, "s")
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0
