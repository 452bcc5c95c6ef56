"""The web UI in a real browser: headless Chromium (Selenium) against a live `stepd serve`
running the example task types, on every store.

Skipped locally when Chromium, ChromeDriver or Selenium is missing; in CI (CI=true) a
missing browser fails, as a missing PostgreSQL does. One server and one browser serve
the module per store; every test uses names of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import IN_CI, LiveServer, served, server_token
from crowded_story import EVENT_PARAMS, crowd

from stepd.client import Client
from stepd.domain.configs import WRITABLE

CHROMIUM = os.environ.get("STEPD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STEPD_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
TASKS_FILE = Path(__file__).resolve().parents[2] / "examples" / "crypta_tasks.py"
UI_TASKS_FILE = Path(__file__).resolve().parent / "ui_tasks.py"  # UI_SLEEP
WAIT_SECONDS = 30


def require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if not missing:
        return
    message = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
    if IN_CI:
        pytest.fail(message + " (CI must provide them)")
    pytest.skip(message)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    require_browser()
    args = ("--tasks", str(TASKS_FILE), "--tasks", str(UI_TASKS_FILE), "--no-clock")
    with served(request.param, tmp_path_factory.mktemp("ui"), *args) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server_token(server)) as c:
        yield c


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="stepd-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    # The console, for the Content-Security-Policy checks (a blocked script reports there).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_SECONDS)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(browser: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import (
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        # A live page swaps its parts for fresh copies: a node read just as it goes is
        # "stale", or, when ChromeDriver's inspector loses it first, a bare
        # WebDriverException ("Node with given id does not belong to the document").
        # Both mean "look again"; a real failure still ends in the timeout below.
        return WebDriverWait(
            browser,
            WAIT_SECONDS,
            ignored_exceptions=[StaleElementReferenceException, WebDriverException],
        ).until(condition)
    except TimeoutException:
        body = browser.find_element("tag name", "body").text
        pytest.fail(f"timed out waiting for {what}; the page shows:\n{body[:3000]}")


def row_ids(browser: Any) -> list[str]:
    return [r.get_attribute("data-id") for r in browser.find_elements("css selector", ".event-row")]


def test_the_story_shows_the_fired_task_and_leads_to_its_log(
    server: LiveServer, client: Client, browser: Any
) -> None:
    day, name = unique("2019-01-01"), unique("echo-after-soup")
    client.create_config({
        "name": name, "task_type": "ECHO_DATE",
        "event_deps": [{"name": "soupReady", "params": {"status": "SUCCESS", "date": "~"}}],
    })  # fmt: skip
    event_id = client.create_event("soupReady", {"status": "SUCCESS", "date": day})

    browser.get(f"{server.url}/ui/events/{event_id}")
    # The page follows the story live: the task appears, runs and succeeds, and reports
    # itself as an event, without a reload; then the page stops refreshing.
    wait_for(
        browser,
        lambda b: (
            not b.find_elements("css selector", "#story[data-live]")
            and "taskEvent" in b.find_element("css selector", ".chain").text
        ),
        "the story to settle with the task's status event in the chain",
    )
    card = browser.find_element("css selector", ".task-card")
    assert "ECHO_DATE" in card.text and day in card.text and "SUCCESS" in card.text
    badge = card.find_element("css selector", ".badge")
    assert "ok" in badge.get_attribute("class")
    config_text = browser.find_element("css selector", ".config-card").text
    assert name in config_text and "fired" in config_text

    task_id = card.get_attribute("data-task")
    card.find_element("css selector", "a.logs-link").click()
    log = wait_for(browser, lambda b: b.find_element("id", "log"), "the task page's log")
    assert browser.current_url.split("#")[0].endswith(f"/ui/tasks/{task_id}")
    assert f"processing {day}" in log.text
    assert "SUCCESS" in browser.find_element("id", "task").text


def test_the_story_of_a_crowded_event_leads_with_the_fired_config(
    server: LiveServer, client: Client, browser: Any
) -> None:
    event_name = unique("crowdEvent")
    ids = crowd(client.create_config, event_name, unique("crowd"), "ECHO_DATE")
    event_id = client.create_event(event_name, {**EVENT_PARAMS, "date": "2019-01-01"})
    wait_for(browser, lambda _: client.story(event_id)["evaluated"], "the reactor")

    browser.get(f"{server.url}/ui/events/{event_id}")
    root = browser.find_element("css selector", ".chain > ul.tree")
    visible = [c for c in root.find_elements("css selector", ".config-card") if c.is_displayed()]
    first = visible[0]
    assert "crowd" in first.text and "fired" in first.text
    assert first.find_element("css selector", "a").get_attribute("href").endswith(ids.fired)
    assert len(visible) == len(ids.shown)  # the 25 others are collapsed
    groups = root.find_elements("css selector", ":scope > li > details.config-group")
    assert [" ".join(g.find_element("tag name", "summary").text.split()) for g in groups] == [
        "24 configs expect another taskType: OTHER_00, OTHER_01, OTHER_02, OTHER_03, OTHER_04, "
        "… show",
        "1 config expects another environment: testing show",
    ]
    # A click opens the line: its 24 configs are shown.
    groups[0].find_element("tag name", "summary").click()
    cards = groups[0].find_elements("css selector", ".config-card")
    wait_for(browser, lambda _: all(c.is_displayed() for c in cards), "the group to open")
    assert len(cards) == 24 and "not matched" in cards[0].text


def test_the_events_page_filters_by_param(server: LiveServer, client: Client, browser: Any) -> None:
    name, wanted, other = unique("filterMe"), unique("2019-02-01"), unique("2019-02-02")
    wanted_id = client.create_event(name, {"date": wanted})
    other_id = client.create_event(name, {"date": other})

    browser.get(f"{server.url}/ui/events")
    browser.find_element("id", "f-name").send_keys(name)
    browser.find_element("id", "f-params").send_keys(f"date={wanted}")
    browser.find_element("css selector", "#event-filters button[type=submit]").click()
    wait_for(browser, lambda b: "params=" in b.current_url, "the filtered page")
    assert row_ids(browser) == [wanted_id], other_id
    assert browser.find_element("id", "f-params").get_attribute("value") == f"date={wanted}"


def test_the_events_page_shows_a_new_event_without_a_reload(
    server: LiveServer, client: Client, browser: Any
) -> None:
    name = unique("liveEvent")
    first = client.create_event(name, {"n": 1})
    browser.get(f"{server.url}/ui/events?name={name}")
    assert row_ids(browser) == [first]
    browser.execute_script("window.stepdNotReloaded = true;")

    second = client.create_event(name, {"n": 2})
    wait_for(
        browser,
        lambda b: row_ids(b) == [second, first],
        "the new event at the top of the list",
    )
    assert browser.execute_script("return window.stepdNotReloaded === true;")


def test_the_search_box_opens_an_event_story(
    server: LiveServer, client: Client, browser: Any
) -> None:
    event_id = client.create_event(unique("findMe"), {"x": "<b>not bold</b>"})
    browser.get(f"{server.url}/ui/configs")
    box = browser.find_element("id", "find-id")
    box.send_keys(event_id)
    box.submit()
    wait_for(browser, lambda b: b.current_url.endswith(f"/ui/events/{event_id}"), "the story")
    card = browser.find_element("css selector", ".event-card")
    assert "<b>not bold</b>" in card.text  # shown as text, not markup
    assert not card.find_elements("tag name", "b")


# --- write actions: the token box, reject, resend, stop, restart ------------------------------

PERSON = "ui-person"


@pytest.fixture(scope="module")
def person_token(server: LiveServer) -> str:
    return server_token(server, PERSON)


@pytest.fixture(scope="module")
def person(server: LiveServer, person_token: str) -> Iterator[Client]:
    """A client with the person's token: what it makes, the person may change."""
    with Client(server.url, person_token) as c:
        yield c


def forget_token(browser: Any, url: str) -> None:
    """Open `url` with no token kept (the browser is shared by the module's tests)."""
    browser.get(url)
    browser.execute_script("window.sessionStorage.clear();")
    browser.get(url)


def sign_in(browser: Any, url: str, token: str) -> None:
    forget_token(browser, url)
    box = browser.find_element("id", "token-input")
    box.send_keys(token)
    browser.find_element("id", "token-sign-in").click()
    wait_for(browser, lambda b: b.find_element("id", "token-user").is_displayed(), "signed in")


def click_and_confirm(browser: Any, button_id: str) -> str:
    """Click a write button, accept its confirm dialog; the dialog's question."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    # A live page swaps its part for a fresh copy every 2 s; a click that lands on the
    # node just swapped out fails, and is tried again on the new one.
    for attempt in range(5):
        try:
            browser.find_element("id", button_id).click()
            break
        except WebDriverException:
            if attempt == 4:
                raise
    alert = WebDriverWait(browser, WAIT_SECONDS).until(expected_conditions.alert_is_present())
    question: str = alert.text
    alert.accept()
    return question


def test_a_token_signs_in_as_its_user_and_a_wrong_one_shows_the_401(
    server: LiveServer, person_token: str, browser: Any
) -> None:
    forget_token(browser, f"{server.url}/ui/events")
    assert not browser.find_element("id", "ui-message").is_displayed()
    browser.find_element("id", "token-input").send_keys("not-a-token")
    browser.find_element("id", "token-sign-in").click()
    message = wait_for(
        browser,
        lambda b: b.find_element("id", "ui-message") if b.find_element(
            "id", "ui-message").is_displayed() else None,
        "the sign-in error",
    )  # fmt: skip
    assert message.text.startswith("Sign-in failed: HTTP 401 unauthorized: the token is not valid")
    assert not browser.find_element("id", "token-user").is_displayed()
    assert browser.execute_script("return window.sessionStorage.length;") == 0

    browser.find_element("id", "token-input").send_keys(person_token)
    browser.find_element("id", "token-sign-in").click()
    user = wait_for(
        browser,
        lambda b: b.find_element("id", "token-user") if b.find_element(
            "id", "token-user").is_displayed() else None,
        "the user's name",
    )  # fmt: skip
    assert user.text == PERSON
    assert not browser.find_element("id", "ui-message").is_displayed()
    assert not browser.find_element("id", "token-form").is_displayed()
    assert person_token not in browser.current_url
    # It is kept for the tab: another page still knows the user.
    browser.get(f"{server.url}/ui/tasks")
    assert browser.find_element("id", "token-user").text == PERSON

    browser.find_element("id", "token-forget").click()
    assert browser.find_element("id", "token-form").is_displayed()
    assert not browser.find_element("id", "token-user").is_displayed()
    assert browser.execute_script("return window.sessionStorage.length;") == 0


def test_without_a_token_the_write_buttons_are_disabled(
    server: LiveServer, client: Client, browser: Any
) -> None:
    event_id = client.create_event(unique("untouchable"), {"date": "2019-03-01"})
    forget_token(browser, f"{server.url}/ui/events/{event_id}")
    for button_id in ("reject-event", "resend-event"):
        button = browser.find_element("id", button_id)
        assert not button.is_enabled(), button_id
        assert "sign in" in button.get_attribute("title")
    assert browser.find_element("css selector", "#event-actions .needs-token").is_displayed()
    assert client.get_event(event_id)["state"] != "REJECTED"


def test_an_event_is_rejected_from_its_story(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    name = unique("wrongEvent")
    event_id = person.create_event(name, {"date": "2019-03-02"})  # only its author may reject
    sign_in(browser, f"{server.url}/ui/events/{event_id}", person_token)
    assert not browser.find_element("css selector", "#event-actions .needs-token").is_displayed()
    question = click_and_confirm(browser, "reject-event")
    assert event_id in question and name in question
    wait_for(
        browser,
        lambda b: (
            b.execute_script(
                "return document.querySelector('.event-card .badge').textContent.trim();"
            )
            == "REJECTED"
        ),
        "the event shown as REJECTED",
    )
    assert not browser.find_elements("id", "reject-event")
    assert client.get_event(event_id)["state"] == "REJECTED"


def test_an_event_is_sent_again_from_its_story(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    name = unique("sendMeAgain")
    params = {"date": "2019-03-03", "note": "<i>two words</i>", "n": 3}
    event_id = client.create_event(name, params)
    sign_in(browser, f"{server.url}/ui/events/{event_id}", person_token)
    click_and_confirm(browser, "resend-event")
    wait_for(
        browser,
        lambda b: "/ui/events/" in b.current_url and not b.current_url.endswith(event_id),
        "the new event's story",
    )
    new_id = browser.current_url.rsplit("/", 1)[1]
    copy = client.get_event(new_id)
    assert copy["name"] == name and copy["params"] == params
    assert client.get_event(event_id)["state"] != "REJECTED"


def test_the_workers_page_shows_the_live_workers_and_the_task_each_runs(
    server: LiveServer, client: Client, person: Client, browser: Any
) -> None:
    task = person.create_task("UI_SLEEP", {"seconds": "120"})
    try:
        browser.get(f"{server.url}/ui/workers")

        def running_row(b: Any) -> str | None:
            # Read in one script: the live part may be swapped between a find and a read.
            text: str | None = b.execute_script(
                "const link = document.querySelector("
                f"'#workers-list tr.worker.live a[href=\"/ui/tasks/{task['id']}\"]');"
                "return link ? link.closest('tr').textContent : null;"
            )
            return text

        row = wait_for(browser, running_row, "the worker running the task, live")
        assert "UI_SLEEP" in row and "local" in row
        live = [w for w in client.workers() if w["state"] == "live"]
        shown = browser.execute_script(
            "return [...document.querySelectorAll('#workers-list tr.worker.live td:first-child')]"
            ".map(td => td.textContent.trim());"
        )
        assert sorted(shown) == sorted(w["name"] for w in live)
    finally:
        person.stop_task(task["id"])


def test_a_running_task_is_stopped_and_restarted_from_its_page(
    server: LiveServer, client: Client, person: Client, person_token: str, browser: Any
) -> None:
    task = person.create_task("UI_SLEEP", {"seconds": "120"})  # only its author may stop it
    url = f"{server.url}/ui/tasks/{task['id']}"

    def status(b: Any) -> str:
        # Read in one script: the live part may be swapped between a find and a read.
        text: str = b.execute_script(
            "return document.querySelector('#task .kvtable .badge').textContent.trim();"
        )
        return text

    sign_in(browser, url, person_token)
    wait_for(browser, lambda b: status(b) == "EXECUTING", "the task running")
    question = click_and_confirm(browser, "stop-task")
    assert f"Stop task {task['id']}" in question
    wait_for(browser, lambda b: status(b) == "STOPPED", "the task shown as STOPPED")
    assert client.get_task(task["id"])["status"] == "STOPPED"

    click_and_confirm(browser, "restart-task")
    wait_for(
        browser,
        lambda b: status(b) in {"ENQUEUED", "EXECUTING"} and b.find_elements("id", "stop-task"),
        "the task running again",
    )
    again = client.get_task(task["id"])
    assert again["status"] in {"ENQUEUED", "EXECUTING"}
    person.stop_task(task["id"])


def test_rejecting_someone_elses_event_shows_the_apis_403(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    event_id = client.create_event(unique("robotsOwn"), {"date": "2019-03-04"})
    sign_in(browser, f"{server.url}/ui/events/{event_id}", person_token)
    click_and_confirm(browser, "reject-event")
    message = shown_message(browser)
    assert message.startswith(
        f"HTTP 403 forbidden: event {event_id} was sent by robot-crypta; only its author"
    ), message
    assert client.get_event(event_id)["state"] != "REJECTED"
    assert browser.find_element("id", "reject-event").is_enabled()  # nothing changed


def shown_message(browser: Any) -> str:
    """The text of the message line, once it shows."""
    return str(
        wait_for(
            browser,
            lambda b: b.execute_script(
                "var m = document.getElementById('ui-message');"
                "return m.hidden ? null : m.textContent;"
            ),
            "the message line",
        )
    )


def test_an_action_with_a_token_no_longer_valid_shows_the_apis_401(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    event_id = client.create_event(unique("keepMe"), {"date": "2019-03-05"})
    sign_in(browser, f"{server.url}/ui/events/{event_id}", person_token)
    browser.execute_script("window.sessionStorage.setItem('stepd.token', 'revoked-token');")
    click_and_confirm(browser, "reject-event")
    message = shown_message(browser)
    assert message.startswith("HTTP 401 unauthorized: the token is not valid"), message
    assert client.get_event(event_id)["state"] != "REJECTED"
    assert browser.find_element("id", "reject-event").is_enabled()  # it can be tried again


def test_a_config_is_edited_on_its_page(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    author_token = server_token(server, PERSON)  # the config is the person's own
    name = unique("edit-me")
    with Client(server.url, author_token) as author:
        config_id = author.create_config({
            "name": name, "task_type": "ECHO_DATE", "description": "before",
            "event_deps": [{"name": unique("never"), "params": {"date": "~"}}],
        })  # fmt: skip
    sign_in(browser, f"{server.url}/ui/configs/{config_id}", person_token)
    browser.find_element("css selector", "#config-edit summary").click()
    box = browser.find_element("id", "config-json")

    def set_json(text: str) -> None:
        browser.execute_script("arguments[0].value = arguments[1];", box, text)

    body = json.loads(box.get_attribute("value"))
    assert body["name"] == name and body["description"] == "before"
    set_json(json.dumps({**body, "priority": "high"}))
    click_and_confirm(browser, "save-config")
    message = shown_message(browser)
    assert message.startswith("HTTP 400 invalid_input: priority must be an integer"), message
    assert message.endswith("(field: priority)"), message
    assert client.get_config(config_id)["version"] == 1

    set_json(json.dumps({**body, "description": "after <b>edit</b>"}))
    click_and_confirm(browser, "save-config")
    wait_for(
        browser,
        lambda b: "after <b>edit</b>" in b.find_element("css selector", "main").text,
        "the page with the new description",
    )
    stored = client.get_config(config_id)
    assert stored["version"] == 2 and stored["description"] == "after <b>edit</b>"
    assert "2, created" in browser.find_element("css selector", "main .kvtable").text
    # Saved, but its dependency names an event nothing sends: the page says so.
    warned = shown_message(browser)
    assert warned.startswith("Saved, with warnings: no event named 'never-"), warned


def test_editing_someone_elses_config_shows_the_apis_403(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    config_id = client.create_config({  # by robot-crypta, not the signed-in person
        "name": unique("not-yours"), "task_type": "ECHO_DATE",
        "event_deps": [{"name": unique("never"), "params": {"date": "~"}}],
    })  # fmt: skip
    sign_in(browser, f"{server.url}/ui/configs/{config_id}", person_token)
    browser.find_element("css selector", "#config-edit summary").click()
    click_and_confirm(browser, "save-config")
    message = shown_message(browser)
    assert message.startswith("HTTP 403 forbidden: "), message
    assert client.get_config(config_id)["version"] == 1


def console_problems(browser: Any) -> list[str]:
    """What the console said since it was last read: errors and CSP reports."""
    return [
        str(entry["message"])
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in str(entry["message"])
    ]


def test_no_page_of_the_ui_trips_its_content_security_policy(
    server: LiveServer, client: Client, person_token: str, browser: Any
) -> None:
    name = unique("csp-config")
    config_id = client.create_config({
        "name": name, "task_type": "ECHO_DATE",
        "event_deps": [{"name": unique("cspEvent"), "params": {"date": "~"}}],
    })  # fmt: skip
    event_id = client.create_event(unique("cspEvent"), {"date": "2019-05-01"})
    task_id = client.create_task("ECHO_DATE", {"date": "2019-05-01"})["id"]
    pages = [
        "/ui/events", f"/ui/events/{event_id}", "/ui/tasks", f"/ui/tasks/{task_id}",
        "/ui/configs", f"/ui/configs/{config_id}", "/ui/semaphores", "/ui/workers", "/ui/schedules",
    ]  # fmt: skip
    sign_in(browser, f"{server.url}/ui/events", person_token)  # the scripted parts run too
    console_problems(browser)  # start from a clean console
    for page in pages:
        answer = httpx.get(server.url + page)
        assert "script-src 'self';" in answer.headers["content-security-policy"], page
        assert answer.headers["x-frame-options"] == "DENY", page
        browser.get(server.url + page)
        # The script ran (it fills in the signed-in user), and nothing was blocked.
        wait_for(browser, lambda b: b.find_element("id", "token-user").text == PERSON, page)
        assert console_problems(browser) == [], page


def test_every_page_fits_a_phone_and_its_boxes_are_on_screen(
    server: LiveServer, client: Client, browser: Any
) -> None:
    name = unique("phone-config")
    long_value = "x" * 300  # a value longer than the screen is wide
    config_id = client.create_config({
        "name": name, "task_type": "ECHO_DATE",
        "event_deps": [{"name": unique("phoneEvent"), "params": {"date": "~"}}],
    })  # fmt: skip
    event_id = client.create_event(unique("phoneEvent"), {"date": "2019-05-01", "v": long_value})
    task_id = client.create_task("ECHO_DATE", {"date": long_value})["id"]
    # A version whose change is long (its diff wraps), and a deleted config's page.
    changed = {**client.get_config(config_id), "task_params": {"v": long_value}}
    client.update_config(config_id, {k: v for k, v in changed.items() if k in WRITABLE})
    deleted_id = client.create_config({"name": unique("phone-gone"), "task_type": "ECHO_DATE",
                                       "event_deps": [{"name": "phoneEvent"}]})  # fmt: skip
    client.delete_config(deleted_id)
    crowd_name = unique("phoneCrowd")  # a story with collapsed groups, one of them opened
    crowd(client.create_config, crowd_name, unique("phone-crowd"), "ECHO_DATE")
    crowd_event = client.create_event(crowd_name, {**EVENT_PARAMS, "date": long_value})
    pages = [
        "/ui/events", f"/ui/events/{event_id}", "/ui/tasks", f"/ui/tasks/{task_id}",
        "/ui/configs", f"/ui/configs/{config_id}", f"/ui/configs/{deleted_id}",
        "/ui/semaphores", "/ui/workers", f"/ui/events/{crowd_event}",
    ]  # fmt: skip
    browser.set_window_size(390, 844)
    try:
        width = browser.execute_script("return document.documentElement.clientWidth")
        assert width <= 390
        for page in pages:
            browser.get(server.url + page)
            for group in browser.find_elements("css selector", "details.config-group"):
                browser.execute_script("arguments[0].open = true;", group)
            # Nothing makes the page wider than the screen (a list scrolls inside its box).
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{page} is {overflow} px wider than the screen"
            for box in ("find-id", "token-input"):
                rect = browser.execute_script(
                    "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];",
                    browser.find_element("id", box),
                )
                assert rect[0] >= 0 and rect[1] <= width, (page, box, rect)
    finally:
        browser.set_window_size(1400, 1000)


def test_the_api_page_renders_from_this_server_alone_and_authorize_works(
    server: LiveServer, person_token: str, browser: Any
) -> None:
    operations = sum(
        len(methods) for methods in httpx.get(f"{server.url}/openapi.json").json()["paths"].values()
    )
    console_problems(browser)
    browser.get(f"{server.url}/docs")
    shown = "return new Set([...document.querySelectorAll('div.opblock')].map(e => e.id)).size;"
    wait_for(
        browser,
        lambda b: b.execute_script(shown) == operations,
        f"Swagger UI to show the {operations} operations",
    )
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    assert loaded and all(url.startswith(server.url + "/") for url in loaded), loaded
    assert console_problems(browser) == []

    browser.find_element("css selector", "button.authorize").click()
    dialog = wait_for(
        browser, lambda b: b.find_element("css selector", ".auth-container"), "the dialog"
    )
    assert "Authorization" in dialog.text and "header" in dialog.text
    dialog.find_element("css selector", "input").send_keys(f"OAuth {person_token}")
    dialog.find_element("css selector", "button.modal-btn.auth").click()
    browser.find_element("css selector", "button.btn-done").click()

    whoami = browser.find_element("id", "operations-auth-whoami_api_v1_whoami_get")
    whoami.find_element("css selector", ".opblock-summary").click()
    wait_for(browser, lambda b: whoami.find_element("css selector", ".try-out__btn"), "Try it out")
    whoami.find_element("css selector", ".try-out__btn").click()
    whoami.find_element("css selector", ".execute").click()
    # The server's answer, not the documented example below it (also a `.response
    # .microlight`, there before the answer comes: waiting for either raced the request).
    live_answer = ".live-responses-table .response .microlight"
    answer = wait_for(
        browser,
        lambda b: whoami.find_element("css selector", live_answer),
        "the answer to whoami",
    )
    assert f'"user": "{PERSON}"' in answer.text
    assert console_problems(browser) == []
