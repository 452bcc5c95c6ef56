"""What the fuzz suites share: an app on a store, a token, and the store's row counts
(the fingerprint that shows whether a refused request wrote anything)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from stepd.api.app import build_context, create_app
from stepd.settings import Settings
from stepd.store import Store, open_store
from stepd.store.schema import metadata


def make_app(store: Store) -> FastAPI:
    """The API on `store`, as `stepd serve` builds it, minus the processes: no reactor, no
    clock, no runner (they would write on their own and blur what a request wrote)."""
    settings = Settings(database_url="unused://", reactor=False, clock=False, executor="none")
    return create_app(build_context(settings, store))


def template_app() -> FastAPI:
    """An app to read the served document from (it is the same on every store), on a
    throwaway SQLite file removed at exit."""
    folder = tempfile.mkdtemp(prefix="stepd-fuzz-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return make_app(open_store(f"sqlite:///{Path(folder) / 'stepd.db'}"))


def row_counts(store: Store) -> dict[str, int]:
    """Rows per table, in one query: equal before and after a refused request."""
    tables = metadata.sorted_tables
    query = select(
        *(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables)
    )
    with store.read() as conn:
        row = conn.execute(query).one()
    return dict(row._mapping)


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {t: (before[t], after[t]) for t in before if before[t] != after[t]}


def error_message(response: httpx.Response | Any) -> str | None:
    """The `message` of a JSON error answer, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) and message else None


def tell(config: pytest.Config, line: str) -> None:
    """Show `line` in the test run's output even when output is captured (the figures)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)
