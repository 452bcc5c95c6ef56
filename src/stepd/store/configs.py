"""Store functions for action configs, their history and their tombstones.

A deleted config leaves `configs` (so the reactor's catalog, which reads only that table,
never sees it, and its author may give its name to a new config) for `config_tombstones`,
which keeps its last version under its own seq: past stories and tasks still name it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from stepd.domain.configs import ActionConfig, Deletion, Pause, parse_config
from stepd.domain.events import format_event_id
from stepd.store.schema import config_generation, config_history, config_tombstones, configs
from stepd.timeutil import as_utc, utcnow


def _to_config(m: Mapping[Any, Any]) -> ActionConfig:
    seq = int(m["seq"])
    paused = None
    if m["disabled"]:
        at = m["disabled_at"]
        paused = Pause(by=str(m["disabled_by"]), at=as_utc(at if at is not None else m["updated"]))
    return ActionConfig(
        id=format_event_id(seq),
        seq=seq,
        author=str(m["author"]),
        version=int(m["version"]),
        spec=parse_config(json.loads(str(m["body"])), stored=True),
        created=as_utc(m["created"]),
        updated=as_utc(m["updated"]),
        paused=paused,
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


def get_config(conn: Connection, seq: int, *, lock: bool = False) -> ActionConfig | None:
    """The config `seq`; with `lock`, its row stays locked until the caller commits
    (PostgreSQL: a pause waits for a run that read it unpaused; SQLite's writers take
    turns anyway, and it renders no FOR UPDATE)."""
    stmt = select(configs).where(configs.c.seq == seq)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
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
        paused=config.paused,  # a change of the spec does not resume it
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


def set_paused(conn: Connection, config: ActionConfig, *, actor: str, paused: bool) -> ActionConfig:
    """Pause (`paused`) or resume `config`; the history says who and when. Its version
    stays: the spec, which versions count, is unchanged. A config already in that state is
    returned as it is, and nothing is written."""
    if (config.paused is not None) == paused:
        return config
    now = utcnow()
    pause = Pause(by=actor, at=now) if paused else None
    conn.execute(
        update(configs)
        .where(configs.c.seq == config.seq)
        .values(
            disabled=paused,
            disabled_by=None if pause is None else pause.by,
            disabled_at=None if pause is None else pause.at,
        )
    )
    conn.execute(
        insert(config_history).values(
            config_seq=config.seq,
            version=config.version,
            actor=actor,
            at=now,
            action="disabled" if paused else "enabled",
            body=json.dumps(config.spec.to_json()),
            change=json.dumps({"disabled": {"old": not paused, "new": paused}}),
        )
    )
    _bump(conn)  # the reactors' catalogs reload: a paused config is skipped from now on
    return ActionConfig(
        id=config.id,
        seq=config.seq,
        author=config.author,
        version=config.version,
        spec=config.spec,
        created=config.created,
        updated=config.updated,
        paused=pause,
    )


PauseSpan = tuple[datetime, datetime | None, str]  # (from, until or None while it lasts, who)

# How many configs one query of their pauses names: well under SQLite's bound parameters.
_PAUSES_CHUNK = 500


def pauses(conn: Connection, seq: int) -> list[PauseSpan]:
    """(from, until or None while it lasts, who) of every pause of a config, oldest first:
    the story says `disabled` for an event that arrived during one."""
    return pauses_of(conn, [seq]).get(seq, [])


def pauses_of(conn: Connection, seqs: Iterable[int]) -> dict[int, list[PauseSpan]]:
    """`pauses` of many configs in a query per few hundred (a story of an event with 1,000
    configs on its name asks for all of them); a config never paused is absent."""
    wanted = sorted(set(seqs))
    found: dict[int, list[PauseSpan]] = {}
    for at_chunk in range(0, len(wanted), _PAUSES_CHUNK):
        rows = conn.execute(
            select(
                config_history.c.config_seq,
                config_history.c.action,
                config_history.c.at,
                config_history.c.actor,
            )
            .where(
                config_history.c.config_seq.in_(wanted[at_chunk : at_chunk + _PAUSES_CHUNK]),
                config_history.c.action.in_(["disabled", "enabled"]),
            )
            .order_by(config_history.c.id)
        )
        for seq, action, at, actor in rows:
            mine = found.setdefault(int(seq), [])
            if action == "disabled":
                mine.append((as_utc(at), None, str(actor)))
            elif mine and mine[-1][1] is None:
                start, _, by = mine[-1]
                mine[-1] = (start, as_utc(at), by)
    return {seq: spans for seq, spans in found.items() if spans}


def delete_config(conn: Connection, config: ActionConfig, *, actor: str) -> ActionConfig:
    """Delete `config`, keeping its last version as a tombstone (returned)."""
    now = utcnow()
    conn.execute(
        insert(config_tombstones).values(
            seq=config.seq,
            author=config.author,
            name=config.spec.name,
            version=config.version,
            task_type=config.spec.task_type,
            body=json.dumps(config.spec.to_json()),
            created=config.created,
            updated=config.updated,
            deleted_by=actor,
            deleted_at=now,
        )
    )
    conn.execute(delete(configs).where(configs.c.seq == config.seq))
    gone = ActionConfig(
        id=config.id,
        seq=config.seq,
        author=config.author,
        version=config.version + 1,
        spec=config.spec,
        created=config.created,
        updated=now,
    )
    _history(conn, gone, actor, "deleted", {})
    _bump(conn)
    return ActionConfig(
        id=config.id,
        seq=config.seq,
        author=config.author,
        version=config.version,
        spec=config.spec,
        created=config.created,
        updated=config.updated,
        deleted=Deletion(by=actor, at=now),
    )


def _to_tombstone(m: Mapping[Any, Any]) -> ActionConfig:
    seq = int(m["seq"])
    return ActionConfig(
        id=format_event_id(seq),
        seq=seq,
        author=str(m["author"]),
        version=int(m["version"]),
        spec=parse_config(json.loads(str(m["body"])), stored=True),
        created=as_utc(m["created"]),
        updated=as_utc(m["updated"]),
        deleted=Deletion(by=str(m["deleted_by"]), at=as_utc(m["deleted_at"])),
    )


def get_tombstone(conn: Connection, seq: int) -> ActionConfig | None:
    """The tombstone of deleted config `seq` (None: it was never deleted, or never was)."""
    row = conn.execute(select(config_tombstones).where(config_tombstones.c.seq == seq)).first()
    return None if row is None else _to_tombstone(row._mapping)


def list_tombstones(conn: Connection, *, author: str | None = None) -> list[ActionConfig]:
    """Every deleted config's tombstone, in the order the configs were created."""
    stmt = select(config_tombstones).order_by(config_tombstones.c.seq)
    if author is not None:
        stmt = stmt.where(config_tombstones.c.author == author)
    return [_to_tombstone(row._mapping) for row in conn.execute(stmt)]


def configs_by_seq(conn: Connection, seqs: Iterable[int]) -> dict[int, ActionConfig]:
    """The configs `seqs`, live or deleted (a tombstone), by seq: what names the config of
    a task or a firing, however long ago it ran. Seqs of neither are left out."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    found = {
        int(row.seq): _to_config(row._mapping)
        for row in conn.execute(select(configs).where(configs.c.seq.in_(wanted)))
    }
    missing = [s for s in wanted if s not in found]
    if missing:
        rows = conn.execute(select(config_tombstones).where(config_tombstones.c.seq.in_(missing)))
        found.update({int(row.seq): _to_tombstone(row._mapping) for row in rows})
    return found


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
