"""SQL kept by name in the event, lookup, metrics and reactor statements (issue 14): no
positional placeholder is left in their modules, a comment in a .sql file cannot shift a
statement's parameters, the SQLite writer's tuple rows are checked against their named
statements, and the per-length IN lists of the reactor's marks bind on both stores."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

import stepd
from stepd.domain.events import EventState
from stepd.store import Store, lookup, queries
from stepd.store import events as event_store

SRC = Path(stepd.__file__).parent
# Every module that talks to the database (the positional path of dbapi is gone).
MODULES = [
    "store/runs.py",
    "store/tasks.py",
    "store/dbapi.py",
    "store/sqlite.py",
    "store/postgres.py",
    "store/base.py",
    "store/migrate.py",
    "store/events.py",
    "store/lookup.py",
    "store/metrics.py",
    "store/writer.py",
    "store/event_descs.py",
    "store/configs.py",
    "store/tokens.py",
    "store/triggers.py",
    "store/backup.py",
    "store/engine.py",
    "store/checkpoint.py",
    "store/notify.py",
    "reactor/reactor.py",
]
# In a string that reads as SQL, `?` where a value goes (after =, a comma, an opening
# parenthesis, LIMIT, INTO...) or a psycopg `%s`: a statement bound by position.
SQL = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE|VALUES|WHERE|VACUUM)\b")
POSITIONAL = re.compile(r"(?:[=,(<>]|\b(?:LIMIT|OFFSET|INTO|IN|AND|BETWEEN))\s*\?|%s")
POSITIONAL_HELPERS = {"execute", "insert", "executemany", "placeholders", "_sql"}


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_no_statement_is_bound_by_position(module: str) -> None:
    tree = ast.parse((SRC / module).read_text())
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL.search(node.value)
        ):
            assert not POSITIONAL.search(node.value), (module, node.lineno, node.value)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            used = node.value.id == "dbapi" and node.attr in POSITIONAL_HELPERS
            assert not used, (module, node.lineno, node.attr)


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def test_no_comment_in_a_shipped_sql_file_names_a_parameter() -> None:
    """SQLAlchemy's compiler takes a `:name` in a comment for a parameter: the statement
    would then be handed one value more than it has places for."""
    folder = resources.files("stepd.store").joinpath("sql")
    for path in folder.iterdir():
        if not path.name.endswith(".sql"):
            continue
        for name, query in queries.load(path.name.removesuffix(".sql")).items():
            bare = queries.Query(name=f"{query.name}.bare", sql=_without_comments(query.sql))
            assert bare.compiled(True).order == query.compiled(True).order, (path.name, name)


def test_the_writers_tuple_rows_must_match_their_statement() -> None:
    q = queries.Query(name="demo.pair", sql="INSERT INTO t (a, b) VALUES (:a, :b)")
    assert event_store.sqlite_rows_sql(q, ("a", "b")) == "INSERT INTO t (a, b) VALUES (?, ?)"
    with pytest.raises(ValueError, match=r"demo.pair binds \('a', 'b'\)"):
        event_store.sqlite_rows_sql(q, ("b", "a"))


def test_marks_and_rejection_checks_over_more_seqs_than_one_in_list(store: Store) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    n = lookup.SEQ_CHUNK + 7  # two statement shapes: one full IN list, one of 7
    with store.write() as conn:
        seqs = event_store.insert_events(
            conn,
            [
                event_store.NewEvent(name="e", params={"i": str(i)}, created=created)
                for i in range(n)
            ],
        )
    skipped = seqs[3]
    marked = [s for s in seqs if s != skipped]
    with store.write() as conn:
        lookup.mark_processed(conn, marked, whole_range=False)
        assert lookup.count_new(conn, seqs[0], seqs[-1]) == 1
        assert not lookup.any_rejected(conn, seqs)
        assert event_store.set_state(conn, skipped, EventState.REJECTED)
        assert lookup.any_rejected(conn, seqs)
        assert not lookup.any_rejected(conn, marked)
        assert lookup.newest_processed(conn) == seqs[-1]
        lookup.mark_processed(conn, [skipped], whole_range=True)  # rejected stays rejected
        assert event_store.get_event(conn, skipped).state is EventState.REJECTED  # type: ignore[union-attr]
        assert lookup.config_generation(conn) >= 0


@pytest.mark.parametrize(
    ("sql", "bound"),
    [
        ("SELECT 1", ()),
        ("SELECT :a", (1,)),
        ("SELECT :a, :b, :a", (1, 2, 1)),
    ],
)
def test_a_query_binds_any_number_of_names_for_sqlite(sql: str, bound: tuple[int, ...]) -> None:
    q = queries.Query(name="demo.n", sql=sql)
    assert q.compiled(True) is q.compiled(True)  # compiled once, kept on the query
    assert q.compiled(True).bind({"a": 1, "b": 2}) == bound
    assert q == queries.Query(name="demo.n", sql=sql)  # what it compiled is not compared
