"""Nothing outside src/stepd/store/ asks which database it is on (issue 14).

The store answers in capabilities and operations (`Store.writers_take_turns`,
`Store.reactor_lock`, `events.serialise_with_event_inserts`, ...); a dialect check anywhere
else would be a difference between the backends that the store's contract suite cannot
see. The scan reads the code (its syntax tree), not the comments and docstrings, which
may well explain what each backend does.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import stepd

SRC = Path(stepd.__file__).parent
STORE = SRC / "store"

# Attributes that tell the dialect: the Store's own, SQLAlchemy's, dbapi.Raw's.
DIALECT_ATTRIBUTES = {"is_sqlite", "dialect", "sqlite", "get_backend_name"}
# Read in a condition, these are a dialect check too; `Store.backend` is for reports only.
REPORT_ONLY_ATTRIBUTES = {"backend"}
DIALECT_NAMES = {"sqlite", "sqlite3", "postgresql", "postgres", "psycopg", "psycopg2"}
DRIVER_MODULES = {"sqlite3", "psycopg", "psycopg2", "psycopg_pool"}
# SQL only one of the databases speaks.
DIALECT_SQL = re.compile(r"\bPRAGMA\b|\bpg_[a-z_]+\s*\(|\bLOCK\s+TABLE\b|\bFOR\s+UPDATE\b", re.I)

# User-facing text that must name a database, each with its reason. (path, text it contains)
ALLOWED_TEXT = {
    (
        "settings.py",
        "SQLite PRAGMA synchronous",
    ): "STEPD_SQLITE_SYNCHRONOUS's help text: the setting is SQLite's own",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of `tree`'s module, classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


def _in_condition(tree: ast.AST) -> set[int]:
    """The ids of every node inside a comparison or a test (if, while, a conditional
    expression, assert, a match subject, a boolean operation)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        tests: list[ast.AST] = []
        if isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
            tests.append(node.test)
        elif isinstance(node, ast.Compare | ast.BoolOp):
            tests.append(node)
        elif isinstance(node, ast.Match):
            tests.append(node.subject)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        for test in tests:
            found.update(id(inner) for inner in ast.walk(test))
    return found


def dialect_checks(source: str, name: str = "<source>") -> list[str]:
    """Each dialect check in `source` (Python), as 'name:line: what'."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    conditions = _in_condition(tree)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{name}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in DIALECT_ATTRIBUTES:
                report(node, f".{node.attr}")
            elif node.attr in REPORT_ONLY_ATTRIBUTES and id(node) in conditions:
                report(node, f".{node.attr} in a condition")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                top = module.split(".")[0]
                if top in DRIVER_MODULES or module.startswith("sqlalchemy.dialects"):
                    report(node, f"import {module}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            text = node.value
            if text.strip().lower() in DIALECT_NAMES:
                report(node, f"the string {text!r}")
            elif DIALECT_SQL.search(text):
                allowed = any(name == path and part in text for path, part in ALLOWED_TEXT)
                if not allowed:
                    report(node, f"SQL of one dialect: {text[:60]!r}")
    return found


def test_no_module_outside_the_store_checks_the_dialect() -> None:
    problems: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(STORE):
            continue
        relative = path.relative_to(SRC).as_posix()
        problems += dialect_checks(path.read_text(encoding="utf-8"), relative)
    assert problems == [], "ask the store for a capability instead:\n" + "\n".join(problems)


def test_every_allowed_text_is_still_there() -> None:
    # An allowance no code needs any more would let the next such text in unseen.
    for path, part in ALLOWED_TEXT:
        assert part in (SRC / path).read_text(encoding="utf-8"), (path, part)


def test_the_scan_finds_each_kind_of_check() -> None:
    # The checks this codebase had before the store answered them (issue 14), one each.
    samples = {
        "if store.is_sqlite: pass": ".is_sqlite",
        "x = conn.dialect.name == 'postgresql'": ".dialect",
        "f(raw.sqlite)": ".sqlite",
        "y = 1 if store.backend == 'sqlite' else 2": ".backend in a condition",
        "import sqlite3": "import sqlite3",
        "from psycopg import errors": "import psycopg",
        "from sqlalchemy.dialects.postgresql import insert": "import sqlalchemy.dialects",
        "kind = 'postgres'": "the string 'postgres'",
        "conn.exec_driver_sql('SELECT pg_advisory_xact_lock(1)')": "SQL of one dialect",
        "conn.exec_driver_sql('PRAGMA synchronous')": "SQL of one dialect",
        "conn.exec_driver_sql('LOCK TABLE events IN SHARE MODE')": "SQL of one dialect",
    }
    for source, what in samples.items():
        found = dialect_checks(source)
        assert any(what in problem for problem in found), (source, found)


def test_the_scan_leaves_reports_docstrings_and_settings_alone() -> None:
    source = '''
def f(store, settings):
    """On SQLite the writer thread batches; on PostgreSQL each request commits (PRAGMA)."""
    body = {"store": store.backend}  # a report, not a decision
    open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    url = "sqlite:///./stepd.db"
    return store.writers_take_turns
'''
    assert dialect_checks(source) == []
