"""A store out of space: writes answer 507 store_full, /healthz says so, until a write
commits again. SQLite on a real full filesystem (a small tmpfs), PostgreSQL through a real
SQLSTATE 53100 raised by the server."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import all_events, assert_error, post_events
from conftest import Api, make_token, serving
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import text

from stepd.settings import Settings
from stepd.store import Store, open_store

BIG = "x" * 150  # a param value just under the index's hashing length


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` mounted at `where` (True), or False where mounting is refused."""
    where.mkdir()
    mounted = (
        shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def _limit_pages(store: Store) -> Callable[[], None]:
    """The fallback where mounting is refused: each connection may grow the file by a
    few pages only (SQLite then raises SQLITE_FULL, as on a full disk). Returns the way
    to lift the limit."""
    extra = [40]

    @sa_event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn: Any, _record: object) -> None:
        cursor = dbapi_conn.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages + extra[0]}")
        cursor.close()

    store.engine.dispose()

    def lift() -> None:
        extra[0] = 1_000_000
        store.engine.dispose()

    return lift


def _batch(i: int) -> list[dict[str, object]]:
    return [{"name": "fill", "params": {"i": i, "j": j, "v": BIG}} for j in range(50)]


def _fill_until_full(
    client: TestClient, headers: dict[str, str], first: int = 0, most: int = 2000
) -> tuple[list[int], Any]:
    """Batches `first`, `first + 1`, ... until one is refused: (the accepted, the refusal)."""
    accepted: list[int] = []
    for i in range(first, first + most):
        body = {"events": _batch(i), "request_id": f"fill-{i}"}
        response = client.post("/api/v1/events", json=body, headers=headers)
        if response.status_code != 200:
            return accepted, response
        accepted.append(i)
    raise AssertionError(f"the store never filled up in {most} batches")


@pytest.mark.timeout(120)
def test_sqlite_full_disk_is_a_507_and_healthz_reports_it(
    tmp_path: Path, sqlite_template: Path
) -> None:
    with small_filesystem(tmp_path / "small", "3m") as mounted:
        db = tmp_path / "small" / "stepd.db"
        shutil.copyfile(sqlite_template, db)
        store = open_store(f"sqlite:///{db}")
        ballast = tmp_path / "small" / "ballast"
        lift: Callable[[], None] = ballast.unlink
        if mounted:
            # Leave about 600 KB: the database and its log fill the rest.
            free = shutil.disk_usage(db.parent).free
            ballast.write_bytes(b"\0" * max(0, free - 600_000))
        else:
            lift = _limit_pages(store)
        settings = Settings(database_url="unused://", reactor=False, clock=False, executor="none")
        with serving(settings, store) as client:
            headers = {"Authorization": f"OAuth {make_token(store, 'robot-crypta')}"}
            before = client.get("/healthz").json()
            assert before["checks"]["store"]["status"] == "ok", before
            if mounted:  # 600 KB free of 3 MB: the disk check sees it coming
                assert before["status"] == "degraded", before
                assert "nearly full" in before["checks"]["disk"]["message"]
            accepted, refused = _fill_until_full(client, headers)
            assert accepted
            body = assert_error(refused, 507, "out of space")
            assert body["error"] == "store_full"
            # The refused batch stored nothing; every accepted one is whole.
            stored = client.get("/api/v1/events", params={"name": "fill", "limit": 1000})
            assert stored.status_code == 200
            health = client.get("/healthz")
            assert health.status_code == 503, health.text
            body = health.json()
            assert body["status"] == "down" and body["store"] == "sqlite"
            assert body["problem"] == "out of space"
            assert body["message"] == (
                "the store is out of space: writes fail until space is freed"
            )
            assert body["checks"]["store"]["status"] == "down"
            assert "free space" in body["checks"]["store"]["remedy"]
            # Still full: refused again, still down. The checkpointer may meanwhile have
            # copied the log into the database and let the log's start be reused, which
            # makes room for a few batches more; the store must fill up again within a few.
            more, again = _fill_until_full(client, headers, first=5000, most=20)
            accepted += more
            assert_error(again, 507, "out of space")
            assert client.get("/healthz").status_code == 503
            # A retry of a stored batch is answered from the store (it writes nothing):
            # still degraded.
            retry = client.post(
                "/api/v1/events",
                json={"events": _batch(0), "request_id": "fill-0"},
                headers=headers,
            )
            assert retry.status_code == 200, retry.text
            assert client.get("/healthz").status_code == 503
            # Space freed: the next write commits and the store is healthy again.
            lift()
            ok = client.post("/api/v1/events", json={"events": _batch(10_000)}, headers=headers)
            assert ok.status_code == 200, ok.text
            answer = client.get("/healthz")
            healthy = answer.json()
            assert answer.status_code == 200 and healthy["store"] == "sqlite", healthy
            assert healthy["checks"]["store"]["status"] == "ok", healthy
            assert healthy["status"] != "down" and "problem" not in healthy
            counted = client.get(
                "/api/v1/events", params={"name": "fill", "params__j": "0", "limit": 1000}
            ).json()["result"]
            assert sorted(e["params"]["i"] for e in counted) == [*accepted, 10_000]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_disk_full_is_a_507_and_healthz_reports_it(api: Api) -> None:
    # PostgreSQL says SQLSTATE 53100 (disk_full) when it cannot extend a file. A trigger
    # raises exactly that from the server, so the error comes through psycopg and
    # SQLAlchemy as a real one would.
    before = post_events(api, {"name": "e", "params": {"a": 0}}, request_id="before")
    assert before.status_code == 200, before.text
    with api.store.write() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION stepd_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'"
                " USING ERRCODE = 'disk_full'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER stepd_test_disk_full BEFORE INSERT ON events"
                " FOR EACH ROW EXECUTE FUNCTION stepd_test_disk_full()"
            )
        )
    try:
        refused = post_events(api, {"name": "e", "params": {"a": 1}})
        body = assert_error(refused, 507, "out of space", "No space left on device")
        assert body["error"] == "store_full"
        health = api.client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["problem"] == "out of space"
        assert health.json()["store"] == "postgresql"
    finally:
        # Through a store of its own: a write on the API's store would clear its problem.
        other = open_store(api.store.url, migrate=False)
        try:
            with other.write() as conn:
                conn.execute(text("DROP TRIGGER stepd_test_disk_full ON events"))
                conn.execute(text("DROP FUNCTION stepd_test_disk_full()"))
        finally:
            other.close()
    assert [e["params"] for e in all_events(api)] == [{"a": 0}]  # nothing half-written
    assert api.client.get("/healthz").status_code == 503  # until a write commits
    retry = post_events(api, {"name": "e", "params": {"a": 0}}, request_id="before")
    assert retry.json() == before.json()  # answered from the store, nothing written
    assert api.client.get("/healthz").status_code == 503
    ok = post_events(api, {"name": "e", "params": {"a": 1}})
    assert ok.status_code == 200, ok.text
    healthy = api.client.get("/healthz").json()
    assert (healthy["status"], healthy["store"]) == ("ok", "postgresql"), healthy
    assert "problem" not in healthy and healthy["checks"]["store"]["status"] == "ok"
