"""Creating, changing, finding and removing action configs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stepd.domain.configs import WRITABLE, ActionConfig, ConfigSpec, diff, parse_config
from stepd.domain.events import parse_event_id
from stepd.domain.lifecycle import StatusEvents
from stepd.errors import ConfigDeleted, Conflict, InvalidInput, NotFound, StepdError
from stepd.services import authz
from stepd.store import configs as config_store
from stepd.store import deployment, runs
from stepd.store import event_descs as desc_store
from stepd.store import events as event_store
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import iso, utcnow

MAX_VALIDATE = 1000  # configs per validation request

# Top-level fields the filters can reach: what a config holds, and who made it.
FILTER_ROOTS = WRITABLE | {"author", "version", "_id", "disabled", "deleted_by"}


def _check_descs(conn: Connection, spec: ConfigSpec) -> None:
    """A dependency on a described event may only use fields the description knows."""
    descs = desc_store.get_descs(conn, {d.name for d in spec.event_deps})
    for i, dep in enumerate(spec.event_deps):
        desc = descs.get(dep.name)
        if desc is None:
            continue
        for cond in dep.conditions:
            if not desc.knows(cond.key):
                raise InvalidInput(
                    f"event {dep.name!r} has no field {cond.key!r} in its description "
                    f"(it knows {sorted({*desc.required_fields, *desc.optional_fields})})",
                    field=f"event_deps[{i}].params.{cond.key}",
                )


def _lookup(value: object, path: list[str]) -> list[object]:
    """Every value at `path` inside `value` (lists fan out: `event_deps__name`)."""
    if not path:
        return [value]
    if isinstance(value, list):
        return [found for item in value for found in _lookup(item, path)]
    if isinstance(value, dict) and path[0] in value:
        return _lookup(value[path[0]], path[1:])
    return []


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


def _flag(value: str, name: str) -> bool:
    try:
        return FLAGS[value.strip().lower()]
    except KeyError:
        raise InvalidInput(
            f"{name} must be 1 or 0 (true or false), not {value!r}", field=name
        ) from None


def matches_filters(config: ActionConfig, filters: Mapping[str, str]) -> bool:
    """True when every `a__b__c=value` filter finds `value` at that path of the config."""
    doc = config.to_json()
    for key, wanted in filters.items():
        found = _lookup(doc, key.split("__"))
        if not any(_text(v) == wanted for v in found):
            return False
    return True


@dataclass
class ConfigService:
    store: Store
    # Why a task type may not run (None: a live worker runs it): services/fleet.py. A config
    # for such a type is taken with this warning, as the original STEP took configs for
    # any task type (and its worker may not have started yet).
    type_warning: Callable[[str], str | None] = lambda _type: None
    # This server's own status event name, where the store holds none (store/deployment.py).
    status_events: StatusEvents = field(default_factory=StatusEvents)
    # The status events task types name for themselves (services/fleet.py).
    reported_events: Callable[[], frozenset[str]] = frozenset

    def warnings(self, spec: ConfigSpec) -> list[str]:
        """What may keep a config from running, though it is stored: answered as `warnings`.

        A task type no live worker runs, and a dependency on an event name that nothing
        is known to send: no stored event has it, no description describes it, and it is
        not the name finished tasks report (a typo there breaks a chain silently).
        """
        found: list[str] = []
        warning = self.type_warning(spec.task_type)
        if warning is not None:
            found.append(warning)
        names = sorted({d.name for d in spec.event_deps} - self.reported_events())
        with self.store.read() as conn:
            status_name = deployment.status_events(conn, self.status_events).name
            described = desc_store.get_descs(conn, names)
            for name in names:
                if name == status_name or name in described or event_store.name_seen(conn, name):
                    continue
                found.append(
                    f"no event named {name!r} has been stored, described or reported by a "
                    f"task (finished tasks report {status_name!r}): check the name, or "
                    "describe the event (POST /api/v1/event_descs) if it is yet to come"
                )
        return found

    def _check(self, conn: Connection, spec: ConfigSpec) -> None:
        """Everything a stored config must satisfy beyond its parser (one place, so that
        `validate` refuses exactly what `create` and `update` refuse)."""
        _check_descs(conn, spec)
        # (a templated name's semaphores are checked at parse: weight within capacity)
        runs.check_weights(
            conn, [(s.name, s.weight, s.capacity) for s in spec.semaphores if not s.templated]
        )

    def validate(self, bodies: object) -> list[tuple[StepdError | None, list[str]]]:
        """Why `create` would refuse each of `bodies` (None: it would not), and what it
        would warn of, writing nothing.

        A name taken by another config is not checked: that depends on who sends it.
        """
        if not isinstance(bodies, list):
            raise InvalidInput("configs must be a list of configs", field="configs")
        if len(bodies) > MAX_VALIDATE:
            raise InvalidInput(
                f"configs has {len(bodies)} items; send at most {MAX_VALIDATE}", field="configs"
            )
        problems: list[tuple[StepdError | None, list[str]]] = []
        with self.store.read() as conn:
            for body in bodies:
                try:
                    spec = parse_config(body)
                    self._check(conn, spec)
                except StepdError as exc:
                    problems.append((exc, []))
                else:
                    problems.append((None, self.warnings(spec)))
        return problems

    def _owned(self, conn: Connection, config_id: str, principal: Principal) -> ActionConfig:
        config = self._get(conn, config_id)
        authz.change_config(principal, config)
        return config

    def get_in(self, conn: Connection, config_id: str, *, lock: bool = False) -> ActionConfig:
        """The config `config_id` as the caller's transaction sees it (NotFound: none);
        `lock`: no one changes it (or pauses it) until that transaction ends."""
        return self._get(conn, config_id, lock=lock)

    def _get(self, conn: Connection, config_id: str, *, lock: bool = False) -> ActionConfig:
        """The live config `config_id`: NotFound if there is none, ConfigDeleted (a 404
        that carries the tombstone) if it was deleted."""
        config = self._any(conn, config_id, lock=lock)
        if config.deleted is not None:
            gone = config.deleted
            raise ConfigDeleted(
                f"no config with id {config_id!r}: it ({config.spec.name!r} by {config.author}) "
                f"was deleted by {gone.by} at {iso(gone.at)}; its last version is kept as "
                "`result` (GET /api/v1/configs?deleted=1 lists deleted configs)",
                tombstone=config.to_json(),
            )
        return config

    def _any(self, conn: Connection, config_id: str, *, lock: bool = False) -> ActionConfig:
        seq = parse_event_id(config_id)
        config = None if seq is None else config_store.get_config(conn, seq, lock=lock)
        if config is None and seq is not None:
            config = config_store.get_tombstone(conn, seq)
        if config is None:
            raise NotFound(f"no config with id {config_id!r}", field="id")
        return config

    def get_or_tombstone(self, config_id: str) -> ActionConfig:
        """The config `config_id`, or its tombstone if it was deleted (`deleted` is set):
        what the config page shows (NotFound: there never was one)."""
        with self.store.read() as conn:
            return self._any(conn, config_id)

    def create(self, body: object, principal: Principal) -> ActionConfig:
        spec = parse_config(body)
        now = utcnow()
        draft = ActionConfig(
            id="", seq=0, author=principal.user, version=1, spec=spec, created=now, updated=now
        )
        try:
            with self.store.write() as conn:
                self._check(conn, spec)
                if config_store.find_by_name(conn, principal.user, spec.name) is not None:
                    raise self._duplicate(principal.user, spec.name)
                return config_store.insert_config(conn, draft, actor=principal.user)
        except IntegrityError as exc:
            raise self._duplicate(principal.user, spec.name) from exc

    @staticmethod
    def _duplicate(author: str, name: str) -> Conflict:
        return Conflict(
            f"{author} already has a config named {name!r}; change it with PUT, or pick "
            "another name (one task type may run from several configs with different names)",
            field="name",
        )

    def get(self, config_id: str) -> ActionConfig:
        with self.store.read() as conn:
            return self._get(conn, config_id)

    def history(self, config_id: str) -> list[dict[str, object]]:
        """Every version, also of a deleted config (its last entry says who deleted it)."""
        seq = parse_event_id(config_id)
        with self.store.read() as conn:
            found = [] if seq is None else config_store.history(conn, seq)
        if not found:
            raise NotFound(f"no config with id {config_id!r}", field="id")
        return found

    def list(self, filters: Mapping[str, str]) -> list[ActionConfig]:
        """The configs the filters find; with `deleted=1`, the deleted configs' tombstones
        instead (the same filters apply to their last versions)."""
        filters = dict(filters)
        deleted = _flag(filters.pop("deleted", ""), "deleted")
        for key in filters:
            if key.split("__")[0] not in FILTER_ROOTS:
                raise InvalidInput(
                    f"unknown filter {key!r}; filter on config fields, nested with __ "
                    "(author=..., task_type=..., action_params__action_id=...)",
                    field=key,
                )
        author = filters.get("author")
        with self.store.read() as conn:
            if deleted:
                found = config_store.list_tombstones(conn, author=author)
            else:
                found = config_store.list_configs(conn, author=author)
        return [c for c in found if matches_filters(c, filters)]

    def update(self, config_id: str, body: object, principal: Principal) -> ActionConfig:
        """Replace the whole config (PUT); the version goes up and the history keeps the diff."""
        spec = parse_config(body)
        try:
            with self.store.write() as conn:
                config = self._owned(conn, config_id, principal)
                self._check(conn, spec)
                if spec.name != config.spec.name:
                    other = config_store.find_by_name(conn, config.author, spec.name)
                    if other is not None:
                        raise self._duplicate(config.author, spec.name)
                change = diff(config.spec, spec)
                if not change:
                    return config
                return config_store.update_config(
                    conn, replace(config, spec=spec), actor=principal.user, change=change
                )
        except IntegrityError as exc:
            raise self._duplicate(principal.user, spec.name) from exc

    def set_paused(self, config_id: str, principal: Principal, *, paused: bool) -> ActionConfig:
        """Pause (`POST /configs/{id}/disable`) or resume (`/enable`) a config: its author
        or an admin. Pausing a paused config (or resuming a running one) changes nothing."""
        with self.store.write() as conn:
            config = self._owned(conn, config_id, principal)
            return config_store.set_paused(conn, config, actor=principal.user, paused=paused)

    def delete(self, config_id: str, principal: Principal) -> ActionConfig:
        """Delete a config (its author or an admin); it never fires again, and its tombstone
        (returned) keeps its last version for the stories and tasks that name it."""
        with self.store.write() as conn:
            config = self._owned(conn, config_id, principal)
            return config_store.delete_config(conn, config, actor=principal.user)
