"""The client parses the task and semaphore answers into their shapes (stepd.shapes): what
it returns is the server's JSON unchanged, and an answer that does not fit is a ClientError
naming the key, not a KeyError in the caller."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import LiveServer, served, server_token

from stepd.client import ApiError, Client, ClientError


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # No workers: the task stays as it was made while the answers are compared.
    with served(request.param, tmp_path_factory.mktemp("shapes"), "--executor", "none") as server:
        yield server


def test_the_client_returns_the_servers_json_unchanged(live_server: LiveServer) -> None:
    token = server_token(live_server)
    with Client(live_server.url, token, retries=1) as c:
        created = c.create_task("HAND_MADE", {"date": "2020-01-01"}, kill_timeout=9)
        task_id = created["id"]
        c.set_semaphore("shapes-sem", 4)

        raw = httpx.get(f"{live_server.url}/api/v1/tasks/{task_id}").json()["result"]
        assert c.get_task(task_id) == raw and list(c.get_task(task_id)) == list(raw)
        assert "trigger" not in c.get_task(task_id)  # absent stays absent
        listed = httpx.get(f"{live_server.url}/api/v1/tasks").json()["result"]
        assert c.list_tasks() == listed
        raw_sem = httpx.get(f"{live_server.url}/api/v1/semaphores/shapes-sem").json()["result"]
        assert c.get_semaphore("shapes-sem") == raw_sem
        raw_log = httpx.get(f"{live_server.url}/api/v1/tasks/{task_id}/logs").json()
        assert c.task_logs(task_id) == raw_log["result"]
        assert c.stop_task(task_id) == {"id": task_id, "status": "STOPPED", "stop_requested": True}
        with pytest.raises(ApiError):
            c.stop_task(task_id)  # ended: the 409 is still the server's error


class _Misshapen(BaseHTTPRequestHandler):
    """A server whose task has an id that is not a number."""

    def do_GET(self) -> None:
        body = json.dumps({"result": {"id": "one", "type": "T"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_answer_that_does_not_fit_its_shape_is_a_client_error_naming_the_key() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Misshapen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with Client(url, retries=0) as c, pytest.raises(ClientError) as raised:
            c.get_task(1)
    finally:
        server.shutdown()
        server.server_close()
    assert not isinstance(raised.value, ApiError)
    assert raised.value.field == "id" and "TaskDetail" in raised.value.message
