"""Screenshots of every page of the web UI, at desktop (1400 px) and phone (390 px) width,
into docs/screenshots/: run it again to refresh them after a change to the UI.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

It starts `stepd serve` on a temporary SQLite store with the example task types
(examples/crypta_tasks.py), fills it with a small, realistic scenario through the HTTP API
(configs that chain, events that fire them, a config that does not match, a paused config,
a schedule, a backfill over three days, a semaphore with a waiting task), waits for the
tasks to end, then drives Debian's headless Chromium (selenium, as tests/ui does) over
PAGES and saves one PNG per page and width. Not part of the test suite;
tests/ui/test_screenshots_cover.py checks that PAGES names every page of ui/routes.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TASKS_FILE = ROOT / "examples" / "crypta_tasks.py"
CHROMIUM = os.environ.get("STEPD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STEPD_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WIDTHS = {"desktop": (1400, 1000), "phone": (390, 844)}
MAX_HEIGHT = 2400  # a long page is cut here: the top says what it is, and keeps PNGs small

CRYPTA = "cryptaTaskEvent"
SOUP = "CRYPTA_GRAPH_PREPARE_SOUP_YAML"
MATCHING = "CRYPTA_GRAPH_HUMAN_MATCHING_YAML"

# Every page of ui/routes.py: the file name and its path, `{...}` filled from the scenario.
PAGES: dict[str, str] = {
    "events": "/ui/events",
    "story": "/ui/events/{event}",
    "tasks": "/ui/tasks",
    "task": "/ui/tasks/{task}",
    "configs": "/ui/configs",
    "config": "/ui/configs/{config}",
    "semaphores": "/ui/semaphores",
    "schedules": "/ui/schedules",
    "backfills": "/ui/backfills",
    "backfill": "/ui/backfills/{backfill}",
    "workers": "/ui/workers",
}
# The routes that are no page of their own, and why.
NOT_PAGES = {
    "/": "redirects to /ui/",
    "/ui": "redirects to /ui/events",
    "/ui/": "redirects to /ui/events",
    "/ui/static/{name}": "the stylesheet and the script",
    "/ui/find": "the search box: redirects to a story or a task",
    "/ui/tasks/{task_id}/log.txt": "a task's log as plain text (the task page shows it)",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(tmp: Path) -> Iterator[tuple[str, str]]:
    """`stepd serve` on a fresh SQLite store in `tmp`: its URL and a token for robot-crypta."""
    db = f"sqlite:///{tmp / 'screens.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPD_")}
    stepd = [sys.executable, "-m", "stepd"]
    subprocess.run([*stepd, "migrate", "--db", db], check=True, env=env, capture_output=True)
    made = subprocess.run(
        [*stepd, "tokens", "create", "robot-crypta", "--db", db],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    port = _free_port()
    log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen(
        [*stepd, "serve", "--db", db, "--port", str(port), "--tasks", str(TASKS_FILE),
         "--no-clock", "--no-access-log"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _answers(url), "the server to answer", 30)
        yield url, made.stdout.strip()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(ready: Any, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def scenario(api: httpx.Client) -> dict[str, str]:
    """A team's small day: what the pages then show. The ids the pages need."""

    def post(path: str, body: object) -> dict[str, Any]:
        answer = api.post(path, json=body)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    soup = {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable", "date": "~"}
    matching = post("/api/v1/configs", {
        "name": "human-matching-after-soup", "task_type": MATCHING,
        "description": "Match humans once the day's soup is ready",
        "event_deps": [{"name": CRYPTA, "params": soup}],
        "task_params": {"limit": 5000}, "semaphores": ["yt-hahn"],
    })["id"]  # fmt: skip
    post("/api/v1/configs", {
        "name": "echo-after-matching", "task_type": "ECHO_DATE",
        "event_deps": [{"name": "taskEvent",
                        "params": {"taskType": MATCHING, "taskStatus": "SUCCESS", "date": "~"}}],
    })  # fmt: skip
    post("/api/v1/configs", {
        "name": "soup-in-testing", "task_type": MATCHING,
        "event_deps": [{"name": CRYPTA, "params": {**soup, "environment": "testing"}}],
    })  # fmt: skip
    paused = post("/api/v1/configs", {
        "name": "nightly-report", "task_type": "ECHO_DATE",
        "event_deps": [{"name": "schedule", "params": {"schedule": "nightly", "date": "~"}}],
    })["id"]  # fmt: skip
    api.post(f"/api/v1/configs/{paused}/disable").raise_for_status()
    post("/api/v1/schedules", {"name": "nightly", "cron": "0 6 * * *", "timezone": "UTC"})
    api.put("/api/v1/semaphores/yt-hahn", json={"capacity": 2}).raise_for_status()

    event = ""
    for day in ("2019-01-01", "2019-01-02"):
        params = {"taskType": SOUP, "taskStatus": "SUCCESS", "environment": "stable", "date": day}
        event = post("/api/v1/events", {"events": [{"name": CRYPTA, "params": params}]})["ids"][0]
    post(
        "/api/v1/events",
        {
            "events": [
                {
                    "name": CRYPTA,
                    "params": {
                        "taskType": SOUP,
                        "taskStatus": "FAILURE",
                        "environment": "stable",
                        "date": "2019-01-03",
                    },
                }
            ]
        },
    )
    backfill = post(f"/api/v1/configs/{matching}/backfill", {
        "params": {"date": {"from": "2018-12-28", "to": "2018-12-30"}}, "max_in_flight": 2,
    })["id"]  # fmt: skip
    # A task that waits for room: a semaphore of capacity 0.
    api.put("/api/v1/semaphores/yt-closed", json={"capacity": 1}).raise_for_status()
    waiting = post("/api/v1/tasks", {"type": "ECHO_DATE", "params": {"date": "2019-01-04"},
                                     "semaphores": ["yt-closed"]})["result"]["id"]  # fmt: skip
    api.put("/api/v1/semaphores/yt-closed", json={"capacity": 0}).raise_for_status()

    def settled() -> bool:
        running = api.get("/api/v1/tasks", params={"status": "ENQUEUED,EXECUTING"}).json()
        new = api.get("/api/v1/events", params={"state": "NEW", "limit": "1"}).json()
        return not running["result"] and not new["result"]

    _wait(settled, "the chain and the backfill to finish", 120)
    task = api.get("/api/v1/tasks", params={"type": MATCHING, "limit": "1"}).json()["result"][0]
    del waiting
    return {"event": event, "task": str(task["id"]), "config": matching, "backfill": str(backfill)}


def shoot(url: str, ids: dict[str, str], out: Path) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="stepd-screens-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-dev-shm-usage",
                 "--hide-scrollbars", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    saved: list[Path] = []
    try:
        for label, (width, height) in WIDTHS.items():
            for name, path in PAGES.items():
                driver.set_window_size(width, height)
                driver.get(url + path.format(**ids))
                time.sleep(0.5)  # the script fills in what it does (the token box, live parts)
                full = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(width, min(max(height, int(full)), MAX_HEIGHT))
                time.sleep(0.2)
                target = out / f"{name}-{label}.png"
                driver.save_screenshot(str(target))
                saved.append(target)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="stepd-screens-") as tmp,
        serving(Path(tmp)) as (
            url,
            token,
        ),
    ):
        with httpx.Client(base_url=url, headers={"Authorization": f"OAuth {token}"}) as api:
            ids = scenario(api)
        for path in shoot(url, ids, args.out):
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
                  f"  {path.stat().st_size // 1024} KB")  # fmt: skip


if __name__ == "__main__":
    main()
