"""The SQLite writer thread: submissions of one event-loop pass share a transaction.

The API suite sends one request at a time, so each group holds one job; these tests
put many jobs in one group and check that each still succeeds or fails on its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepd.domain.events import parse_event_id
from stepd.errors import Conflict, InvalidInput
from stepd.services.event_descs import DescCache, EventDescService
from stepd.services.events import EventBatch, EventService
from stepd.store import Store, open_store
from stepd.store.tokens import Principal
from stepd.store.writer import Writer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    yield s
    s.close()


@pytest.fixture
def service(store: Store) -> Iterator[EventService]:
    writer = Writer(store)
    descs = DescCache()
    svc = EventService(store, descs=descs, writer=writer)
    yield svc
    writer.close()


def _one(name: str = "e", **params: object) -> EventBatch:
    return EventBatch(events=[{"name": name, "params": params}])


def _stored(store: Store) -> list[tuple[int, str, str]]:
    path = store.engine.url.database
    assert path
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT seq, name, params FROM events ORDER BY seq"))


async def _all(service: EventService, batches: list[EventBatch]) -> list[object]:
    # gather starts every submission in the same loop pass: one group for the writer
    calls = [service.submit_async(b, author="robot") for b in batches]
    return await asyncio.gather(*calls, return_exceptions=True)


def test_a_group_of_submissions_gets_distinct_ids_in_order(
    service: EventService, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service.writer is not None
    sizes: list[int] = []
    write = service.writer._write

    def counted(jobs: list[Any]) -> None:
        sizes.append(len(jobs))
        write(jobs)

    monkeypatch.setattr(service.writer, "_write", counted)
    batches = [
        EventBatch(events=[{"name": "e", "params": {"i": i, "j": 0}}, {"name": "e", "params": {}}])
        for i in range(40)
    ]
    results = asyncio.run(_all(service, batches))
    ids = [i for r in results for i in r]  # type: ignore[attr-defined]
    seqs = [parse_event_id(i) for i in ids]
    assert seqs == sorted(seqs) and len(set(seqs)) == 80
    assert sizes == [40]  # one transaction for the whole pass
    rows = _stored(store)
    assert [r[0] for r in rows] == seqs
    assert rows[0][2] == '{"i":0,"j":0}'


def test_one_invalid_submission_fails_alone(service: EventService, store: Store) -> None:
    EventDescService(store, cache=service.descs).create(
        {"name": "described", "required_fields": ["date"]}, Principal(user="admin", is_admin=True)
    )
    batches = [_one(i=1), _one("described", other=1), _one(i=2)]
    results = asyncio.run(_all(service, batches))
    assert isinstance(results[1], InvalidInput)
    assert results[1].field == "events[0].params.date"
    assert [r[2] for r in _stored(store)] == ['{"i":1}', '{"i":2}']


def test_one_request_id_twice_in_a_group_stores_once(service: EventService, store: Store) -> None:
    same = EventBatch(events=[{"name": "e", "params": {"k": "v"}}], request_id="r-1")
    other = EventBatch(events=[{"name": "e", "params": {"k": "w"}}], request_id="r-1")
    results = asyncio.run(_all(service, [same, same, other]))
    assert results[0] == results[1]
    assert isinstance(results[2], Conflict)
    assert len(_stored(store)) == 1


def test_seqs_are_never_reused_after_the_newest_event_is_deleted(
    service: EventService, store: Store
) -> None:
    first = asyncio.run(_all(service, [_one(i=1), _one(i=2)]))
    path = store.engine.url.database
    assert path
    with sqlite3.connect(path) as conn:  # as AUTOINCREMENT promises, whoever deleted it
        conn.execute("DELETE FROM event_params")
        conn.execute("DELETE FROM events")
    again = asyncio.run(_all(service, [_one(i=3)]))
    assert parse_event_id(again[0][0]) == parse_event_id(first[1][0]) + 1  # type: ignore[index]
    # and the synchronous path (the clock, tests) continues from there
    (sync_id,) = service.submit(_one(i=4), author="robot")
    assert parse_event_id(sync_id) == parse_event_id(again[0][0]) + 1  # type: ignore[index,operator]
