"""`stepd migrate`: the schema brought up once before servers start; a newer one refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import run_stepd as stepd
from sqlalchemy import text

from stepd.store import open_store
from stepd.store.migrate import head


@contextmanager
def schema_at(url: str, revision: str) -> Iterator[None]:
    """The store's recorded revision set to `revision`, restored after."""
    store = open_store(url, migrate=False)
    try:
        with store.write() as conn:
            was = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        try:
            yield
        finally:
            with store.write() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": was})
    finally:
        store.close()


def test_migrate_brings_a_new_database_to_head_once_and_check_says_so(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    behind = stepd("migrate", "--db", db, "--check")
    assert behind.returncode == 1, behind.stderr
    assert f"this stepd needs {head()}: run stepd migrate" in behind.stderr
    first = stepd("migrate", "--db", db)
    assert first.returncode == 0, first.stderr
    assert f"migrated the schema to {head()} (it was empty" in first.stderr
    again = stepd("migrate", "--db", db)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    ok = stepd("migrate", "--db", db, "--check")
    assert ok.returncode == 0 and "up to date" in ok.stderr, ok.stderr


def test_a_schema_newer_than_this_release_is_refused_by_migrate_serve_and_worker(
    db_url: str,
) -> None:
    with schema_at(db_url, "9999"):
        for args in (
            ("migrate", "--db", db_url),
            ("migrate", "--db", db_url, "--check"),
            ("serve", "--db", db_url, "--port", "0", "--executor", "none"),
            ("worker", "--db", db_url, "--executor", "local", "-c", "1"),
        ):
            done = stepd(*args)
            assert done.returncode == 1, (args, done.stderr[-2000:])
            assert "schema is at revision 9999, newer than this stepd knows" in done.stderr, (
                args,
                done.stderr[-2000:],
            )
