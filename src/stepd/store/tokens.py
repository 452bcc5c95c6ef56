"""Store functions for API tokens, kept only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from stepd.store.schema import tokens
from stepd.timeutil import utcnow


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a token speaks for."""

    user: str
    is_admin: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, user: str, *, is_admin: bool = False) -> str:
    """Store a new token for `user` and return it; only its hash is kept."""
    token = "stepd_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(tokens).values(
            token_hash=hash_token(token),
            user=user,
            is_admin=is_admin,
            created=utcnow(),
            revoked=False,
        )
    )
    return token


def find_principal(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(tokens.c.user, tokens.c.is_admin).where(
            tokens.c.token_hash == hash_token(token), tokens.c.revoked.is_(False)
        )
    ).first()
    return None if row is None else Principal(user=row.user, is_admin=bool(row.is_admin))


def revoke_user_tokens(conn: Connection, user: str) -> int:
    result = conn.execute(update(tokens).where(tokens.c.user == user).values(revoked=True))
    return result.rowcount
