"""Creating, changing and removing event descriptions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stepd.domain.event_desc import EventDesc
from stepd.domain.events import name_problem
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.services import authz
from stepd.store import event_descs as desc_store
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

FIELDS = {"name", "description", "required_fields", "optional_fields", "public", "list_in_idm"}


def _field_list(body: dict[str, object], key: str) -> tuple[str, ...] | None:
    if key not in body:
        return None
    value = body[key]
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"{key} must be a list of param names", field=key)
    return tuple(value)


def _flag(body: dict[str, object], key: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false", field=key)
    return value


def _check_fields(body: object) -> dict[str, object]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown fields {unknown}; an event description has {sorted(FIELDS)}",
            field=unknown[0],
        )
    return body


def _apply(desc: EventDesc, body: dict[str, object]) -> EventDesc:
    changes: dict[str, object] = {}
    for key in ("required_fields", "optional_fields"):
        if (fields := _field_list(body, key)) is not None:
            changes[key] = fields
    for key in ("public", "list_in_idm"):
        if (flag := _flag(body, key)) is not None:
            changes[key] = flag
    if "description" in body:
        if not isinstance(body["description"], str):
            raise InvalidInput("description must be a string", field="description")
        changes["description"] = body["description"]
    new = replace(desc, **changes)  # type: ignore[arg-type]
    both = set(new.required_fields) & set(new.optional_fields)
    if both:
        raise InvalidInput(
            f"fields {sorted(both)} are both required and optional; list each once",
            field="optional_fields",
        )
    return new


@dataclass
class DescCache:
    """Event descriptions by name, trusted for `ttl_seconds` (absent names too).

    Every batch of events is checked against the descriptions of its names; asking
    the store each time would cost a query per POST. Changes made through this
    process take effect at once; those made by another replica within `ttl_seconds`.
    """

    ttl_seconds: float = 2.0
    _entries: dict[str, tuple[float, EventDesc | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, conn: Connection, names: Iterable[str]) -> dict[str, EventDesc]:
        now = time.monotonic()
        found: dict[str, EventDesc] = {}
        missing: list[str] = []
        with self._lock:
            for name in set(names):
                hit = self._entries.get(name)
                if hit is None or hit[0] <= now:
                    missing.append(name)
                elif hit[1] is not None:
                    found[name] = hit[1]
        if missing:
            fresh = desc_store.get_descs(conn, missing)
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                for name in missing:
                    self._entries[name] = (now + self.ttl_seconds, fresh.get(name))
            found.update(fresh)
        return found

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)


@dataclass
class EventDescService:
    store: Store
    cache: DescCache = field(default_factory=DescCache)

    def create(self, body: object, principal: Principal) -> EventDesc:
        """Describe a new event name; refused (authz) when others already send it."""
        author = principal.user
        checked = _check_fields(body)
        name = checked.get("name")
        if (problem := name_problem(name)) is not None:
            raise InvalidInput(problem, field="name")
        assert isinstance(name, str)
        now = utcnow()
        blank = EventDesc(
            name=name,
            description="",
            required_fields=(),
            optional_fields=(),
            public=False,
            list_in_idm=False,
            author=author,
            created=now,
            updated=now,
        )
        desc = _apply(blank, checked)
        try:
            with self.store.write() as conn:
                if desc_store.get_desc(conn, name) is not None:
                    raise Conflict(
                        f"event description {name!r} exists; change it with PUT "
                        f"/api/v1/event_desc/{name}",
                        field="name",
                    )
                authz.create_event_desc(conn, principal, name)
                desc_store.insert_desc(conn, desc)
        except IntegrityError as exc:
            self.cache.forget(name)
            raise Conflict(f"event description {name!r} exists", field="name") from exc
        self.cache.forget(name)
        return desc

    def get(self, name: str) -> EventDesc:
        with self.store.read() as conn:
            desc = desc_store.get_desc(conn, name)
        if desc is None:
            raise NotFound(f"no event description {name!r}", field="name")
        return desc

    def list(self) -> list[EventDesc]:
        with self.store.read() as conn:
            return desc_store.list_descs(conn)

    def update(self, name: str, body: object, principal: Principal) -> EventDesc:
        """Change only the fields the body carries (the original client sends just those).

        Its author or an admin may (authz)."""
        checked = _check_fields(body)
        if "name" in checked and checked["name"] != name:
            raise InvalidInput("name cannot change; create a new description", field="name")
        with self.store.write() as conn:
            desc = desc_store.get_desc(conn, name)
            if desc is None:
                raise NotFound(f"no event description {name!r}", field="name")
            authz.change_event_desc(principal, desc, "change")
            new = replace(_apply(desc, checked), updated=utcnow())
            desc_store.replace_desc(conn, new)
        self.cache.forget(name)
        return new

    def delete(self, name: str, principal: Principal) -> None:
        """Remove an event description: its author or an admin (authz)."""
        with self.store.write() as conn:
            desc = desc_store.get_desc(conn, name)
            if desc is None:
                raise NotFound(f"no event description {name!r}", field="name")
            authz.change_event_desc(principal, desc, "delete")
            desc_store.delete_desc(conn, name)
        self.cache.forget(name)
