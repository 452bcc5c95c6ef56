"""Creating, changing, finding and removing action configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from stepd.domain.configs import WRITABLE, ActionConfig, ConfigSpec, diff, parse_config
from stepd.domain.events import parse_event_id
from stepd.errors import Conflict, InvalidInput, NotFound, StepdError
from stepd.services import authz
from stepd.store import configs as config_store
from stepd.store import event_descs as desc_store
from stepd.store import runs
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import utcnow

MAX_VALIDATE = 1000  # configs per validation request

# Top-level fields the filters can reach: what a config holds, and who made it.
FILTER_ROOTS = WRITABLE | {"author", "version", "_id"}


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
    known_types: set[str] | None = None  # task types this server knows (None: not told)

    def _check_type(self, spec: ConfigSpec) -> None:
        if self.known_types is not None and spec.task_type not in self.known_types:
            known = ", ".join(sorted(self.known_types)) or "none"
            raise InvalidInput(
                f"unknown task type {spec.task_type!r}; this server knows: {known} "
                "(declare it in a module given to --tasks)",
                field="task_type",
            )

    def _check(self, conn: Connection, spec: ConfigSpec) -> None:
        """Everything a stored config must satisfy beyond its parser (one place, so that
        `validate` refuses exactly what `create` and `update` refuse)."""
        self._check_type(spec)
        _check_descs(conn, spec)
        runs.check_weights(conn, [(s.name, s.weight) for s in spec.semaphores])

    def validate(self, bodies: object) -> list[StepdError | None]:
        """Why `create` would refuse each of `bodies` (None: it would not), writing nothing.

        A name taken by another config is not checked: that depends on who sends it.
        """
        if not isinstance(bodies, list):
            raise InvalidInput("configs must be a list of configs", field="configs")
        if len(bodies) > MAX_VALIDATE:
            raise InvalidInput(
                f"configs has {len(bodies)} items; send at most {MAX_VALIDATE}", field="configs"
            )
        problems: list[StepdError | None] = []
        with self.store.read() as conn:
            for body in bodies:
                try:
                    self._check(conn, parse_config(body))
                    problems.append(None)
                except StepdError as exc:
                    problems.append(exc)
        return problems

    def _owned(self, conn: Connection, config_id: str, principal: Principal) -> ActionConfig:
        config = self._get(conn, config_id)
        authz.change_config(principal, config)
        return config

    def _get(self, conn: Connection, config_id: str) -> ActionConfig:
        seq = parse_event_id(config_id)
        config = None if seq is None else config_store.get_config(conn, seq)
        if config is None:
            raise NotFound(f"no config with id {config_id!r}", field="id")
        return config

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
        for key in filters:
            if key.split("__")[0] not in FILTER_ROOTS:
                raise InvalidInput(
                    f"unknown filter {key!r}; filter on config fields, nested with __ "
                    "(author=..., task_type=..., action_params__action_id=...)",
                    field=key,
                )
        author = filters.get("author")
        with self.store.read() as conn:
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

    def delete(self, config_id: str, principal: Principal) -> ActionConfig:
        with self.store.write() as conn:
            config = self._owned(conn, config_id, principal)
            config_store.delete_config(conn, config, actor=principal.user)
        return config
