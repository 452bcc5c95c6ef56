"""Cross-process wake-ups on PostgreSQL: NOTIFY when events are stored, LISTEN to react at once.

On SQLite the waiting side polls (a cheap indexed read); on PostgreSQL a server
reacts to events that another replica or a worker stored without a polling delay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "stepd_events"


def notify_events(conn: Connection) -> None:
    """Queue a notification, delivered when the caller's transaction commits."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_notify('{EVENTS_CHANNEL}', '')"))


class Listener:
    """A thread that calls `callback` on every notification of `channel`."""

    def __init__(self, url: str, channel: str, callback: Callable[[], None]) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.channel = channel
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"stepd-listen-{channel}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    log.info("listening for %s", self.channel)
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.callback()
            except Exception:
                # Polling still finds the work; try to listen again shortly.
                log.warning("LISTEN %s failed; retrying in 2 s", self.channel, exc_info=True)
                self._stop.wait(2.0)
