"""All configs in memory, indexed by event name and fixed params, reloaded when any changes.

The reactor and the story both ask "which configs care about this event?" many
times per second; reading and parsing every config each time would make their
cost grow with the number of configs. A generation counter, bumped in the same
transaction as every config change, says when to reload.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Connection

from stepd.domain.config_index import ConfigIndex
from stepd.domain.configs import ActionConfig
from stepd.store import configs as config_store
from stepd.store import lookup as event_lookup
from stepd.store.engine import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The configs as of one generation."""

    generation: int
    index: ConfigIndex[ActionConfig]
    by_seq: dict[int, ActionConfig]


@dataclass
class Catalog:
    _snapshot: Snapshot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def current(self) -> Snapshot | None:
        """The configs as last loaded (None before the first load); maybe stale."""
        return self._snapshot

    def snapshot(self, conn: Connection) -> Snapshot:
        """The current configs, as seen by `conn`'s transaction."""
        generation = event_lookup.config_generation(conn)
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        return self._load(conn, generation)

    def refresh(self, store: Store) -> Snapshot:
        """The current configs, loaded if they changed, in a read transaction of its own.

        The reactor calls this before it opens its write transaction, and checks the
        generation again inside: a reload with 10,000 configs takes about a second,
        and on SQLite the write transaction would block every event submit meanwhile.
        """
        current = self._snapshot
        with store.read() as conn:
            generation = event_lookup.config_generation(conn)
            if current is not None and current.generation == generation:
                return current
            return self._load(conn, generation)

    def _load(self, conn: Connection, generation: int) -> Snapshot:
        index: ConfigIndex[ActionConfig] = ConfigIndex()
        by_seq: dict[int, ActionConfig] = {}
        for config in config_store.list_configs(conn):
            index.add(config.seq, config, config.spec.event_deps)
            by_seq[config.seq] = config
        fresh = Snapshot(generation, index, by_seq)
        with self._lock:
            # Readers on older snapshots may finish later: never go back a generation.
            if self._snapshot is None or self._snapshot.generation < generation:
                self._snapshot = fresh
        log.info("loaded %d configs (generation %d)", len(by_seq), generation)
        return fresh
