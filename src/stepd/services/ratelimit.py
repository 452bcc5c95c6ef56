"""How many bad tokens one client address may send: a burst, then 429 until its minute
is over.

A client that keeps sending a token the store does not know (a scanner guessing, a cron
job with a revoked token) is told to back off with `429` and `Retry-After` instead of
an endless stream of 401s. Counted per address in a fixed window that starts with the
address's first bad token; good tokens are never counted nor refused, so a person whose
office shares an address with a misconfigured job keeps working.

Kept in memory, per server process: each replica (and a restarted server) counts on its
own. At most `max_addresses` are tracked; past that the address that failed longest ago
is forgotten, so a flood from many addresses costs bounded memory (and each forgotten
address merely gets a fresh burst).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

BURST = 20
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


@dataclass
class BadTokenLimit:
    """Bad tokens per client address: `burst` within `window_seconds`, then refused."""

    burst: int = BURST
    window_seconds: float = WINDOW_SECONDS
    max_addresses: int = MAX_ADDRESSES
    clock: Callable[[], float] = time.monotonic
    # address -> (when its window began, bad tokens in it); oldest failure first
    _windows: OrderedDict[str, tuple[float, int]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, address: str) -> int | None:
        """Count one bad token from `address`; the seconds it must wait, if over its burst."""
        now = self.clock()
        with self._lock:
            began, count = self._windows.pop(address, (now, 0))
            if now - began >= self.window_seconds:
                began, count = now, 0
            count += 1
            self._windows[address] = (began, count)
            while len(self._windows) > self.max_addresses:
                self._windows.popitem(last=False)
        if count <= self.burst:
            return None
        return max(1, math.ceil(began + self.window_seconds - now))

    def tracked(self) -> int:
        """How many addresses are counted now (bounded by `max_addresses`)."""
        with self._lock:
            return len(self._windows)
