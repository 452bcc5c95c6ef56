"""The web UI's pages through the app (TestClient), on every store: what each page shows,
that untrusted params are escaped, and the error pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from conftest import Api, make_token, serving
from crowded_story import EVENT_PARAMS, crowd
from fastapi.testclient import TestClient
from ui_helpers import CRYPTA, HUMAN_MATCHING, SOUP, create_config, react, run_one_task, send

from stepd.domain.tasks import TaskStatus
from stepd.store import runs
from stepd.timeutil import utcnow

SOUP_PARAMS = {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable", "date": "~"}
SOUP_DEP = {"name": CRYPTA, "params": SOUP_PARAMS}
CHAIN_DEP = {"name": "taskEvent", "params": {"taskType": HUMAN_MATCHING, "taskStatus": "SUCCESS"}}


def page(api: Api, url: str, status: int = 200) -> str:
    response = api.client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return response.text


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, spaces squeezed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def chain(api: Api) -> dict[str, object]:
    """Soup SUCCESS fires human matching (run: SUCCESS, with a log), whose status event fires
    a second config; one more config on the same event does not match (environment)."""
    fired = create_config(api, "human-matching-after-soup", SOUP_DEP)
    create_config(api, "after-matching", CHAIN_DEP, task_type="ECHO_DATE")
    unmatched = create_config(
        api,
        "soup-in-testing",
        {"name": CRYPTA, "params": {**SOUP_PARAMS, "environment": "testing"}},
    )
    event_id = send(
        api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="2019-01-01"
    )
    react(api.store)
    task_id = run_one_task(api.store, "matching humans for 2019-01-01\ndone\n")
    react(api.store)
    return {"event": event_id, "task": task_id, "fired": fired, "unmatched": unmatched}


def test_root_redirects_to_the_events_page(api: Api) -> None:
    response = api.client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"
    response = api.client.get("/")
    assert response.status_code == 200
    assert str(response.url).endswith("/ui/events")
    assert "<h1>Events</h1>" in response.text


def test_static_files_are_served_by_stepd_itself(api: Api) -> None:
    css = api.client.get("/ui/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = api.client.get("/ui/static/app.js")
    assert js.status_code == 200 and "DOMParser" in js.text
    assert api.client.get("/ui/static/../routes.py").status_code == 404
    assert api.client.get("/ui/static/nothing.css").status_code == 404
    html = page(api, "/ui/events")
    # Nothing is loaded from elsewhere: every src and href is local.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#", "?")), url


def test_the_story_page_shows_the_chain(api: Api, chain: dict[str, object]) -> None:
    html = page(api, f"/ui/events/{chain['event']}")
    text = text_of(html)
    assert "human-matching-after-soup" in text
    assert "fired" in text
    assert f'href="/ui/tasks/{chain["task"]}"' in html
    assert "SUCCESS" in text
    assert "date=2019-01-01" in text.replace(" = ", "=").replace("= ", "=").replace(" =", "=")
    # The config that looks related and did not fire says why.
    assert "soup-in-testing" in text and "not matched" in text
    assert "environment" in text and "testing" in text and "stable" in text
    # The chain: the task's status event, and the config it fired in turn.
    assert "taskEvent" in text
    assert "after-matching" in text and "ECHO_DATE" in text
    assert f'href="/ui/tasks/{chain["task"]}#logs"' in html
    # The chained task has not run yet: the page follows the story until it ends.
    assert 'data-live="2"' in html and "ENQUEUED" in text
    run_one_task(api.store, "processing 2019-01-01\n")
    react(api.store)
    html = page(api, f"/ui/events/{chain['event']}")
    assert 'data-live="2"' not in html and "ENQUEUED" not in html


def test_the_story_page_leads_with_the_fired_config_and_collapses_the_rest(api: Api) -> None:
    def create(body: dict[str, Any]) -> str:
        fields = {k: v for k, v in body.items() if k not in ("name", "event_deps")}
        return create_config(api, body["name"], *body["event_deps"], **fields)

    ids = crowd(create, CRYPTA, "crowd", HUMAN_MATCHING)
    event_id = send(api, CRYPTA, **EVENT_PARAMS, date="2019-01-01")
    react(api.store)
    html = page(api, f"/ui/events/{event_id}")
    before_groups, groups = html.split('<details class="config-group"', 1)
    # The answer in full, in order: fired, waiting, the near misses, the disabled one.
    cards = re.findall(r'href="/ui/configs/(\w+)"><strong>', before_groups)
    assert cards == ids.shown
    assert before_groups.count("near miss: one param differs") == 2
    # The other 25 are two collapsed lines (closed <details>), their cards inside.
    lines = re.findall(r"<summary[^>]*>(.*?)</summary>", groups, re.S)
    assert [unescape(text_of(line)).strip() for line in lines[:2]] == [
        "24 configs expect another taskType: OTHER_00, OTHER_01, OTHER_02, OTHER_03, OTHER_04, "
        "… show",
        "1 config expects another environment: testing show",
    ]
    assert groups.count('<details class="config-group"') == 1  # and the first, split on
    assert all(" open" not in tag for tag in re.findall(r"<details[^>]*>", html))
    assert all(f'href="/ui/configs/{i}"' in groups for i in [*ids.other_types, ids.two_off])


def test_a_story_still_changing_is_live(api: Api) -> None:
    create_config(api, "human-matching-after-soup", SOUP_DEP)
    event_id = send(
        api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="2019-01-02"
    )
    html = page(api, f"/ui/events/{event_id}")
    assert "the reactor has not evaluated it yet" in html
    assert 'data-live="2"' in html
    react(api.store)
    html = page(api, f"/ui/events/{event_id}")
    assert "ENQUEUED" in html and 'data-live="2"' in html


def test_a_waiting_config_names_the_missing_dependency(api: Api) -> None:
    create_config(
        api,
        "needs-two-logs",
        {"name": "day_closed", "params": {"logtype": "access-log", "date": "~"}},
        {"name": "day_closed", "params": {"logtype": "redir-log", "date": "~"}},
    )
    event_id = send(api, "day_closed", logtype="access-log", date="2016-01-01")
    react(api.store)
    text = text_of(page(api, f"/ui/events/{event_id}"))
    assert "needs-two-logs" in text and "waiting" in text
    assert "waits for" in text and "redir-log" in text


def test_the_task_page_shows_params_status_attempts_and_log(
    api: Api, chain: dict[str, object]
) -> None:
    html = page(api, f"/ui/tasks/{chain['task']}")
    text = text_of(html)
    assert HUMAN_MATCHING in text
    assert "SUCCESS" in text and "badge ok" in html
    assert "2019-01-01" in text
    assert "matching humans for 2019-01-01" in text
    assert "ui-test-worker" in text  # the attempts table
    assert f'href="/ui/events/{chain["event"]}"' in html  # triggered by
    # The config that made it by name (its id beside), and how long the attempt took.
    assert f'href="/ui/configs/{chain["fired"]}">human-matching-after-soup</a>' in html
    assert re.search(r'id="task-duration">\d+(\.\d)? (ms|s)<', html), html
    assert 'id="logs"' in html
    log = api.client.get(f"/ui/tasks/{chain['task']}/log.txt")
    assert log.status_code == 200 and log.text == "matching humans for 2019-01-01\ndone\n"


def test_a_failed_task_is_red(api: Api) -> None:
    create_config(api, "human-matching-after-soup", SOUP_DEP)
    send(api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", environment="stable", date="2019-01-03")
    react(api.store)
    task_id = run_one_task(api.store, "boom\n", TaskStatus.FAILURE)
    html = page(api, f"/ui/tasks/{task_id}")
    assert '<span class="badge bad">FAILURE</span>' in html
    html = page(api, "/ui/tasks?status=FAILURE")
    assert f'href="/ui/tasks/{task_id}"' in html
    assert f'href="/ui/tasks/{task_id}"' not in page(api, "/ui/tasks?status=SUCCESS")


def test_the_events_page_lists_newest_first_and_filters(api: Api) -> None:
    first = send(api, CRYPTA, date="2019-01-01", environment="stable")
    second = send(api, CRYPTA, date="2019-01-02", environment="stable")
    other = send(api, "otherEvent", date="2019-01-02")
    html = page(api, "/ui/events")
    assert html.index(other) < html.index(second) < html.index(first)
    assert 'data-live="2"' in html
    html = page(api, f"/ui/events?name={CRYPTA}")
    assert first in html and second in html and other not in html
    html = page(api, "/ui/events?params=date%3D2019-01-02")
    assert second in html and other in html and first not in html
    html = page(api, f"/ui/events?name={CRYPTA}&params=date%3D2019-01-02+environment%3Dstable")
    assert second in html and first not in html and other not in html
    html = page(api, "/ui/events?state=REJECTED")
    assert "No events match this filter" in html


def test_the_events_list_says_what_each_fired_and_leaves_the_clock_out(
    api: Api, chain: dict[str, object]
) -> None:
    admin = Api(client=api.client, store=api.store, token=make_token(api.store, "ops", admin=True))
    tick = send(admin, "clock", scale="1m", timestamp="2019-01-01T00:01:00Z")  # (stepd's own)
    cron = send(admin, "schedule", schedule="nightly", timestamp="2019-01-01T06:00:00Z")
    waiting = send(api, "nobodyWaitsForThis", date="2019-01-01")
    react(api.store)
    html = page(api, "/ui/events")
    assert tick not in html and cron not in html
    assert "clock's and the schedules' events are left out" in text_of(html)
    row = html[html.index(f'data-id="{chain["event"]}"') :].split("</tr>")[0]
    assert f'href="/ui/tasks?event_id={chain["event"]}">1 task</a>' in row
    assert "no task" in html[html.index(f'data-id="{waiting}"') :].split("</tr>")[0]
    # Asked for, or named, the clock's events are listed.
    assert tick in page(api, "/ui/events?clock=1") and cron in page(api, "/ui/events?clock=1")
    assert tick in page(api, "/ui/events?name=clock")
    assert cron in page(api, "/ui/events?name=schedule")


def test_the_event_and_task_lists_take_a_time_range(api: Api) -> None:
    event_id = send(api, CRYPTA, date="2019-01-01")
    for since, shown in (("10m", True), ("2019-01-01", True), ("2099-01-01", False)):
        assert (event_id in page(api, f"/ui/events?since={since}")) is shown, since
    html = page(api, "/ui/events?since=2h&until=1h")
    assert event_id not in html and "No events match this filter" in html
    assert 'value="2h"' in html  # the form keeps what was typed (and the pager's links it)
    made = api.client.post(
        "/api/v1/tasks", json={"type": "ECHO_DATE", "params": {"date": "x"}}, headers=api.auth
    )
    task_link = f'/ui/tasks/{made.json()["result"]["id"]}"'
    assert task_link in page(api, "/ui/tasks?since=1d")
    assert task_link not in page(api, "/ui/tasks?until=2019-01-01")
    for url in ("/ui/events?since=yesterday", "/ui/tasks?until=soon"):
        assert "neither a time ago" in text_of(page(api, url, 400))


def test_the_events_page_pages_by_fifty(api: Api) -> None:
    response = api.client.post(
        "/api/v1/events",
        json={"events": [{"name": "many", "params": {"i": i}} for i in range(60)]},
        headers=api.auth,
    )
    ids = response.json()["ids"]
    html = page(api, "/ui/events")
    assert ids[-1] in html and ids[10] in html and ids[9] not in html
    assert "skip=50" in html and "older" in html
    html = page(api, "/ui/events?skip=50")
    assert ids[9] in html and ids[0] in html and ids[10] not in html
    assert 'data-live="2"' not in html  # an older page does not move


def test_bad_filters_are_a_400_page_that_says_why(api: Api) -> None:
    assert "not key=value" in page(api, "/ui/events?params=date", 400)
    assert "state must be one of" in page(api, "/ui/events?state=BOGUS", 400)
    assert "skip must be" in page(api, "/ui/events?skip=-1", 400)
    assert "unknown status" in page(api, "/ui/tasks?status=BOGUS", 400)


def test_a_malicious_param_is_shown_as_text(api: Api) -> None:
    evil = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    create_config(api, "evil-fires", {"name": "evil", "params": {"p": "~"}})
    event_id = send(api, "evil", p=evil, **{"<b>key</b>": evil})
    react(api.store)
    task_id = run_one_task(api.store, evil)
    for url in (
        "/ui/events",
        f"/ui/events?params=p%3D{evil}",
        f"/ui/events/{event_id}",
        f"/ui/tasks/{task_id}",
        "/ui/tasks",
    ):
        html = page(api, url)
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "<b>key</b>" not in html, url
        assert "&lt;script&gt;alert(" in html, url


def test_unknown_ids_are_404_pages(api: Api) -> None:
    html = page(api, "/ui/events/00000000000000000000ffff", 404)
    assert "no event with id" in html and "<h1>Not found</h1>" in html
    assert "no event with id" in page(api, "/ui/events/not-an-id", 404)
    assert "no task with id 999" in page(api, "/ui/tasks/999", 404)
    assert "task ids are integers" in page(api, "/ui/tasks/abc", 404)
    assert "no config with id" in page(api, "/ui/configs/00000000000000000000ffff", 404)


def test_the_search_box_goes_to_an_event_or_a_task(api: Api) -> None:
    event_id = send(api, CRYPTA, date="2019-01-01")
    response = api.client.get(f"/ui/find?id=+{event_id}+", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/ui/events/{event_id}"
    response = api.client.get("/ui/find?id=42", follow_redirects=False)
    assert response.headers["location"] == "/ui/tasks/42"
    assert "neither an event id" in page(api, "/ui/find?id=hello", 404)


def test_the_configs_pages_filter_by_author_and_show_one(
    api: Api, chain: dict[str, object]
) -> None:
    html = page(api, "/ui/configs")
    assert "human-matching-after-soup" in html and "soup-in-testing" in html
    assert "robot-crypta" in html
    assert "human-matching-after-soup" not in page(api, "/ui/configs?author=someone-else")
    assert "human-matching-after-soup" in page(api, "/ui/configs?author=robot-crypta")
    html = page(api, f"/ui/configs/{chain['fired']}")
    text = text_of(html)
    assert "human-matching-after-soup" in text and HUMAN_MATCHING in text
    assert "cryptaTaskEvent(" in text and "date=~" in text
    assert f'href="/ui/tasks/{chain["task"]}"' in html  # its recent tasks
    assert "create" in text  # the history


def test_the_semaphores_page_shows_use_and_capacity(api: Api) -> None:
    assert "No semaphores" in page(api, "/ui/semaphores")
    response = api.client.put("/api/v1/semaphores/yt-hahn", json={"capacity": 3}, headers=api.auth)
    assert response.status_code == 200, response.text
    text = text_of(page(api, "/ui/semaphores"))
    assert "yt-hahn" in text and "0 / 3" in text


def test_the_semaphores_page_says_who_waits_and_why(api: Api) -> None:
    room = api.client.put("/api/v1/semaphores/closed", json={"capacity": 1}, headers=api.auth)
    assert room.status_code == 200, room.text
    for _ in range(2):
        made = api.client.post(
            "/api/v1/tasks",
            json={"type": "ECHO_DATE", "params": {"date": "x"}, "semaphores": [{"name": "closed"}]},
            headers=api.auth,
        )
        assert made.status_code == 200, made.text
    # Closed after the tasks were made (a pause by hand): the page must say why they wait.
    closed = api.client.put("/api/v1/semaphores/closed", json={"capacity": 0}, headers=api.auth)
    assert closed.status_code == 200, closed.text
    with api.store.write() as conn:  # a worker looks at the queue: both wait for room
        assert runs.claim(conn, "ui-test-worker", utcnow(), limit=5) == []
    row = page(api, "/ui/semaphores").split("closed</td>")[1].split("</tr>")[0]
    assert '<a href="/ui/tasks?status=WAIT_MUTEX">2 tasks</a>' in row
    assert "capacity 0: no task can run until it is raised" in text_of(row)
    assert "stepd semaphores set closed N" in text_of(row)


def test_the_semaphores_page_links_the_holders_and_the_first_waiters(api: Api) -> None:
    api.client.put("/api/v1/semaphores/linked", json={"capacity": 1}, headers=api.auth)
    made = []
    for type_ in ("HOLDER_TYPE", "WAITER_TYPE", "WAITER_TYPE"):
        response = api.client.post(
            "/api/v1/tasks",
            json={"type": type_, "semaphores": [{"name": "linked"}]},
            headers=api.auth,
        )
        assert response.status_code == 200, response.text
        made.append(response.json()["result"]["id"])
    with api.store.write() as conn:
        (holder,) = runs.claim(conn, "ui-test-worker", utcnow(), limit=5)
    assert holder.id == made[0]
    row = page(api, "/ui/semaphores").split('data-name="linked"')[1].split("</tr>")[0]
    holders = row.split('class="semaphore-holders"')[1].split("</td>")[0]
    assert f'<a href="/ui/tasks/{made[0]}">{made[0]}</a> HOLDER_TYPE' in holders
    assert "since" in text_of(holders)
    waiting = row.split('class="semaphore-waiting"')[1].split("</td>")[0]
    assert '<a href="/ui/tasks?status=WAIT_MUTEX">2 tasks</a>' in waiting
    for task_id in made[1:]:
        assert f'<a href="/ui/tasks/{task_id}">{task_id}</a> WAITER_TYPE' in waiting
    assert "they run as the holders finish" in text_of(waiting)


def test_the_schedules_page_lists_each_schedule_and_links_its_events(api: Api) -> None:
    assert "No schedules" in page(api, "/ui/schedules")
    body = {"name": "nightly", "cron": "0 6 * * 1-5", "timezone": "Europe/Moscow"}
    response = api.client.post(
        "/api/v1/schedules", json={**body, "params": {"env": "<b>"}}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    next_tick = response.json()["result"]["next_tick"]
    html = page(api, "/ui/schedules")
    text = text_of(html)
    assert "nightly" in text and "0 6 * * 1-5" in text and "Europe/Moscow" in text
    assert next_tick[:10] in text
    assert "env=&lt;b&gt;" in html and "<b>" not in html  # escaped
    assert 'href="/ui/events?name=schedule&amp;params=schedule%3Dnightly"' in html
    paused = api.client.put("/api/v1/schedules/nightly", json={"enabled": False}, headers=api.auth)
    assert paused.status_code == 200, paused.text
    assert "disabled" in text_of(page(api, "/ui/schedules"))


@pytest.fixture
def private(api: Api) -> Iterator[TestClient]:
    """A second app on the same store, run with --private-reads."""
    settings = api.client.app.state.stepd.settings.replace(private_reads=True)  # type: ignore[attr-defined]
    with serving(settings, api.store) as client:
        yield client


def test_private_reads_show_a_page_that_says_a_token_is_needed(
    api: Api, private: TestClient
) -> None:
    event_id = send(api, CRYPTA, date="2019-01-01")
    for url in ("/ui/events", f"/ui/events/{event_id}", "/ui/tasks", "/ui/configs"):
        response = private.get(url)
        assert response.status_code == 401, url
        assert "--private-reads" in response.text and "A token is needed" in response.text
        # A proxy that adds the header gets the page.
        assert private.get(url, headers=api.auth).status_code == 200, url
    assert private.get("/ui/static/style.css").status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_duration_reads_as_a_person_says_it(db_url: str) -> None:
    from stepd.ui.routes import _duration

    start = "2019-01-01T00:00:00Z"
    cases = {
        "2019-01-01T00:00:00.85Z": "850 ms", "2019-01-01T00:00:12.34Z": "12.3 s",
        "2019-01-01T00:04:05Z": "4 min 05 s", "2019-01-01T02:03:59Z": "2 h 03 min",
    }  # fmt: skip
    for end, said in cases.items():
        assert _duration(start, end) == said
    assert _duration(None, None) is None
