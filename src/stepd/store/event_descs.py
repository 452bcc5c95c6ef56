"""Store functions for event descriptions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from stepd.domain.event_desc import EventDesc
from stepd.store.schema import event_descs
from stepd.timeutil import as_utc


def _to_desc(m: Mapping[Any, Any]) -> EventDesc:
    return EventDesc(
        name=str(m["name"]),
        description=str(m["description"]),
        required_fields=tuple(json.loads(str(m["required_fields"]))),
        optional_fields=tuple(json.loads(str(m["optional_fields"]))),
        public=bool(m["public"]),
        list_in_idm=bool(m["list_in_idm"]),
        author=m["author"],
        created=as_utc(m["created"]),
        updated=as_utc(m["updated"]),
    )


def _to_row(desc: EventDesc) -> dict[str, object]:
    return {
        "name": desc.name,
        "description": desc.description,
        "required_fields": json.dumps(list(desc.required_fields)),
        "optional_fields": json.dumps(list(desc.optional_fields)),
        "public": desc.public,
        "list_in_idm": desc.list_in_idm,
        "author": desc.author,
        "created": desc.created,
        "updated": desc.updated,
    }


def get_desc(conn: Connection, name: str) -> EventDesc | None:
    row = conn.execute(select(event_descs).where(event_descs.c.name == name)).first()
    return None if row is None else _to_desc(dict(row._mapping))


def get_descs(conn: Connection, names: Iterable[str]) -> dict[str, EventDesc]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = conn.execute(select(event_descs).where(event_descs.c.name.in_(wanted)))
    return {str(r.name): _to_desc(dict(r._mapping)) for r in rows}


def list_descs(conn: Connection) -> list[EventDesc]:
    rows = conn.execute(select(event_descs).order_by(event_descs.c.name))
    return [_to_desc(dict(r._mapping)) for r in rows]


def insert_desc(conn: Connection, desc: EventDesc) -> None:
    conn.execute(insert(event_descs).values(_to_row(desc)))


def replace_desc(conn: Connection, desc: EventDesc) -> None:
    row = _to_row(desc)
    del row["created"]
    conn.execute(update(event_descs).where(event_descs.c.name == desc.name).values(row))


def delete_desc(conn: Connection, name: str) -> bool:
    return conn.execute(delete(event_descs).where(event_descs.c.name == name)).rowcount > 0
