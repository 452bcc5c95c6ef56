"""GET /api/v1/events with many params__ filters, the filter limit, and the statement
timeout of the server's queries, on every store."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from api_helpers import assert_error, send
from conftest import Api, served
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from stepd.domain.events import format_event_id
from stepd.errors import QueryTimeout, StoreFull
from stepd.services.events import MAX_PARAM_FILTERS
from stepd.store import failures, open_store

N_EVENTS = 58  # the store of the report that found PostgreSQL's exponential plans
N_PARAMS = 80


def _params(i: int) -> dict[str, object]:
    """Event i's params: k0..k79 = v0..v79, except that every third event has one param
    changed (a different one each time), so that every filter excludes some event."""
    params: dict[str, object] = {f"k{j}": f"v{j}" for j in range(N_PARAMS)}
    if i % 3 == 1:
        params[f"k{(i * 7) % N_PARAMS}"] = "other"
    if i % 5 == 0:
        params["k3"] = 3 if i % 2 else "3"  # a number and its text compare as the same text
    return params


def _filters(n: int) -> dict[str, str]:
    return {f"params__k{j}": ("3" if j == 3 else f"v{j}") for j in range(n)}


def _matching(events: list[tuple[str, dict[str, object]]], n: int) -> list[str]:
    """The ids of `events` that `_filters(n)` selects, found by hand."""
    want = {key[len("params__") :]: value for key, value in _filters(n).items()}
    return [i for i, params in events if all(str(params[k]) == v for k, v in want.items())]


@pytest.fixture
def stored(api: Api) -> list[tuple[str, dict[str, object]]]:
    batch = [{"name": "wide", "params": _params(i)} for i in range(N_EVENTS)]
    batch += [{"name": "other", "params": _params(i)} for i in range(3)]  # same params, other name
    ids = send(api, *batch)
    return [(event_id, e["params"]) for event_id, e in zip(ids, batch, strict=True)]  # type: ignore[misc]


@pytest.mark.timeout(8)
@pytest.mark.parametrize("n", [40, 80])
def test_many_filters_answer_quickly_and_rightly(
    api: Api, stored: list[tuple[str, dict[str, object]]], n: int
) -> None:
    # The limit is a setting of the service; raised here to reach the store's plan itself.
    api.client.app.state.stepd.events.max_param_filters = N_PARAMS  # type: ignore[attr-defined]
    wide = [(i, p) for i, p in stored[:N_EVENTS]]
    expected = _matching(wide, n)
    assert 0 < len(expected) < N_EVENTS
    everywhere = _matching(stored, n)  # without a name: the other name's events too
    assert len(everywhere) > len(expected)

    def ids(**query: object) -> list[str]:
        response = api.client.get("/api/v1/events", params={**_filters(n), **query})  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return [e["_id"] for e in response.json()["result"]]

    assert ids(name="wide", limit=1000) == expected
    assert ids(name="wide", sort="-_id", limit=2) == expected[::-1][:2]
    assert ids(name="wide", skip=3, limit=4) == expected[3:7]
    assert ids(name="wide", state="NEW", limit=1000) == expected
    assert ids(name="wide", state="PROCESSED") == []
    assert ids(limit=1000) == everywhere
    assert ids(sort="-_id", limit=3) == everywhere[::-1][:3]
    assert ids(state="NEW", skip=1, limit=1000) == everywhere[1:]
    assert ids(name="wide", params__k1="nothing") == []


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_filters_still_find_the_right_events(
    api: Api, stored: list[tuple[str, dict[str, object]]], n: int
) -> None:
    expected = _matching(stored[:N_EVENTS], n)
    response = api.client.get(
        "/api/v1/events", params={"name": "wide", "limit": 1000, **_filters(n)}
    )
    assert [e["_id"] for e in response.json()["result"]] == expected


def test_more_filters_than_the_limit_is_a_400_naming_it(api: Api) -> None:
    send(api, {"name": "wide", "params": _params(0)})
    at_limit = api.client.get("/api/v1/events", params=_filters(MAX_PARAM_FILTERS))
    assert at_limit.status_code == 200, at_limit.text
    assert len(at_limit.json()["result"]) == 1
    for n in (MAX_PARAM_FILTERS + 1, N_PARAMS):
        response = api.client.get("/api/v1/events", params={"name": "wide", **_filters(n)})
        body = assert_error(response, 400, str(n), f"at most {MAX_PARAM_FILTERS}")
        assert body["field"] == "params"


# --------------------------------------------------------------------------- statement timeout

_SLOW = {
    "sqlite": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000)"
        " SELECT count(*) FROM c"
    ),
    "postgresql": "SELECT pg_sleep(5)",
}


@pytest.mark.timeout(20)
def test_a_read_past_the_statement_timeout_is_cancelled_and_the_store_goes_on(
    db_url: str,
) -> None:
    store = open_store(db_url, statement_timeout_seconds=0.2)
    try:
        with pytest.raises(QueryTimeout, match="statement timeout"), store.read() as conn:
            conn.execute(text(_SLOW[store.dialect]))
        for _ in range(3):  # the pooled connections still serve (and are not left bounded)
            with store.read() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        store.close()


@pytest.mark.timeout(30)
def test_sqlite_bounds_reads_only_never_a_write(tmp_path: Path) -> None:
    # A write holds the write lock and is bounded by the request limits instead: cutting it
    # short would only waste what it did. The same pooled connection serves both.
    store = open_store(f"sqlite:///{tmp_path / 'stepd.db'}", statement_timeout_seconds=0.05)
    try:
        count = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)"
            " SELECT count(*) FROM c"
        )
        with store.write() as conn:
            assert conn.execute(text(count)).scalar() == 2_000_000
        with pytest.raises(QueryTimeout), store.read() as conn:
            conn.execute(text(count))
    finally:
        store.close()


def _fill(db_url: str, n: int) -> None:
    """n events named `bulk` with params {a, b}, written straight into the store."""
    store = open_store(db_url, migrate=False)
    try:
        with store.write() as conn:
            if store.is_sqlite:
                numbers = (
                    "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n)"
                    " SELECT i FROM g"
                )
                now = "datetime('now')"
            else:
                numbers = "SELECT i FROM generate_series(1, :n) AS g(i)"
                now = "now()"
            conn.execute(
                text(
                    "INSERT INTO events (seq, name, params, state, created)"
                    f' SELECT i, \'bulk\', \'{{"a":"1","b":"2"}}\', \'NEW\', {now}'
                    f" FROM ({numbers}) AS s"
                ),
                {"n": n},
            )
            for key, value in (("a", "1"), ("b", "2")):
                conn.execute(
                    text(
                        "INSERT INTO event_params (name, key, value, event_seq)"
                        f" SELECT 'bulk', '{key}', '{value}', i FROM ({numbers}) AS s"
                    ),
                    {"n": n},
                )
    finally:
        store.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_serve_statement_timeout_answers_a_json_503(tmp_path: Path, store_kind: str) -> None:
    # The real CLI: --statement-timeout reaches the server's store. A query that reads the
    # whole store (params without a name) runs past 5 ms; the next request is served as usual.
    with served(
        store_kind, tmp_path, "--executor", "none", "--no-clock", "--statement-timeout", "0.005"
    ) as server:
        _fill(server.db_url, 60_000)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            slow = client.get(
                "/api/v1/events", params={"params__a": "1", "params__b": "no", "limit": 1}
            )
            body = assert_error(slow, 503, "statement timeout")
            assert body["error"] == "query_timeout"
            quick = client.get(f"/api/v1/events/{format_event_id(1)}")
            assert quick.status_code == 200, quick.text
            assert quick.json()["result"]["name"] == "bulk"
            health = client.get("/healthz")
            assert health.status_code == 200, health.text  # the server goes on serving
            assert health.json()["checks"]["store"]["status"] == "ok"


# --------------------------------------------------------------------------- the error mapping


def test_postgres_sqlstates_map_to_the_store_errors() -> None:
    # What psycopg raises for SQLSTATE 57014 (statement_timeout) and 53100 (disk_full),
    # bare and as SQLAlchemy wraps it.
    cancelled = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    full = psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device')
    for raised, kind in ((cancelled, QueryTimeout), (full, StoreFull)):
        assert isinstance(failures.classify(raised), kind)
        wrapped = OperationalError("INSERT ...", None, raised)
        mapped = failures.classify(wrapped)
        assert isinstance(mapped, kind)
        assert str(raised) in mapped.message
    assert "out of space" in failures.classify(full).message  # type: ignore[union-attr]
    assert failures.classify(psycopg.errors.UniqueViolation("dup")) is None
