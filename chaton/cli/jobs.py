"""``chaton job``: the long work asked through the API (see :mod:`chaton.core.jobs`).

``list`` shows the newest jobs, ``show`` one job with its result or error as
JSON. The worker (``chaton worker``, or ``chaton serve``) runs them.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from django.utils import timezone
from django.utils.translation import gettext as _
from rich.table import Table

from chaton.cli.runtime import cell, console, setup_django

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("list")
def list_jobs(
    state: Annotated[str, typer.Option(
        "--state", help="Only this state: queued, running, succeeded or failed.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
) -> None:
    """List the newest jobs."""
    setup_django()
    from chaton.core.errors import InvalidInput
    from chaton.core.models import Job, JobState

    found = Job.objects.select_related("created_by").order_by("-created_at", "-id")
    if state:
        if state not in JobState.values:
            raise InvalidInput(_("Unknown state: choose among %(choices)s.")
                               % {"choices": ", ".join(JobState.values)}, field="state")
        found = found.filter(state=state)
    table = Table(_("id"), _("kind"), _("on"), _("state"), _("asked at"), _("by"))
    for job in found[:limit]:
        table.add_row(cell(job.pk), cell(job.kind), cell(job.target_label),
                      cell(job.get_state_display()),
                      cell(timezone.localtime(job.created_at).strftime("%Y-%m-%d %H:%M:%S")),
                      cell(job.created_by.get_username() if job.created_by else ""))
    console().print(table)


@app.command("show")
def show_job(job_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Show a job: its state, progress, and its result or error (JSON)."""
    setup_django()
    from chaton.core.queries import job_by_id

    job = job_by_id(job_id)
    console().print(_("Job %(id)d: %(kind)s on %(target)s, %(state)s")
                    % {"id": job.pk, "kind": job.kind, "target": job.target_label,
                       "state": job.get_state_display()}, markup=False)
    if job.progress is not None:
        console().print(_("Progress: %(percent)d %%") % {"percent": job.progress},
                        markup=False)
    answer = job.result if job.error is None else job.error
    if answer is not None:
        console().print(json.dumps(answer, indent=2, ensure_ascii=False), markup=False,
                        soft_wrap=True)
    if job.state == "failed":
        raise typer.Exit(1)
