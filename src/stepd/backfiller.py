"""The backfills' feed: a round every quarter second makes the next tasks of running
backfills as their earlier tasks end (services/backfills.py says how, exactly once).

Every server runs it; the rounds of several servers take turns on each backfill's row.
With no backfill running a round is one indexed read, and the next comes after a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepd.proc.loop import Loop
from stepd.services.backfills import BackfillService

BUSY_SECONDS = 0.25  # between rounds while a backfill runs: how soon a free slot is filled
IDLE_SECONDS = 1.0


@dataclass
class Backfiller:
    backfills: BackfillService
    _loop: Loop | None = None

    def start(self) -> None:
        # A failed round (the store down) is tried again with a backoff (proc/loop.py).
        self._loop = Loop("stepd-backfills", self._round, what="feed")
        self._loop.start()

    def notify(self) -> None:
        """A backfill was started here: look again at once."""
        if self._loop is not None:
            self._loop.notify()

    def _round(self) -> float:
        fed = self.backfills.feed()
        if fed.made:
            return 0.0  # again at once: a transaction stops short after FEED_SECONDS
        return BUSY_SECONDS if fed.running else IDLE_SECONDS

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(5, reason="the server is stopping")
