"""Hypothesis on every value a URL carries: path params (every one the served document
declares) and the list routes' filters, on SQLite and on PostgreSQL at once.

Ids beyond 64 bits, negative, thousands of digits long, NUL bytes, emoji, dots: each
store answers a 2xx or a 4xx JSON error with a message, never a 5xx; both answer the
same status (they see the same requests in the same order); and nothing is written
unless the route is a write that succeeded.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import make_token
from fastapi.testclient import TestClient
from fuzz_helpers import changed, error_message, make_app, row_counts, tell, template_app
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from stepd.store import Store, open_store

pytestmark = pytest.mark.fuzz
EXAMPLES = 12  # per target, each sent to both stores, after the explicit ones


def _document_targets() -> list[tuple[str, str]]:
    """(method, path) of every operation with a path param in the served document."""
    app = template_app()
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if "{" in path:
                found.append((method.upper(), path))
    return found


# The filters of the list routes (read by hand, so not in the document): docs/api.md.
FILTERS = (
    [
        ("GET", f"/api/v1/events?{name}={{v}}")
        for name in ("name", "params__date", "state", "skip", "limit", "sort")
    ]
    + [
        ("GET", f"/api/v1/tasks?{name}={{v}}")
        for name in ("type", "status", "config_id", "event_id", "author", "skip", "limit", "sort")
    ]
    + [
        ("GET", f"/api/v1/configs?{name}={{v}}")
        for name in ("author", "task_type", "action_params__action_id")
    ]
    + [("GET", "/api/v1/tasks/1/logs?offset={v}"), ("GET", "/api/v1/tasks/1/logs?attempt={v}")]
)
TARGETS = _document_targets() + FILTERS
BODIES = {  # a body the PUTs accept, so that the value in the URL is what is tried
    "/api/v1/semaphores/{name}": {"capacity": 1},
    "/api/v1/event_desc/{name}": {"description": "fuzz", "required_fields": ["date"]},
    "/api/v1/configs/{config_id}": {"event_deps": [{"name": "fuzz"}], "task_type": "FUZZ"},
}

# (method, target) -> why it fails today. Remove an entry once its fix is merged.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

VALUES = st.one_of(
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            str(2**63 - 1),
            str(2**63),
            str(2**64),
            "9" * 5000,
            "\x00",
            "a\x00b",
            "🙂",
            "..",
            "%",
            "f" * 24,
            "0" * 24,
            " ",
            "",
            "1e400",
            "NaN",
        ]
    ),
    st.integers().map(str),
    st.text(max_size=40),
)
SENT: Counter[str] = Counter()


@dataclass
class Side:
    name: str
    store: Store
    client: TestClient
    auth: dict[str, str]


@pytest.fixture
def sides(tmp_path: Path, sqlite_template: Path, pg_url: str) -> Iterator[list[Side]]:
    target = tmp_path / "stepd.db"
    shutil.copyfile(sqlite_template, target)
    found = []
    for name, url in (("sqlite", f"sqlite:///{target}"), ("postgres", pg_url)):
        store = open_store(url)
        client = TestClient(make_app(store), raise_server_exceptions=False)
        client.__enter__()
        token = make_token(store, "robot-fuzz")
        found.append(Side(name, store, client, {"Authorization": f"OAuth {token}"}))
    yield found
    for side in found:
        side.client.__exit__(None, None, None)


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tell(request.config, f"URL values per store: {dict(SENT)}")


def _url(target: str, value: str) -> str:
    quoted = quote(value, safe="")
    if "{v}" in target:
        return target.replace("{v}", quoted)
    start, end = target.index("{"), target.index("}")
    return target[:start] + quoted + target[end + 1 :]


@pytest.mark.parametrize(("method", "target"), TARGETS, ids=[f"{m} {t}" for m, t in TARGETS])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure costs seconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=VALUES)
@example(value="a\x00b")
@example(value=str(2**63))
@example(value="9" * 5000)
@example(value="-1")
@example(value="🙂")
def test_no_value_in_a_url_gets_a_5xx_and_both_stores_answer_alike(
    sides: list[Side], method: str, target: str, value: str, request: pytest.FixtureRequest
) -> None:
    reason = KNOWN_FAILURES.get((method, target))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))
    url = _url(target, value)
    statuses = []
    for side in sides:
        SENT[side.name] += 1
        before = row_counts(side.store)
        response = side.client.request(
            method, url, headers=side.auth, json=BODIES.get(target) if method == "PUT" else None
        )
        wrote = changed(before, row_counts(side.store))
        where = f"{side.name}: {method} {url[:200]}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            assert error_message(response), f"{where}: {response.status_code} {response.text[:200]}"
            assert not wrote, f"{where}: refused ({response.status_code}) yet wrote {wrote}"
        if method == "GET":
            assert not wrote, f"{where}: a read wrote {wrote}"
        statuses.append(response.status_code)
    assert statuses[0] == statuses[1], f"the stores disagree on {method} {url[:200]}: {statuses}"
