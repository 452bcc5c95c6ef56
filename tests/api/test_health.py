"""/healthz: one check per part of the deployment, ok, degraded (200) or down (503)."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from conftest import Api

from stepd.services import health as health_module
from stepd.services.health import HealthService
from stepd.store import events as event_store
from stepd.store.engine import Store
from stepd.timeutil import utcnow


def test_healthz_lists_each_check_and_is_ok_on_a_fresh_store(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and "message" not in body
    checks = body["checks"]
    assert checks["store"]["status"] == "ok"
    assert checks["reactor"] == {
        "status": "ok",
        "message": "0 events wait for evaluation, the oldest 0.0 s",
        "lag_seconds": 0.0,
        "pending_events": 0,
    }
    assert "broker" not in checks  # this server does not dispatch to Celery
    if api.store.local_directory() is None:  # PostgreSQL's disk is its server's
        assert "disk" not in checks
    else:
        assert checks["disk"]["status"] == "ok" and checks["disk"]["free_bytes"] > 0


def test_a_reactor_behind_is_degraded_but_still_200(api: Api) -> None:
    # No reactor runs on this app: an event stored two minutes ago still waits.
    old = event_store.NewEvent(name="e", params={}, created=utcnow() - timedelta(minutes=2))
    with api.store.write() as conn:
        event_store.insert_events(conn, [old])
    response = api.client.get("/healthz")
    assert response.status_code == 200, response.text  # degraded still serves
    body = response.json()
    assert body["status"] == "degraded"
    reactor = body["checks"]["reactor"]
    assert reactor["status"] == "degraded" and reactor["pending_events"] == 1
    assert reactor["lag_seconds"] >= 120
    assert body["message"] == reactor["message"]
    assert "oldest unevaluated event has waited" in reactor["message"]
    assert "--no-reactor" in reactor["remedy"]
    assert body["checks"]["store"]["status"] == "ok"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_broker_check_asks_the_real_broker_and_caches_its_answer(store: Store) -> None:
    up = HealthService(store, broker_url="amqp://guest:guest@127.0.0.1:5672//").run()
    assert up.status == "ok", up
    asked: list[str] = []

    def probe(url: str) -> str | None:
        asked.append(url)
        return health_module.broker_reachable(url, timeout=1)

    down = HealthService(store, broker_url="redis://127.0.0.1:1/0", probe_broker=probe)
    first = down.run()
    broker = next(c for c in first.checks if c.name == "broker")
    assert first.status == "degraded" and broker.status == "degraded"
    assert "does not answer" in broker.message and "tasks stay ENQUEUED" in broker.message
    assert broker.remedy is not None and "--broker" in broker.remedy
    down.run()
    assert asked == ["redis://127.0.0.1:1/0"]  # a probe every request would be a load


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_nearly_full_disk_under_the_store_is_degraded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 100 << 30
    monkeypatch.setattr(
        health_module.shutil,
        "disk_usage",
        lambda path: shutil._ntuple_diskusage(total, total - (512 << 20), 512 << 20),  # type: ignore[attr-defined]
    )
    result = HealthService(store).run()
    disk = next(c for c in result.checks if c.name == "disk")
    assert result.status == "degraded" and disk.status == "degraded"
    assert "nearly full: 0.5 GiB of 100.0 GiB free" in disk.message
    assert disk.details["path"] == store.local_directory()
    assert disk.remedy is not None and "507" in disk.remedy
