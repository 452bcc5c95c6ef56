"""Named queries (store/queries.py): parsed from sql/<area>.sql, bound by name, compiled by
SQLAlchemy for each driver; and every shipped query compiles for both."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import pytest

from stepd.store import dbapi, queries
from stepd.store.engine import Store


def test_a_sql_file_gives_one_query_per_name_line() -> None:
    found = queries.parse(
        "demo",
        "-- a comment\n-- name: one\nSELECT :a;\n\n-- name: two\n-- why\nUPDATE t SET x = :x\n",
    )
    assert sorted(found) == ["demo.one", "demo.two"]
    assert found["demo.one"].sql == "SELECT :a"
    assert found["demo.two"].params == frozenset({"x"})


def test_a_name_given_twice_or_without_a_statement_is_refused() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        queries.parse("demo", "-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError, match="no statement"):
        queries.parse("demo", "-- name: a\n\n-- name: b\nSELECT 1\n")


def test_placeholders_are_the_drivers_own_and_bound_by_name() -> None:
    q = queries.Query(name="demo.q", sql="SELECT x FROM t WHERE a = :a AND b LIKE 'p%' OR c = :a")
    lite, pg = q.compiled(True), q.compiled(False)
    assert lite.sql == "SELECT x FROM t WHERE a = ? AND b LIKE 'p%' OR c = ?"
    assert lite.bind({"a": 1}) == (1, 1)
    assert pg.sql == "SELECT x FROM t WHERE a = %s AND b LIKE 'p%%' OR c = %s"
    assert pg.bind({"a": 1}) == (1, 1)
    with pytest.raises(KeyError, match="a"):
        lite.bind({"b": 2})


def test_one_name_or_none_binds_a_tuple_for_sqlite() -> None:
    one = queries.Query(name="demo.one", sql="SELECT :a").compiled(True)
    none = queries.Query(name="demo.none", sql="SELECT 1").compiled(True)
    assert one.bind({"a": 1, "b": 2}) == (1,)
    assert none.bind({}) == ()
    with pytest.raises(KeyError, match="a"):
        one.bind({})


def test_every_shipped_query_compiles_for_both_drivers() -> None:
    folder = resources.files("stepd.store").joinpath("sql")
    areas = sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))
    assert areas, "no sql/*.sql shipped"
    for area in areas:
        loaded = queries.load(area)
        assert loaded, area
        for query in loaded.values():
            assert "?" not in query.compiled(False).sql, query.name


def test_a_named_insert_runs_on_the_drivers_cursor_and_returns_its_id(store: Store) -> None:
    insert = queries.Query(
        name="demo.token",
        sql='INSERT INTO tokens (token_hash, "user", is_admin, created, revoked)'
        " VALUES (:hash, :user, :admin, :created, :revoked)",
    )
    read = queries.Query(name="demo.read", sql='SELECT "user" FROM tokens WHERE id = :id')
    with store.write() as conn:
        now = dbapi.time_param(conn, datetime.now(UTC))
        row = {"hash": "h1", "user": "u", "admin": False, "created": now, "revoked": False}
        first = dbapi.run_insert(conn, insert, row)
        assert first is not None
        assert dbapi.run(conn, read, {"id": first}).fetchone()[0] == "u"
