"""A hypothesis fuzzer of `POST /api/v1/events` bodies (issue 9, "Tests that stay in CI").

Every generated body goes to an app on SQLite and to one on PostgreSQL. Whatever it
holds (nasty names, params with odd scalars, integers beyond 64 bits or 4,300 digits,
NUL bytes, lone surrogates, deep nesting, wrong types, request_ids used before), each
store answers a 2xx or a 4xx JSON error with a message, never a 5xx; both stores answer
alike (the same input is accepted by both or refused by both); a refused batch stores
nothing; an accepted one stores each of its events once, as sent; and a request_id seen
before stores nothing new and, with the same body, answers the first call's ids.
"""

from __future__ import annotations

import functools
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import make_token
from fastapi.testclient import TestClient
from fuzz_helpers import changed, error_message, make_app, row_counts, tell
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from stepd.store import Store, open_store

pytestmark = pytest.mark.fuzz
EXAMPLES = 200  # each up to 3 bodies, each posted to both stores (once or twice)
STORES = ("sqlite", "postgres")
# Strings the serializer replaces with JSON that Python objects cannot carry (json.dumps
# would recurse too deep, hypothesis could not print an int of thousands of digits).
RAW = "\x00raw:"

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",  # a lone surrogate: valid JSON (\ud800), not valid UTF-8
    "\u202e",
    "\ufeff",
    "é" * 201,
    "x" * 1001,
    "../../etc/passwd",
    "'; DROP TABLE events; --",
    "{{ 7*7 }}",
    "%s%n",
    "\n\r\t",
    "🙂",
    "__proto__",
]
POOL = ("dup-1", "dup-2", "dup-3")  # request_ids the bodies of one example share
HUGE_INTS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**300)]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of `choices`, each drawn in proportion to its weight (`st.one_of` flattens nested
    one_ofs into equal branches, which would let the odd cases swamp the valid ones)."""
    total = sum(w for w, _ in choices)

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        n = draw(st.integers(0, total - 1))
        for w, strategy in choices:
            if n < w:
                return draw(strategy)
            n -= w
        raise AssertionError("unreachable")

    return pick()


@functools.cache  # built once: building a strategy costs more than drawing from it
def texts() -> st.SearchStrategy[str]:
    return weighted((1, st.sampled_from(NASTY_TEXT)), (1, st.text(max_size=30)))


@functools.cache
def scalars() -> st.SearchStrategy[object]:
    return weighted(
        (1, st.none()),
        (1, st.booleans()),
        (2, st.integers()),
        (1, st.sampled_from(HUGE_INTS)),
        (1, st.floats(allow_nan=True, allow_infinity=True)),
        (2, st.sampled_from(["2019-01-01", "SUCCESS", "hahn", "1", "true"])),
        (2, texts()),
    )


@functools.cache
def values() -> st.SearchStrategy[object]:
    """What a param's value may be: mostly scalars, sometimes what a param may not hold."""
    nested = st.recursive(
        scalars(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts(), inner, max_size=3),
        max_leaves=6,
    )
    raw = st.builds(
        lambda kind, n: f"{RAW}{kind}:{n}",
        st.sampled_from(["deep-list", "deep-object", "digits", "-digits"]),
        st.integers(min_value=300, max_value=6000),
    )
    return weighted((6, scalars()), (1, nested), (1, raw))


@functools.cache
def keys() -> st.SearchStrategy[str]:
    """Param keys: mostly valid ones, so that a batch gets past the key check to its values."""
    valid = st.sampled_from(["date", "k", "cluster", "x.y", "a-b", "taskStatus"]) | st.text(
        alphabet="abcXYZ019_.-:", min_size=1, max_size=12
    )
    return weighted((6, valid), (1, texts()))


@functools.cache
def events() -> st.SearchStrategy[object]:
    names = st.sampled_from(["fuzz", "fuzz.other", "cryptaTaskEvent", "a:b-c_d"])
    good = st.fixed_dictionaries(
        {"name": names},
        optional={"params": st.dictionaries(keys(), scalars(), max_size=5)},
    )
    return weighted(
        (12, good),
        (1, st.fixed_dictionaries({"name": texts(), "params": st.dictionaries(keys(), values())})),
        (1, st.fixed_dictionaries({"name": names, "params": st.dictionaries(keys(), values())})),
        (1, st.fixed_dictionaries({"name": scalars(), "params": values()})),
        (1, st.dictionaries(texts(), values(), max_size=3)),  # unknown fields, no name
        (1, values()),  # not an object at all
    )


@functools.cache
def _body_fields() -> tuple[st.SearchStrategy[Any], list[tuple[str, st.SearchStrategy[Any]]]]:
    """The strategies of a batch's `events` and of its optional fields, built once."""
    listed = st.lists(events(), max_size=6)
    return weighted((12, listed), (1, values())), [
        # A small pool of request_ids, so that examples reuse each other's.
        (
            "request_id",
            weighted(
                (3, st.sampled_from(["dup-1", "dup-2", "dup-3"])), (2, texts()), (1, values())
            ),
        ),
        ("source_type", weighted((3, texts()), (1, values()))),
        ("source", weighted((3, texts()), (1, values()))),
    ]


@st.composite
def bodies(draw: st.DrawFn) -> object:
    """A request body (before serialization): mostly a batch, sometimes anything at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(values())  # not a batch at all
    events_field, fields = _body_fields()
    batch: dict[str, object] = {"events": draw(events_field)}
    for key, strategy in fields:
        if draw(st.integers(0, 2)) == 0:
            batch[key] = draw(strategy)
    if draw(st.integers(0, 19)) == 0:
        batch[draw(texts())] = draw(values())  # a field the API does not know
    return batch


def _raw(kind: str, n: int) -> str:
    if kind == "deep-list":
        return "[" * n + "]" * n
    if kind == "deep-object":
        return '{"a":' * n + "1" + "}" * n
    return ("-" if kind == "-digits" else "") + "9" * n  # an integer of n digits


def serialize(body: object) -> bytes:
    """JSON text of `body`, with NaN/Infinity as Python writes them (not JSON: they must be
    refused) and each RAW marker replaced by the JSON it names."""
    text = json.dumps(body, allow_nan=True)
    marker = json.dumps(RAW)[1:-1]
    while (start := text.find(marker)) != -1:
        end = text.index('"', start)
        kind, n = text[start + len(marker) : end].split(":")
        text = text[: start - 1] + _raw(kind, int(n)) + text[end + 1 :]
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Side:
    """One store, its app, and what its request_ids were first answered with."""

    name: str
    store: Store
    client: TestClient
    token: str
    seen: dict[str, tuple[bytes, list[str]]] = field(default_factory=dict)


@pytest.fixture
def sides(tmp_path: Path, sqlite_template: Path, pg_url: str) -> Iterator[dict[str, Side]]:
    target = tmp_path / "stepd.db"
    shutil.copyfile(sqlite_template, target)
    found: dict[str, Side] = {}
    clients = []
    for name, url in (("sqlite", f"sqlite:///{target}"), ("postgres", pg_url)):
        store = open_store(url)
        client = TestClient(make_app(store), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        found[name] = Side(
            name=name, store=store, client=client, token=make_token(store, "robot-fuzz")
        )
    yield found
    for client in clients:
        client.__exit__(None, None, None)


def _stored(side: Side, ids: list[str]) -> list[dict[str, Any]]:
    got = []
    for event_id in ids:
        response = side.client.get(f"/api/v1/events/{event_id}")
        assert response.status_code == 200, response.text
        got.append(response.json()["result"])
    return got


SENT: Counter[str] = Counter()  # bodies posted, per store


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tell(request.config, f"POST /api/v1/events bodies per store: {dict(SENT)}")


def _post(side: Side, raw: bytes) -> tuple[int, Any, dict[str, tuple[int, int]]]:
    SENT[side.name] += 1
    before = row_counts(side.store)
    response = side.client.post(
        "/api/v1/events",
        content=raw,
        headers={"Authorization": f"OAuth {side.token}", "Content-Type": "application/json"},
    )
    wrote = changed(before, row_counts(side.store))
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert error_message(response), (
            f"{response.status_code} without a message: {response.text[:300]}"
        )
        assert not wrote, f"a refused batch ({response.status_code}) wrote {wrote}"
    return response.status_code, response.json(), wrote


def _check_accepted(
    side: Side, body: object, raw: bytes, answer: Any, wrote: dict[str, tuple[int, int]]
) -> None:
    ids = answer["ids"]
    assert isinstance(body, dict)
    request_id = body.get("request_id")
    if isinstance(request_id, str) and request_id in side.seen:
        _, first_ids = side.seen[request_id]
        assert not wrote, f"request_id {request_id!r} again stored {wrote}"
        assert ids == first_ids, (
            f"request_id {request_id!r} again answered {ids}, first {first_ids}"
        )
        return
    sent = body["events"]
    assert isinstance(sent, list) and len(ids) == len(sent) == len(set(ids))
    grew = {table: after - before for table, (before, after) in wrote.items()}
    assert grew.get("events", 0) == len(sent), (side.name, grew)
    others = {
        t: n for t, n in grew.items() if t not in {"events", "event_params", "event_requests"}
    }
    assert not others, f"a batch of events wrote {others}"
    if sent:
        assert grew.get("event_requests", 0) == (0 if request_id is None else 1), grew
    for event, stored in zip(sent, _stored(side, ids), strict=True):
        assert stored["name"] == event["name"]
        assert stored["params"] == (event.get("params") or {}), (stored["params"], event)
    if isinstance(request_id, str):
        side.seen[request_id] = (raw, ids)


def _namespaced(body: object, nonce: str) -> object:
    """`body` with a pooled request_id made unique to this example: examples do not see each
    other's request_ids, so the two stores' histories stay alike even after a failure."""
    if isinstance(body, dict) and body.get("request_id") in POOL:
        return {**body, "request_id": f"{nonce}-{body['request_id']}"}
    return body


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same bodies on every run: CI stays stable
    database=None,
    # No shrinking: a failing body is shown as generated, and a failure costs seconds, not
    # minutes (each step of a shrink posts to both stores again).
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the stores are per test, not per example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batches=st.lists(bodies(), min_size=1, max_size=3), resend=st.booleans())
@example(batches=[{"events": [{"name": "fuzz", "params": {"k": "x\x00y"}}]}], resend=False)
@example(batches=[{"events": [{"name": "fuzz", "params": {"k\x00": "x"}}]}], resend=False)
@example(batches=[{"events": [{"name": "fuzz"}], "request_id": "r\x00"}], resend=False)
@example(batches=[{"events": [{"name": "fuzz"}], "source": "s\x00"}], resend=False)
@example(
    batches=[{"events": [{"name": "fuzz", "params": {"k": f"{RAW}digits:4301"}}]}], resend=False
)
@example(
    batches=[{"events": [{"name": "fuzz", "params": {"k": f"{RAW}deep-list:5000"}}]}], resend=False
)
@example(batches=[{"events": f"{RAW}deep-object:1000"}], resend=False)
@example(batches=[{"events": [{"name": "fuzz", "params": {"k": 2**64}}]}], resend=True)
@example(
    batches=[
        {"events": [{"name": "fuzz", "params": {"k": 1}}], "request_id": "dup-1"},
        {"events": [{"name": "fuzz", "params": {"k": 2}}], "request_id": "dup-1"},
        {"events": [{"name": "fuzz", "params": {"k": 1}}], "request_id": "dup-1"},
    ],
    resend=False,
)
def test_any_events_body_gets_2xx_or_a_clear_4xx_and_is_stored_all_or_nothing(
    sides: dict[str, Side], batches: list[object], resend: bool
) -> None:
    nonce = uuid.uuid4().hex
    # `seen` is kept across examples: the stores are, and a request_id outside the pool
    # (say 'hahn') may come again in a later example, which the server rightly answers
    # with the first ids and stores nothing.
    for body in (_namespaced(b, nonce) for b in batches):
        raw = serialize(body)
        answers = {}
        for name in STORES:
            side = sides[name]
            for _ in range(2 if resend else 1):
                status, answer, wrote = _post(side, raw)
                if status == 200:
                    _check_accepted(side, body, raw, answer, wrote)
            answers[name] = status
        assert (answers["sqlite"] < 400) == (answers["postgres"] < 400), (
            f"the stores disagree: {answers} for {raw[:300]!r}"
        )
