"""The store's operations as the services, the reactor and the runner use them, in one place.

The contract tests (tests/store/test_*_contract.py) call only this adapter, never
`stepd.store.*` directly: when the store becomes one `Store` protocol with a backend per
dialect (issue 14), this file is what changes and the tests stay as they are. Each method
opens its own transaction, as its callers do, unless it says otherwise; values come back
as the domain's types (Event, Task, ActionConfig, ...), which the restructure keeps.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from stepd.domain.configs import ActionConfig, parse_config
from stepd.domain.event_desc import EventDesc
from stepd.domain.events import Event, EventState
from stepd.domain.params import Params
from stepd.domain.tasks import Task, TaskStatus
from stepd.store import Store, dbapi, lookup, metrics, runs
from stepd.store import configs as config_store
from stepd.store import event_descs as desc_store
from stepd.store import events as event_store
from stepd.store import tasks as task_store
from stepd.store import tokens as token_store
from stepd.store import triggers as trigger_store
from stepd.store.metrics import StoreMetrics
from stepd.store.runs import Claimed
from stepd.store.schema import semaphores, tasks
from stepd.store.tokens import Principal, TokenInfo
from stepd.store.triggers import Trigger

T0 = datetime(2026, 12, 1, 8, 0, 0, 250000, tzinfo=UTC)
STATUS_EVENTS = runs.StatusEvents(name="taskEvent", environment="testing")


class Duplicate(Exception):
    """The store refused a second row for a key that must be unique."""


@dataclass(frozen=True)
class Found:
    """A prior event as the matcher's lookup returns it."""

    seq: int
    name: str
    params: Mapping[str, object]
    created: datetime


class Contract:
    """The store under test: `Store` today, the `Store` protocol tomorrow."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def backend(self) -> str:
        return "sqlite" if self.store.is_sqlite else "postgres"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.store.write() as conn:
                yield conn
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc

    # ------------------------------------------------------------------ events

    def add_events(
        self,
        events: Sequence[tuple[str, Params]],
        *,
        created: datetime = T0,
        author: str | None = None,
        request_id: str | None = None,
        source_type: str | None = None,
        source: str | None = None,
        state: EventState = EventState.NEW,
    ) -> list[int]:
        """Store a batch (all or nothing); the seqs in order."""
        new = [
            event_store.NewEvent(
                name=name,
                params=params,
                created=created,
                author=author,
                request_id=request_id,
                source_type=source_type,
                source=source,
                state=state,
            )
            for name, params in events
        ]
        with self._write() as conn:
            return event_store.insert_events(conn, new)

    def event(self, seq: int) -> Event | None:
        with self.store.read() as conn:
            return event_store.get_event(conn, seq)

    def events(self, seqs: Sequence[int]) -> dict[int, Event]:
        with self.store.read() as conn:
            return event_store.get_events(conn, seqs)

    def query(
        self,
        *,
        name: str | None = None,
        params: Mapping[str, str] | None = None,
        state: EventState | None = None,
        skip: int = 0,
        limit: int = 30,
        newest_first: bool = False,
    ) -> list[int]:
        """The seqs of the events `GET /api/v1/events` would list for these filters."""
        q = event_store.EventQuery(
            name=name,
            params=params or {},
            state=state,
            skip=skip,
            limit=limit,
            newest_first=newest_first,
        )
        with self.store.read() as conn:
            return [e.seq for e in event_store.query_events(conn, q)]

    def set_state(
        self, seq: int, state: EventState, *, only_from: EventState | None = None
    ) -> bool:
        with self._write() as conn:
            return event_store.set_state(conn, seq, state, only_from=only_from)

    def reject(self, seq: int) -> bool:
        """As `EventService.reject` does it: NEW or PROCESSED events become REJECTED."""
        return self.set_state(seq, EventState.REJECTED)

    def record_request(
        self, request_id: str, ids: Sequence[str], digest: str, created: datetime = T0
    ) -> None:
        """Remember a request_id's answer; Duplicate if it is already known."""
        with self._write() as conn:
            event_store.record_request(conn, request_id, ids, digest, created)

    def find_request(self, request_id: str) -> tuple[list[str], str] | None:
        with self.store.read() as conn:
            return event_store.find_request(conn, request_id)

    def submit_once(
        self,
        request_id: str,
        events: Sequence[tuple[str, Params]],
        digest: str,
        *,
        look_first: bool = True,
    ) -> list[str]:
        """What `EventService.submit` does with a request_id, in one write transaction:
        the first call stores and records, a repeat returns the first ids. Without
        `look_first`, as when another request recorded the id meanwhile: Duplicate."""
        with self._write() as conn:
            seen = event_store.find_request(conn, request_id) if look_first else None
            if seen is not None:
                return seen[0]
            new = [
                event_store.NewEvent(name=n, params=p, created=T0, request_id=request_id)
                for n, p in events
            ]
            ids = [str(s) for s in event_store.insert_events(conn, new)]
            event_store.record_request(conn, request_id, ids, digest, T0)
            return ids

    # ------------------------------------------------------------------ the reactor's view

    def new_events(self, limit: int = 100) -> list[tuple[int, str, dict[str, Any]]]:
        """The oldest NEW events, as the reactor's batch reads them: (seq, name, params)."""
        with self.store.read() as conn:
            return [(r.seq, r.name, dict(r.params())) for r in lookup.new_events(conn, limit)]

    def mark_processed(self, seqs: Sequence[int], *, whole_range: bool = False) -> None:
        with self._write() as conn:
            lookup.mark_processed(conn, seqs, whole_range=whole_range)

    def newest_processed(self) -> int:
        with self.store.read() as conn:
            return lookup.newest_processed(conn)

    def count_new(self, first: int, last: int) -> int:
        with self.store.read() as conn:
            return lookup.count_new(conn, first, last)

    def any_rejected(self, seqs: Sequence[int]) -> bool:
        with self.store.read() as conn:
            return lookup.any_rejected(conn, seqs)

    def prior(
        self, name: str, equal: Mapping[str, str], *, before_seq: int | None = None
    ) -> list[Found]:
        """The matcher's `find`: prior events of `name` whose params have these texts."""
        with self.store.read() as conn:
            found = lookup.StoredEvents(conn, before_seq=before_seq).find(name, equal)
            return [Found(e.seq, e.name, dict(e.params), e.created) for e in found]

    def newest_prior(
        self, name: str, equal: Mapping[str, str], *, before_seq: int | None = None
    ) -> int | None:
        """The matcher's `newest`: the seq of the newest prior event of `name`."""
        with self.store.read() as conn:
            found = lookup.StoredEvents(conn, before_seq=before_seq).newest(
                name, equal, lambda _e: True
            )
            return None if found is None else found.seq

    # ------------------------------------------------------------------ configs

    def create_config(self, body: Mapping[str, object], *, author: str = "alice") -> ActionConfig:
        spec = parse_config(dict(body))
        draft = ActionConfig(
            id="", seq=0, author=author, version=1, spec=spec, created=T0, updated=T0
        )
        with self._write() as conn:
            return config_store.insert_config(conn, draft, actor=author)

    def update_config(
        self, config: ActionConfig, body: Mapping[str, object], *, actor: str = "alice"
    ) -> ActionConfig:
        spec = parse_config(dict(body))
        changed = ActionConfig(
            id=config.id,
            seq=config.seq,
            author=config.author,
            version=config.version,
            spec=spec,
            created=config.created,
            updated=config.updated,
        )
        change = {"enabled": {"old": config.spec.enabled, "new": spec.enabled}}
        with self._write() as conn:
            return config_store.update_config(conn, changed, actor=actor, change=change)

    def delete_config(self, config: ActionConfig, *, actor: str = "alice") -> None:
        with self._write() as conn:
            config_store.delete_config(conn, config, actor=actor)

    def config(self, seq: int) -> ActionConfig | None:
        with self.store.read() as conn:
            return config_store.get_config(conn, seq)

    def config_by_name(self, author: str, name: str) -> ActionConfig | None:
        with self.store.read() as conn:
            return config_store.find_by_name(conn, author, name)

    def configs(self, *, author: str | None = None) -> list[ActionConfig]:
        with self.store.read() as conn:
            return config_store.list_configs(conn, author=author)

    def history(self, seq: int) -> list[dict[str, object]]:
        with self.store.read() as conn:
            return config_store.history(conn, seq)

    def config_at_version(self, seq: int, version: int) -> dict[str, object] | None:
        with self.store.read() as conn:
            return config_store.config_at_version(conn, seq, version)

    def generation(self) -> int:
        """The configs' generation, as the services and as the reactor read it (they agree)."""
        with self.store.read() as conn:
            by_service = config_store.generation(conn)
            by_reactor = lookup.config_generation(conn)
        assert by_service == by_reactor
        return by_service

    # ------------------------------------------------------------------ triggers

    def add_trigger(
        self,
        *,
        config_seq: int,
        event_seq: int,
        binding: Mapping[str, object],
        dep_events: Sequence[int] = (),
        task_id: int | None = None,
        error: str | None = None,
        config_version: int = 1,
        created: datetime = T0,
    ) -> int | None:
        """Record a firing as the reactor does; None when that binding already fired."""
        key = json.dumps(binding, sort_keys=True)
        with self._write() as conn:
            return trigger_store.insert_trigger(
                conn,
                config_seq=config_seq,
                config_version=config_version,
                event_seq=event_seq,
                binding_key=key,
                binding_json=json.dumps(binding),
                dep_events=dep_events,
                task_id=task_id,
                error=error,
                created=dbapi.time_param(conn, created),
            )

    def triggers_for_event(self, event_seq: int) -> list[Trigger]:
        with self.store.read() as conn:
            return trigger_store.for_event(conn, event_seq)

    def trigger_for_task(self, task_id: int) -> Trigger | None:
        with self.store.read() as conn:
            return trigger_store.for_task(conn, task_id)

    def triggers_for_binding(self, config_seq: int, binding: Mapping[str, object]) -> list[Trigger]:
        with self.store.read() as conn:
            return trigger_store.for_config_binding(
                conn, config_seq, json.dumps(binding, sort_keys=True)
            )

    def completed_later(self, config_seq: int, event_seq: int) -> list[Trigger]:
        with self.store.read() as conn:
            return trigger_store.completed_later(conn, config_seq, event_seq)

    # ------------------------------------------------------------------ tasks and runs

    def add_task(
        self,
        type: str = "T",
        params: Mapping[str, object] | None = None,
        *,
        author: str | None = "alice",
        priority: int = 0,
        semaphores: Sequence[Mapping[str, object]] = (),
        max_retries: int = 0,
        kill_timeout: int | None = None,
        created: datetime = T0,
        event_seq: int | None = None,
    ) -> int:
        new = task_store.NewTask(
            type=type,
            params=params or {},
            author=author,
            priority=priority,
            semaphores=semaphores,
            max_retries=max_retries,
            kill_timeout=kill_timeout,
            created=created,
            event_seq=event_seq,
        )
        with self._write() as conn:
            return task_store.insert_task(conn, new)

    def delete_unfired(self, task_id: int) -> None:
        with self._write() as conn:
            task_store.delete_unfired(conn, task_id)

    def task(self, task_id: int) -> Task:
        with self.store.read() as conn:
            found = task_store.get_task(conn, task_id)
        assert found is not None, f"no task {task_id}"
        return found

    def tasks(self, ids: Sequence[int]) -> dict[int, Task]:
        with self.store.read() as conn:
            return task_store.get_tasks(conn, ids)

    def has_work(self, now: datetime = T0, *, types: Collection[str] | None = None) -> bool:
        with self.store.read() as conn:
            return runs.has_work(conn, now, types=types)

    def claim(
        self,
        worker: str = "w1",
        now: datetime = T0,
        *,
        limit: int = 1,
        start: bool = True,
        types: Collection[str] | None = None,
    ) -> list[Claimed]:
        with self._write() as conn:
            return runs.claim(conn, worker, now, limit=limit, start=start, types=types)

    def claimed_ids(self, worker: str = "w1", now: datetime = T0, *, limit: int = 1) -> list[int]:
        return [c.id for c in self.claim(worker, now, limit=limit)]

    def claimed_ids_of(self, types: Collection[str], *, limit: int = 1) -> list[int]:
        return [c.id for c in self.claim(limit=limit, types=types)]

    def start(self, task_id: int, attempt: int, worker: str = "w1", now: datetime = T0) -> bool:
        with self._write() as conn:
            return runs.start(conn, task_id, attempt, worker, now) is not None

    def heartbeat(self, task_id: int, attempt: int) -> bool:
        """True when the worker should stop. Stamped by the database's clock (issue 9
        item 11), so a test ages a heartbeat with `age_heartbeat` instead of passing a time."""
        with self._write() as conn:
            return runs.heartbeat(conn, task_id, attempt)

    def age_heartbeat(self, task_id: int, seconds: float) -> None:
        """Move a task's last heartbeat `seconds` into the past (a worker gone silent)."""
        with self._write() as conn:
            row = conn.execute(select(tasks.c.heartbeat).where(tasks.c.id == task_id)).one()
            conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id)
                .values(heartbeat=row.heartbeat - timedelta(seconds=seconds))
            )

    def finish(
        self,
        task_id: int,
        attempt: int,
        status: TaskStatus,
        *,
        output: object = None,
        error: str | None = None,
        now: datetime = T0,
    ) -> TaskStatus | None:
        outcome = runs.Outcome(status=status, output=output, error=error)
        with self._write() as conn:
            return runs.finish(conn, task_id, attempt, outcome, STATUS_EVENTS, now)

    def reap(
        self, now: datetime, *, timeout_seconds: float = 30, worker: str | None = None
    ) -> list[int]:
        with self._write() as conn:
            return runs.reap(
                conn,
                now,
                heartbeat_timeout_seconds=timeout_seconds,
                events=STATUS_EVENTS,
                worker=worker,
            )

    def request_stop(self, task_id: int, now: datetime = T0) -> TaskStatus | None:
        with self._write() as conn:
            return runs.request_stop(conn, task_id, STATUS_EVENTS, now)

    def restart(self, task_id: int, now: datetime = T0) -> bool:
        with self._write() as conn:
            return runs.restart(conn, task_id, now)

    def unstarted_dispatches(self, older_than: datetime) -> list[tuple[int, int]]:
        with self.store.read() as conn:
            return runs.unstarted_dispatches(conn, older_than)

    def undo_dispatch(self, task_id: int, attempt: int, now: datetime = T0) -> None:
        with self._write() as conn:
            runs.undo_dispatch(conn, task_id, attempt, now)

    def attempts(self, task_id: int) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return runs.attempts(conn, task_id)

    def append_log(self, task_id: int, attempt: int, chunk: int, text: str) -> None:
        with self._write() as conn:
            runs.append_log(conn, task_id, attempt, chunk, text)

    def read_log(self, task_id: int, attempt: int | None = None) -> tuple[int, str]:
        with self.store.read() as conn:
            return runs.read_log(conn, task_id, attempt)

    def emitted_events(self, task_ids: Sequence[int]) -> dict[int, list[int]]:
        with self.store.read() as conn:
            return task_store.emitted_events(conn, task_ids)

    def set_capacity(self, name: str, capacity: int, now: datetime = T0) -> None:
        """What `PUT /api/v1/semaphores/{name}` stores (after its checks)."""
        with self._write() as conn:
            runs.ensure_semaphores(conn, [name], now)
            conn.execute(
                update(semaphores)
                .where(semaphores.c.name == name)
                .values(capacity=capacity, auto=False, updated=now)
            )

    def check_weights(self, uses: Sequence[tuple[str, int]]) -> None:
        """Raise InvalidInput for a weight no semaphore could ever grant."""
        with self.store.read() as conn:
            runs.check_weights(conn, uses)

    # ------------------------------------------------------------------ tokens

    def create_token(self, user: str, *, admin: bool = False) -> str:
        with self._write() as conn:
            return token_store.create_token(conn, user, is_admin=admin)

    def principal(self, token: str) -> Principal | None:
        with self.store.read() as conn:
            return token_store.find_principal(conn, token)

    def revoke_user(self, user: str) -> int:
        with self._write() as conn:
            return token_store.revoke_user_tokens(conn, user)

    def revoke_token(self, token_id: int) -> bool:
        with self._write() as conn:
            return token_store.revoke_token(conn, token_id)

    def tokens(self, *, include_revoked: bool = False) -> list[TokenInfo]:
        with self.store.read() as conn:
            return token_store.list_tokens(conn, include_revoked=include_revoked)

    # ------------------------------------------------------------------ event descriptions

    def add_desc(self, desc: EventDesc) -> None:
        with self._write() as conn:
            desc_store.insert_desc(conn, desc)

    def replace_desc(self, desc: EventDesc) -> None:
        with self._write() as conn:
            desc_store.replace_desc(conn, desc)

    def delete_desc(self, name: str) -> bool:
        with self._write() as conn:
            return desc_store.delete_desc(conn, name)

    def desc(self, name: str) -> EventDesc | None:
        with self.store.read() as conn:
            return desc_store.get_desc(conn, name)

    def descs(self) -> list[EventDesc]:
        with self.store.read() as conn:
            return desc_store.list_descs(conn)

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> StoreMetrics:
        with self.store.read() as conn:
            return metrics.read(conn)
