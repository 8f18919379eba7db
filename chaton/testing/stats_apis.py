"""The applications' documented API answers that the statistics collectors read, served on
loopback (benchmarks run it in a process of its own: ``python -m chaton.testing.stats_apis
PORT``). Every instance gets the same answers: Mattermost's analytics (with skipped days),
Nextcloud's serverinfo, Kanboard's JSON-RPC, BookStack's listings."""

from __future__ import annotations

import datetime as dt
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer(method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
    """Return the status and JSON body the application would answer."""
    today = dt.date.today()
    if path == "/api/v4/analytics/old":
        if query.startswith("name="):
            return 200, [{"name": (today - dt.timedelta(days=day)).isoformat(),
                          "value": 100 + day} for day in range(0, 30, 2)]
        return 200, [{"name": "channel_open_count", "value": 12},
                     {"name": "unique_user_count", "value": 40},
                     {"name": "team_count", "value": 2}, {"name": "post_count", "value": 4321}]
    if path == "/ocs/v2.php/apps/serverinfo/api/v1/info":
        return 200, {"ocs": {"meta": {"status": "ok", "statuscode": 200}, "data": {
            "nextcloud": {"storage": {"num_users": 1501, "num_files": 48210}},
            "activeUsers": {"last5minutes": 2, "last1hour": 9, "last24hours": 180}}}}
    if path == "/jsonrpc.php":
        call = json.loads(body or b"{}")
        if call.get("method") == "getAllProjects":
            result: Any = [{"id": str(index)} for index in range(1, 6)]
        else:
            result = [{"id": str(index)} for index in range(20)]
        return 200, {"jsonrpc": "2.0", "id": call.get("id"), "result": result}
    if path in ("/api/books", "/api/pages"):
        return 200, {"data": [{"id": 1}], "total": 14 if path == "/api/books" else 233}
    return 404, {"error": "not found"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        status, payload = answer(self.command, path, query, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
