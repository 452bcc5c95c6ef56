"""Input that used to answer 500 (and drop the connection): a 400 naming the problem on both
stores, nothing stored, and the client's next request on the same connection answered."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from api_helpers import all_events, assert_error, assert_nothing_stored, event, send
from conftest import Api, LiveServer, served, server_token

BIG = 2**63  # one past the largest key either store holds
TOO_MANY_DIGITS = "9" * 5000  # past Python's 4,300-digit limit for int(str)
NUL = "a\x00b"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def post_raw(api: Api, path: str, body: str) -> Any:
    headers = {**api.auth, "Content-Type": "application/json"}
    return api.client.post(path, content=body.encode(), headers=headers)


def assert_no_tasks(api: Api) -> None:
    listed = api.client.get("/api/v1/tasks")
    assert listed.status_code == 200, listed.text
    assert listed.json()["result"] == []


def assert_no_semaphores(api: Api) -> None:
    listed = api.client.get("/api/v1/semaphores")
    assert listed.status_code == 200, listed.text
    assert listed.json()["result"] == []


# --- task ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/logs"])
def test_task_id_out_of_range_is_400_naming_task_id_and_in_range_is_404(
    api: Api, suffix: str
) -> None:
    for task_id in (str(BIG), str(10**30), "-1", "0", TOO_MANY_DIGITS):
        assert_error(api.client.get(f"/api/v1/tasks/{task_id}{suffix}"), 400, "task_id")
    assert_error(api.client.get(f"/api/v1/tasks/{BIG - 1}{suffix}"), 404, "task")
    assert_error(api.client.get(f"/api/v1/tasks/abc{suffix}"), 400, "task_id")


def test_a_log_attempt_beyond_its_column_is_400_naming_attempt(api: Api) -> None:
    made = api.client.post("/api/v1/tasks", json={"type": "anything"}, headers=api.auth)
    task_id = made.json()["result"]["id"]
    for attempt in (2**31, 2**40, 2**63):
        response = api.client.get(f"/api/v1/tasks/{task_id}/logs", params={"attempt": attempt})
        assert_error(response, 400, "attempt")
    response = api.client.get(f"/api/v1/tasks/{task_id}/logs", params={"attempt": 2**31 - 1})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("action", ["stop", "restart"])
def test_task_id_out_of_range_on_stop_and_restart_is_400(api: Api, action: str) -> None:
    for task_id in (str(BIG), "-5"):
        response = api.client.post(f"/api/v1/tasks/{task_id}/{action}", headers=api.auth)
        assert_error(response, 400, "task_id")
    response = api.client.post(f"/api/v1/tasks/{BIG - 1}/{action}", headers=api.auth)
    assert_error(response, 404, "task")


def test_ui_task_pages_and_find_refuse_out_of_range_ids_with_400(api: Api) -> None:
    for path in (f"/ui/tasks/{BIG}", f"/ui/tasks/{BIG}/log.txt", "/ui/tasks/0"):
        response = api.client.get(path)
        assert response.status_code == 400, (path, response.status_code)
        assert "task ids are from 1 to" in response.text
    for wanted in (str(BIG), TOO_MANY_DIGITS):
        response = api.client.get("/ui/find", params={"id": wanted}, follow_redirects=False)
        assert response.status_code == 400, response.text[:300]
        assert "task ids are from 1 to" in response.text
    # "²" is a digit to str.isdigit, not to int(): not a task id, and no crash.
    for path in ("/ui/tasks/%C2%B2", f"/ui/tasks/{BIG - 1}"):
        assert api.client.get(path).status_code == 404, path
    response = api.client.get("/ui/find", params={"id": "²"}, follow_redirects=False)
    assert response.status_code == 404
    found = api.client.get("/ui/find", params={"id": "0042"}, follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/ui/tasks/42"


# --- integers beyond what the store's columns hold --------------------------------------------


@pytest.mark.parametrize("field", ["priority", "kill_timeout", "max_retries"])
@pytest.mark.parametrize("value", [2**31, 2**40, 2**63, 2**70, -(2**70)])
def test_task_numbers_beyond_the_column_are_400_naming_the_field(
    api: Api, field: str, value: int
) -> None:
    body = {"type": "anything", field: value}
    response = api.client.post("/api/v1/tasks", json=body, headers=api.auth)
    assert_error(response, 400, field, "out of range")
    assert_no_tasks(api)


def test_task_numbers_at_the_column_limit_are_accepted_on_both_stores(api: Api) -> None:
    body = {"type": "anything", "priority": 2**31 - 1, "kill_timeout": 2**31 - 1}
    response = api.client.post("/api/v1/tasks", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["priority"] == 2**31 - 1


@pytest.mark.parametrize("value", [2**31, 2**63, 2**70])
def test_semaphore_capacity_beyond_the_column_is_400_naming_capacity(api: Api, value: int) -> None:
    response = api.client.put("/api/v1/semaphores/s", json={"capacity": value}, headers=api.auth)
    assert_error(response, 400, "capacity", "out of range")
    assert_no_semaphores(api)
    ok = api.client.put("/api/v1/semaphores/s", json={"capacity": 2**31 - 1}, headers=api.auth)
    assert ok.status_code == 200, ok.text


def test_an_integer_of_more_than_4300_digits_is_400_on_every_body(api: Api) -> None:
    bodies = {
        "/api/v1/events": '{"events": [{"name": "a", "params": {"x": @}}]}',
        "/api/v1/tasks": '{"type": "anything", "params": {"x": @}}',
        "/api/v1/configs/test": '{"event": {"name": "a", "params": {"x": @}}}',
    }
    for path, body in bodies.items():
        assert_error(post_raw(api, path, body.replace("@", TOO_MANY_DIGITS)), 400, "4300 digits")
    assert_nothing_stored(api)
    assert_no_tasks(api)
    # 4,300 digits are still an integer a param may hold (as JSON text, on both stores).
    send(api, event("a", x=int("9" * 4300)))
    assert all_events(api)[0]["params"]["x"] == int("9" * 4300)


# --- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [65, 1000, 5000])
def test_bodies_nested_too_deep_are_400_before_anything_walks_them(api: Api, levels: int) -> None:
    bodies = {
        "/api/v1/events": '{"events": [{"name": "a", "params": {"x": @}}]}',
        "/api/v1/tasks": '{"type": "anything", "params": {"x": @}}',
        "/api/v1/configs/test": '{"event": {"name": "a", "params": {"x": @}}}',
        "/api/v1/configs": '{"event_deps": [{"name": "a", "params": {"x": @}}], "task_type": "t"}',
    }
    for path, body in bodies.items():
        response = post_raw(api, path, body.replace("@", deep(levels)))
        body = assert_error(response, 400)
        if path == "/api/v1/events":
            # The hot path keeps no nesting bound of its own: a nested param is refused
            # as not a scalar, and what the parser cannot nest as too deep.
            assert "scalar" in body["message"] or "nest" in body["message"], body
        else:
            assert "nest" in body["message"], body
    assert_nothing_stored(api)
    assert_no_tasks(api)
    assert api.client.get("/api/v1/configs").json()["result"] == []


def test_a_body_nested_64_deep_is_still_read(api: Api) -> None:
    # 64 levels in all: the body, params and 62 arrays.
    body = '{"type": "anything", "params": {"x": @}}'.replace("@", deep(62))
    response = post_raw(api, "/api/v1/tasks", body)
    assert response.status_code == 200, response.text
    # Brackets inside strings are text, not nesting.
    body = '{"type": "anything", "params": {"x": "@", "y": "\\"["}}'.replace("@", "[" * 500)
    assert post_raw(api, "/api/v1/tasks", body).status_code == 200


# --- NUL characters and lone surrogates -------------------------------------------------------


def test_nul_in_any_part_of_an_event_batch_is_400_naming_it_and_stores_nothing(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"events": [event("a", x=NUL)]}, "events[0].params.x"),
        ({"events": [{"name": "a", "params": {NUL: "x"}}]}, "events[0].params.a"),
        ({"events": [{"name": NUL}]}, "events[0].name"),
        ({"events": [event("a")], "request_id": NUL}, "request_id"),
        ({"events": [event("a")], "source": NUL}, "source"),
        ({"events": [event("a")], "source_type": NUL}, "source_type"),
        ({"events": [event("a")], "source": {"task_id": NUL}}, "source.task_id"),
    ]
    for body, where in cases:
        response = api.client.post("/api/v1/events", json=body, headers=api.auth)
        assert_error(response, 400, where, "NUL")
    assert_nothing_stored(api)


def test_nul_in_a_task_semaphore_config_or_description_body_is_400_naming_it(api: Api) -> None:
    dep = {"name": "a", "params": {}}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/v1/tasks", {"type": "anything", "params": {"x": NUL}}, "params.x"),
        ("POST", "/api/v1/tasks", {"type": NUL}, "type"),
        ("POST", "/api/v1/tasks", {"type": "t", "semaphores": [{"name": NUL}]}, "semaphores"),
        ("PUT", "/api/v1/semaphores/s", {"capacity": 1, "name": NUL}, "name"),
        ("POST", "/api/v1/configs", {"name": NUL, "event_deps": [dep], "task_type": "t"}, "name"),
        ("POST", "/api/v1/configs", {"event_deps": [dep], "task_type": NUL}, "task_type"),
        ("POST", "/api/v1/event_desc", {"name": "a", "description": NUL}, "description"),
        ("POST", "/api/v1/configs/test", {"event": {"name": "a", "params": {"k": NUL}}}, "k"),
    ]
    for method, path, body, where in cases:
        response = api.client.request(method, path, json=body, headers=api.auth)
        assert_error(response, 400, where, "NUL")
    assert_no_tasks(api)
    assert_no_semaphores(api)
    assert api.client.get("/api/v1/configs").json()["result"] == []
    assert api.client.get("/api/v1/event_desc").json()["result"] == []


def test_nul_in_a_filter_or_a_path_is_400_naming_it(api: Api) -> None:
    send(api, event("a", x="1"))
    for path, where in [
        ("/api/v1/events?params__x=%00", "params__x"),
        ("/api/v1/events?name=a&params__x=1%00", "params__x"),
        ("/api/v1/events?name=a%00", "name"),
        ("/api/v1/events?params__%00=1", "name"),
        ("/api/v1/tasks?type=%00", "type"),
        ("/api/v1/configs?author=%00", "author"),
        ("/ui/events?params=x%3D%00", "params"),
        ("/api/v1/semaphores/a%00b", "path"),
        ("/api/v1/event_desc/a%00b", "path"),
    ]:
        assert_error(api.client.get(path), 400, where, "NUL")
    for method in ("PUT", "DELETE"):
        response = api.client.request(
            method, "/api/v1/semaphores/a%00b", json={"capacity": 1}, headers=api.auth
        )
        assert_error(response, 400, "path", "NUL")
    assert_no_semaphores(api)
    # A percent sign and zeros as text are no NUL.
    assert api.client.get("/api/v1/events", params={"params__x": "%00"}).status_code == 200


def test_lone_surrogates_in_a_task_or_a_source_are_400(api: Api) -> None:
    assert_error(post_raw(api, "/api/v1/tasks", '{"type": "t", "params": {"x": "\\ud800"}}'), 400)
    body = '{"events": [{"name": "a"}], "source": {"task_id": "\\udfff"}}'
    assert_error(post_raw(api, "/api/v1/events", body), 400, "source.task_id", "surrogate")
    assert_no_tasks(api)
    assert_nothing_stored(api)


# --- the connection survives ------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, str, str | None]] = [
    ("GET", f"/api/v1/tasks/{BIG}", None),
    ("GET", f"/api/v1/tasks/{BIG}/logs", None),
    ("POST", f"/api/v1/tasks/{BIG}/stop", ""),
    ("GET", f"/ui/tasks/{BIG}", None),
    ("GET", f"/ui/find?id={TOO_MANY_DIGITS}", None),
    ("POST", "/api/v1/tasks", json.dumps({"type": "t", "priority": 2**70})),
    ("PUT", "/api/v1/semaphores/s", json.dumps({"capacity": 2**40})),
    (
        "POST",
        "/api/v1/events",
        '{"events": [{"name": "a", "params": {"x": @}}]}'.replace("@", TOO_MANY_DIGITS),
    ),
    (
        "POST",
        "/api/v1/events",
        '{"events": [{"name": "a", "params": {"x": @}}]}'.replace("@", deep(5000)),
    ),
    ("POST", "/api/v1/tasks", '{"type": "t", "params": {"x": @}}'.replace("@", deep(1000))),
    ("POST", "/api/v1/events", json.dumps({"events": [event("a", x=NUL)]})),
    ("POST", "/api/v1/events", json.dumps({"events": [event("a")], "request_id": NUL})),
    ("GET", "/api/v1/events?name=a&params__x=%00", None),
    ("GET", "/api/v1/semaphores/a%00b", None),
]


def exchange(sock: socket.socket, method: str, path: str, token: str, body: str | None) -> int:
    """One HTTP/1.1 keep-alive request on `sock`; the status of its answer (body read)."""
    data = b"" if body is None else body.encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: stepd\r\nAuthorization: OAuth {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    reader = sock.makefile("rb")
    status_line = reader.readline()
    assert status_line, f"the server closed the connection after {method} {path[:60]}"
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        assert name.strip().lower() != "connection" or "close" not in value.lower(), line
    reader.read(length)
    return int(status_line.split()[1])


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    with served(request.param, tmp_path, "--executor", "none", "--no-clock") as live:
        yield live


def test_each_refusal_keeps_the_connection_and_the_next_request_succeeds(
    server: LiveServer,
) -> None:
    token = server_token(server)
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        for method, path, body in BAD_REQUESTS:
            assert exchange(sock, method, path, token, body) == 400, (method, path[:80])
            ok = json.dumps({"events": [event("after", path=path[:100])]})
            assert exchange(sock, "POST", "/api/v1/events", token, ok) == 200, path[:80]
    stored = [e for e in post_list(server) if e["name"] != "after"]
    assert stored == []


def post_list(server: LiveServer) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/v1/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["result"]
    return result
