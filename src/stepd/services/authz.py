"""Who may change what: every owner check of a write, in one place.

Authentication (services/auth.py) says who a token speaks for; this module says what
that `Principal` may change. Each function checks one verb and raises `Forbidden`,
naming the owner, when the caller may not; the services call it inside the write
transaction that then changes the thing, so a refusal changes nothing and the owner
cannot change between the check and the write. The rules are documented in
docs/api.md ("Who may do what"); an admin token may do everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection, select

from stepd.domain.configs import ActionConfig
from stepd.domain.event_desc import EventDesc
from stepd.domain.events import Event
from stepd.domain.schedules import Schedule
from stepd.domain.tasks import ACTIVE, Task
from stepd.errors import Forbidden
from stepd.store import configs as config_store
from stepd.store import event_descs as desc_store
from stepd.store import events as event_store
from stepd.store.schema import events, tasks
from stepd.store.tokens import Principal

MAX_NAMED = 5  # owners or senders named in a refusal


def _may(principal: Principal, owners: Iterable[str | None]) -> bool:
    return principal.is_admin or principal.user in set(owners)


def _names(users: Iterable[str]) -> str:
    found = sorted(set(users))
    shown = ", ".join(found[:MAX_NAMED])
    return shown + (f" and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else "")


def change_config(principal: Principal, config: ActionConfig) -> None:
    """Change or delete a config: its author or an admin."""
    if not _may(principal, [config.author]):
        raise Forbidden(
            f"config {config.id} belongs to {config.author}; only its author or an admin "
            "may change it"
        )


def reject_event(conn: Connection, principal: Principal, event: Event) -> None:
    """Reject an event: its author, the owner of its name's event description, an admin."""
    desc = desc_store.get_desc(conn, event.name)
    desc_owner = None if desc is None else desc.author
    if _may(principal, [event.author, desc_owner]):
        return
    sender = event.author or "an unknown author"
    owner = (
        f"the owner of the event description ({desc_owner})"
        if desc_owner is not None
        else f"the owner of an event description of {event.name!r} (there is none)"
    )
    raise Forbidden(
        f"event {event.id} was sent by {sender}; only its author, {owner} or an admin may reject it"
    )


def control_task(conn: Connection, principal: Principal, task: Task, verb: str) -> None:
    """Stop or restart (`verb`) a task: its author, the author of its config, an admin."""
    # A deleted config's author keeps the say over its tasks: its tombstone names the author.
    seq = task.config_seq
    config = None if seq is None else config_store.configs_by_seq(conn, [seq]).get(seq)
    config_author = None if config is None else config.author
    if _may(principal, [task.author, config_author]):
        return
    owner = task.author or "nobody"
    if config is not None and config_author != task.author:
        owner += f" (its config {config.id} belongs to {config_author})"
    raise Forbidden(
        f"task {task.id} belongs to {owner}; only its author, the author of its config "
        f"or an admin may {verb} it"
    )


def semaphore_users(conn: Connection, name: str) -> set[str]:
    """The authors of the configs that name semaphore `name` and of the active tasks that
    hold it or wait for it: who may claim it while it has no owner."""
    users = {
        c.author
        for c in config_store.list_configs(conn)
        if any(use.name == name for use in c.spec.semaphores)
    }
    rows = conn.execute(
        select(tasks.c.author, tasks.c.semaphores).where(
            tasks.c.status.in_([s.value for s in ACTIVE]), tasks.c.semaphores != "[]"
        )
    )
    for author, uses in rows:
        if author is not None and any(u.get("name") == name for u in json.loads(uses)):
            users.add(author)
    return users


def change_semaphore(
    conn: Connection, principal: Principal, name: str, owner: str | None, verb: str
) -> None:
    """Set the capacity of, or delete (`verb`), semaphore `name` whose owner is `owner`.

    An owned semaphore: its owner or an admin. One without an owner (made automatically
    on first use, or before owners were recorded, or not made yet): an admin, or an
    author of a config or active task that uses it; anyone when nothing uses it.
    """
    if principal.is_admin or principal.user == owner:
        return
    if owner is not None:
        raise Forbidden(
            f"semaphore {name!r} belongs to {owner}; only its owner or an admin may {verb} it"
        )
    users = semaphore_users(conn, name)
    if users and principal.user not in users:
        raise Forbidden(
            f"semaphore {name!r} has no owner yet and is used by {_names(users)} (their "
            f"configs or tasks); only one of them or an admin may {verb} it, and the first "
            "to set its capacity becomes its owner"
        )


def change_event_desc(principal: Principal, desc: EventDesc, verb: str) -> None:
    """Change or delete (`verb`) an event description: its author or an admin."""
    if not _may(principal, [desc.author]):
        raise Forbidden(
            f"event description {desc.name!r} belongs to {desc.author or 'nobody'}; only its "
            f"author or an admin may {verb} it"
        )


def change_schedule(principal: Principal, schedule: Schedule, verb: str) -> None:
    """Change or delete (`verb`) a schedule: who created it or an admin."""
    if not _may(principal, [schedule.author]):
        raise Forbidden(
            f"schedule {schedule.name!r} belongs to {schedule.author}; only its author or an "
            f"admin may {verb} it"
        )


def other_senders(conn: Connection, name: str, user: str) -> set[str]:
    """Up to MAX_NAMED + 1 authors other than `user` of events named `name`.

    One indexed probe per author found (ix_events_name_seq), stopping at the first event
    by someone new, so a name sent millions of times by `user` alone costs one scan of
    its index range, and one sent by many stops early.
    """
    found: set[str] = set()
    while len(found) <= MAX_NAMED:
        author = conn.execute(
            select(events.c.author)
            .where(events.c.name == name, events.c.author.not_in([user, *found]))
            .limit(1)
        ).scalar()
        if author is None:
            break
        found.add(author)
    return found


def create_event_desc(conn: Connection, principal: Principal, name: str) -> None:
    """Describe a new event name: anyone, unless others already send events of that name
    (a description makes every later event of the name be checked against it, so one
    team could otherwise make another team's events be refused); then an admin."""
    if principal.is_admin:
        return
    # The check of who sends the name and the new description are serialised with event
    # inserts: otherwise the check could miss a batch committed after its snapshot,
    # validated without the description. Ingest pauses only for the few milliseconds of
    # a describe, a rare write.
    event_store.serialise_with_event_inserts(conn)
    senders = other_senders(conn, name, principal.user)
    if senders:
        raise Forbidden(
            f"events named {name!r} are already sent by {_names(senders)}; describing the "
            "name would check their events, so only an admin may create its description "
            "(ask them or an admin)"
        )
