"""Schemathesis against the app's own OpenAPI document, on SQLite and on PostgreSQL
(issue 9, "Tests that stay in CI").

Two properties, each a test per (operation, store), so that a failure names its route:

- robustness: whatever is sent, the answer is never a 5xx, a refusal (4xx) is a JSON
  error with a message, a refused write stores nothing, and a read writes nothing;
- conformance: the answer is one the document describes (status code, content type and
  body schema).

Requests carry a write token (`Authorization: OAuth <token>`), so writes are tried, not
merely refused for want of one. Examples are derandomized (the same on every run) and
bounded, so the suite takes the same, short, time in CI. Routes that fail on today's code
are listed in `KNOWN_FAILURES` with the item of issue 9 that fixes them; they run as
non-strict xfail until that fix is merged and the entry removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from conftest import make_token
from fastapi import FastAPI
from fuzz_helpers import changed, error_message, make_app, row_counts, tell, template_app
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stepd.store import Store

pytestmark = pytest.mark.fuzz
MAX_EXAMPLES = 15  # per (operation, store, property): ~2,000 requests in all
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run: CI stays stable
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the store is per test, not per example: intended
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)

# (property, method, path) -> why it fails today. Remove an entry once its fix is merged.
# (property, method, path) -> why it fails today. Remove an entry once its fix is merged.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}


# The document is read once; each test sends its requests to an app on its own store.
schema = schemathesis.openapi.from_asgi("/openapi.json", template_app())


SENT: Counter[str] = Counter()  # requests sent, per store


@pytest.fixture(scope="module", autouse=True)
def _figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tell(request.config, f"schemathesis requests per store: {dict(SENT)}")


def _store_name(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgres"


@pytest.fixture
def fuzz_app(store: Store) -> FastAPI:
    return make_app(store)


@pytest.fixture
def fuzz_token(store: Store) -> str:
    return make_token(store, "robot-fuzz")


def _known(request: pytest.FixtureRequest, prop: str, case: schemathesis.Case) -> None:
    reason = KNOWN_FAILURES.get((prop, case.method.upper(), case.path))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=False))


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_input_gets_a_5xx_or_a_partial_write(
    case: schemathesis.Case,
    store: Store,
    db_url: str,
    fuzz_app: FastAPI,
    fuzz_token: str,
    request: pytest.FixtureRequest,
) -> None:
    _known(request, "robust", case)
    before = row_counts(store)
    SENT[_store_name(db_url)] += 1
    response = case.call(headers={"Authorization": f"OAuth {fuzz_token}"}, app=fuzz_app)
    wrote = changed(before, row_counts(store))
    case.validate_response(response, checks=[not_a_server_error])
    if case.method.upper() == "GET":
        assert not wrote, f"a read wrote: {wrote}"
    elif response.status_code >= 400:
        assert not wrote, f"a refused request ({response.status_code}) wrote: {wrote}"
    if 400 <= response.status_code < 500:
        assert error_message(response), (
            f"a {response.status_code} without a JSON message: {response.text[:300]}"
        )


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_answer_is_one_the_document_describes(
    case: schemathesis.Case,
    db_url: str,
    fuzz_app: FastAPI,
    fuzz_token: str,
    request: pytest.FixtureRequest,
) -> None:
    _known(request, "conform", case)
    SENT[_store_name(db_url)] += 1
    response = case.call(headers={"Authorization": f"OAuth {fuzz_token}"}, app=fuzz_app)
    case.validate_response(response, checks=CONFORMANCE)
