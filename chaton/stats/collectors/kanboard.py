"""Kanboard: projects and tasks (open and closed) through its JSON-RPC API
(``/jsonrpc.php``, user ``jsonrpc``, the instance's secret ``stats_token``: the
application's API token)."""

from __future__ import annotations

from typing import Any

from chaton.stats.collectors import TIMEOUT, CollectorError, Figures, Source


def _call(source: Source, method: str, **params: Any) -> Any:
    response = source.client.post(
        source.base_url + "/jsonrpc.php", timeout=TIMEOUT,
        auth=("jsonrpc", source.need_secret("stats_token")),
        json={"jsonrpc": "2.0", "method": method, "id": 1, "params": params})
    response.raise_for_status()
    answer = response.json()
    if answer.get("error"):
        raise CollectorError(f"{method}: {answer['error'].get('message', answer['error'])}")
    return answer.get("result")


def collect(source: Source) -> Figures:
    projects = _call(source, "getAllProjects") or []
    tasks = 0
    for project in projects:
        for status in (1, 0):  # open, closed
            tasks += len(_call(source, "getAllTasks", project_id=int(project["id"]),
                               status_id=status) or [])
    return {"projects": float(len(projects)), "tasks": float(tasks)}
