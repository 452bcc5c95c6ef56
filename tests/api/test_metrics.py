"""`GET /metrics`: Prometheus' text format, and figures that follow the store's contents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

import pytest
from api_helpers import assert_error, event, send, settings_like
from conftest import Api, serving
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from stepd import __version__
from stepd.domain.tasks import TaskStatus
from stepd.reactor.reactor import Reactor
from stepd.settings import Settings
from stepd.store import open_store, runs
from stepd.store.schema import events, tasks
from stepd.timeutil import utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- the text format, read by prometheus-client's own parser --------------------------------


@dataclass
class Family:
    help: str = ""
    type: str = ""
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)
    # histograms: every sample by its name (_bucket, _count, _sum)
    raw: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        found = [v for got, v in self.samples if got == labels]
        assert len(found) == 1, (labels, self.samples)
        return found[0]

    def sample(self, suffix: str, **labels: str) -> float:
        """A histogram's `_count`, `_sum` or `_bucket` (le=...) sample."""
        found = [v for name, got, v in self.raw if name.endswith(suffix) and got == labels]
        assert len(found) == 1, (suffix, labels, self.raw)
        return found[0]


def parse(text: str) -> dict[str, Family]:
    """Families by name (a counter's with its `_total`), as prometheus_client.parser reads
    them; a family twice, a sample outside its family or a malformed line fails."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    for metric in text_string_to_metric_families(text):
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        assert name not in families, f"{name} described twice"
        assert metric.type in {"counter", "gauge", "histogram"}, (name, metric.type)
        assert metric.documentation, name
        family = families[name] = Family(help=metric.documentation, type=metric.type)
        for s in metric.samples:
            family.raw.append((s.name, dict(s.labels), s.value))
            if s.name == name:
                family.samples.append((dict(s.labels), s.value))
    return families


def scrape(client: TestClient, **headers: str) -> dict[str, Family]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return parse(response.text)


def one(families: dict[str, Family], metric: str, /, **labels: str) -> float:
    return families[metric].value(**labels)


# --- the tests ----------------------------------------------------------------------------


def test_metrics_is_the_prometheus_text_format_with_help_and_type_for_every_family(
    api: Api,
) -> None:
    m = scrape(api.client)
    assert one(m, "stepd_up") == 1
    dialect = "sqlite" if api.store.is_sqlite else "postgresql"
    assert one(m, "stepd_info", version=__version__, store=dialect) == 1
    assert m["stepd_events_stored_total"].type == "counter"
    assert "highest event" in m["stepd_events_stored_total"].help
    for name in (
        "stepd_events_pending",
        "stepd_reactor_lag_seconds",
        "stepd_tasks",
        "stepd_configs",
    ):
        assert m[name].type == "gauge", name
    assert one(m, "stepd_events_stored_total") == 0
    assert one(m, "stepd_reactor_lag_seconds") == 0
    assert one(m, "stepd_tasks_oldest_enqueued_seconds") == 0
    assert {labels["status"] for labels, _ in m["stepd_tasks"].samples} == {
        "ENQUEUED",
        "WAIT_MUTEX",
        "EXECUTING",
    }
    assert {labels["status"] for labels, _ in m["stepd_tasks_recent"].samples} == {
        s.value for s in TaskStatus
    }
    assert m["stepd_semaphore_capacity"].samples == []
    assert one(m, "process_resident_memory_bytes") > 1_000_000
    assert one(m, "process_cpu_seconds_total") > 0


def test_posted_rejected_and_evaluated_events_move_the_backlog_and_the_reactor_lag(
    api: Api,
) -> None:
    first, second, _third = send(api, event("soup", n=1), event("soup", n=2), event("soup", n=3))
    m = scrape(api.client)
    assert one(m, "stepd_events_stored_total") == 3
    assert one(m, "stepd_events_pending") == 3  # the fixture's app runs no reactor
    assert 0 <= one(m, "stepd_reactor_lag_seconds") < 60
    assert one(m, "stepd_events_rejected") == 0

    with api.store.write() as conn:  # the oldest NEW event has waited an hour
        conn.execute(
            update(events)
            .where(events.c.state == "NEW")
            .values(created=utcnow() - timedelta(hours=1))
        )
    assert 3590 < one(scrape(api.client), "stepd_reactor_lag_seconds") < 3700

    response = api.client.post("/api/v1/reject_event", json={"id": first}, headers=api.auth)
    assert response.status_code == 200, response.text
    m = scrape(api.client)
    assert one(m, "stepd_events_pending") == 2
    assert one(m, "stepd_events_rejected") == 1
    assert one(m, "stepd_events_stored_total") == 3

    while Reactor(api.store).run_once():
        pass
    m = scrape(api.client)
    assert one(m, "stepd_events_pending") == 0
    assert one(m, "stepd_reactor_lag_seconds") == 0
    assert one(m, "stepd_events_rejected") == 1
    assert second  # stored events stay counted once evaluated
    assert one(m, "stepd_events_stored_total") == 3


def _create_task(api: Api, **body: object) -> int:
    response = api.client.post("/api/v1/tasks", json={"type": "T", **body}, headers=api.auth)
    assert response.status_code == 200, response.text
    task_id: int = response.json()["result"]["id"]
    return task_id


def test_tasks_by_status_semaphores_and_the_oldest_waiting_task_follow_the_queue(
    api: Api,
) -> None:
    response = api.client.put("/api/v1/semaphores/yt-hahn", json={"capacity": 2}, headers=api.auth)
    assert response.status_code == 200, response.text
    heavy = [{"name": "yt-hahn", "weight": 2}]
    a = _create_task(api, priority=10, semaphores=heavy)
    b = _create_task(api, priority=9, semaphores=heavy)  # waits for a's units
    c = _create_task(api, priority=8)
    _create_task(api, priority=0)  # stays ENQUEUED
    m = scrape(api.client)
    assert one(m, "stepd_tasks", status="ENQUEUED") == 4
    assert one(m, "stepd_tasks", status="EXECUTING") == 0
    assert one(m, "stepd_tasks_recent", status="ENQUEUED") == 4
    assert one(m, "stepd_semaphore_capacity", name="yt-hahn") == 2
    assert one(m, "stepd_semaphore_used", name="yt-hahn") == 0
    assert 0 <= one(m, "stepd_tasks_oldest_enqueued_seconds") < 60

    now = utcnow()
    with api.store.write() as conn:
        claimed = runs.claim(conn, "w1", now, limit=2)
    assert [t.id for t in claimed] == [a, c]
    m = scrape(api.client)
    assert one(m, "stepd_tasks", status="EXECUTING") == 2
    assert one(m, "stepd_tasks", status="WAIT_MUTEX") == 1
    assert one(m, "stepd_tasks", status="ENQUEUED") == 1
    assert one(m, "stepd_semaphore_used", name="yt-hahn") == 2

    with api.store.write() as conn:  # b, the oldest still waiting, was made two hours ago
        conn.execute(update(tasks).where(tasks.c.id == b).values(created=now - timedelta(hours=2)))
    age = one(scrape(api.client), "stepd_tasks_oldest_enqueued_seconds")
    assert 7190 < age < 7300, age

    with api.store.write() as conn:
        for task in claimed:
            outcome = runs.Outcome(
                status=TaskStatus.SUCCESS if task.id == a else TaskStatus.FAILURE
            )
            runs.finish(conn, task.id, task.attempt, outcome, runs.StatusEvents(), utcnow())
    m = scrape(api.client)
    assert one(m, "stepd_tasks", status="EXECUTING") == 0
    assert one(m, "stepd_semaphore_used", name="yt-hahn") == 0
    assert one(m, "stepd_tasks_recent", status="SUCCESS") == 1
    assert one(m, "stepd_tasks_recent", status="FAILURE") == 1
    assert one(m, "stepd_tasks_recent", status="WAIT_MUTEX") == 1
    assert one(m, "stepd_tasks_recent", status="ENQUEUED") == 1
    # Each finished task reported itself as an event, stored NEW for the reactor.
    assert one(m, "stepd_events_stored_total") == 2
    assert one(m, "stepd_events_pending") == 2


def test_a_config_made_by_a_matching_event_counts_and_its_task_is_enqueued(api: Api) -> None:
    config = {"name": "after-soup", "event_deps": [{"name": "soup"}], "task_type": "T"}
    response = api.client.post("/api/v1/configs", json=config, headers=api.auth)
    assert response.status_code == 200, response.text
    assert one(scrape(api.client), "stepd_configs") == 1
    assert one(scrape(api.client), "stepd_configs_enabled") == 1
    send(api, event("soup"))
    while Reactor(api.store).run_once():
        pass
    m = scrape(api.client)
    assert one(m, "stepd_tasks", status="ENQUEUED") == 1
    # A paused config no longer counts as enabled (it fires on nothing)
    config_id = response.json()["id"]
    paused = api.client.post(f"/api/v1/configs/{config_id}/disable", headers=api.auth)
    assert paused.status_code == 200, paused.text
    assert one(scrape(api.client), "stepd_configs_enabled") == 0
    assert one(scrape(api.client), "stepd_configs") == 1
    assert one(m, "stepd_events_pending") == 0


def test_label_values_are_escaped_backslash_quote_and_newline(api: Api) -> None:
    name = 'odd "name" \\ with\na newline'
    response = api.client.put(
        f"/api/v1/semaphores/{quote(name, safe='')}", json={"capacity": 3}, headers=api.auth
    )
    assert response.status_code == 200, response.text
    text = api.client.get("/metrics").text
    assert 'stepd_semaphore_capacity{name="odd \\"name\\" \\\\ with\\na newline"} 3.0\n' in text
    assert one(parse(text), "stepd_semaphore_capacity", name=name) == 3


@pytest.fixture
def private(api: Api) -> Iterator[TestClient]:
    """A second app on the same store, run with private reads."""
    settings = settings_like(api, private_reads=True)
    with serving(settings, api.store) as client:
        yield client


def test_metrics_are_open_unless_reads_are_private(api: Api, private: TestClient) -> None:
    assert api.client.get("/metrics").status_code == 200
    assert_error(private.get("/metrics"), 401, "token")
    assert one(scrape(private, **api.auth), "stepd_up") == 1


def test_a_store_that_does_not_answer_is_a_503_json_error() -> None:
    # A PostgreSQL URL where nothing listens: opening the store connects to nothing yet.
    store = open_store("postgresql://nobody@127.0.0.1:9/none", migrate=False)
    settings = Settings(database_url="unused://", reactor=False, clock=False, executor="none")
    with serving(settings, store) as client:
        response = client.get("/metrics")
    body = assert_error(response, 503, "database")
    assert body["status"] == "unavailable"


def test_every_metric_the_dashboard_and_the_docs_name_is_exposed(api: Api) -> None:
    from pathlib import Path

    root = Path(__file__).parents[2]
    exposed = set(scrape(api.client))
    operations = (root / "docs/operations.md").read_text()
    texts = {
        "docs/grafana-dashboard.json": (root / "docs/grafana-dashboard.json").read_text(),
        "docs/operations.md#metrics": operations.split("\n## Metrics\n")[1].split("\n## ")[0],
    }
    for where, text in texts.items():
        for name in set(re.findall(r"\bstepd_[a-z_]+[a-z]", text)):
            family = re.sub(r"_(bucket|count|sum)$", "", name)
            assert family in exposed or name in exposed, f"{where} names {name}"
