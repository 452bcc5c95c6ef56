"""Which database errors are the database's, and which are the values': for the reactor.

The reactor records a firing that cannot be written as an error on its trigger and goes
on with the batch; but an error of the database itself (the connection, a lock, a full
disk) says nothing about the firing, and must fail the batch, to be retried whole. The
drivers follow PEP 249, whose classes make the split: `OperationalError`,
`InterfaceError` and `InternalError` are the database's; `DataError`, `IntegrityError`
and the rest are a statement's values (a number out of range, a string too long).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy.exc

from stepd.store.dbapi import Raw

_TRANSIENT: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    sqlite3.InternalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.InternalError,
    sqlalchemy.exc.DisconnectionError,
)
_VALUES: tuple[type[BaseException], ...] = ()  # transient classes that are a statement's fault
_INERROR: Any = None

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
except ImportError:  # SQLite only: the `postgres` extra is not installed
    pass
else:
    _TRANSIENT += (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError)
    # A statement cancelled by the statement timeout: it would time out again, so it is
    # the statement's (its values make it slow), not the database's.
    _VALUES = (pg_errors.QueryCanceled,)
    _INERROR = TransactionStatus.INERROR


def is_transient(exc: BaseException) -> bool:
    """True for an error of the database itself, which retrying the batch may cure."""
    return isinstance(exc, _TRANSIENT) and not isinstance(exc, _VALUES)


def transaction_failed(conn: Raw) -> bool:
    """True when the transaction on `conn` can run no more statements: on PostgreSQL,
    after any statement failed in it.

    SQLite undoes only the failed statement; the errors after which it rolls the whole
    transaction back (a full disk, a busy database) are transient ones.
    """
    if conn.sqlite or _INERROR is None:
        return False
    return bool(conn.driver.info.transaction_status == _INERROR)
