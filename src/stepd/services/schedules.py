"""Creating, changing and removing cron schedules (their ticks: stepd/scheduler.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from stepd.domain import schedules as rules
from stepd.domain.schedules import Schedule
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.services import authz
from stepd.store import schedules as schedule_store
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

# How many schedules a deployment may hold: each costs a look every second of every
# server's round, and a user's script must not be able to flood the store with them.
MAX_SCHEDULES = 1000


def _absent(name: str) -> NotFound:
    return NotFound(f"no schedule {name!r}; create it with POST /api/v1/schedules", field="name")


@dataclass
class ScheduleService:
    store: Store
    max_schedules: int = MAX_SCHEDULES

    def create(self, body: object, principal: Principal) -> Schedule:
        """A new schedule, owned by the caller; its first tick is the first after now
        (nothing is owed for the time before it existed)."""
        now = utcnow()
        spec = rules.spec_from(rules.check_fields(body), None, now)
        schedule = Schedule(
            spec=spec,
            uid=uuid.uuid4().hex,
            author=principal.user,
            created=now,
            updated=now,
            next_tick=rules.first_after(spec, now),
            last_tick=None,
        )
        try:
            with self.store.write() as conn:
                if schedule_store.get_schedule(conn, spec.name) is not None:
                    raise self._exists(spec.name)
                if schedule_store.count(conn) >= self.max_schedules:
                    raise Conflict(
                        f"there are {self.max_schedules} schedules already, as many as a "
                        "deployment may have; delete one first",
                        field="name",
                    )
                schedule_store.insert_schedule(conn, schedule)
        except IntegrityError:  # the same name, created by another request meanwhile
            raise self._exists(spec.name) from None
        return schedule

    @staticmethod
    def _exists(name: str) -> Conflict:
        return Conflict(
            f"schedule {name!r} exists; change it with PUT /api/v1/schedules/{name}",
            field="name",
        )

    def get(self, name: str) -> Schedule:
        with self.store.read() as conn:
            schedule = schedule_store.get_schedule(conn, name)
        if schedule is None:
            raise _absent(name)
        return schedule

    def list(self) -> list[Schedule]:
        with self.store.read() as conn:
            return schedule_store.list_schedules(conn)

    def update(self, name: str, body: object, principal: Principal) -> Schedule:
        """Change the fields the body carries; its author or an admin may (authz).

        A new cron or time zone starts from the first tick after now, and so does a
        schedule enabled again: the ticks of a pause are not owed."""
        checked = rules.check_fields(body)
        if "name" in checked and checked["name"] != name:
            raise InvalidInput(
                "name cannot change; create a schedule of the new name and delete this one",
                field="name",
            )
        now = utcnow()
        with self.store.write() as conn:
            old = schedule_store.get_schedule(conn, name, lock=True)
            if old is None:
                raise _absent(name)
            authz.change_schedule(principal, old, "change")
            spec = rules.spec_from(checked, old.spec, now)
            restart = (
                spec.cron != old.spec.cron
                or spec.timezone != old.spec.timezone
                or (spec.enabled and not old.spec.enabled)
            )
            new = replace(
                old,
                spec=spec,
                updated=now,
                next_tick=rules.first_after(spec, now) if restart else old.next_tick,
            )
            schedule_store.replace_spec(conn, new)
        return new

    def delete(self, name: str, principal: Principal) -> None:
        """Remove a schedule (no tick of it is emitted after); its author or an admin."""
        with self.store.write() as conn:
            schedule = schedule_store.get_schedule(conn, name, lock=True)
            if schedule is None:
                raise _absent(name)
            authz.change_schedule(principal, schedule, "delete")
            schedule_store.delete_schedule(conn, name)
