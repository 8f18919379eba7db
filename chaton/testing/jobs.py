"""Helpers for tests of endpoints that answer ``202 Accepted`` with a job to poll."""

from __future__ import annotations

from typing import Any

from chaton.core import jobs
from chaton.core.worker import long_lane


def run_accepted(client: Any, response: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Given a 202 answer of the test client, run its job in this thread as the worker would,
    then return the job as polled.

    In a test's transaction nothing was committed, so no thread started the job; a
    test that commits (``transaction=True``) patches ``chaton.core.jobs.submit`` so
    that it runs its jobs itself, or polls instead. Should a lane's thread have the
    job all the same, wait for it.
    """
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["state"] in ("queued", "running", "succeeded", "failed"), job
    assert job["url"] == f"/api/v1/jobs/{job['id']}", job
    if jobs.run_job(job["id"]) is None:
        long_lane().wait(120)
    polled = client.get(job["url"], headers=headers)
    assert polled.status_code == 200, polled.content
    return dict(polled.json())


def result_of(client: Any, response: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Run the accepted job; return its result, asserting that it succeeded."""
    job = run_accepted(client, response, headers)
    assert job["state"] == "succeeded" and job["error"] is None, job
    return dict(job["result"])


def error_of(client: Any, response: Any, headers: dict[str, str], status: int, code: str,
             field: str | None = None) -> dict[str, Any]:
    """Run the accepted job; return its error, asserting that it failed with ``code``."""
    job = run_accepted(client, response, headers)
    assert job["state"] == "failed" and job["result"] is None, job
    error = dict(job["error"])
    assert (error["status"], error["code"]) == (status, code), error
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


def finish_jobs(timeout: float = 120) -> list[str]:
    """Run the queued jobs in this thread, oldest first, as the worker would, and wait for
    those a lane's thread already has (a decision's deployment, started on commit); return
    what each job run here did."""
    done = []
    for job_id in jobs.waiting_job_ids():
        result = jobs.run_job(job_id)
        if result is not None:
            done.append(str(result))
    assert long_lane().wait(timeout), f"long jobs still running: {long_lane().running()}"
    return done
