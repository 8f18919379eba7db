"""Statistics against real servers: Castopod's and Etherpad's tables in a real PostgreSQL,
and a real Caddy writing its JSON access log, read into the HTTP figures with no address
kept. (The pads of a running Etherpad are counted through the same table: the suite's
Etherpad runs on its file database, so its PostgreSQL ``store`` is laid out here.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core import serializers

from chaton.adapters.caddy import Route, build_config
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.adapters.postgres import Database, TemporaryPostgres
from chaton.services import proxy
from chaton.stats.access_logs import read_access_log
from chaton.stats.collect import collect_day
from chaton.stats.models import DaySalt, Sample, Visitor
from chaton.stats.tests.conftest import make_source
from chaton.testing.acme import Pebble, _PinnedHTTPSConnection, wait_for_https

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
DAY = dt.date(2026, 11, 30)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

# Castopod's tables (prefix cp_) as its migrations create them, the columns it reads.
CASTOPOD_SCHEMA = """
CREATE TABLE cp_podcasts (id serial PRIMARY KEY, handle varchar(32) NOT NULL,
                          deleted_at timestamp NULL);
CREATE TABLE cp_episodes (id serial PRIMARY KEY, podcast_id int NOT NULL,
                          published_at timestamp NULL, deleted_at timestamp NULL);
CREATE TABLE cp_analytics_podcasts (podcast_id int NOT NULL, date date NOT NULL,
                                    duration int NOT NULL DEFAULT 0,
                                    bandwidth bigint NOT NULL DEFAULT 0,
                                    unique_listeners int NOT NULL DEFAULT 0,
                                    hits int NOT NULL DEFAULT 0,
                                    PRIMARY KEY (podcast_id, date));
INSERT INTO cp_podcasts (handle, deleted_at) VALUES ('radio', NULL), ('jardin', NULL),
                                                    ('ancien', now());
INSERT INTO cp_episodes (podcast_id, published_at, deleted_at) VALUES
  (1, now(), NULL), (1, now(), NULL), (2, now(), NULL), (2, NULL, NULL), (1, now(), now());
INSERT INTO cp_analytics_podcasts (podcast_id, date, unique_listeners, hits) VALUES
  (1, '2026-11-30', 40, 95), (2, '2026-11-30', 7, 12), (1, '2026-11-29', 3, 3);
"""

# Etherpad's ueberDB keeps everything in one key-value table.
ETHERPAD_SCHEMA = """
CREATE TABLE store (key varchar(100) PRIMARY KEY, value text NOT NULL);
INSERT INTO store VALUES ('pad:agenda', '{}'), ('pad:agenda:revs:0', '{}'),
  ('pad:agenda:revs:1', '{}'), ('pad:compte-rendu', '{}'), ('pad:compte-rendu:chat:0', '{}'),
  ('globalAuthor:a.1', '{}'), ('globalAuthor:a.2', '{}'), ('sessionstorage:x', '{}');
"""


def runner(server: TemporaryPostgres, name: str, schema: str):
    name = f"{name}_{secrets.token_hex(3)}"
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    database = Database(name=name, host="127.0.0.1", port=server.port)
    with database.connect() as connection:
        connection.execute(schema)

    def sql(query: str):
        with database.connect() as connection:
            return connection.execute(query).fetchall()
    return sql


def test_castopod_figures_come_from_its_tables(source_postgres: TemporaryPostgres, db: None):
    from chaton.services.models import Host, Instance

    host = Host.objects.create(name="box", docker_url="unix:///run/fake/docker.sock")
    Instance.objects.create(slug="radio", application="castopod", domain="radio.example.org",
                            host=host, port=21001)
    Instance.objects.create(slug="pad", application="etherpad", domain="pad.example.org",
                            host=host, port=21002)
    sqls = {"radio": runner(source_postgres, "castopod", CASTOPOD_SCHEMA),
            "pad": runner(source_postgres, "etherpad", ETHERPAD_SCHEMA)}

    def source(instance, day, client):
        return make_source("http://127.0.0.1:9", sql=sqls[instance.slug])(instance, day, client)
    result = collect_day(DAY, make_source=source, access_log="")
    assert result.gaps == {}
    found = {(sample.subject, sample.figure): sample.value
             for sample in Sample.objects.filter(day=DAY).exclude(subject="chaton")}
    assert found == {("radio", "castopod.podcasts"): 2, ("radio", "castopod.episodes"): 3,
                     ("radio", "castopod.hits"): 107, ("radio", "castopod.listeners"): 47,
                     ("pad", "etherpad.pads"): 2, ("pad", "etherpad.authors"): 2}
    # A day Castopod saw nobody is a zero (it was asked and answered), not a gap.
    collect_day(DAY + dt.timedelta(days=1), make_source=source, access_log="")
    assert Sample.objects.get(subject="radio", figure="castopod.hits",
                              day=DAY + dt.timedelta(days=1)).value == 0


@pytest.fixture
def backend() -> Iterator[tuple[int, bytes]]:
    page = f"pad {secrets.token_hex(4)}".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address[1], page
    finally:
        server.shutdown()
        server.server_close()


def get(domain: str, port: int, roots: Path, agent: str) -> int:
    context = ssl.create_default_context(cafile=str(roots))
    connection = _PinnedHTTPSConnection(domain, port, address="127.0.0.1", context=context,
                                        timeout=5)
    try:
        connection.request("GET", "/", headers={"User-Agent": agent})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_caddys_json_access_log_gives_requests_visitors_and_bots_and_no_address(
        caddy: ManagedCaddy, pebble: Pebble, backend: tuple[int, bytes], db: None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="chaton-access-"))
    try:
        log = folder / "access.log"
        port, page = backend
        domain = f"pad-{secrets.token_hex(3)}.chaton.test"
        config = build_config([Route(domain, f"127.0.0.1:{port}")],
                              dataclasses.replace(proxy.proxy_settings(), access_log=str(log)))
        caddy.client().load(config)
        https_port = settings.CHATON.proxy.https_port
        roots = pebble.roots_path()
        wait_for_https(domain, https_port, roots=roots, expect=page)  # no user agent: a bot
        for agent in (FIREFOX, FIREFOX, "curl/8.5.0"):
            assert get(domain, https_port, roots, agent) == 200
        assert log.exists()
        counted = read_access_log(log, {domain: "pad"})
        figures = {sample.figure: sample.value for sample in Sample.objects.filter(subject="pad")}
        assert figures["http.visitors"] == 1  # the two Firefox requests, from 127.0.0.1
        # pebble's validation of the domain is not counted; the poll without a user agent
        # and curl are bots.
        assert counted == 4 and figures["http.bots"] == 2
        assert figures["http.requests"] == counted
        stored = serializers.serialize("json", [*Sample.objects.all(), *Visitor.objects.all(),
                                                *DaySalt.objects.all()])
        assert "127.0.0.1" not in stored
    finally:
        shutil.rmtree(folder, ignore_errors=True)
