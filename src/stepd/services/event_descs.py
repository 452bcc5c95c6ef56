"""Creating, changing and removing event descriptions."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from stepd.domain.event_desc import EventDesc
from stepd.domain.events import name_problem
from stepd.errors import Conflict, InvalidInput, NotFound
from stepd.store import event_descs as desc_store
from stepd.store.engine import Store
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
class EventDescService:
    store: Store

    def create(self, body: object, *, author: str | None) -> EventDesc:
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
                desc_store.insert_desc(conn, desc)
        except IntegrityError as exc:
            raise Conflict(f"event description {name!r} exists", field="name") from exc
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

    def update(self, name: str, body: object) -> EventDesc:
        """Change only the fields the body carries (the original client sends just those)."""
        checked = _check_fields(body)
        if "name" in checked and checked["name"] != name:
            raise InvalidInput("name cannot change; create a new description", field="name")
        with self.store.write() as conn:
            desc = desc_store.get_desc(conn, name)
            if desc is None:
                raise NotFound(f"no event description {name!r}", field="name")
            new = replace(_apply(desc, checked), updated=utcnow())
            desc_store.replace_desc(conn, new)
        return new

    def delete(self, name: str) -> None:
        with self.store.write() as conn:
            if not desc_store.delete_desc(conn, name):
                raise NotFound(f"no event description {name!r}", field="name")
