"""Who is calling: tokens checked against the store, with a short cache."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from stepd.errors import TooManyRequests, Unauthorized
from stepd.services.ratelimit import BadTokenLimit
from stepd.store import tokens as token_store
from stepd.store.engine import Store
from stepd.store.tokens import Principal

SCHEMES = ("oauth", "bearer")


def token_from_header(header: str | None) -> str | None:
    """The token in `Authorization: OAuth <token>` or `Bearer <token>`, if any."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in SCHEMES or not token.strip():
        raise Unauthorized("the Authorization header must be 'OAuth <token>' or 'Bearer <token>'")
    return token.strip()


@dataclass
class Authenticator:
    """Resolves tokens to principals; a checked token is trusted for `cache_seconds`.

    The cache keeps a hot ingest path off the tokens table; a revoked token stops
    working within `cache_seconds`. Bad tokens are counted per client address
    (services/ratelimit.py): past a burst, that address's bad tokens get 429.
    """

    store: Store
    cache_seconds: float = 5.0
    bad_tokens: BadTokenLimit = field(default_factory=BadTokenLimit)
    _cache: dict[str, tuple[float, Principal]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, token: str) -> Principal | None:
        """The principal for `token` if it was checked recently; no I/O."""
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def principal(self, token: str, client: str | None = None) -> Principal:
        """Whom `token` speaks for; 401 if nobody, 429 once `client` sent too many bad ones.

        A good token is always answered, from any address: only bad ones are limited.
        """
        if (hit := self.cached(token)) is not None:
            return hit
        now = time.monotonic()
        with self.store.read() as conn:
            found = token_store.find_principal(conn, token)
        if found is None:
            wait = None if client is None else self.bad_tokens.failed(client)
            if wait is not None:
                raise TooManyRequests(
                    f"too many bad tokens from {client}: "
                    f"more than {self.bad_tokens.burst} in {self.bad_tokens.window_seconds:g} s; "
                    f"try again in {wait} s with a valid token",
                    retry_after=wait,
                )
            raise Unauthorized("the token is not valid; create one with `stepd tokens create USER`")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self.cache_seconds, found)
        return found
