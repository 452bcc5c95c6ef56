"""Trying a config before saving it: what it would fire on an event, and why, launching nothing.

A trial reads stored events (the events it tries, and those their joins look up) under one
`ScanBudget`: at most `scan_limit` per request, so that a trial against a store of millions
cannot hold a server's worker and database for minutes. Past it the trial stops, answers the
events it finished and says so (`truncated`, `message`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from stepd.domain.configs import ConfigSpec, parse_config
from stepd.domain.events import (
    Event,
    EventState,
    format_event_id,
    name_problem,
    params_problem,
)
from stepd.domain.firing import task_params_for
from stepd.domain.matching import Evaluation, SearchLimitReached, evaluate
from stepd.domain.params import param_text
from stepd.domain.templates import TemplateProblem
from stepd.errors import InvalidInput
from stepd.services.configs import ConfigService
from stepd.store import events as event_store
from stepd.store.engine import Store
from stepd.store.lookup import ScanBudget, ScanLimitReached, StoredEvents
from stepd.timeutil import utcnow

MAX_TRIAL_EVENTS = 100
DEFAULT_SCAN_LIMIT = 10_000  # stored events read per trial (Settings.trial_scan_limit)
HYPOTHETICAL_SEQ = 2**62  # after every stored event: all of them count as prior


def _hypothetical(raw: object, now: datetime) -> Event:
    if not isinstance(raw, dict):
        raise InvalidInput("event must be {name, params}", field="event")
    if (problem := name_problem(raw.get("name"), "event.name")) is not None:
        raise InvalidInput(problem, field="event.name")
    params = raw.get("params") or {}
    if (problem := params_problem(params)) is not None:
        raise InvalidInput(f"event.{problem}", field="event.params")
    return Event(
        seq=HYPOTHETICAL_SEQ, name=raw["name"], params=params, state=EventState.NEW, created=now
    )


@dataclass
class TrialService:
    store: Store
    configs: ConfigService
    scan_limit: int = field(default=DEFAULT_SCAN_LIMIT, kw_only=True)

    def run(self, body: dict[str, object]) -> dict[str, object]:
        """What the config in `body` would do on its event(s): `{config, events, scanned,
        truncated}`, plus `message` when the scan bound stopped the trial early."""
        spec = self._spec(body)
        if ("event" in body) == ("events" in body):
            raise InvalidInput("give either event {name, params} or events {name, params, limit}")
        budget = ScanBudget(self.scan_limit)
        results: list[dict[str, object]] = []
        targets: list[Event] = []
        estimates: dict[tuple[str, str, str], int] = {}  # shared: the store changes not here
        with self.store.read() as conn:
            try:
                if "event" in body:
                    targets = [_hypothetical(body["event"], utcnow())]
                else:
                    targets = self._stored(conn, body["events"])
                    budget.take(len(targets))
                for event in targets:
                    before = None if event.seq == HYPOTHETICAL_SEQ else event.seq
                    lookup = StoredEvents(
                        conn,
                        before_seq=before or HYPOTHETICAL_SEQ,
                        estimates=estimates,
                        budget=budget,
                    )
                    result = evaluate(
                        spec.event_deps,
                        event,
                        lookup,
                        window_seconds=spec.window_seconds,
                        nothing_newer=True,  # the lookup holds only events before this one
                        # a join of deps that share no free param multiplies their events
                        max_steps=self.scan_limit,
                    )
                    results.append(self._describe(spec, event, result))
            except (ScanLimitReached, SearchLimitReached) as exc:
                # Only events whose evaluation finished are answered: a partial one could
                # say `waiting` where the events it did not read would have fired.
                why = (
                    f"reading {self.scan_limit} stored events"
                    if isinstance(exc, ScanLimitReached)
                    else f"{self.scan_limit} steps of one event's join search"
                )
                return {
                    "config": spec.to_json(),
                    "events": results,
                    "scanned": budget.used,
                    "truncated": True,
                    "message": (
                        f"stopped after {why}, the bound of a trial:"
                        f" {len(results)} of {len(targets)} event(s) tried; try fewer"
                        " events (events.limit, events.params) or a narrower config"
                    ),
                }
        return {
            "config": spec.to_json(),
            "events": results,
            "scanned": budget.used,
            "truncated": False,
        }

    def _spec(self, body: dict[str, object]) -> ConfigSpec:
        if "config" in body and body["config"] is not None:
            return parse_config(body["config"])
        if isinstance(body.get("config_id"), str):
            return self.configs.get(str(body["config_id"])).spec
        raise InvalidInput("give config {...} or config_id", field="config")

    @staticmethod
    def _stored(conn: Connection, raw: object) -> list[Event]:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise InvalidInput("events must be {name, params?, limit?}", field="events")
        params = raw.get("params") or {}
        limit = raw.get("limit", 10)
        if isinstance(limit, bool):
            limit = None
        if (
            not isinstance(params, dict)
            or not isinstance(limit, int)
            or not 0 < limit <= MAX_TRIAL_EVENTS
        ):
            raise InvalidInput(
                f"events.params must be an object and events.limit 1 to {MAX_TRIAL_EVENTS}",
                field="events",
            )
        query = event_store.EventQuery(
            name=raw["name"],
            params={str(k): param_text(v) or "" for k, v in params.items()},
            limit=limit,
            newest_first=True,
        )
        return event_store.query_events(conn, query)

    @staticmethod
    def _describe(spec: ConfigSpec, event: Event, result: Evaluation) -> dict[str, object]:
        entry: dict[str, object] = {
            "event": {
                "_id": None if event.seq == HYPOTHETICAL_SEQ else event.id,
                "name": event.name,
                "params": dict(event.params),
            },
            "outcome": result.outcome,
        }
        firings = []
        for firing in result.firings:
            item: dict[str, object] = {
                "binding": dict(firing.binding),
                "dep_event_ids": [
                    None if e.seq == HYPOTHETICAL_SEQ else format_event_id(e.seq)
                    for e in firing.events
                ],
            }
            try:
                item["task"] = {
                    "type": spec.task_type,
                    "params": task_params_for(spec, firing, event),
                }
            except TemplateProblem as exc:
                item["error"] = str(exc)
            firings.append(item)
        entry["would_fire"] = firings
        entry["waiting"] = [
            {
                "binding": dict(w.binding),
                "missing": [{"dep_index": i, **spec.event_deps[i].to_json()} for i in w.missing],
            }
            for w in result.waiting
        ]
        entry["not_matched"] = [
            {
                "dep_index": m.dep_index,
                "param": m.key,
                "expected": m.expected,
                "actual": m.actual,
                "reason": m.reason,
            }
            for m in result.mismatches
        ]
        return entry
