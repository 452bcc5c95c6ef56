"""An in-memory index of configs by the events their dependencies can match.

The reactor asks, for each new event, which configs to evaluate. Scanning every
config would cost more with every config added, even ones on other event names
or other fixed values; the index answers from a few dictionary lookups instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from stepd.domain.matching import Dependency
from stepd.domain.params import Params, param_text

C = TypeVar("C")

# (event name, fixed param key, its value text): the bucket of a dependency with
# fixed params; (event name, None, None): the bucket of one without any.
Bucket = tuple[str, str | None, str | None]


@dataclass(frozen=True, kw_only=True)
class _Entry(Generic[C]):
    order: int  # when it was added: results come back in insertion order
    config: C  # what the caller stored
    deps: tuple[Dependency, ...]  # its dependencies, as added
    buckets: frozenset[Bucket]  # where its key is filed, to remove it again


class ConfigIndex(Generic[C]):
    """Configs keyed by a caller's key (e.g. the config id), indexed by their deps.

    Each dependency is filed under its event name and one of its fixed params
    (the one whose bucket is smallest when it is added, to keep buckets
    discriminating), or under its name alone when it has no fixed param.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry[C]] = {}
        self._buckets: dict[Bucket, dict[Hashable, None]] = {}  # ordered sets of keys
        self._names: dict[str, dict[Hashable, None]] = {}  # name -> keys with a dep on it
        self._added = 0  # the next insertion order

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def add(self, key: Hashable, config: C, deps: Sequence[Dependency]) -> None:
        """Index `config` under `key`, replacing (and moving last) any config with that key."""
        self.remove(key)
        buckets: set[Bucket] = set()
        for dep in deps:
            options: list[Bucket] = [(dep.name, k, v) for k, v in dep.fixed.items()]
            bucket = min(options, key=lambda b: len(self._buckets.get(b, ())), default=None)
            buckets.add(bucket or (dep.name, None, None))
        for bucket in buckets:
            self._buckets.setdefault(bucket, {})[key] = None
        for dep in deps:
            self._names.setdefault(dep.name, {})[key] = None
        self._entries[key] = _Entry(
            order=self._added, config=config, deps=tuple(deps), buckets=frozenset(buckets)
        )
        self._added += 1

    def remove(self, key: Hashable) -> None:
        """Forget the config under `key` (nothing happens when there is none)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for bucket in entry.buckets:
            _discard(self._buckets, bucket, key)
        for dep in entry.deps:
            _discard(self._names, dep.name, key)

    def candidates(self, name: str, params: Params) -> list[C]:
        """Configs with a dependency that an event `name` with `params` satisfies.

        Joins aside: these are exactly the configs `evaluate` may fire or keep
        waiting for this event. In insertion order, without duplicates.
        """
        hits = []  # the buckets this event falls in
        if general := self._buckets.get((name, None, None)):
            hits.append(general)
        for k, v in params.items():
            if bucket := self._buckets.get((name, k, v if type(v) is str else param_text(v))):
                hits.append(bucket)
        if not hits:
            return []
        if len(hits) == 1:
            keys: Iterable[Hashable] = hits[0]  # a bucket is in insertion order already
        else:
            merged: dict[Hashable, None] = {}
            for bucket in hits:
                merged.update(bucket)
            keys = sorted(merged, key=lambda key: self._entries[key].order)
        out = []
        for key in keys:
            entry = self._entries[key]
            try:
                hit = any(d.name == name and d.matches(params) for d in entry.deps)
            except Exception:
                # A dependency that cannot even be checked (a stored regex RE2 refuses)
                # is a candidate: its evaluation, isolated per config, records why it
                # failed, instead of this check stopping the batch for every config.
                hit = True
            if hit:
                out.append(entry.config)
        return out

    def listens_to(self, name: str) -> bool:
        """True when some config has a dependency on events called `name`."""
        return name in self._names

    def by_name(self, name: str) -> list[C]:
        """Every config with a dependency on `name`, matching or not (for the story)."""
        return [self._entries[key].config for key in self._names.get(name, {})]


K = TypeVar("K", bound=Hashable)


def _discard(index: dict[K, dict[Hashable, None]], at: K, key: Hashable) -> None:
    # drop emptied buckets, so that removed configs leave nothing to scan behind
    members = index.get(at)
    if members is not None:
        members.pop(key, None)
        if not members:
            del index[at]
