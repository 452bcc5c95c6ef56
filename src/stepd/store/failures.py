"""What a driver error says about the store itself: out of space, or a cancelled statement.

Both stores report the same two conditions with their own codes; this is the one place
that reads them, so the API answers 507 or 503 with a JSON body instead of a 500.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from stepd.errors import QueryTimeout, StoreFull, StoreUnavailable

PG_DISK_FULL = "53100"  # SQLSTATE disk_full
PG_QUERY_CANCELED = "57014"  # SQLSTATE query_canceled: statement_timeout (or a cancel)

OUT_OF_SPACE = "out of space"
# What the drivers raise, wrapped by SQLAlchemy or not (the raw-cursor paths): what
# `classify` reads.
DRIVER_ERRORS: tuple[type[Exception], ...] = (DBAPIError, sqlite3.Error)
try:  # the postgres extra: its raw cursors (store/dbapi.py) raise psycopg's own errors
    import psycopg

    DRIVER_ERRORS = (*DRIVER_ERRORS, psycopg.Error)
except ImportError:  # pragma: no cover - installed without PostgreSQL support
    pass


def classify(exc: BaseException) -> StoreUnavailable | None:
    """The StepdError that `exc` (a driver error, raw or wrapped by SQLAlchemy) stands for,
    or None when it is some other failure."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return _full(str(orig))
        if code == sqlite3.SQLITE_INTERRUPT:
            return _timeout(str(orig))
        return None
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == PG_DISK_FULL:
        return _full(str(orig).strip())
    if sqlstate == PG_QUERY_CANCELED:
        return _timeout(str(orig).strip())
    return None


def _full(detail: str) -> StoreFull:
    return StoreFull(
        f"the store is {OUT_OF_SPACE}: nothing was written ({detail}); "
        "free disk space on the database server, then retry"
    )


def _timeout(detail: str) -> QueryTimeout:
    return QueryTimeout(
        f"the query took longer than the server's statement timeout and was cancelled "
        f"({detail}); narrow it (a name, a rarer params__ filter, a smaller skip) and retry"
    )
