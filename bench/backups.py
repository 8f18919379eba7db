"""The backups benchmark: what Chaton costs over plain restic, and how long a drill takes.

A mixed data set of about a gigabyte is made once: a PostgreSQL database of
about 700 MB in a throwaway server (:class:`TemporaryPostgres`; two tables
filled by ``generate_series`` with random bytes, random hex and repeated
sentences: partly incompressible, partly compressible) and about 300 MB of
files (a few large random ones, medium ones half random half text, thousands
of small text files). Then:

``backup_overhead_ratio`` (with ``backup_chaton_s`` and ``backup_plain_s``)
    Chaton's :func:`~chaton.backups.actions.run_backup` of a plan holding both
    sources (pg_dump streamed into restic while the server fingerprints the
    tables; ``restic backup`` of the directory), divided by the plain way:
    ``pg_dump | restic backup --stdin`` then ``restic backup DIR``, the same
    pg_dump options, the same restic, host and cache. Each backup goes into a
    new repository of its own (initialised beforehand, not timed), so
    deduplication favours neither. Plain first then Chaton, then Chaton first
    then plain, then plain first again; the best time of each side counts.
    Target ≤ 1.10.
``drill_pg_1gb_s``
    A drill of the database source (:func:`~chaton.backups.actions.run_drill`
    without the repository check): its snapshot streamed by ``restic dump``
    into ``pg_restore`` on a throwaway PostgreSQL, then every table's rows and
    checksum compared. No target.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from bench.figures import Report, progress, timed
from chaton.adapters.postgres import (
    Database,
    TemporaryPostgres,
    create_database,
    pg_dump_command,
)
from chaton.core import runner
from chaton.core.servers import free_port

#: Rows of each of the two tables (about 1.1 kB each): about 700 MB of dump in all.
ROWS_PER_TABLE = 320_000
TABLES = 2
#: Files: (count, size in bytes, share of random bytes; the rest is text).
FILE_SETS = ((3, 40 * 1024**2, 1.0), (60, 1024**2, 0.5), (3000, 40 * 1024, 0.0))
PASSWORD = "benchmark repository passphrase"
RESTIC_TIMEOUT = 3600
TARGET_RATIO = 1.10
#: Rounds of (plain, Chaton), the order swapped at each round; the best time of each counts.
#: On a machine shared with other work a backup of this size varies by a second or two
#: from one run to the next: a third round keeps one slow run from deciding.
ROUNDS = 3
SENTENCES = ("The general assembly approved the hosting budget for the coming year. ",
             "Volunteers renewed the certificates of the pad and the cloud instance. ",
             "Members asked for a second mail server and a tested restore procedure. ",
             "The partner association joined the chat service with twelve accounts. ")


@dataclass(frozen=True)
class DataSet:
    """The data backed up: the database, the directory of files, and their sizes."""

    database: Database
    files: Path
    dump_bytes: int
    file_bytes: int


def fill_table(database: Database, table: str, rows: int) -> None:
    """Create ``table`` and fill it with ``rows`` rows of mixed data, in the server."""
    with database.connect() as connection:
        connection.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, customer integer NOT NULL, "
            "placed_at timestamptz NOT NULL, reference text NOT NULL, "
            "attachment text NOT NULL, notes text NOT NULL)")
        connection.execute(
            f"INSERT INTO {table} SELECT g, (random() * 10000)::int, "  # noqa: S608
            "now() - g * interval '1 second', "
            "md5(random()::text) || md5(random()::text) || md5(random()::text), "
            "encode(gen_random_bytes(400), 'base64'), "
            "repeat(%s, 5) FROM generate_series(1, %s) AS g",
            (SENTENCES[0], rows))


def make_database(workspace: Path) -> tuple[TemporaryPostgres, Database]:
    """Start a throwaway PostgreSQL and fill database ``shop`` (tables filled in parallel)."""
    server = TemporaryPostgres(workspace / "postgres", free_port())
    server.start(timeout=60)
    admin = Database(name="postgres", host="127.0.0.1", port=server.port)
    database = create_database(admin, "shop")
    with database.connect() as connection:
        connection.execute("CREATE EXTENSION pgcrypto")
    errors: list[BaseException] = []

    def fill(index: int) -> None:
        try:
            fill_table(database, f"orders_{index}", ROWS_PER_TABLE)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fill, args=(index,)) for index in range(TABLES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        server.stop()
        raise errors[0]
    with database.connect() as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")
    return server, database


def _text(generator: random.Random, size: int) -> bytes:
    words = []
    length = 0
    while length < size:
        sentence = generator.choice(SENTENCES)
        words.append(sentence)
        length += len(sentence)
        if generator.random() < 0.1:
            number = f"{generator.randrange(10**9)} "
            words.append(number)
            length += len(number)
    return "".join(words).encode()[:size]


def make_files(folder: Path, *, seed: int = 20240601) -> int:
    """Write the mixed files under ``folder``; return their total size in bytes."""
    generator = random.Random(seed)
    total = 0
    for group, (count, size, random_share) in enumerate(FILE_SETS):
        directory = folder / f"set-{group}"
        for index in range(count):
            # Spread over subdirectories, as uploads and mailboxes are.
            path = directory / f"{index % 50:02d}" / f"file-{index:05d}.dat"
            path.parent.mkdir(parents=True, exist_ok=True)
            random_bytes = int(size * random_share)
            path.write_bytes(os.urandom(random_bytes) + _text(generator, size - random_bytes))
            total += size
    return total


def database_size(database: Database) -> int:
    """Return the size in bytes of the database on the server's disk."""
    with database.connect() as connection:
        row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])


def _restic_environment(location: Path) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("RESTIC_")}
    environment["RESTIC_PASSWORD"] = PASSWORD
    environment["RESTIC_REPOSITORY"] = str(location)
    return environment


def _restic(*arguments: str) -> list[str]:
    cache = Path(settings.DATA_DIR) / "backups" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    return [settings.CHATON.backups.restic, "--cache-dir", str(cache), *arguments]


def new_repository(location: Path) -> None:
    """Initialise a new restic repository at ``location`` (not timed)."""
    runner.run(_restic("init"), env=_restic_environment(location), secrets=[PASSWORD],
               timeout=120)


def plain_backup(data: DataSet, location: Path) -> float:
    """Back the data set up the plain way into a new repository; return the seconds taken.

    ``pg_dump | restic backup --stdin`` (a kernel pipe between the two), then
    ``restic backup DIR``. Raise RuntimeError when either fails.
    """
    new_repository(location)
    environment = _restic_environment(location)
    host = ["--host", "bench"]

    def back_up() -> None:
        result = runner.pipeline(
            pg_dump_command(data.database),
            _restic("backup", "--quiet", *host, "--stdin", "--stdin-filename", "shop.pgdump"),
            timeout=RESTIC_TIMEOUT, producer_env=data.database.environment(),
            consumer_env=environment, secrets=[PASSWORD])
        if result.producer.returncode or result.consumer.returncode:
            raise RuntimeError(f"plain database backup failed: {result.producer.stderr} "
                               f"{result.consumer.stderr}")
        runner.run(_restic("backup", "--quiet", *host, str(data.files)), env=environment,
                   secrets=[PASSWORD], timeout=RESTIC_TIMEOUT)

    _none, seconds = timed(back_up)
    return seconds


def chaton_backup(data: DataSet, location: Path, number: int) -> tuple[float, Any]:
    """Back the data set up with Chaton's plan into a new repository; return the seconds
    and the run. Raise RuntimeError when the run fails."""
    from chaton.backups import actions

    repository = actions.do_create_repository(
        f"bench-{number}", kind="local", location=str(location), password=PASSWORD,
        acting_user=None)
    actions.do_init_repository(repository, acting_user=None)
    plan = actions.do_create_plan(f"bench-{number}", repository, acting_user=None)
    actions.do_add_source(plan, "postgres", "shop", {
        "database": data.database.name, "host": data.database.host,
        "port": data.database.port, "user": data.database.user}, acting_user=None)
    actions.do_add_source(plan, "paths", "files", {"paths": [str(data.files)]},
                          acting_user=None)
    run, seconds = timed(lambda: actions.run_backup(plan, triggered_by="bench"))
    if not run.succeeded:
        raise RuntimeError(f"Chaton's backup failed: {run.error}")
    return seconds, run


def bench_backups(report: Report, workspace: Path) -> None:
    """Make the data set, time both ways twice (in both orders), then drill the database."""
    from chaton.backups import actions

    progress(f"filling a PostgreSQL database ({TABLES} tables of {ROWS_PER_TABLE} rows)")
    (server, database), fill_seconds = timed(lambda: make_database(workspace))
    try:
        progress(f"database filled in {fill_seconds:.0f} s; writing the files")
        files = workspace / "files"
        file_bytes, file_seconds = timed(lambda: make_files(files))
        data = DataSet(database=database, files=files, dump_bytes=database_size(database),
                       file_bytes=file_bytes)
        progress(f"files written in {file_seconds:.0f} s: database {data.dump_bytes / 1e6:.0f} "
                 f"MB on disk, files {data.file_bytes / 1e6:.0f} MB")
        plain_times: list[float] = []
        chaton_times: list[float] = []
        run = None
        for round_number in range(1, ROUNDS + 1):
            order = ("chaton", "plain") if round_number % 2 == 0 else ("plain", "chaton")
            for side in order:
                location = workspace / f"repository-{side}-{round_number}"
                progress(f"round {round_number}: {side} backup")
                # What the last step wrote reaches the disk now, not during the next timing.
                os.sync()
                if side == "plain":
                    plain_times.append(plain_backup(data, location))
                    shutil.rmtree(location, ignore_errors=True)
                else:
                    seconds, run = chaton_backup(data, location, round_number)
                    chaton_times.append(seconds)
                    progress(f"round {round_number}: chaton read "
                             f"{run.bytes_processed / 1e6:.0f} MB, added "
                             f"{run.bytes_added / 1e6:.0f} MB to its repository")
                progress(f"round {round_number}: {side} took "
                         f"{(plain_times if side == 'plain' else chaton_times)[-1]:.1f} s")
        chaton_seconds, plain_seconds = min(chaton_times), min(plain_times)
        report.figure("backup_chaton_s", chaton_seconds, "s", digits=1)
        report.figure("backup_plain_s", plain_seconds, "s", digits=1)
        ratio = chaton_seconds / plain_seconds
        report.figure("backup_overhead_ratio", ratio, "x", digits=2)

        progress("drilling the database source (restore into a throwaway PostgreSQL)")
        assert run is not None
        source = run.plan.sources.get(name="shop")
        drill, drill_seconds = timed(lambda: actions.run_drill(source, check=False))
        if not drill.passed:
            raise RuntimeError(f"the drill failed: {drill.drills[0].findings_text}")
        report.figure("drill_pg_1gb_s", drill_seconds, "s", digits=1)
        report.target("backup_overhead_ratio", ratio, TARGET_RATIO, "x")
    finally:
        server.stop()


def run_all(workspace: Path) -> int:
    """Given a workspace (Django set up on it), run the backups benchmark; return the exit
    status (1 when the target is missed)."""
    progress("creating the database")
    call_command("migrate", verbosity=0, interactive=False)
    # The throwaway servers run as the postgres user: it must reach the workspace.
    workspace.chmod(0o755)
    report = Report()
    bench_backups(report, workspace)
    if report.missed:
        progress("missed: " + ", ".join(report.missed))
        return 1
    return 0

