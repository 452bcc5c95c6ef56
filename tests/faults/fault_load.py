"""The steady load of a kill -9 loop: a client that posts batches of events, as a careful
client would while servers die under it.

Each batch carries a request_id and is retried, with the same request_id and the same
body, on any server that answers, until one acknowledges it: the ids it answers are the
events the store promised to keep. Now and then an acknowledged batch is sent once more,
on purpose, and must get the same ids back.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

EVENT = "fault_load"  # the name of every event the load sends
RETRY_SECONDS = 0.1


@dataclass
class Batch:
    """One request: its id, the events it sends and, once acknowledged, their ids."""

    request_id: str
    events: list[dict[str, Any]]
    ids: list[str] = field(default_factory=list)
    tries: int = 0


@dataclass
class EventLoad:
    """A thread posting a batch every `interval` seconds to one of `urls()`.

    Batch n holds one event per lane: `quick` (fires F_QUICK), two `sem` (fire F_SEM under a
    semaphore), `a` of pair n and `b` of pair n-1 (a join fires once both halves of a pair
    are stored, which spans two requests), and `plain` (fires nothing).
    """

    run: str
    token: str
    urls: Callable[[], list[str]]
    rng: random.Random
    interval: float = 0.15
    resend_every: int = 7  # every n-th acknowledged batch is sent again on purpose
    batches: list[Batch] = field(default_factory=list)
    resent: int = 0  # acknowledged batches sent again, on purpose
    failures: list[str] = field(default_factory=list)  # answers a retry cannot fix
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="fault-load", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop making new batches; the one in hand is still retried until acknowledged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise AssertionError(f"the load's last batch was not acknowledged in {timeout}s")

    def _batch(self, n: int) -> Batch:
        def event(lane: str, **params: str) -> dict[str, Any]:
            return {
                "name": EVENT,
                "params": {"lane": lane, "k": f"{self.run}-{n}-{lane}", **params},
            }

        events = [event("quick"), event("a", pair=f"p{n}"), event("plain")]
        # Two per batch, so that F_SEM tasks queue for the semaphore rather than take turns.
        events += [event("sem", k=f"{self.run}-{n}-sem-{i}") for i in range(2)]
        if n > 0:
            events.append(event("b", pair=f"p{n - 1}"))
        self.rng.shuffle(events)
        return Batch(request_id=f"{self.run}-req-{n}", events=events)

    def _post(self, client: httpx.Client, batch: Batch) -> tuple[list[str], int]:
        """Send `batch` until a server acknowledges it; its ids and how many tries it took."""
        body = {"request_id": batch.request_id, "events": batch.events, "source": "fault-load"}
        deadline = time.monotonic() + 60
        tries = 0
        while True:
            tries += 1
            urls = self.urls()
            try:
                if not urls:
                    raise httpx.ConnectError("no server is up")
                response = client.post(f"{self.rng.choice(urls)}/api/v1/events", json=body)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                ids: list[str] = response.json()["ids"]
                return ids, tries
            if response is not None and response.status_code < 500:
                # A 4xx is no crash to ride out: the same batch would be refused again.
                raise AssertionError(f"{batch.request_id}: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{batch.request_id} was not acknowledged in 60 s")
            time.sleep(RETRY_SECONDS)

    def _main(self) -> None:
        headers = {"Authorization": f"OAuth {self.token}"}
        with httpx.Client(headers=headers, timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                batch = self._batch(n)
                try:
                    batch.ids, batch.tries = self._post(client, batch)
                    self.batches.append(batch)
                    if n % self.resend_every == self.resend_every - 1:
                        again, _ = self._post(client, batch)
                        self.resent += 1
                        if again != batch.ids:
                            self.failures.append(
                                f"{batch.request_id} sent again answered {again}, first {batch.ids}"
                            )
                except AssertionError as exc:
                    self.failures.append(str(exc))
                    return
                n += 1
                self._stop.wait(self.interval)

    def acknowledged(self) -> dict[str, dict[str, Any]]:
        """Every acknowledged event: its id -> the event sent."""
        found: dict[str, dict[str, Any]] = {}
        for batch in self.batches:
            assert len(batch.ids) == len(batch.events), (batch.request_id, batch.ids)
            found.update(zip(batch.ids, batch.events, strict=True))
        return found

    @property
    def retried(self) -> int:
        """Batches that needed more than one try (a server died or refused under them)."""
        return sum(1 for b in self.batches if b.tries > 1)
