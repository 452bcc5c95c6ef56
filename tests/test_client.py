"""The Python client against a real `stepd serve`, on every store; and its retries.

One server per store serves the whole module (starting `stepd serve` costs seconds),
so every test uses event names, config names and semaphores of its own. The server
runs the example task types (`examples/crypta_tasks.py`) on its local workers.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conftest import (
    LiveServer,
    free_port,
    served,
    server_token,
)

from stepd.client import ApiError, Client, ServerUnreachable, ServerWarning

FAST = 0.01  # backoff_seconds: retries in tests need not wait
TASKS = ("--tasks", "examples/crypta_tasks.py")
FINISHED = {"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`stepd serve` on each store, shared by this module's tests (conftest's is per test)."""
    with served(request.param, tmp_path_factory.mktemp("client"), *TASKS) as server:
        yield server


@pytest.fixture(scope="module")
def token(live_server: LiveServer) -> str:
    return server_token(live_server)


@pytest.fixture
def client(live_server: LiveServer, token: str) -> Iterator[Client]:
    with Client(live_server.url, token, retries=1, backoff_seconds=FAST) as c:
        yield c


def unique(name: str) -> str:
    """An event name no other test on the shared server uses."""
    return f"{name}.{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], Any], what: str, seconds: float = 15) -> Any:
    """`check()` once it is truthy; fails the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def finished_task(client: Client, task_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        task = client.get_task(task_id)
        return task if task["status"] in FINISHED else None

    found: dict[str, Any] = eventually(done, f"task {task_id} to finish")
    return found


class CountingTransport(httpx.HTTPTransport):
    """The real network, counting the attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


@dataclass
class Seen:
    method: str
    path: str
    body: bytes

    def json(self) -> dict[str, object]:
        value: dict[str, object] = json.loads(self.body)
        return value


class FlakyProxy:
    """A real HTTP proxy in front of stepd that can lose answers.

    `fail(seen, index)` says whether to answer a 502 (as a load balancer would) after
    forwarding the request: the server has acted, the client never hears it.
    """

    def __init__(self, upstream: str, fail: Callable[[Seen, int], bool]) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._upstream = httpx.Client(base_url=upstream, timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, self.rfile.read(length))
                with proxy._lock:
                    proxy.seen.append(seen)
                    index = len(proxy.seen) - 1
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in {"authorization", "content-type"}
                }
                answer = proxy._upstream.request(
                    seen.method, seen.path, content=seen.body, headers=headers
                )
                if fail(seen, index):
                    status, content_type, payload = 502, "text/html", b"<h1>502 Bad Gateway</h1>"
                else:
                    status = answer.status_code
                    content_type = answer.headers.get("content-type", "application/json")
                    payload = answer.content
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


# --- events -----------------------------------------------------------------------------


def test_sent_events_can_be_found_read_and_rejected(client: Client) -> None:
    task, other = unique("cryptaTaskEvent"), unique("otherEvent")
    first = client.create_event(task, {"taskType": "PREPARE", "date": "2019-01-01", "attempt": 1})
    ids = client.create_events(
        [
            {"name": task, "params": {"taskType": "MATCH", "date": "2019-01-01"}},
            (task, {"taskType": "PREPARE", "date": "2019-01-02"}),
            (other, None),
        ],
        source_type="test",
        source="test_client",
    )
    assert len(ids) == 3 and sorted([first, *ids]) == [first, *ids]

    event = client.get_event(first)
    assert event["_id"] == first
    assert event["name"] == task
    assert event["params"] == {"taskType": "PREPARE", "date": "2019-01-01", "attempt": 1}
    assert event["state"] in {"NEW", "PROCESSED"}  # the reactor may have evaluated it
    assert event["author"] == "robot-crypta"
    assert event["request_id"]  # generated by the client
    assert client.get_event(ids[0])["source"] == "test_client"
    assert client.get_event(ids[2])["params"] == {}

    found = client.get_events(name=task, params={"taskType": "PREPARE"})
    assert [e["_id"] for e in found] == [first, ids[1]]
    newest = client.get_events(name=task, sort="-_id", limit=2)
    assert [e["_id"] for e in newest] == [ids[1], ids[0]]
    assert [e["_id"] for e in client.get_events(name=task, skip=1, limit=1)] == [ids[0]]
    # A number matches its JSON text, as a user typing a URL expects.
    assert [e["_id"] for e in client.get_events(name=task, params={"attempt": 1})] == [first]

    assert client.reject_event(first) == first
    assert client.get_event(first)["state"] == "REJECTED"
    assert [e["_id"] for e in client.get_events(name=task, state="REJECTED")] == [first]


def test_the_same_request_id_returns_the_same_ids_and_stores_nothing_new(client: Client) -> None:
    name = unique("dayClosed")
    events = [(name, {"date": "2019-01-01"}), (name, {"date": "2019-01-02"})]
    request_id = f"batch-{uuid.uuid4()}"
    ids = client.create_events(events, request_id=request_id)
    assert client.create_events(events, request_id=request_id) == ids
    assert len(client.get_events(name=name)) == 2
    assert client.get_event(ids[0])["request_id"] == request_id


def test_a_4xx_raises_the_servers_error_and_is_not_retried(
    live_server: LiveServer, token: str
) -> None:
    transport = CountingTransport()
    with Client(live_server.url, token, retries=3, transport=transport, backoff_seconds=FAST) as c:
        with pytest.raises(ApiError) as missing:
            c.get_event("0000000000000000deadbeef")
        assert missing.value.status_code == 404
        assert missing.value.code == "not_found"
        assert "no event with id" in missing.value.message
        assert len(transport.requests) == 1

        with pytest.raises(ApiError) as invalid:
            c.create_event("bad name!", {})
        assert invalid.value.status_code == 400
        assert invalid.value.code == "invalid_input"
        assert invalid.value.field == "events[0].name"
        assert len(transport.requests) == 2

    name = unique("anonymousEvent")
    with Client(live_server.url, retries=3, transport=transport, backoff_seconds=FAST) as anonymous:
        with pytest.raises(ApiError) as unauthorized:
            anonymous.create_event(name)
        assert unauthorized.value.status_code == 401
        assert unauthorized.value.code == "unauthorized"
        assert "token" in unauthorized.value.message
        assert len(transport.requests) == 3
        assert anonymous.get_events(name=name) == []  # reads need no token


# --- event descriptions ---------------------------------------------------------------


def test_an_object_source_as_the_original_client_sends_it_is_sent_and_found(
    client: Client, live_server: LiveServer
) -> None:
    name = unique("sandboxReport")
    task_id = int(uuid.uuid4().int % 10**9)
    source = {"task_id": task_id, "primary_task_id": "1", "statinfra_action_id": "a"}
    ids = client.create_events([(name, {"x": "1"})], source_type="SANDBOX_TASK", source=source)
    assert client.get_event(ids[0])["source"] == source
    answer = httpx.get(f"{live_server.url}/api/v1/events", params={"source__task_id": str(task_id)})
    assert [e["_id"] for e in answer.json()["result"]] == ids


def test_event_descs_are_created_read_changed_enforced_and_deleted(client: Client) -> None:
    name = unique("describedEvent")
    created = client.create_event_desc(
        name,
        required_fields=["taskType", "taskStatus"],
        optional_fields=("date",),
        description="a Crypta task changed status",
        public=True,
    )
    assert created["name"] == name
    assert created["required_fields"] == ["taskType", "taskStatus"]
    assert created["optional_fields"] == ["date"]
    assert created["public"] is True and created["list_in_idm"] is False
    assert client.get_event_desc(name)["description"] == "a Crypta task changed status"
    assert name in [d["name"] for d in client.list_event_descs()]

    with pytest.raises(ApiError) as duplicate:
        client.create_event_desc(name)
    assert duplicate.value.status_code == 409

    with pytest.raises(ApiError) as missing_field:
        client.create_event(name, {"taskType": "A"})
    assert missing_field.value.status_code == 400
    assert "taskStatus" in missing_field.value.message

    changed = client.update_event_desc(name, optional_fields=("date", "environment"))
    assert changed["optional_fields"] == ["date", "environment"]
    assert changed["required_fields"] == ["taskType", "taskStatus"]  # untouched
    assert client.create_event(
        name, {"taskType": "A", "taskStatus": "SUCCESS", "environment": "stable"}
    )

    client.delete_event_desc(name)
    assert name not in [d["name"] for d in client.list_event_descs()]
    with pytest.raises(ApiError) as gone:
        client.get_event_desc(name)
    assert gone.value.status_code == 404
    assert client.create_event(name, {"anything": "goes"})


def test_health_reports_the_store(client: Client, live_server: LiveServer) -> None:
    health = client.health()
    assert health["status"] == "ok"
    sqlite = live_server.db_url.startswith("sqlite")
    assert health["store"] == ("sqlite" if sqlite else "postgresql")


# --- configs and stories ----------------------------------------------------------------


def echo_config(event_name: str, **fields: object) -> dict[str, Any]:
    """A config that runs ECHO_DATE for each `event_name` event with log=access."""
    return {
        "name": unique("echo"),
        "event_deps": [{"name": event_name, "params": {"log": "access", "date": "~"}}],
        "task_type": "ECHO_DATE",
        **fields,
    }


def test_configs_are_created_read_listed_changed_tried_and_deleted(client: Client) -> None:
    event_name = unique("dayClosed")
    body = echo_config(event_name, action_params={"action_id": unique("action")})
    config_id = client.create_config(body)

    config = client.get_config(config_id)
    assert (config["_id"], config["name"], config["version"]) == (config_id, body["name"], 1)
    assert config["author"] == "robot-crypta" and config["enabled"] is True
    found = client.list_configs(author="robot-crypta", task_type="ECHO_DATE")
    assert config_id in [c["_id"] for c in found]
    action_id = body["action_params"]["action_id"]
    assert [c["_id"] for c in client.list_configs(action_params__action_id=action_id)] == [
        config_id
    ]
    assert client.list_configs(author="robot-crypta", enabled=False, name=body["name"]) == []

    changed = client.update_config(config_id, {**body, "description": "echo the day"})
    assert changed["version"] == 2 and changed["description"] == "echo the day"
    assert client.update_config(config_id, {**body, "description": "echo the day"})["version"] == 2
    history = client.config_history(config_id)
    assert [(h["version"], h["action"]) for h in history] == [(1, "created"), (2, "updated")]
    assert history[1]["change"] == {"description": {"old": "", "new": "echo the day"}}

    tried = client.test_config(
        config_id=config_id, event={"name": event_name, "params": {"log": "access", "date": "d1"}}
    )
    [entry] = tried["events"]
    assert entry["outcome"] == "fired"
    assert entry["would_fire"][0]["task"] == {"type": "ECHO_DATE", "params": {"date": "d1"}}
    unsaved = {**body, "event_deps": [{"name": event_name, "params": {"log": "redir"}}]}
    tried = client.test_config(
        config=unsaved, event={"name": event_name, "params": {"log": "access"}}
    )
    [miss] = tried["events"][0]["not_matched"]
    assert (miss["param"], miss["expected"], miss["actual"]) == ("log", "redir", "access")
    assert client.test_config(config_id=config_id, events={"name": event_name})["events"] == []
    with pytest.raises(ValueError):
        client.test_config(config_id=config_id)

    with pytest.raises(ApiError) as duplicate:
        client.create_config(body)
    assert duplicate.value.status_code == 409
    # The original STEP took configs for any task type: stored, with a warning.
    with pytest.warns(ServerWarning, match="no worker has announced task type 'NO_SUCH_TYPE'"):
        client.create_config({**body, "name": unique("any"), "task_type": "NO_SUCH_TYPE"})

    client.delete_config(config_id)
    with pytest.raises(ApiError) as gone:
        client.get_config(config_id)
    assert gone.value.status_code == 404


def test_the_story_says_what_fired_and_the_chain_and_event_story_tells_the_same(
    client: Client,
) -> None:
    event_name = unique("dayClosed")
    fired_id = client.create_config(echo_config(event_name))
    join = echo_config(event_name)
    join["event_deps"].append({"name": event_name, "params": {"log": "redir", "date": "~"}})
    waiting_id = client.create_config(join)
    event_id = client.create_event(event_name, {"log": "access", "date": "2019-01-01"})

    [task] = eventually(lambda: client.list_tasks(event_id=event_id), "the task")
    finished_task(client, task["id"])

    def chained() -> dict[str, Any] | None:
        told = client.story(event_id)
        chain = told["chain"]
        return told if chain and chain[0]["evaluated"] else None

    told = eventually(chained, "the task's status event")
    assert told["story_id"] == event_id and told["evaluated"] is True
    outcomes = {c["config_id"]: c["outcome"] for c in told["configs"]}
    assert outcomes == {fired_id: "fired", waiting_id: "waiting"}
    [produced] = told["produced_tasks"]
    assert (produced["sandbox_task_id"], produced["config_id"]) == (task["id"], fired_id)
    [link] = told["chain"]
    assert link["task_id"] == task["id"]
    assert link["event"]["name"] == "taskEvent"
    assert link["event"]["params"]["taskStatus"] == "SUCCESS"

    again = client.event_story(event_id)
    assert again["story_id"] == event_id
    assert again["produced_tasks"] == told["produced_tasks"]
    with pytest.raises(ApiError) as missing:
        client.story("0" * 8 + "7" + "f" * 15)
    assert missing.value.status_code == 404


# --- tasks and semaphores ---------------------------------------------------------------


def test_a_task_run_by_hand_is_listed_logged_restarted_and_stopped(client: Client) -> None:
    day = unique("2019-01-01")
    semaphore = unique("yt")
    created = client.create_task(
        "ECHO_DATE", {"date": day}, priority=5, semaphores=[{"name": semaphore, "weight": 1}]
    )
    task_id = created["id"]
    assert created["type"] == "ECHO_DATE" and created["params"] == {"date": day}
    assert created["priority"] == 5
    assert created["semaphores"] == [{"name": semaphore, "weight": 1}]
    assert finished_task(client, task_id)["status"] == "SUCCESS"

    log = client.task_logs(task_id)
    assert f"processing {day}\n" in log["text"] and log["finished"] is True
    assert (log["attempt"], log["next_offset"]) == (1, len(log["text"]))
    tail = client.task_logs(task_id, offset=log["next_offset"] - len(f"{day}\n"))
    assert tail["text"] == f"{day}\n"
    succeeded = client.list_tasks(type="ECHO_DATE", status=["SUCCESS", "FAILURE"], limit=1000)
    assert [t["id"] for t in succeeded].count(task_id) == 1

    assert client.restart_task(task_id) == {"id": task_id, "status": "ENQUEUED"}
    eventually(lambda: client.get_task(task_id)["attempts"] == 2, "the second attempt")
    task = finished_task(client, task_id)
    assert [a["status"] for a in task["attempt_history"]] == ["SUCCESS", "SUCCESS"]
    assert client.task_logs(task_id, attempt=1)["attempt"] == 1
    with pytest.raises(ApiError) as ended:
        client.stop_task(task_id)
    assert ended.value.status_code == 409

    # A task failing with retries waits out its backoff ENQUEUED: stopping it is at once.
    failing = client.create_task("CRYPTA_GRAPH_PREPARE_SOUP_YAML", {}, max_retries=5)["id"]
    eventually(
        lambda: (t := client.get_task(failing))["attempts"] >= 1 and t["status"] == "ENQUEUED",
        "the first retry's backoff",
    )
    assert client.stop_task(failing)["status"] == "STOPPED"
    assert client.get_task(failing)["status"] == "STOPPED"

    names = [t["name"] for t in client.task_types()]
    assert {"ECHO_DATE", "CRYPTA_GRAPH_PREPARE_SOUP_YAML"} <= set(names)
    with pytest.warns(ServerWarning, match="no worker has announced task type 'NO_SUCH_TYPE'"):
        made = client.create_task("NO_SUCH_TYPE", {})
    assert made["type"] == "NO_SUCH_TYPE" and made["status"] == "ENQUEUED"


def test_semaphores_are_set_read_listed_and_deleted(client: Client) -> None:
    name = unique("yt-hahn")
    assert client.set_semaphore(name, 3)["capacity"] == 3
    put, got = client.set_semaphore(name, 2), client.get_semaphore(name)
    # One semaphore read alone also says who holds it and who waits (additive keys).
    assert {key: got[key] for key in put} == put
    assert (got["holders"], got["waiting"], got["waiting_count"]) == ([], [], 0)
    [listed] = [s for s in client.list_semaphores() if s["name"] == name]
    assert (listed["capacity"], listed["used"], listed["auto"]) == (2, 0, False)
    with pytest.raises(ApiError) as too_heavy:
        client.create_task("ECHO_DATE", {"date": "d"}, semaphores=[{"name": name, "weight": 3}])
    assert too_heavy.value.status_code == 400
    client.delete_semaphore(name)
    with pytest.raises(ApiError) as gone:
        client.delete_semaphore(name)
    assert gone.value.status_code == 404  # a plain second delete is an error


# --- retries ----------------------------------------------------------------------------


def test_a_lost_answer_is_retried_with_the_same_request_id_and_stores_one_event(
    live_server: LiveServer, client: Client, token: str
) -> None:
    def lose_first_post(seen: Seen, index: int) -> bool:
        return seen.method == "POST" and index == 0

    name = unique("retriedEvent")
    with (
        FlakyProxy(live_server.url, lose_first_post) as proxy,
        Client(proxy.url, token, retries=3, backoff_seconds=FAST) as flaky,
    ):
        event_id = flaky.create_event(name, {"date": "2019-01-01"})

    posts = [s for s in proxy.seen if s.method == "POST"]
    assert len(posts) == 2
    assert posts[0].json()["request_id"] == posts[1].json()["request_id"]
    stored = client.get_events(name=name)
    assert [e["_id"] for e in stored] == [event_id]


def test_5xx_is_retried_then_raised_but_never_for_a_call_that_is_not_idempotent(
    live_server: LiveServer, token: str
) -> None:
    with (
        FlakyProxy(live_server.url, lambda _seen, _index: True) as proxy,
        Client(proxy.url, token, retries=2, backoff_seconds=FAST) as flaky,
    ):
        with pytest.raises(ApiError) as failed:
            flaky.get_events(name=unique("anyEvent"))
        assert failed.value.status_code == 502
        assert failed.value.code == "http_error"
        assert "Bad Gateway" in failed.value.message
        assert len(proxy.seen) == 3  # one attempt and two retries

        # Creating a description twice would answer 409: a lost answer is not retried.
        with pytest.raises(ApiError):
            flaky.create_event_desc(unique("someEvent"))
        assert len(proxy.seen) == 4


def test_a_refused_connection_is_retried_then_raises_server_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    transport = CountingTransport()
    with (
        Client(url, "token", retries=2, transport=transport, backoff_seconds=FAST) as c,
        pytest.raises(ServerUnreachable) as unreachable,
    ):
        c.create_event("cryptaTaskEvent")
    assert len(transport.requests) == 3
    assert unreachable.value.url == url
    assert f"cannot reach stepd at {url}" in unreachable.value.message
    # Every attempt of one call carried the same request_id.
    assert len({json.loads(r.content)["request_id"] for r in transport.requests}) == 1


def test_a_lost_answer_to_a_create_is_not_retried_but_puts_and_deletes_are(
    live_server: LiveServer, client: Client, token: str
) -> None:
    lost = {0, 1, 2, 4}  # the indexes of the requests whose answer the proxy loses (502)
    day, semaphore, event_name = unique("day"), unique("sem"), unique("dayClosed")
    with (
        FlakyProxy(live_server.url, lambda _seen, index: index in lost) as proxy,
        Client(proxy.url, token, retries=3, backoff_seconds=FAST) as flaky,
    ):
        with pytest.raises(ApiError) as task_lost:  # 0: the server made the task
            flaky.create_task("ECHO_DATE", {"date": day})
        assert task_lost.value.status_code == 502
        body = echo_config(event_name)
        with pytest.raises(ApiError) as config_lost:  # 1: the server stored the config
            flaky.create_config(body)
        assert config_lost.value.status_code == 502
        assert len(proxy.seen) == 2  # neither was sent again

        assert flaky.set_semaphore(semaphore, 4)["capacity"] == 4  # 2 lost, 3 answered
        [config] = client.list_configs(name=body["name"])
        flaky.delete_config(config["_id"])  # 4 lost, 5 answers 404: the first one did it
        assert [s.method for s in proxy.seen] == ["POST", "POST", "PUT", "PUT", "DELETE", "DELETE"]

    made = client.list_tasks(type="ECHO_DATE", limit=1000)
    assert [t["params"] for t in made].count({"date": day}) == 1
    assert client.list_configs(name=body["name"]) == []
    assert client.get_semaphore(semaphore)["capacity"] == 4
