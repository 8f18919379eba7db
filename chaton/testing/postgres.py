"""A throwaway PostgreSQL 15 server for the tests: see :mod:`chaton.adapters.postgres`.

The class lives with the adapters, because backup drills start one at run
time to restore a dump into; this module keeps the tests' import path.
"""

from chaton.adapters.postgres import POSTGRES_BIN, SERVICE_USER, PostgresError, TemporaryPostgres

__all__ = ["POSTGRES_BIN", "SERVICE_USER", "PostgresError", "TemporaryPostgres"]
