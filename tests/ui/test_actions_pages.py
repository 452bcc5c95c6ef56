"""The write actions' markup through the app (TestClient), on every store: which buttons a
page offers, that they start disabled (the script enables them once a token is kept), and
that an event's params in a button's JSON body cannot break out of the attribute."""

from __future__ import annotations

import html as html_lib
import json
import re

from conftest import Api
from ui_helpers import create_config, react, run_one_task, send

from stepd.domain.configs import READ_ONLY

EVIL = "</script><script>alert('x')</script>\"' onclick=alert(1) x='"


def page(api: Api, url: str) -> str:
    response = api.client.get(url)
    assert response.status_code == 200, (url, response.text[:500])
    return response.text


def button(html: str, button_id: str) -> dict[str, str]:
    """The attributes of the <button id=...> (values unescaped as a browser would)."""
    match = re.search(rf'<button type="button" id="{button_id}"(.*?)>', html, re.S)
    assert match, f"no button {button_id}"
    pairs = re.findall(r"([\w-]+)=(?:\"([^\"]*)\"|'([^']*)')", match.group(1))
    attrs = {key: html_lib.unescape(double or single) for key, double, single in pairs}
    attrs["disabled"] = "yes" if re.search(r"\sdisabled\b", match.group(1)) else "no"
    return attrs


def test_the_story_offers_reject_and_resend_with_the_events_own_body(api: Api) -> None:
    event_id = send(api, "evilEvent", note=EVIL, n=3)
    html = page(api, f"/ui/events/{event_id}")
    assert "<script>alert" not in html
    reject = button(html, "reject-event")
    assert reject["data-post"] == "/api/v1/reject_event"
    assert json.loads(reject["data-body"]) == {"id": event_id}
    assert reject["disabled"] == "yes" and event_id in reject["data-confirm"]
    resend = button(html, "resend-event")
    assert resend["data-post"] == "/api/v1/events" and resend["data-then"] == "story"
    assert json.loads(resend["data-body"]) == {
        "events": [{"name": "evilEvent", "params": {"note": EVIL, "n": 3}}]
    }
    assert resend["disabled"] == "yes"
    assert "Sign in with a token" in html


def test_a_rejected_event_offers_no_reject(api: Api) -> None:
    event_id = send(api, "toReject", date="2019-01-01")
    response = api.client.post("/api/v1/reject_event", json={"id": event_id}, headers=api.auth)
    assert response.status_code == 200, response.text
    html = page(api, f"/ui/events/{event_id}")
    assert 'id="reject-event"' not in html
    assert 'id="resend-event"' in html and "REJECTED" in html


def test_a_waiting_task_offers_stop_and_a_finished_one_restart(api: Api) -> None:
    create_config(api, "echo-on-go", {"name": "go", "params": {"date": "~"}}, task_type="ECHO_DATE")
    send(api, "go", date="2019-01-01")
    react(api.store)
    listed = api.client.get("/api/v1/tasks", params={"type": "ECHO_DATE"}).json()["result"]
    (waiting,) = listed
    html = page(api, f"/ui/tasks/{waiting['id']}")
    stop = button(html, "stop-task")
    assert stop["data-post"] == f"/api/v1/tasks/{waiting['id']}/stop"
    assert stop["disabled"] == "yes"
    assert 'id="restart-task"' not in html

    done = run_one_task(api.store, "done\n")
    assert done == waiting["id"]
    html = page(api, f"/ui/tasks/{done}")
    restart = button(html, "restart-task")
    assert restart["data-post"] == f"/api/v1/tasks/{done}/restart"
    assert 'id="stop-task"' not in html


def test_every_page_has_the_token_box_and_a_message_line(api: Api) -> None:
    for url in ("/ui/events", "/ui/tasks", "/ui/configs", "/ui/semaphores"):
        html = page(api, url)
        assert 'id="token-form"' in html and 'type="password"' in html, url
        assert 'id="ui-message"' in html and 'role="alert"' in html, url


def test_the_config_page_offers_its_writable_fields_as_json(api: Api) -> None:
    evil = "</textarea><script>alert('x')</script>"
    config_id = create_config(
        api, "editable", {"name": "go", "params": {"date": "~"}}, description=evil
    )
    html = page(api, f"/ui/configs/{config_id}")
    assert "<script>alert" not in html
    match = re.search(r'<textarea id="config-json"[^>]*>(.*?)</textarea>', html, re.S)
    assert match
    body = json.loads(html_lib.unescape(match.group(1)))
    stored = api.client.get(f"/api/v1/configs/{config_id}").json()["result"]
    assert body["description"] == evil
    # the writable fields: not the read-only ones (identity, history, the pause)
    assert body == {k: v for k, v in stored.items() if k not in READ_ONLY}
    # What the page offers is what PUT takes back: saving it unchanged works.
    response = api.client.put(f"/api/v1/configs/{config_id}", json=body, headers=api.auth)
    assert response.status_code == 200, response.text
    save = button(html, "save-config")
    assert save["data-post"] == f"/api/v1/configs/{config_id}" and save["data-method"] == "PUT"
    assert save["data-body-from"] == "config-json" and save["disabled"] == "yes"
