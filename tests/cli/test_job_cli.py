"""``chaton job``: the jobs the API started, as the worker left them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import jobs
from chaton.core.errors import Conflict
from chaton.core.models import Job
from chaton.directory import actions as directory_actions

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english", "directory")]


@pytest.fixture(autouse=True)
def kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two kinds of job for the tests; the tests run the jobs themselves (no lane threads)."""
    def echo(job: Job) -> dict[str, Any]:
        return {"echo": job.params["text"]}

    def refuse(job: Job) -> dict[str, Any]:
        raise Conflict("Plan nightly is already running.", field="plan")

    monkeypatch.setattr(jobs, "submit", lambda job_id: False)
    monkeypatch.setitem(jobs._kinds, "test.echo", jobs.JobKind("test.echo", echo))
    monkeypatch.setitem(jobs._kinds, "test.refuse", jobs.JobKind("test.refuse", refuse))
    yield


def cli(*arguments: str) -> Any:
    return CliRunner().invoke(app, list(arguments))


def test_jobs_are_listed_and_shown_with_their_result_or_error() -> None:
    wren = directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                               email="wren@example.org", is_admin=True)
    done = jobs.do_start_job("test.echo", params={"text": "bonjour"}, target="nightly",
                             lock_key="test:nightly", acting_user=wren)
    failed = jobs.do_start_job("test.refuse", params={}, target="nightly",
                               lock_key="test:nightly", acting_user=wren)
    waiting = jobs.do_start_job("test.echo", params={"text": "later"}, target="weekly",
                                lock_key="test:weekly", acting_user=wren)
    jobs.run_job(done.pk)
    jobs.run_job(failed.pk)

    listed = cli("job", "list")
    assert listed.exit_code == 0, listed.output
    for job in (done, failed, waiting):
        assert f"test.{'refuse' if job == failed else 'echo'}" in listed.stdout
    assert "queued" in listed.stdout and "succeeded" in listed.stdout
    only = cli("job", "list", "--state", "queued")
    assert "weekly" in only.stdout and "nightly" not in only.stdout

    shown = cli("job", "show", str(done.pk))
    assert shown.exit_code == 0, shown.output
    assert "succeeded" in shown.stdout and "Progress: 100 %" in shown.stdout
    assert json.loads(shown.stdout[shown.stdout.index("{"):]) == {"echo": "bonjour"}
    refused = cli("job", "show", str(failed.pk))
    assert refused.exit_code == 1
    assert json.loads(refused.stdout[refused.stdout.index("{"):])["code"] == "conflict"

    # The worker's --once runs the queued one.
    assert cli("worker", "--once").exit_code == 0
    assert "succeeded" in cli("job", "show", str(waiting.pk)).stdout


def test_an_unknown_job_or_state_is_one_line_and_exit_2() -> None:
    for arguments in (("job", "show", "4242"), ("job", "show", "0"),
                      ("job", "list", "--state", "sleeping")):
        result = cli(*arguments)
        assert result.exit_code == 2, (arguments, result.output)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
