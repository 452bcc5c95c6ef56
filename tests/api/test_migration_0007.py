"""Migration 0007 (semaphores.owner) on a store at 0006 that holds data, on every store:
the rows are kept, they have no owner, and such a semaphore is claimed like an auto one."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from conftest import fresh_database, make_token, serving
from sqlalchemy import inspect, text

from stepd.settings import Settings
from stepd.store import Store, open_store
from stepd.store.migrate import alembic_config, upgrade
from stepd.timeutil import utcnow


def columns(store: Store, table: str) -> set[str]:
    with store.read() as conn:
        return {c["name"] for c in inspect(conn).get_columns(table)}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_0007_adds_an_empty_owner_to_the_semaphores_of_a_0006_store(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        store = open_store(url, migrate=False)
        try:
            upgrade(store, "0006")
            assert "owner" not in columns(store, "semaphores")
            with store.write() as conn:
                conn.execute(
                    text(
                        "INSERT INTO semaphores (name, capacity, auto, updated) VALUES "
                        "('made-by-hand', 3, false, :now), ('made-on-use', 1, true, :now)"
                    ),
                    {"now": utcnow()},
                )
            upgrade(store)  # to head: 0007
            assert "owner" in columns(store, "semaphores")
            with store.read() as conn:
                rows = conn.execute(
                    text("SELECT name, capacity, auto, owner FROM semaphores ORDER BY name")
                ).all()
            assert [tuple(r) for r in rows] == [
                ("made-by-hand", 3, False, None),
                ("made-on-use", 1, True, None),
            ]

            # Through the API: an unowned semaphore nobody uses is claimed by its first setter.
            settings = Settings(
                database_url="unused://", reactor=False, clock=False, executor="none"
            )
            alice, bob = make_token(store, "alice"), make_token(store, "bob")
            with serving(settings, store) as client:
                put = client.put(
                    "/api/v1/semaphores/made-by-hand",
                    json={"capacity": 5},
                    headers={"Authorization": f"OAuth {alice}"},
                )
                assert put.status_code == 200, put.text
                assert put.json()["result"]["owner"] == "alice"
                refused = client.put(
                    "/api/v1/semaphores/made-by-hand",
                    json={"capacity": 0},
                    headers={"Authorization": f"OAuth {bob}"},
                )
                assert refused.status_code == 403, refused.text
                assert "belongs to alice" in refused.json()["message"]

            # And back: 0007's downgrade drops the column, keeping the rows.
            config = alembic_config()
            with store.write() as conn:
                config.attributes["connection"] = conn
                command.downgrade(config, "0006")
            assert "owner" not in columns(store, "semaphores")
            with store.read() as conn:
                assert conn.execute(text("SELECT count(*) FROM semaphores")).scalar() == 2
        finally:
            store.close()
