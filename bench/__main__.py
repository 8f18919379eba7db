"""Chaton's benchmarks: ``.venv/bin/python -m bench`` (``make bench``).

Everything runs in a temporary directory that is removed at the end: a
SQLite database, two slapd servers of Chaton's own (ManagedSlapd) on free
loopback ports. The figures go to stdout, one line each::

    BENCH <name> <value> <unit>
    TARGET <name> <= <limit> <unit> met|MISSED

and progress to stderr. The exit status is 1 when a target is missed.

Figures:

``directory_sync_10k_s``, ``ldapadd_10k_s``, ``directory_sync_10k_ratio``
    The first full reconcile (``reconcile.sync_all()``) of 10,000 accounts and
    200 groups into an empty slapd, against ``ldapadd`` loading the same
    entries from one LDIF into another empty slapd (only the ldapadd command is
    timed). Target: ratio ≤ 1.5.
``directory_noop_10k_s``
    A full reconcile that finds nothing to change (median of 3). Target ≤ 1 s.
``ssh_keys_lookup_p99_ms`` (and ``_median_ms``)
    The whole ``chaton ssh-keys`` process, start to exit, for a tech member,
    as sshd runs it: SASL EXTERNAL on the ldapi socket, the way a managed
    slapd is reached. Target: p99 ≤ 100 ms.
``ssh_keys_simple_bind_p99_ms``
    The same lookup with a simple bind as the admin DN (whose password slapd
    keeps as an argon2 hash): what a remote directory costs. No target.
``governance_tally_1000x100_s``, ``governance_close_1000x100_s``
    The worker's settling of 1,000 open proposals with 100 voters each, when
    none is due (target ≤ 1 s) and when all close at once (:mod:`bench.governance`).

``services_noop_reconcile_20_s``, ``services_deploy_ready_s``
    A reconcile of 20 running instances with nothing to change (target ≤ 2 s),
    and an instance from its creation to its first HTTPS answer through Caddy,
    with a certificate from pebble (:mod:`bench.services`; a dockerd of its own).

``backup_overhead_ratio``, ``drill_pg_1gb_s``
    Chaton backing up a 1 GB database-and-files data set against plain
    ``pg_dump | restic backup --stdin`` and ``restic backup`` (target ≤ 1.10),
    and a drill of that database (:mod:`bench.backups`).

``probes_1000_cycle_s``
    One cycle of 1,000 probes (HTTPS with certificate checks, TCP, DNS, SMTP with
    STARTTLS) against local servers, 10 % of them too slow and 10 % failing
    (target ≤ 3 s; :mod:`bench.probes`).

``status_page_ms``, ``metrics_scrape_ms``, ``probe_storage_bytes_per_probe_day``
    The public status page of 50 services with 90 days of history (target ≤ 50 ms),
    a Prometheus scrape of 1,000 probes (target ≤ 200 ms), and the bytes a probe's
    roll-ups add per day (:mod:`bench.status`).

``mail_dns_apply_1000_s``
    1,000 record changes applied by RFC 2136 UPDATE with TSIG to a Knot of its own
    (target ≤ 2 s; :mod:`bench.mail_dns`).

``mail_diagnose_20_domains_s``
    20 mail domains diagnosed (records, SPF, DKIM against OpenDKIM, DMARC, MTA-STS, TLS,
    reverse DNS) against a Knot, a Postfix and an OpenDKIM of its own (target ≤ 3 s;
    :mod:`bench.mail_diagnosis`).

``stats_collect_30_s``
    One day's statistics collection over 30 instances whose APIs answer locally, with
    an access log of 30,000 requests (target ≤ 5 s; :mod:`bench.stats`).

``report_html_s``, ``report_pdf_s``
    The activity report of 2,000 members, 30 instances, 300 decisions and two years
    of daily samples, as HTML (target ≤ 2 s) and as PDF (target ≤ 10 s;
    :mod:`bench.reports`).

``python -m bench governance`` runs only the suites named (``directory``,
``governance``, ``services``, ``backups``, ``probes``, ``status``, ``mail_dns``,
``mail_diagnosis``, ``stats``, ``reports``); with no name, all of them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from importlib import import_module
from pathlib import Path

#: The suites, in the order they run: name → module with ``run_all(workspace) -> int``.
SUITES = {"directory": "bench.figures", "governance": "bench.governance",
          "services": "bench.services", "backups": "bench.backups", "probes": "bench.probes",
          "status": "bench.status", "mail_dns": "bench.mail_dns",
          "mail_diagnosis": "bench.mail_diagnosis", "stats": "bench.stats",
          "reports": "bench.reports"}


def _prepare_environment(workspace: Path) -> None:
    """Point Chaton at a throwaway data directory and configuration, before Django starts."""
    os.environ["CHATON_DATA_DIR"] = str(workspace / "data")
    os.environ["CHATON_LDAP_MANAGED"] = "false"
    # An empty chaton.toml: a developer's ./chaton.toml or $CHATON_CONFIG must not leak in.
    configuration = workspace / "chaton.toml"
    configuration.touch()
    os.environ["CHATON_CONFIG"] = str(configuration)
    os.environ.pop("CHATON_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "chaton.project.settings"


def main(names: list[str]) -> int:
    """Given suite names (none: every suite), run those benchmarks and print the figures;
    return 1 if a target is missed, 2 for an unknown suite, else 0."""
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        print(f"bench: unknown suite {', '.join(unknown)}; known: {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    # /tmp and a short name: slapd runs as openldap, which must reach its
    # directory, and the ldapi socket path must stay under 108 bytes.
    workspace = Path(tempfile.mkdtemp(prefix="chaton-bench-"))
    workspace.chmod(0o755)
    try:
        _prepare_environment(workspace)
        import django

        django.setup()
        status = 0
        for name in names or list(SUITES):
            status = max(status, import_module(SUITES[name]).run_all(workspace))
        return status
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
