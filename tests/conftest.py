"""Shared fixtures: a store on every backend, an app client, a live server in a subprocess.

PostgreSQL tests skip when the server is absent, except in CI (CI=true), where
they fail: a missing service must never turn into a green run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from stepd.api.app import build_context, create_app
from stepd.daemon import running
from stepd.settings import Settings
from stepd.store import Store, open_store
from stepd.store import tokens as token_store
from stepd.store.schema import metadata

PG_BASE_URL = os.environ.get("STEPD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_BASE_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def require_postgres() -> None:
    if _pg_available():
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is not reachable at {PG_BASE_URL} (CI must provide it)")
    pytest.skip(f"PostgreSQL is not reachable at {PG_BASE_URL}")


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A PostgreSQL schema migrated once per test session (search_path set in the URL)."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_BASE_URL else "?"
    url = f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    open_store(url).close()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


# The store's tables that hold a page (a row was ever written, kept or not), and the
# sequences that gave out a value, in the schema of the URL's search_path.
_WRITTEN_TABLES = text(
    "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace"
    " AND c.relkind = 'r' AND c.relname = ANY(:names) AND pg_relation_size(c.oid) > 0"
)
_USED_SEQUENCES = text(
    "SELECT sequencename FROM pg_sequences"
    " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
)


@pytest.fixture
def pg_url(pg_session_url: str) -> str:
    """The session's PostgreSQL schema, emptied: every test starts from a new database.

    Only the tables a test wrote to are truncated (a TRUNCATE costs ~8 ms a table, all of
    them 0.12 s a test, whether they hold rows or not): a table with no page was never
    written since its last TRUNCATE, so it is as new. Every sequence that gave out a value
    is restarted, as TRUNCATE ... RESTART IDENTITY would (an insert that failed may have
    drawn one without writing its table)."""
    names = [t.name for t in metadata.sorted_tables]
    engine = create_engine(pg_session_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        written = set(conn.execute(_WRITTEN_TABLES, {"names": names}).scalars())
        if written:
            tables = ", ".join(n for n in names if n in written)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for sequence in conn.execute(_USED_SEQUENCES).scalars().all():
            conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        conn.execute(text("INSERT INTO config_generation (id, generation) VALUES (1, 0)"))
    engine.dispose()
    return pg_session_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "stepd.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every contract test runs once per store backend."""
    if request.param == "sqlite":
        target = tmp_path / "stepd.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def make_token(store: Store, user: str, *, admin: bool = False) -> str:
    with store.write() as conn:
        return token_store.create_token(conn, user, is_admin=admin)


@dataclass
class Api:
    """A TestClient on an app, with a token for writes."""

    client: TestClient
    store: Store
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"OAuth {self.token}"}


@contextlib.contextmanager
def serving(
    settings: Settings,
    store: Store,
    *,
    daemon: bool = False,
    raise_server_exceptions: bool = False,
) -> Iterator[TestClient]:
    """The API on `store` in this process, assembled as `stepd serve` does (daemon.py): its
    services, and the daemon's loops around them if `daemon`; all closed after."""
    context = build_context(settings, store)
    try:
        with (
            running(context) if daemon else contextlib.nullcontext(),
            TestClient(
                create_app(context), raise_server_exceptions=raise_server_exceptions
            ) as client,
        ):
            yield client
    finally:
        context.close()


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    settings = Settings(database_url="unused://", reactor=False, clock=False, executor="none")
    with serving(settings, store) as client:
        yield Api(client=client, store=store, token=make_token(store, "robot-crypta"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextlib.contextmanager
def fresh_database(store: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database on `store`: an SQLite file in `tmp` or a PostgreSQL schema
    (dropped afterwards)."""
    if store == "sqlite":
        yield f"sqlite:///{tmp / 'stepd.db'}"
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_BASE_URL else "?"
    try:
        yield f"{PG_BASE_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextlib.contextmanager
def served(store: str, tmp: Path, *extra: str) -> Iterator[LiveServer]:
    """`stepd serve` (with `extra` options) on a fresh database on `store`."""
    with fresh_database(store, tmp) as db_url:
        server = start_server(db_url, tmp / "server.log", *extra)
        try:
            yield server
        finally:
            server.stop()


def server_token(server: LiveServer, user: str = "robot-crypta") -> str:
    """A write token for `user` in the server's store."""
    store = open_store(server.db_url)
    try:
        return make_token(store, user)
    finally:
        store.close()


def run_stepd(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real `stepd` command in a subprocess (`python -m stepd`), its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "stepd", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def start_server(db_url: str, log_path: Path, *extra: str) -> LiveServer:
    """`stepd serve` in a subprocess, returned once /healthz answers."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stepd",
            "serve",
            "--db",
            db_url,
            "--port",
            str(port),
            "--no-access-log",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stepd serve exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url=url, db_url=db_url, process=process, log_path=log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"stepd serve did not answer in 30 s: {log_path.read_text()}")


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(db_url, tmp_path / "server.log")
    yield server
    server.stop()
