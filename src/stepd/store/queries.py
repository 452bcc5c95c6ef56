"""SQL kept by name: each statement is a `Query` with named parameters (`:task_id`), bound
by name, never by position.

The placeholders are translated by SQLAlchemy's compiler for the dialect of the
connection (qmark for sqlite3, pyformat for psycopg, with `%` escaped), once per query and
dialect, so the raw-cursor fast paths of `dbapi` keep their speed: a bound execution is a
tuple (SQLite) or the mapping itself (PostgreSQL) handed to the driver's cursor.

An area keeps its statements in `sql/<area>.sql`, each after a `-- name: <name>` line
(as procrastinate keeps `queries.sql`); `load(area)` reads them once. A statement built
from parts at run time (an IN list, a per-shape lookup) is a `Query` made in code, cached
by its shape.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

_DIALECTS: dict[bool, Dialect] = {
    True: sqlite.dialect(),
    False: postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
}
_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Compiled:
    """A query as one driver takes it: its SQL and, for positional paramstyles, which
    named parameter goes in each position."""

    sql: str
    order: tuple[str, ...] | None  # None: the driver binds by name (psycopg's pyformat)
    # operator.itemgetter of `order` (two names or more): the tuple made in C, 0.1 against
    # 0.5 us for a generator's (the reactor binds several statements per event)
    _take: Callable[[Mapping[str, object]], Any] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.order is not None and len(self.order) > 1:
            object.__setattr__(self, "_take", operator.itemgetter(*self.order))

    def bind(self, params: Mapping[str, object]) -> Any:
        """The parameters in the form the driver expects; a missing name is a KeyError
        that names it."""
        if self.order is None:
            return params
        if self._take is not None:
            return self._take(params)
        return tuple(params[name] for name in self.order)


@dataclass(frozen=True)
class Query:
    """One named statement with named parameters."""

    name: str  # what it does, e.g. "tasks.finish_attempt": the key in logs and tests
    sql: str  # with :name placeholders
    # compiled() by driver, kept on the query: a lookup here costs a third of the cache's
    # (whose key hashes the query), on statements the reactor runs per event
    _by_driver: dict[bool, Compiled] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def compiled(self, sqlite_driver: bool) -> Compiled:
        """The query for sqlite3 (True) or psycopg (False), compiled once."""
        found = self._by_driver.get(sqlite_driver)
        if found is None:
            found = self._by_driver[sqlite_driver] = _compile(self, sqlite_driver)
        return found

    @property
    def params(self) -> frozenset[str]:
        """The names it binds."""
        return frozenset(_compile(self, True).order or ())


@functools.cache
def _compile(query: Query, sqlite_driver: bool) -> Compiled:
    compiled = text(query.sql).compile(dialect=_DIALECTS[sqlite_driver])
    order = compiled.positiontup
    return Compiled(sql=compiled.string, order=None if order is None else tuple(order))


def parse(area: str, source: str) -> dict[str, Query]:
    """The named queries of one `.sql` file's text."""
    found: dict[str, Query] = {}
    marks = list(_NAME_LINE.finditer(source))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following is not None else len(source)
        body = source[mark.end() : end].strip().rstrip(";").strip()
        name = f"{area}.{mark.group(1)}"
        if name in found:
            raise ValueError(f"query {name} is defined twice")
        if not body:
            raise ValueError(f"query {name} has no statement")
        found[name] = Query(name=name, sql=body)
    return found


@functools.cache
def load(area: str) -> dict[str, Query]:
    """The named queries of `sql/<area>.sql`, by their short name (without the area)."""
    source = resources.files("stepd.store").joinpath("sql", f"{area}.sql").read_text()
    return {name.split(".", 1)[1]: q for name, q in parse(area, source).items()}
