"""Store functions for action configs and their history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from stepd.domain.configs import ActionConfig, parse_config
from stepd.domain.events import format_event_id
from stepd.store.schema import config_generation, config_history, configs
from stepd.timeutil import as_utc, utcnow


def _to_config(m: Mapping[Any, Any]) -> ActionConfig:
    seq = int(m["seq"])
    return ActionConfig(
        id=format_event_id(seq),
        seq=seq,
        author=str(m["author"]),
        version=int(m["version"]),
        spec=parse_config(json.loads(str(m["body"])), stored=True),
        created=as_utc(m["created"]),
        updated=as_utc(m["updated"]),
    )


def generation(conn: Connection) -> int:
    """A number that changes whenever any config changes."""
    return int(conn.execute(select(config_generation.c.generation)).scalar_one())


def _bump(conn: Connection) -> None:
    conn.execute(update(config_generation).values(generation=config_generation.c.generation + 1))


def _history(
    conn: Connection, config: ActionConfig, actor: str, action: str, change: object
) -> None:
    conn.execute(
        insert(config_history).values(
            config_seq=config.seq,
            version=config.version,
            actor=actor,
            at=config.updated,
            action=action,
            body=json.dumps(config.spec.to_json()),
            change=json.dumps(change),
        )
    )


def get_config(conn: Connection, seq: int) -> ActionConfig | None:
    row = conn.execute(select(configs).where(configs.c.seq == seq)).first()
    return None if row is None else _to_config(row._mapping)


def find_by_name(conn: Connection, author: str, name: str) -> ActionConfig | None:
    row = conn.execute(
        select(configs).where(configs.c.author == author, configs.c.name == name)
    ).first()
    return None if row is None else _to_config(row._mapping)


def list_configs(conn: Connection, *, author: str | None = None) -> list[ActionConfig]:
    stmt = select(configs).order_by(configs.c.seq)
    if author is not None:
        stmt = stmt.where(configs.c.author == author)
    return [_to_config(row._mapping) for row in conn.execute(stmt)]


def insert_config(conn: Connection, config: ActionConfig, *, actor: str) -> ActionConfig:
    """Store a new config (its seq and id are assigned here) and its first history entry."""
    body = json.dumps(config.spec.to_json())
    seq = conn.execute(
        insert(configs)
        .values(
            author=config.author,
            name=config.spec.name,
            version=1,
            enabled=config.spec.enabled,
            task_type=config.spec.task_type,
            body=body,
            created=config.created,
            updated=config.updated,
        )
        .returning(configs.c.seq)
    ).scalar_one()
    stored = ActionConfig(
        id=format_event_id(seq),
        seq=seq,
        author=config.author,
        version=1,
        spec=config.spec,
        created=config.created,
        updated=config.updated,
    )
    _history(conn, stored, actor, "created", config.spec.to_json())
    _bump(conn)
    return stored


def update_config(
    conn: Connection, config: ActionConfig, *, actor: str, change: object
) -> ActionConfig:
    """Store `config` as the next version of itself."""
    new = ActionConfig(
        id=config.id,
        seq=config.seq,
        author=config.author,
        version=config.version + 1,
        spec=config.spec,
        created=config.created,
        updated=utcnow(),
    )
    conn.execute(
        update(configs)
        .where(configs.c.seq == config.seq)
        .values(
            name=new.spec.name,
            version=new.version,
            enabled=new.spec.enabled,
            task_type=new.spec.task_type,
            body=json.dumps(new.spec.to_json()),
            updated=new.updated,
        )
    )
    _history(conn, new, actor, "updated", change)
    _bump(conn)
    return new


def delete_config(conn: Connection, config: ActionConfig, *, actor: str) -> None:
    conn.execute(delete(configs).where(configs.c.seq == config.seq))
    gone = ActionConfig(
        id=config.id,
        seq=config.seq,
        author=config.author,
        version=config.version + 1,
        spec=config.spec,
        created=config.created,
        updated=utcnow(),
    )
    _history(conn, gone, actor, "deleted", {})
    _bump(conn)


def history(conn: Connection, seq: int) -> list[dict[str, object]]:
    rows = conn.execute(
        select(config_history)
        .where(config_history.c.config_seq == seq)
        .order_by(config_history.c.id)
    )
    return [
        {
            "version": r.version,
            "actor": r.actor,
            "at": as_utc(r.at).isoformat().replace("+00:00", "Z"),
            "action": r.action,
            "change": json.loads(r.change),
        }
        for r in rows
    ]


def config_at_version(conn: Connection, seq: int, version: int) -> dict[str, object] | None:
    row = conn.execute(
        select(config_history.c.body).where(
            config_history.c.config_seq == seq, config_history.c.version == version
        )
    ).first()
    return None if row is None else dict(json.loads(row[0]))
