"""A running task's log pane follows the log in a real browser (issue 13): new lines
appear without a reload, from `GET /api/v1/tasks/{id}/logs?offset=N`, until the task ends.

The same fixtures as test_browser.py (a live `stepd serve` per store, headless Chromium).
"""

# The fixtures are test_browser.py's, imported by name: a test's parameter "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from conftest import LiveServer
from test_browser import (  # noqa: F401  (the fixtures are used by name)
    browser,
    client,
    server,
    unique,
    wait_for,
)

from stepd.client import Client

LINES = 12  # one every 0.4 s: about 5 s of a growing log


def _log(browser: Any) -> str:
    text: str = browser.execute_script("return document.getElementById('log').textContent;")
    return text


def test_a_running_tasks_log_shows_its_later_lines_without_a_reload(
    server: LiveServer, client: Client, browser: Any
) -> None:
    marker = unique("follow")
    task = client.create_task("UI_LINES", {"count": LINES, "marker": marker, "seconds": 0.4})
    browser.get(f"{server.url}/ui/tasks/{task['id']}")
    # A mark on this document: a reload would make a new one without it.
    browser.execute_script("window.stepdTestMark = 'same page';")
    box = browser.find_element("id", "log-follow")
    assert box.is_selected(), "follow is on by default while the task runs"
    last = f"{marker} line {LINES - 1:03d}"
    assert last not in _log(browser), "the page was opened after the task had ended"

    wait_for(browser, lambda b: last in _log(b), "the task's last line, appended")
    text = _log(browser)
    # Every line once, in order: appended from each offset, never twice.
    assert [line for line in text.splitlines() if marker in line] == [
        f"{marker} line {i:03d}" for i in range(LINES)
    ]
    assert browser.execute_script("return window.stepdTestMark;") == "same page"
    # It stops when the task ends, and says so.
    wait_for(
        browser,
        lambda b: b.find_element("id", "log").get_attribute("data-followed") == "SUCCESS",
        "the follow to stop with the task's end",
    )
    assert "the log is complete" in browser.find_element("id", "log-follow-note").text
    assert client.get_task(task["id"])["status"] == "SUCCESS"


def test_unticking_follow_stops_the_log_growing(
    server: LiveServer, client: Client, browser: Any
) -> None:
    marker = unique("paused")
    task = client.create_task("UI_LINES", {"count": LINES, "marker": marker, "seconds": 0.4})
    browser.get(f"{server.url}/ui/tasks/{task['id']}")
    browser.find_element("id", "log-follow").click()  # unticked: nothing is read
    wait_for(browser, lambda b: client.get_task(task["id"])["status"] == "SUCCESS", "the end")
    assert f"{marker} line {LINES - 1:03d}" not in _log(browser)
    browser.find_element("id", "log-follow").click()  # ticked again: the rest comes
    wait_for(browser, lambda b: f"{marker} line {LINES - 1:03d}" in _log(b), "the rest")


def test_an_ended_tasks_page_does_not_follow(
    server: LiveServer, client: Client, browser: Any
) -> None:
    marker = unique("ended")
    task = client.create_task("UI_LINES", {"count": 2, "marker": marker, "seconds": 0})
    wait_for(browser, lambda b: client.get_task(task["id"])["status"] == "SUCCESS", "the end")
    browser.get(f"{server.url}/ui/tasks/{task['id']}")
    assert not browser.find_elements("id", "log-follow")
    assert browser.find_element("id", "log").get_attribute("data-follow") is None
    assert f"{marker} line 001" in _log(browser)
