"""Opening a store: the backend chosen by the URL's scheme, in this one place.

`open_store` picks SqliteStore (store/sqlite.py) or PostgresStore (store/postgres.py), both
a Store (store/base.py), and brings the schema up to date. Dialect differences live in
store/ and nowhere else: callers ask the Store for what they need (a capability such as
`writers_take_turns`, an operation such as `reactor_lock`), never which database it is on;
tests/store/test_no_dialect_outside_store.py keeps it so.

The names that modules and tests have always imported from here stay importable.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from stepd.errors import InvalidInput, StoreUnavailable
from stepd.store.base import Store
from stepd.store.postgres import REACTOR_LOCK, PostgresStore
from stepd.store.sqlite import SqliteStore, create_private, read_deadline

# The backends, by SQLAlchemy's backend name of the (normalised) URL's scheme.
BACKENDS: dict[str, type[SqliteStore] | type[PostgresStore]] = {
    "sqlite": SqliteStore,
    "postgresql": PostgresStore,
}
# The schemes a URL may start with, for the error naming them.
SCHEMES = ("sqlite", "postgresql", "postgres")


def normalize_url(url: str) -> str:
    """Pick our drivers: `postgresql://` means psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def backend_of(url: str) -> str:
    """The name of the database a URL names ("sqlite", "postgresql"), as Store.backend."""
    try:
        return make_url(normalize_url(url)).get_backend_name()
    except Exception:
        return "unknown"


def open_store(
    url: str,
    *,
    migrate: bool = True,
    sqlite_synchronous: str = "NORMAL",
    statement_timeout_seconds: float | None = None,
    create: bool = True,
) -> Store:
    """Open the database at `url`, bringing its schema up to date unless told not to.

    `create=False`: an SQLite file that does not exist is StoreUnavailable rather than
    a new empty database (for commands that only look, such as `stepd doctor`).

    `statement_timeout_seconds` (the API server's): cancel any statement (PostgreSQL)
    or read (SQLite) that runs longer; the migration itself is not bounded.
    """
    if statement_timeout_seconds is not None and not statement_timeout_seconds > 0:
        raise InvalidInput(
            f"the statement timeout must be a positive number of seconds, "
            f"not {statement_timeout_seconds!r}"
        )
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"not a database URL: {url!r} ({exc})") from exc
    backend = BACKENDS.get(parsed.get_backend_name())
    if backend is None:
        raise InvalidInput(
            f"unsupported database {parsed.get_backend_name()!r}: the schemes are "
            f"{', '.join(s + '://' for s in SCHEMES)}; "
            "use sqlite:///PATH or postgresql://HOST/DB"
        )
    path = parsed.database if backend is SqliteStore else None
    if not create and path and path != ":memory:" and not Path(path).exists():
        raise StoreUnavailable(f"there is no database at {path}")
    store = backend.open(
        url,
        parsed,
        sqlite_synchronous=sqlite_synchronous,
        statement_timeout_seconds=statement_timeout_seconds,
    )
    if migrate:
        from stepd.store.migrate import upgrade

        upgrade(store)
    if statement_timeout_seconds is not None:
        store.bound_statements(statement_timeout_seconds)
    return store


__all__ = [
    "BACKENDS",
    "REACTOR_LOCK",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "create_private",
    "normalize_url",
    "open_store",
    "read_deadline",
]
