"""Backfills (`POST /api/v1/configs/{id}/backfill`, `/api/v1/backfills`): a config run by
hand for every binding of a product of ranges and lists, at most `max_in_flight` at once.

Submitting plans every binding first (a template that fails on one is a 400 naming it),
stores the backfill and makes its first `max_in_flight` tasks, all in one transaction.
After that, feeds (`feed`, a round every fraction of a second on every server:
backfiller.py) make the next bindings' tasks as earlier ones end. Each task is the one a
run by hand of the config makes (services/config_run.py), marked with its backfill.

Only `max_in_flight` tasks of a backfill exist unfinished at a time, rather than all of
them queued behind a semaphore: a claim looks at the head of the queue, and ten thousand
waiting tasks there would hold back every other task of the same priority.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stepd.domain import backfills as rules
from stepd.domain.backfills import Backfill, BackfillState
from stepd.domain.configs import ActionConfig
from stepd.domain.tasks import ACTIVE, TERMINAL, Task
from stepd.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepd.services.config_run import (
    ConfigRunService,
    PlannedTask,
    insert_planned,
    known_fields,
    plan_binding,
)
from stepd.services.configs import ConfigService
from stepd.store import backfills as backfill_store
from stepd.store import configs as config_store
from stepd.store import runs
from stepd.store import tasks as task_store
from stepd.store.engine import Store
from stepd.store.runs import StatusEvents
from stepd.store.tokens import Principal
from stepd.timeutil import iso, utcnow

log = logging.getLogger(__name__)

FIELDS = ("params", "max_in_flight", "dry_run", "request_id")
FEED_BATCH = 500  # tasks made per transaction (the write turn is shared with ingest)
# A transaction of a feed ends after this long even short of FEED_BATCH: a config whose
# templates are slow must not hold the write turn that every other write waits for.
FEED_SECONDS = 0.05
# Planning renders every binding in a request's thread: a config whose templates are too
# slow for this many bindings is refused rather than tie the thread up for minutes.
PLAN_SECONDS = 5.0
ROUND_BACKFILLS = 200  # running backfills a feed round looks at
MAX_REQUEST_ID = 200


@dataclass(frozen=True)
class Request:
    params: Mapping[str, object]
    axes: tuple[rules.Axis, ...]
    max_in_flight: int
    dry_run: bool
    request_id: str | None


def parse_request(body: Mapping[str, object]) -> Request:
    dry_run = known_fields(body, FIELDS, "a backfill")
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID
    ):
        raise InvalidInput(
            f"request_id must be a string of 1 to {MAX_REQUEST_ID} characters",
            field="request_id",
        )
    params = body.get("params")
    axes = rules.parse_axes(params)
    assert isinstance(params, Mapping)
    return Request(
        params=params,
        axes=axes,
        max_in_flight=rules.parse_in_flight(body.get("max_in_flight")),
        dry_run=dry_run,
        request_id=request_id,
    )


@dataclass(frozen=True)
class Fed:
    """What a feed round found: how many backfills ran, how many tasks it made."""

    running: int
    made: int


@dataclass(frozen=True)
class Plan:
    """What a backfill would make (`dry_run`): every binding's task, in order."""

    config: ActionConfig
    max_in_flight: int
    tasks: Sequence[PlannedTask]

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": True,
            "config_id": self.config.id,
            "config_name": self.config.spec.name,
            "bindings": len(self.tasks),
            "max_in_flight": self.max_in_flight,
            "tasks": [task.to_json() for task in self.tasks],
        }


@dataclass(frozen=True)
class BackfillView:
    """A backfill as the API shows it: the row, its config, its tasks counted by status."""

    backfill: Backfill
    config: ActionConfig | None  # deleted since: its tombstone (None: unknown)
    counts: Mapping[str, int]

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status in TERMINAL)

    @property
    def active(self) -> int:
        return sum(n for status, n in self.counts.items() if status in ACTIVE)

    @property
    def waiting_for(self) -> str | None:
        """Why a running backfill makes nothing now, when it is not the obvious reason."""
        b = self.backfill
        if b.state is not BackfillState.RUNNING or b.made >= b.total:
            return None
        if self.config is not None and not self.config.fires:
            return f"config {self.config.id} is disabled: `stepd configs enable {self.config.id}`"
        return None

    def to_json(self) -> dict[str, object]:
        b = self.backfill
        done = self.finished + b.errors
        return {
            "id": b.id,
            "config_id": None if self.config is None else self.config.id,
            "config_name": None if self.config is None else self.config.spec.name,
            "state": b.state.value,
            "params": dict(b.params),
            "bindings": b.total,
            "max_in_flight": b.max_in_flight,
            "made": b.made,
            "active": self.active,
            "finished": self.finished,
            "counts": dict(sorted(self.counts.items())),
            "progress": round(done / b.total, 4) if b.total else 1.0,
            "errors": b.errors,
            "last_error": b.last_error,
            "waiting_for": self.waiting_for,
            "author": b.author,
            "request_id": b.request_id,
            "created": iso(b.created),
            "updated": iso(b.updated),
            "ended": None if b.ended is None else iso(b.ended),
            "cancelled_by": b.cancelled_by,
        }


@dataclass
class BackfillService:
    store: Store
    configs: ConfigService
    runs: ConfigRunService
    status_events: StatusEvents  # how a stopped task reports itself (cancel)
    # Runner wake-ups, shared with TaskService.on_created (the daemon adds to that list).
    on_created: list[Callable[[], None]] = field(default_factory=list)

    # -- submitting ------------------------------------------------------------------

    def submit(
        self, config_id: str, body: Mapping[str, object], principal: Principal
    ) -> Plan | tuple[BackfillView, bool]:
        """Plan a backfill (`dry_run`), or start it: (the backfill, whether it is new).
        A `request_id` already used answers the backfill it started, making nothing."""
        req = parse_request(body)
        if req.request_id is not None and not req.dry_run:
            again = self._repeat(config_id, req.request_id)
            if again is not None:
                return again, False
        with self.store.read() as conn:  # rendering every binding takes no writer's turn
            config = self.configs.get_in(conn, config_id)
            plan = self._plan(config, req, principal)
        if req.dry_run:
            return plan
        try:
            with self.store.write() as conn:
                # Locked: a pause or a change that commits meanwhile waits for this one.
                current = self.configs.get_in(conn, config_id, lock=True)
                if current.version != config.version:
                    plan = self._plan(current, req, principal)  # changed since: check again
                self.runs.check(current, principal)
                now = utcnow()
                backfill_id = backfill_store.insert_backfill(
                    conn,
                    config_seq=current.seq,
                    params=req.params,
                    total=len(plan.tasks),
                    max_in_flight=req.max_in_flight,
                    author=principal.user,
                    request_id=req.request_id,
                    now=now,
                )
                backfill = backfill_store.get(conn, backfill_id, lock=True)
                assert backfill is not None
                made = self._feed_in(conn, backfill, current, active=0)
                view = self._view(conn, backfill_id)
        except IntegrityError:
            # The same request_id committed by a concurrent request: answer its backfill.
            assert req.request_id is not None
            again = self._repeat(config_id, req.request_id)
            if again is None:
                raise
            return again, False
        log.info(
            "backfill %d of config %s by %s: %d bindings, %d at a time",
            backfill_id,
            current.id,
            principal.user,
            len(plan.tasks),
            req.max_in_flight,
        )
        if made:
            self._wake()
        return view, True

    def _plan(self, config: ActionConfig, req: Request, principal: Principal) -> Plan:
        self.runs.check(config, principal)
        tasks = []
        deadline = time.monotonic() + PLAN_SECONDS
        for index, binding in enumerate(rules.bindings(req.axes)):
            if index % 100 == 99 and time.monotonic() > deadline:
                raise InvalidInput(
                    f"planning stopped after {PLAN_SECONDS:.0f} s at binding {index + 1} of "
                    f"{rules.size(req.axes):,}: the config's templates are too slow for a "
                    "backfill this large; split it, or simplify its task_params",
                    field="params",
                )
            try:
                planned = plan_binding(config, binding, principal.user)
            except InvalidInput as exc:
                if index == 0:  # a wrong set of params: the same for every binding
                    raise
                raise InvalidInput(
                    f"binding {index + 1} ({_shown(binding)}): {exc.message}", field=exc.field
                ) from exc
            tasks.append(
                PlannedTask(
                    config=config,
                    params=planned.params,
                    binding=planned.binding,
                    by=planned.by,
                    kind="backfill",
                    semaphores=planned.semaphores,
                )
            )
        return Plan(config=config, max_in_flight=req.max_in_flight, tasks=tasks)

    def _repeat(self, config_id: str, request_id: str) -> BackfillView | None:
        with self.store.read() as conn:
            found = backfill_store.by_request_id(conn, request_id)
            if found is None:
                return None
            view = self._view(conn, found.id)
        if view.config is None or view.config.id != config_id:
            raise Conflict(
                f"request_id {request_id!r} already started backfill {found.id} of another "
                "config; use a new request_id",
                field="request_id",
            )
        return view

    # -- feeding ---------------------------------------------------------------------

    def feed(self) -> Fed:
        """One round: make the next tasks of every running backfill with room."""
        with self.store.read() as conn:
            ids = backfill_store.running_ids(conn, ROUND_BACKFILLS)
            due = []
            for backfill_id in ids:
                backfill = backfill_store.get(conn, backfill_id)
                if backfill is None:
                    continue
                active = backfill_store.active_count(conn, backfill_id)
                room = backfill.made < backfill.total and active < backfill.max_in_flight
                if room or active == 0:  # tasks to make, or it may have ended
                    due.append(backfill_id)
        made = sum(self._feed_one(backfill_id) for backfill_id in due)
        if made:
            self._wake()
        return Fed(running=len(ids), made=made)

    def _feed_one(self, backfill_id: int) -> int:
        with self.store.write() as conn:
            backfill = backfill_store.get(conn, backfill_id, lock=True)
            if backfill is None or backfill.state is not BackfillState.RUNNING:
                return 0  # ended meanwhile (cancelled, or another server's round)
            config = config_store.get_config(conn, backfill.config_seq)
            if config is None:
                backfill_store.advance(
                    conn,
                    backfill,
                    made=backfill.made,
                    errors=backfill.errors,
                    last_error="its config was deleted",
                    state=BackfillState.CANCELLED,
                    now=utcnow(),
                )
                return 0
            active = backfill_store.active_count(conn, backfill_id)
            return self._feed_in(conn, backfill, config, active=active)

    def _feed_in(
        self, conn: Connection, backfill: Backfill, config: ActionConfig, *, active: int
    ) -> int:
        """Make the next tasks of `backfill` (its row held) that fit; how many."""
        room = min(backfill.max_in_flight - active, backfill.total - backfill.made, FEED_BATCH)
        if not config.fires:
            room = 0  # paused: nothing is made until it is enabled (waiting_for says so)
        made = errors = 0
        last_error = backfill.last_error
        now = utcnow()
        axes = backfill.axes
        stop = time.monotonic() + FEED_SECONDS
        position = backfill.made
        for index in range(backfill.made, backfill.made + max(room, 0)):
            if position > backfill.made and time.monotonic() > stop:
                break  # the rest in the next round (FEED_SECONDS)
            position = index + 1
            binding = rules.binding_at(axes, index)
            try:
                plan = plan_binding(config, binding, backfill.author)
            except InvalidInput as exc:
                # The config changed since the backfill was planned: this binding makes no
                # task, the others go on; counted and said on the backfill.
                errors += 1
                last_error = f"binding {index + 1} ({_shown(binding)}): {exc.message}"
                continue
            insert_planned(conn, plan, now, backfill_id=backfill.id)
            made += 1
        ended = position >= backfill.total and active + made == 0
        if made or errors or ended:
            backfill_store.advance(
                conn,
                backfill,
                made=position,
                errors=backfill.errors + errors,
                last_error=last_error,
                state=BackfillState.DONE if ended else BackfillState.RUNNING,
                now=now,
            )
        return made

    def _wake(self) -> None:
        for hook in self.on_created:
            hook()

    # -- reading and cancelling ------------------------------------------------------

    def _view(self, conn: Connection, backfill_id: int) -> BackfillView:
        backfill = backfill_store.get(conn, backfill_id)
        if backfill is None:
            raise NotFound(f"no backfill with id {backfill_id}", field="id")
        # A deleted config's tombstone still names the config it ran.
        config = config_store.configs_by_seq(conn, [backfill.config_seq]).get(backfill.config_seq)
        counts = backfill_store.status_counts(conn, [backfill_id])[backfill_id]
        return BackfillView(backfill=backfill, config=config, counts=counts)

    def get(self, backfill_id: int) -> BackfillView:
        with self.store.read() as conn:
            return self._view(conn, backfill_id)

    def listing(
        self,
        *,
        state: BackfillState | None = None,
        config_id: str | None = None,
        config_seq: int | None = None,  # (a deleted config's: its id is a 404)
        limit: int = 100,
        offset: int = 0,
    ) -> list[BackfillView]:
        with self.store.read() as conn:
            if config_id is not None:
                config_seq = self.configs.get_in(conn, config_id).seq
            found = backfill_store.listing(
                conn, state=state, config_seq=config_seq, limit=limit, offset=offset
            )
            counts = backfill_store.status_counts(conn, [b.id for b in found])
            configs = config_store.configs_by_seq(conn, {b.config_seq for b in found})
        return [
            BackfillView(backfill=b, config=configs.get(b.config_seq), counts=counts[b.id])
            for b in found
        ]

    def tasks(self, backfill_id: int, *, limit: int, offset: int) -> list[Task]:
        """Its tasks, in the order they were made."""
        with self.store.read() as conn:
            ids = backfill_store.task_ids(conn, backfill_id, limit=limit, offset=offset)
            found = task_store.get_tasks(conn, ids)
        return [found[i] for i in ids if i in found]

    def cancel(self, backfill_id: int, principal: Principal) -> BackfillView:
        """Stop a backfill: nothing more is made, its queued tasks stop, running ones end
        as they would. Its author, its config's author or an admin may."""
        with self.store.write() as conn:
            backfill = backfill_store.get(conn, backfill_id, lock=True)
            if backfill is None:
                raise NotFound(f"no backfill with id {backfill_id}", field="id")
            config = config_store.get_config(conn, backfill.config_seq)
            owners = {backfill.author, None if config is None else config.author}
            if not (principal.is_admin or principal.user in owners):
                raise Forbidden(
                    f"backfill {backfill_id} belongs to {backfill.author}; only its author, "
                    "the author of its config or an admin may cancel it"
                )
            if backfill.state is not BackfillState.RUNNING:
                raise Conflict(
                    f"backfill {backfill_id} has already ended ({backfill.state.value}); "
                    "nothing to cancel"
                )
            now = utcnow()
            for task_id in backfill_store.queued_task_ids(conn, backfill_id):
                runs.request_stop(conn, task_id, self.status_events, now)
            backfill_store.advance(
                conn,
                backfill,
                made=backfill.made,
                errors=backfill.errors,
                last_error=backfill.last_error,
                state=BackfillState.CANCELLED,
                now=now,
                cancelled_by=principal.user,
            )
            view = self._view(conn, backfill_id)
        log.info("backfill %d cancelled by %s", backfill_id, principal.user)
        return view


def _shown(binding: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in binding.items())
