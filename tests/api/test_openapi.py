"""The served OpenAPI document: it validates, every `$ref` in it resolves, it declares the
token, and for representative requests (valid and not) the server's answer is one the
document lists for that operation, with a body that matches the schema it declares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from conftest import Api, make_token
from openapi_spec_validator import validate

from stepd.services.ratelimit import BURST

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    answer = api.client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_the_document_validates_and_every_ref_resolves(doc: dict[str, Any]) -> None:
    validate(doc)
    found = set(refs(doc))
    assert "#/components/schemas/EventIn" in found and "#/components/schemas/Error" in found
    for ref in found:
        resolve(doc, ref)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_the_token_is_a_security_scheme_that_writes_require(doc: dict[str, Any]) -> None:
    (name, scheme), *others = doc["components"]["securitySchemes"].items()
    assert not others
    assert scheme["type"] == "apiKey" and scheme["in"] == "header"
    assert scheme["name"] == "Authorization" and "OAuth <token>" in scheme["description"]
    for method, path, operation in operations(doc):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)  # validation errors are 400 here
        if path == "/healthz":
            assert "security" not in operation
        elif path in {"/api/v1/whoami", "/api/v1/configs/test"}:
            # a trial writes nothing, but runs the matcher: a token, as for a write (item 2)
            assert operation["security"] == [{name: []}], (method, path)
        elif method == "GET" or path in {"/api/v1/event_story", "/api/v1/configs/validate"}:
            assert {} in operation["security"], (method, path)  # optional on reads
            assert {"401", "429", "503"} <= set(responses), (method, path)
        else:
            assert operation["security"] == [{name: []}], (method, path)
            assert {"401", "403", "429", "503", "507"} <= set(responses), (method, path)


def test_every_body_a_route_reads_is_described(doc: dict[str, Any]) -> None:
    bodies = {
        (m, p): op["requestBody"]["content"] for m, p, op in operations(doc) if "requestBody" in op
    }
    expected = {
        ("POST", "/api/v1/events"), ("POST", "/api/v1/reject_event"),
        ("POST", "/api/v1/event_desc"), ("PUT", "/api/v1/event_desc/{name}"),
        ("POST", "/api/v1/configs"), ("PUT", "/api/v1/configs/{config_id}"),
        ("POST", "/api/v1/configs/test"), ("POST", "/api/v1/configs/validate"),
        ("POST", "/api/v1/event_story"), ("POST", "/api/v1/task/status"),
        ("POST", "/api/v1/tasks"), ("PUT", "/api/v1/semaphores/{name}"),
        ("PUT", "/api/v1/settings"), ("POST", "/api/v1/configs/{config_id}/run"),
        ("POST", "/api/v1/tasks/{task_id}/restart"),
        ("POST", "/api/v1/schedules"), ("PUT", "/api/v1/schedules/{name}"),
        ("POST", "/api/v1/configs/{config_id}/backfill"),
    }  # fmt: skip
    assert set(bodies) == expected
    forms = {key for key, content in bodies.items() if FORM in content}
    assert forms == {
        ("POST", "/api/v1/reject_event"), ("POST", "/api/v1/event_story"),
        ("POST", "/api/v1/task/status"),
    }  # fmt: skip
    for key in expected:
        assert "413" in dict(operations_by_key(doc)[key]["responses"]), key


def operations_by_key(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m, p): op for m, p, op in operations(doc)}


def template_of(doc: dict[str, Any], path: str) -> str:
    """The document's path that `path` is an instance of."""
    for template in doc["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    raise AssertionError(f"{path} is not in the document")


def schema_check(doc: dict[str, Any], schema: dict[str, Any], value: object, what: str) -> None:
    # The schema's $refs point into the document: validate with the document as its root.
    rooted = {**schema, "components": doc["components"]}
    try:
        jsonschema.Draft202012Validator(rooted).validate(value)
    except jsonschema.ValidationError as exc:
        pytest.fail(f"{what}: {exc.message} (at {list(exc.absolute_path)})")


def conforms(doc: dict[str, Any], answer: httpx.Response) -> httpx.Response:
    """`answer` is a status the document lists for its operation, with a body that fits."""
    request = answer.request
    method, path = request.method, template_of(doc, request.url.path)
    operation = doc["paths"][path][method.lower()]
    what = f"{method} {request.url.path} -> {answer.status_code}"
    assert str(answer.status_code) in operation["responses"], f"{what} is not documented"
    content = operation["responses"][str(answer.status_code)].get("content", {})
    media = answer.headers.get("content-type", "").split(";")[0]
    declared = {m.split(";")[0]: spec for m, spec in content.items()}
    assert media in declared, f"{what}: {media} is not documented ({list(declared)})"
    if media == JSON:
        schema_check(doc, declared[media].get("schema", {}), answer.json(), what)
    sent = request.headers.get("content-type", "").split(";")[0]
    if 200 <= answer.status_code < 300 and sent in (JSON, FORM):
        # A request the server took is one the document describes.
        body = operation["requestBody"]["content"][sent]["schema"]
        value = httpx.QueryParams(request.content.decode()) if sent == FORM else None
        sent_value = dict(value) if value is not None else httpx.Response(
            200, content=request.content).json()  # fmt: skip
        schema_check(doc, body, sent_value, f"{what}: the request body")
    return answer


def test_representative_answers_are_documented_and_fit_their_schemas(
    api: Api, doc: dict[str, Any]
) -> None:
    c, auth = api.client, api.auth
    other = {"Authorization": f"OAuth {make_token(api.store, 'someone-else')}"}
    bad = {"Authorization": "OAuth stepd_not-a-token"}

    def check(answer: httpx.Response) -> Any:
        return conforms(doc, answer).json()

    # Events: valid, no token, bad token, bad name, unknown field, too large, bad query.
    ids = check(c.post("/api/v1/events", json={"events": [{"name": "e1", "params": {"d": "1"}}]},
                       headers=auth))["ids"]  # fmt: skip
    check(c.post("/api/v1/events", json={"events": []}))
    check(c.post("/api/v1/events", json={"events": []}, headers=bad))
    check(c.post("/api/v1/events", json={"events": [{"name": "a b"}]}, headers=auth))
    check(c.post("/api/v1/events", json={"events": [], "nope": 1}, headers=auth))
    check(c.post("/api/v1/events", content=b"{" + b" " * 1_100_000 + b"}", headers=auth))
    check(c.post("/api/v1/events", content=b"not json", headers=auth))
    first = {"request_id": "r-1", "events": [{"name": "e1"}]}
    check(c.post("/api/v1/events", json=first, headers=auth))
    check(c.post("/api/v1/events", json={**first, "events": [{"name": "e2"}]}, headers=auth))
    check(c.get("/api/v1/events", params={"name": "e1"}))
    check(c.get("/api/v1/events", params={"state": "NOPE"}))
    check(c.get(f"/api/v1/events/{ids[0]}"))
    check(c.get("/api/v1/events/000000000000000000000fff"))
    # Form bodies, as the original's users send them.
    check(c.post("/api/v1/event_story", data={"id": ids[0]}))
    check(c.post("/api/v1/event_story", data={"id": "000000000000000000000fff"}))
    check(c.get(f"/api/v1/events/{ids[0]}/story"))
    check(c.post("/api/v1/task/status", headers=auth, data={
        "taskType": "T", "taskStatus": "SUCCESS", "environment": "stable",
        "body": '{"date": "2019-01-01"}',
    }))  # fmt: skip
    check(c.post("/api/v1/task/status", headers=auth, data={"taskType": "T"}))
    check(c.post("/api/v1/reject_event", data={"id": ids[0]}, headers=auth))
    check(c.post("/api/v1/reject_event", json={"id": "000000000000000000000fff"}, headers=auth))
    # Event descriptions.
    desc = {"name": "described", "required_fields": ["date"]}
    check(c.post("/api/v1/event_desc", json=desc, headers=auth))
    check(c.post("/api/v1/event_desc", json=desc, headers=auth))  # 409
    check(c.get("/api/v1/event_desc"))
    check(c.get("/api/v1/event_desc/described"))
    check(c.get("/api/v1/event_desc/nothing"))
    check(c.put("/api/v1/event_desc/described", json={"optional_fields": ["x"]}, headers=auth))
    check(c.delete("/api/v1/event_desc/described", headers=auth))
    # Configs.
    config = {"name": "doc-cfg", "task_type": "T",
              "event_deps": [{"name": "e1", "params": {"d": "~"}}]}  # fmt: skip
    config_id = check(c.post("/api/v1/configs", json=config, headers=auth))["id"]
    check(c.post("/api/v1/configs", json=config, headers=auth))  # a duplicate name
    check(c.post("/api/v1/configs", json={"task_type": "T"}, headers=auth))
    check(c.get("/api/v1/configs", params={"author": "robot-crypta"}))
    stored = check(c.get(f"/api/v1/configs/{config_id}"))["result"]
    check(c.put(f"/api/v1/configs/{config_id}", json=stored, headers=other))  # not theirs
    check(c.put(f"/api/v1/configs/{config_id}", json={**config, "priority": 2}, headers=auth))
    check(c.get(f"/api/v1/configs/{config_id}/history"))
    check(
        c.post(
            "/api/v1/configs/test",
            json={"config_id": config_id, "event": {"name": "e1", "params": {"d": "1"}}},
        )
    )
    check(c.post("/api/v1/configs/test", json={"config_id": "nope", "event": {"name": "e1"}}))
    check(c.post("/api/v1/configs/validate", json={"configs": [config, 1]}))
    check(c.get("/api/v1/configs/nope"))
    check(c.delete(f"/api/v1/configs/{config_id}", headers=auth))
    # Tasks and semaphores.
    task = check(c.post("/api/v1/tasks", json={"type": "T", "params": {"d": "1"}}, headers=auth))
    task_id = task["result"]["id"]
    check(c.post("/api/v1/tasks", json={"type": "T", "priority": "high"}, headers=auth))
    check(c.get("/api/v1/tasks", params={"status": "ENQUEUED"}))
    check(c.get(f"/api/v1/tasks/{task_id}"))
    check(c.get("/api/v1/tasks/abc"))
    check(c.get("/api/v1/tasks/999999"))
    check(c.get(f"/api/v1/tasks/{task_id}/logs", params={"offset": 0}))
    check(c.post(f"/api/v1/tasks/{task_id}/restart", headers=auth))  # 409: it is active
    check(c.post(f"/api/v1/tasks/{task_id}/stop", headers=auth))
    check(c.get("/api/v1/task_types"))
    check(c.put("/api/v1/semaphores/doc-sem", json={"capacity": 2}, headers=auth))
    check(c.put("/api/v1/semaphores/doc-sem", json={"capacity": -1}, headers=auth))
    check(c.get("/api/v1/semaphores"))
    check(c.get("/api/v1/semaphores/doc-sem"))
    check(c.delete("/api/v1/semaphores/doc-sem", headers=auth))
    check(c.get("/api/v1/semaphores/doc-sem"))
    # Who am I, health, metrics (text), and the bad-token limit's 429.
    check(c.get("/api/v1/whoami", headers=auth))
    check(c.get("/api/v1/whoami"))
    check(c.get("/healthz"))
    conforms(doc, c.get("/metrics"))
    for _ in range(BURST + 1):
        last = c.get("/api/v1/events", headers=bad)
    assert check(last)["error"] == "too_many_requests"


def test_a_method_the_path_lacks_is_405_naming_every_method_it_has(
    api: Api, doc: dict[str, Any]
) -> None:
    for path, template in (
        ("/api/v1/events", "/api/v1/events"),
        ("/api/v1/configs/abc", "/api/v1/configs/{config_id}"),
    ):
        answer = api.client.patch(path, json={})
        assert answer.status_code == 405
        documented = {m.upper() for m in doc["paths"][template]}
        assert set(answer.headers["allow"].split(", ")) - {"HEAD"} == documented
