"""Clock events: `clock` with `scale` and an aligned `timestamp`, so configs can run on a schedule.

Each (scale, timestamp) is sent with the request_id `clock:<scale>:<timestamp>`,
so it is stored exactly once, however many servers run clocks and however often
they restart; after downtime the latest slot of each scale is sent late, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from stepd.proc.loop import Loop
from stepd.services.events import EventBatch, EventService
from stepd.timeutil import iso, utcnow

log = logging.getLogger(__name__)

EVENT_NAME = "clock"
SCALES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aligned(now: datetime, scale: timedelta) -> datetime:
    """The start of the slot of length `scale` that holds `now` (slots start at the epoch)."""
    return EPOCH + ((now - EPOCH) // scale) * scale


def due(now: datetime, sent: dict[str, datetime]) -> list[tuple[str, datetime]]:
    """The (scale, slot) pairs not yet sent by this process."""
    return [
        (name, slot)
        for name, length in SCALES.items()
        if sent.get(name) != (slot := aligned(now, length))
    ]


@dataclass
class Clock:
    events: EventService
    interval_seconds: float = 1.0
    now: Callable[[], datetime] = utcnow
    _sent: dict[str, datetime] = field(default_factory=dict)
    _loop: Loop | None = None

    def tick(self) -> int:
        """Send what is due; return how many clock events this call asked for."""
        pending = due(self.now(), self._sent)
        for scale, slot in pending:
            stamp = iso(slot)
            batch = EventBatch(
                events=[{"name": EVENT_NAME, "params": {"scale": scale, "timestamp": stamp}}],
                request_id=f"clock:{scale}:{stamp}",
                source_type="clock",
                source="stepd",
            )
            self.events.submit(batch, author="stepd")
            self._sent[scale] = slot
        return len(pending)

    def start(self) -> None:
        # A failed tick (the store down) is tried again with a backoff (proc/loop.py).
        self._loop = Loop("stepd-clock", self._round, what="tick")
        self._loop.start()

    def _round(self) -> float:
        self.tick()
        return self.interval_seconds

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(5, reason="the server is stopping")
