"""The event story: what an event fired, what waits, what did not match and why, and the chain.

Firings are read from the triggers the reactor recorded (exact). For configs that
did not fire, the matcher is run again over the events stored before this one, so
the story can say which dependency is still missing or which param differed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from stepd.domain.configs import ActionConfig
from stepd.domain.events import Event, EventState, format_event_id, parse_event_id
from stepd.domain.matching import Evaluation, Mismatch, SearchLimitReached, evaluate
from stepd.domain.story_order import lead_with_the_answer
from stepd.domain.tasks import Task
from stepd.errors import NotFound, StepdError
from stepd.reactor.catalog import Catalog, Snapshot
from stepd.shapes import ProducedTask
from stepd.store import configs as config_store
from stepd.store import events as event_store
from stepd.store import tasks as task_store
from stepd.store import triggers as trigger_store
from stepd.store.engine import Store
from stepd.store.lookup import JoinBudget, ScanLimitReached, StoredEvents
from stepd.timeutil import iso

MAX_DEPTH = 10  # how far a chain is followed
MAX_NODES = 200  # how many events one story may hold


def _task_json(task: Task, config: ActionConfig | None) -> dict[str, object]:
    # The story's shape of a task (`task_type`, not `type`), built from the one rendering.
    name = None if config is None else config.spec.name
    return ProducedTask.of(task, name).model_dump(mode="json")


def _mismatches(result: Evaluation) -> list[dict[str, object]]:
    return _mismatch_json(result.mismatches)


def _mismatch_json(mismatches: tuple[Mismatch, ...] | list[Mismatch]) -> list[dict[str, object]]:
    return [
        {
            "dep_index": m.dep_index,
            "param": m.key,
            "expected": m.expected,
            "actual": m.actual,
            "reason": m.reason,
        }
        for m in mismatches
    ]


def _differs(config: ActionConfig, event: Event) -> list[dict[str, object]]:
    """For a disabled config: why its dependencies on this event's name would not have
    matched the event anyway (empty when one would have), so that the story can put an
    unrelated disabled config among the collapsed ones and a related one in full."""
    found: list[Mismatch] = []
    for index, dep in enumerate(config.spec.event_deps):
        if dep.name != event.name:
            continue
        misses = dep.check(event.params, dep_index=index)
        if not misses:
            return []
        found.extend(misses)
    return _mismatch_json(found)


def _disabled_note(
    config: ActionConfig, event: Event, pauses: list[config_store.PauseSpan]
) -> str | None:
    """Why `config` did not see `event` because it was disabled or paused (None: it was
    not). A config paused when the event arrived skipped it for good, even once resumed."""
    if not config.spec.enabled:
        return "the config has enabled: false"
    if config.paused is not None and event.created >= config.paused.at:
        return (
            f"the config is paused (by {config.paused.by} since {iso(config.paused.at)}): "
            f"`stepd configs enable {config.id}` resumes it; events sent meanwhile do not "
            "fire it later"
        )
    for start, until, by in pauses:
        if start <= event.created and (until is None or event.created < until):
            until_text = "" if until is None else f" until {iso(until)}"
            return (
                f"the config was paused when this event arrived (by {by} from {iso(start)}"
                f"{until_text}); events sent during a pause do not fire it later"
            )
    return None


@dataclass
class _Teller:
    conn: Connection
    configs: Snapshot
    join_budget: JoinBudget = field(default_factory=JoinBudget)  # per config evaluated
    nodes: int = 0
    # The task types live workers run (services/fleet.py), None: not known here.
    live_types: frozenset[str] | None = None

    def _fired_configs(self, fired: list[trigger_store.Trigger]) -> dict[int, ActionConfig]:
        """The configs that fired, by seq: from the catalog, or, for one deleted since (the
        catalog holds live configs only), its tombstone from the store."""
        seqs = {t.config_seq for t in fired}
        found = {s: self.configs.by_seq[s] for s in seqs if s in self.configs.by_seq}
        missing = seqs - set(found)
        if missing:
            found.update(config_store.configs_by_seq(self.conn, missing))
        return found

    def story(self, event: Event, depth: int) -> dict[str, object]:
        self.nodes += 1
        fired = trigger_store.for_event(self.conn, event.seq)
        tasks = task_store.get_tasks(self.conn, [t.task_id for t in fired if t.task_id])
        fired_configs = self._fired_configs(fired)
        produced = [
            self._waiting(_task_json(tasks[t.task_id], fired_configs.get(t.config_seq)))
            for t in fired
            if t.task_id in tasks
        ]
        related = self.configs.index.by_name(event.name)
        # What fired, though the catalog no longer lists it under this name (deleted since,
        # or changed to depend on other events), comes first: the story never forgets it.
        listed = {c.seq for c in related}
        gone = [c for s, c in sorted(fired_configs.items()) if s not in listed]
        # Every pause of every config in one query: a story of an event with 1,000 configs
        # on its name must not make 1,000 round trips (benchmarks/story_bench.py).
        pauses = config_store.pauses_of(self.conn, listed)
        configs, summary = lead_with_the_answer(
            [
                self._config_entry(c, event, fired, tasks, pauses.get(c.seq, []))
                for c in [*gone, *related]
            ]
        )
        chain: list[dict[str, object]] = []
        if depth < MAX_DEPTH:
            emitted = task_store.emitted_events(self.conn, tasks)
            found = event_store.get_events(
                self.conn, [s for seqs in emitted.values() for s in seqs]
            )
            for task_id, seqs in emitted.items():
                for seq in seqs:
                    if seq in found and self.nodes < MAX_NODES:
                        chain.append({"task_id": task_id, **self.story(found[seq], depth + 1)})
        return {
            "event": event.to_json(),
            "evaluated": event.state != EventState.NEW,
            "produced_tasks": produced,
            "configs": configs,
            "summary": summary,
            "chain": chain,
        }

    def _waiting(self, task: dict[str, object]) -> dict[str, object]:
        """A queued task of a type no live worker runs says so: it waits for a worker that
        may never come (or one that does not know the type ends it EXCEPTION)."""
        if (
            self.live_types is not None
            and task["status"] == "ENQUEUED"
            and task["task_type"] not in self.live_types
        ):
            task["waiting"] = (
                f"no live worker runs task type {task['task_type']!r}: start a worker "
                "with --tasks naming the module that declares it (stepd workers list)"
            )
        return task

    def _config_entry(
        self,
        config: ActionConfig,
        event: Event,
        fired: list[trigger_store.Trigger],
        tasks: dict[int, Task],
        pauses: list[config_store.PauseSpan],
    ) -> dict[str, object]:
        entry: dict[str, object] = {
            "config_id": config.id,
            "config_name": config.spec.name,
            "author": config.author,
            "task_type": config.spec.task_type,
            "version": config.version,
        }
        if config.deleted is not None:
            entry["deleted"] = True
            entry["deleted_by"] = config.deleted.by
            entry["deleted_at"] = iso(config.deleted.at)
        mine = [t for t in fired if t.config_seq == config.seq]
        if mine:
            entry["outcome"] = "fired"
            entry["fired"] = [
                {
                    "binding": dict(t.binding),
                    "task_id": t.task_id,
                    "task_status": tasks[t.task_id].status.value if t.task_id in tasks else None,
                    "config_version": t.config_version,
                    "dep_event_ids": [format_event_id(s) for s in t.dep_events],
                    "error": t.error,
                }
                for t in mine
            ]
            return entry
        if event.state == EventState.NEW:
            entry["outcome"] = "pending"
            entry["note"] = "the reactor has not evaluated this event yet"
            return entry
        disabled = _disabled_note(config, event, pauses)
        if disabled is not None:
            entry["outcome"] = "disabled"
            entry["note"] = disabled
            entry["differs"] = _differs(config, event)
            return entry
        # Bounded as the reactor's evaluation is: a story is a read anyone may ask for,
        # and a product of events must not hold a server's worker for minutes.
        budget = self.join_budget
        try:
            try:
                result = evaluate(
                    config.spec.event_deps,
                    event,
                    StoredEvents(self.conn, before_seq=event.seq, budget=budget.scan()),
                    window_seconds=config.spec.window_seconds,
                    nothing_newer=True,  # the lookup holds only events before this one
                    max_steps=budget.steps,
                )
            except (ScanLimitReached, SearchLimitReached) as exc:
                raise budget.exceeded(exc) from exc
        except StepdError as exc:
            entry["outcome"] = "failed"
            entry["note"] = f"evaluation failed: {exc.message}"
            return entry
        except Exception as exc:  # a stored config the reactor could not evaluate either
            entry["outcome"] = "failed"
            entry["note"] = f"evaluation failed: {type(exc).__name__}: {exc}"
            return entry
        entry["outcome"] = result.outcome
        if result.outcome == "not_matched":
            entry["not_matched"] = _mismatches(result)
        elif result.outcome == "waiting":
            deps = config.spec.event_deps
            entry["waiting"] = [
                {
                    "binding": dict(w.binding),
                    "missing": [{"dep_index": i, **deps[i].to_json()} for i in w.missing],
                }
                for w in result.waiting
            ]
            later = trigger_store.completed_later(self.conn, config.seq, event.seq)
            entry["completed_later_by"] = [
                {
                    "event_id": format_event_id(t.event_seq),
                    "task_id": t.task_id,
                    "binding": dict(t.binding),
                }
                for t in later
            ]
        else:
            # It would fire now but did not then: the config is newer, or changed since.
            entry["outcome"] = "not_fired"
            entry["note"] = (
                "this config would fire on this event now, but did not when the event was "
                f"evaluated (config version {config.version}, updated {iso(config.updated)})"
            )
        return entry


@dataclass
class StoryService:
    store: Store
    catalog: Catalog = field(default_factory=Catalog)
    join_budget: JoinBudget = field(default_factory=JoinBudget)  # Settings.join_budget_*
    # The task types live workers run now (services/fleet.py); None: not said in stories.
    live_types: Callable[[], frozenset[str]] | None = None

    def start(self, event_id: str) -> str:
        """`POST /event_story`: the story id for an event (the story is told on GET)."""
        self._event_seq(event_id)
        with self.store.read() as conn:
            seq = self._event_seq(event_id)
            if event_store.get_event(conn, seq) is None:
                raise NotFound(f"no event with id {event_id!r}", field="id")
        return event_id

    @staticmethod
    def _event_seq(event_id: str) -> int:
        seq = parse_event_id(event_id)
        if seq is None:
            raise NotFound(f"no event with id {event_id!r}", field="id")
        return seq

    def tell(self, story_id: str) -> dict[str, object]:
        seq = self._event_seq(story_id)
        with self.store.read() as conn:
            event = event_store.get_event(conn, seq)
            if event is None:
                raise NotFound(f"no story with id {story_id!r}", field="id")
            live = None if self.live_types is None else self.live_types()
            teller = _Teller(conn, self.catalog.snapshot(conn), self.join_budget, live_types=live)
            story = teller.story(event, 0)
        return {"story_id": story_id, **story}
