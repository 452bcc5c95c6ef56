"""The config page (issues 11 and 13): every version as a field-by-field diff, the run
history (status, duration, binding, paged) with the success rate of the last 30 days, and a
deleted config's tombstone, still linked from its story and its task; on every store."""

from __future__ import annotations

import html as htmllib
import re

from conftest import Api
from ui_helpers import CRYPTA, HUMAN_MATCHING, SOUP, create_config, react, run_one_task, send

from stepd.domain.tasks import TaskStatus

SOUP_DEP = {"name": CRYPTA, "params": {"taskType": SOUP, "taskStatus": "SUCCESS", "date": "~"}}


def page(api: Api, url: str, status: int = 200) -> str:
    response = api.client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:500])
    return response.text


def text_of(html: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def section(html: str, element_id: str) -> str:
    """The element with `element_id` (a table or a paragraph), roughly."""
    start = html.index(f'id="{element_id}"')
    tag = html.rfind("<", 0, start)
    name = html[tag + 1 : start].split()[0]
    return html[tag : html.index(f"</{name}>", start)]


def _fire(api: Api, date: str) -> None:
    send(api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date=date)
    react(api.store)


def test_every_version_shows_its_change_field_by_field(api: Api) -> None:
    config_id = create_config(api, "versions", SOUP_DEP, priority=0)
    body = {
        "name": "versions", "event_deps": [SOUP_DEP], "task_type": HUMAN_MATCHING, "priority": 5,
        "task_params": {"limit": 20, "paths": [f"//home/crypta/{i}" for i in range(4)]},
    }  # fmt: skip
    assert api.client.put(f"/api/v1/configs/{config_id}", json=body, headers=api.auth).is_success
    api.client.post(f"/api/v1/configs/{config_id}/disable", headers=api.auth)

    versions = section(page(api, f"/ui/configs/{config_id}"), "config-versions")
    rows = re.findall(r'<tr class="version-(\w+)"', versions)
    assert rows == ["disabled", "updated", "created"]  # newest first
    shown = text_of(versions)
    assert "priority: 0 -> 5" in shown  # short: old -> new on one line, as sync prints
    assert "disabled: false -> true" in shown
    # A long value is a diff of its JSON: its new lines marked, nothing of it as raw JSON.
    assert '<span class="diff-field">task_params:</span>' in versions
    assert re.search(
        r'<span class="diff-new">\s+\+\s+"limit": 20,</span>', htmllib.unescape(versions)
    )
    assert '"old":' not in versions
    assert "the first version" in shown


def test_the_run_history_pages_every_task_with_duration_binding_and_success_rate(
    api: Api,
) -> None:
    config_id = create_config(api, "runs", SOUP_DEP)
    for day in ("2019-01-01", "2019-01-02", "2019-01-03"):
        _fire(api, day)
    run_one_task(api.store, "ok\n")  # the oldest first: SUCCESS
    run_one_task(api.store, "boom\n", TaskStatus.FAILURE)

    html = page(api, f"/ui/configs/{config_id}")
    rate = text_of(section(html, "config-success-rate"))
    assert "50% succeeded in the last 30 days: 1 of 2 finished tasks, 1 FAILURE" in rate
    runs = section(html, "config-runs")
    rows = re.findall(r"<tr><td><a href=\"/ui/tasks/(\d+)\">", runs)
    assert len(rows) == 3 and rows == sorted(rows, key=int, reverse=True)  # newest first
    shown = text_of(runs)
    for day in ("2019-01-01", "2019-01-02", "2019-01-03"):
        assert f"date = {day}" in shown  # each run's binding
    assert re.search(r"\d+ ms|\d+\.\d s", shown)  # the finished ones' durations
    assert "ENQUEUED" in shown and "SUCCESS" in shown and "FAILURE" in shown

    # Paged: from skip=50 on there is nothing, and a bad skip is a 400 naming it.
    assert "No tasks on this page" in page(api, f"/ui/configs/{config_id}?skip=50")
    assert "skip must be an integer" in page(api, f"/ui/configs/{config_id}?skip=x", 400)


def test_a_config_with_no_finished_task_says_so(api: Api) -> None:
    config_id = create_config(api, "quiet", SOUP_DEP)
    html = page(api, f"/ui/configs/{config_id}")
    assert "No task finished in the last 30 days" in text_of(section(html, "config-success-rate"))
    assert "No tasks yet" in text_of(section(html, "config-runs"))


def test_a_deleted_config_keeps_its_page_its_story_and_its_tasks_name(api: Api) -> None:
    config_id = create_config(api, "soon-gone", SOUP_DEP)
    event_id = send(api, CRYPTA, taskType=SOUP, taskStatus="SUCCESS", date="2019-01-01")
    react(api.store)
    task_id = run_one_task(api.store, "done\n")
    deleted = api.client.delete(f"/api/v1/configs/{config_id}", headers=api.auth)
    assert deleted.status_code == 200

    html = page(api, f"/ui/configs/{config_id}")
    assert "Deleted by robot-crypta" in text_of(section(html, "config-deleted"))
    assert 'id="config-actions"' not in html and 'id="config-edit"' not in html
    assert f'href="/ui/tasks/{task_id}"' in section(html, "config-runs")
    assert "100% succeeded" in text_of(section(html, "config-success-rate"))
    assert re.findall(r'<tr class="version-(\w+)"', html) == ["deleted", "created"]

    story = page(api, f"/ui/events/{event_id}")
    card = text_of(
        story[
            story.index('class="card config-card') : story.index(
                "</div>", story.index('class="card config-card')
            )
        ]
    )
    assert "soon-gone" in card and "fired" in card and "deleted by robot-crypta" in card
    assert f"no config depends on {CRYPTA}" not in text_of(story)
    task = text_of(section(page(api, f"/ui/tasks/{task_id}"), "task-config"))
    assert "soon-gone by robot-crypta v1" in task and "deleted" in task
    # An id that never was a config is still the plain 404 page.
    page(api, "/ui/configs/" + "0" * 23 + "f", 404)
