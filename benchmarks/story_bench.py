"""The story of an event with 1,000 configs on its name renders in under 200 ms (issue 13),
in the API and on the UI page. Prints medians and the ratio against an event with 10
configs on its name in the same run; asserts nothing.

    .venv/bin/python benchmarks/story_bench.py [--quick] [--database-url URL]

One store (SQLite in a temporary directory unless --database-url names another, e.g. an
empty PostgreSQL database) gets two event names: `big` with 1,000 configs and `small`
with 10, as a team has them: each config for its own `taskType`, one of them for the
event's. One event of each name is sent and evaluated (the one config fires). Per round,
on each event in turn (interleaved): `GET /api/v1/events/{id}/story` and
`GET /ui/events/{id}` through the app in this process (FastAPI's TestClient: routing,
the story, JSON or the template, no network). Medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from stepd.api.app import build_context, create_app
from stepd.domain.configs import ActionConfig, parse_config
from stepd.domain.events import format_event_id
from stepd.reactor.reactor import Reactor
from stepd.settings import Settings
from stepd.store import Store, open_store
from stepd.store import configs as config_store
from stepd.store import events as event_store

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SIZES = {"small": 10, "big": 1_000}
PARAMS = {"taskType": "T0000", "taskStatus": "SUCCESS", "environment": "stable"}
TARGET_MS = 200.0


def _config(name: str, i: int) -> ActionConfig:
    params = {**PARAMS, "taskType": f"T{i:04d}", "date": "~"}
    spec = parse_config(
        {"name": f"{name}-{i}", "task_type": "T", "event_deps": [{"name": name, "params": params}]}
    )
    return ActionConfig(id="", seq=0, author="u", version=1, spec=spec, created=T0, updated=T0)


def _fill(store: Store) -> dict[str, str]:
    """The configs and one evaluated event per name; the event ids by name."""
    with store.write() as conn:
        for name, count in SIZES.items():
            for i in range(count):
                config_store.insert_config(conn, _config(name, i), actor="u")
        new = [
            event_store.NewEvent(name=name, params={**PARAMS, "date": "2019-01-01"}, created=T0)
            for name in SIZES
        ]
        ids = event_store.insert_events(conn, new)
    reactor = Reactor(store)
    while reactor.run_once() > 0:
        pass
    return {name: format_event_id(seq) for name, seq in zip(SIZES, ids, strict=True)}


@contextmanager
def _store(url: str | None) -> Iterator[Store]:
    if url is not None:
        store = open_store(url)
        try:
            yield store
        finally:
            store.close()
        return
    with tempfile.TemporaryDirectory(prefix="stepd-bench-story-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'story.db'}")
        try:
            yield store
        finally:
            store.close()


def _timed(client: TestClient, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text[:300]  # a broken page measures nothing
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--database-url", help="an empty database to fill (default: SQLite)")
    args = parser.parse_args()
    rounds = 5 if args.quick else 15
    settings = Settings.from_env(
        {}, database_url="unused://", reactor=False, clock=False, executor="none"
    )
    with _store(args.database_url) as store:
        ids = _fill(store)
        context = build_context(settings, store)
        try:
            with TestClient(create_app(context)) as client:
                pages = {
                    (kind, name): path.format(ids[name])
                    for name in SIZES
                    for kind, path in (
                        ("api", "/api/v1/events/{}/story"),
                        ("ui", "/ui/events/{}"),
                    )
                }
                story = client.get(pages[("api", "big")]).json()["result"]
                assert story["summary"]["counts"]["fired"] == 1, story["summary"]
                for path in pages.values():
                    _timed(client, path)  # warm: the catalog's first load, the template
                figures: dict[tuple[str, str], list[float]] = {key: [] for key in pages}
                for _ in range(rounds):
                    for key, path in pages.items():
                        figures[key].append(_timed(client, path))
        finally:
            context.close()
    medians = {key: statistics.median(f) * 1000 for key, f in figures.items()}
    where = (args.database_url or "sqlite").split(":")[0]
    print(f"{where}: medians of {rounds} rounds, one event per name, 1 config fired of each")
    print(f"{'':6} {'10 configs ms':>14} {'1,000 configs ms':>17} {'ratio':>7} {'< 200 ms':>9}")
    for kind in ("api", "ui"):
        small, big = medians[(kind, "small")], medians[(kind, "big")]
        verdict = "yes" if big < TARGET_MS else "NO"
        print(f"{kind:6} {small:14.1f} {big:17.1f} {big / small:7.1f} {verdict:>9}")


if __name__ == "__main__":
    main()
