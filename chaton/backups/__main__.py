"""``python -m chaton.backups ACTION NAME``: one backups job in a process of its own.

The worker starts these (see :mod:`chaton.backups.jobs`) so that its loop
never waits for a long backup:

- ``backup PLAN``: back the plan up, then apply its retention if the backup
  succeeded;
- ``drill PLAN``: drill a restore of every source, then check the repository;
- ``check REPOSITORY``: check the repository.

Exit status: 0 when it went well, 1 when the run failed (recorded in the
database), 2 when it could not start (an unknown plan, the plan already running).
"""

from __future__ import annotations

import logging
import sys


def main(arguments: list[str]) -> int:
    """Given ``[action, name]``, run the job and return the exit status."""
    from chaton.core.startup import setup_django

    if len(arguments) != 2 or arguments[0] not in {"backup", "drill", "check"}:
        print("usage: python -m chaton.backups {backup|drill|check} NAME", file=sys.stderr)
        return 2
    action, name = arguments
    setup_django()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from chaton.backups import queries, runs
    from chaton.core.errors import ChatonError

    try:
        if action == "backup":
            plan = queries.plan_by_name(name)
            run = runs.run_backup(plan, triggered_by="worker")
            print(f"backup {plan.name}: {run.outcome} {run.error}".strip(), flush=True)
            if not run.succeeded:
                return 1
            outcome = runs.apply_retention(plan, triggered_by="worker")
            assert outcome.run is not None
            print(f"retention {plan.name}: {outcome.run.outcome}, kept {outcome.kept_count}, "
                  f"removed {outcome.removed_count} {outcome.run.error}".strip(), flush=True)
            return 0 if outcome.run.succeeded else 1
        if action == "drill":
            plan = queries.plan_by_name(name)
            report = runs.run_drill(plan, triggered_by="worker")
            for drill in report.drills:
                print(f"drill {plan.name}/{drill.source_name}: {drill.outcome}", flush=True)
            return 0 if report.passed else 1
        repository = queries.repository_by_name(name)
        run = runs.check_repository(repository, acting_user=None, triggered_by="worker")
        print(f"check {repository.name}: {run.outcome} {run.error}".strip(), flush=True)
        return 0 if run.succeeded else 1
    except ChatonError as error:
        print(f"chaton.backups: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
