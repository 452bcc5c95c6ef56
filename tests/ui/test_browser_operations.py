"""Day-to-day operations in a real browser (issue 11): pausing and resuming a config and
running it now from its page, and rerunning a task with new params from the task page.

The same fixtures as test_browser.py (a live `stepd serve` per store, headless Chromium);
what a page does is checked in the browser, what it wrote through the API.
"""

# The fixtures are test_browser.py's, imported by name: a test's parameter "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import json
import time
from typing import Any

from conftest import LiveServer
from test_browser import (  # noqa: F401  (the fixtures are used by name)
    PERSON,
    browser,
    click_and_confirm,
    client,
    person,
    person_token,
    server,
    shown_message,
    sign_in,
    unique,
    wait_for,
)

from stepd.client import Client

FINISHED = {"SUCCESS", "FAILURE", "EXCEPTION", "TIMEOUT", "STOPPED"}


def main_text(browser: Any) -> str:
    text: str = browser.find_element("css selector", "main").text
    return text


def set_value(browser: Any, element_id: str, text: str) -> None:
    box = browser.find_element("id", element_id)
    browser.execute_script("arguments[0].value = arguments[1];", box, text)


def finished(client: Client, task_id: int, attempts: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        task = client.get_task(task_id)
        if task["status"] in FINISHED and task["attempts"] >= attempts:
            return task
        assert time.monotonic() < deadline, f"task {task_id} did not finish: {task}"
        time.sleep(0.1)


def daily_config(person: Client) -> str:
    return person.create_config(
        {
            "name": unique("daily"),
            "task_type": "ECHO_DATE",
            "event_deps": [{"name": unique("never"), "params": {"date": "~", "env": "prod"}}],
            "priority": 3,
        }
    )


def test_a_config_is_paused_and_resumed_from_its_page(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    config_id = daily_config(person)
    sign_in(browser, f"{server.url}/ui/configs/{config_id}", person_token)
    question = click_and_confirm(browser, "disable-config")
    assert "Pause config" in question and "never fire it" in question
    wait_for(browser, lambda b: b.find_elements("id", "enable-config"), "the resume button")
    paused = browser.find_element("id", "config-disabled").text
    assert f"paused by {PERSON}" in paused, paused
    assert client.get_config(config_id)["disabled"] is True
    assert "disabled" in main_text(browser)  # the history's entry

    click_and_confirm(browser, "enable-config")
    wait_for(browser, lambda b: b.find_elements("id", "disable-config"), "the pause button")
    assert browser.find_element("id", "config-disabled").text == "no"
    assert client.get_config(config_id)["disabled"] is False


def test_a_config_is_run_now_from_its_page_after_a_dry_run(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    config_id = daily_config(person)
    sign_in(browser, f"{server.url}/ui/configs/{config_id}", person_token)
    browser.find_element("css selector", "#config-run summary").click()
    body = json.loads(browser.find_element("id", "run-json").get_attribute("value"))
    assert body == {"params": {"date": ""}}  # the free params to fill, and only those

    set_value(browser, "run-json", json.dumps({"params": {}}))
    click_and_confirm(browser, "run-config")
    message = shown_message(browser)
    assert message.startswith("HTTP 400 invalid_input: params lacks 'date'"), message
    assert message.endswith("(field: params.date)"), message

    set_value(browser, "run-json", json.dumps({"params": {"date": "2019-01-01"}}))
    browser.find_element("id", "dry-run-config").click()  # a dry run asks nothing
    plan = wait_for(
        browser,
        lambda b: (
            b.find_element("id", "run-plan").is_displayed()
            and b.find_element("id", "run-plan").text
        ),
        "the dry run's plan",
    )
    planned = json.loads(plan)
    assert planned["dry_run"] is True and planned["task"]["params"] == {"date": "2019-01-01"}
    assert planned["task"]["priority"] == 3 and planned["task"]["type"] == "ECHO_DATE"
    assert client.list_tasks(config_id=config_id) == []

    question = click_and_confirm(browser, "run-config")
    assert "Run config" in question
    wait_for(browser, lambda b: "/ui/tasks/" in b.current_url, "the new task's page")
    [task] = client.list_tasks(config_id=config_id)
    assert browser.current_url.endswith(f"/ui/tasks/{task['id']}")
    manual = wait_for(browser, lambda b: b.find_element("id", "task-manual").text, "the origin")
    assert manual == f"run by hand by {PERSON}"


def test_a_task_is_rerun_with_new_params_from_its_page(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    task = person.create_task("ECHO_DATE", {"date": "2019-01-01"})
    assert finished(client, task["id"])["status"] == "SUCCESS"
    sign_in(browser, f"{server.url}/ui/tasks/{task['id']}", person_token)
    browser.find_element("css selector", "#task-rerun summary").click()
    body = json.loads(browser.find_element("id", "restart-json").get_attribute("value"))
    assert body == {"params": {"date": "2019-01-01"}}

    set_value(browser, "restart-json", json.dumps({"params": "2019-01-02"}))
    click_and_confirm(browser, "restart-task-with-params")
    message = shown_message(browser)
    assert message.startswith("HTTP 400 invalid_input: params must be an object"), message
    assert client.get_task(task["id"])["attempts"] == 1

    set_value(browser, "restart-json", json.dumps({"params": {"date": "2019-01-02"}}))
    question = click_and_confirm(browser, "restart-task-with-params")
    assert "again with these params" in question
    again = finished(client, task["id"], attempts=2)
    assert again["status"] == "SUCCESS" and again["params"] == {"date": "2019-01-02"}
    browser.get(f"{server.url}/ui/tasks/{task['id']}")
    ran = [cell.text for cell in browser.find_elements("css selector", "td.attempt-params")]
    assert ran == ["date=2019-01-01", "date=2019-01-02"], ran


def test_a_backfill_is_planned_started_followed_and_cancelled_from_the_pages(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    config_id = daily_config(person)
    sign_in(browser, f"{server.url}/ui/configs/{config_id}", person_token)
    browser.find_element("css selector", "#config-backfill summary").click()
    body = json.loads(browser.find_element("id", "backfill-json").get_attribute("value"))
    assert body == {"params": {"date": {"from": "", "to": ""}}, "max_in_flight": 4}

    january = {"date": {"from": "2019-01-01", "to": "2019-01-31"}}
    set_value(browser, "backfill-json", json.dumps({"params": january, "max_in_flight": 1}))
    browser.find_element("id", "dry-run-backfill").click()
    plan = wait_for(
        browser,
        lambda b: (
            b.find_element("id", "backfill-plan").is_displayed()
            and b.find_element("id", "backfill-plan").text
        ),
        "the backfill's plan",
    )
    assert json.loads(plan)["bindings"] == 31
    assert client.list_backfills(config_id=config_id) == []

    question = click_and_confirm(browser, "start-backfill")
    assert "Start this backfill" in question
    wait_for(browser, lambda b: "/ui/backfills/" in b.current_url, "the backfill's page")
    [started] = client.list_backfills(config_id=config_id)
    assert browser.current_url.endswith(f"/ui/backfills/{started['id']}")
    assert "running" in browser.find_element("id", "backfill-state").text
    # The page follows it (data-live), and the task page links back to it.
    wait_for(browser, lambda b: b.find_elements("css selector", "a[href^='/ui/tasks/']"), "a task")

    click_and_confirm(browser, "cancel-backfill")
    wait_for(
        browser,
        lambda b: "cancelled" in b.find_element("id", "backfill-state").text,
        "the cancelled state",
    )
    assert client.get_backfill(started["id"])["state"] == "cancelled"
    task_id = client.list_tasks(config_id=config_id)[0]["id"]
    browser.get(f"{server.url}/ui/tasks/{task_id}")
    assert f"backfill {started['id']}" in browser.find_element("id", "task-backfill").text
    browser.get(f"{server.url}/ui/backfills")
    assert str(started["id"]) in main_text(browser) and "cancelled" in main_text(browser)
