"""Store functions for API tokens, kept only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from stepd.store.schema import tokens
from stepd.timeutil import as_utc, utcnow


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


@dataclass(frozen=True)
class TokenInfo:
    """What is known of a token besides its secret (only its hash is stored)."""

    id: int
    user: str
    is_admin: bool
    created: datetime
    revoked: bool


def list_tokens(conn: Connection, *, include_revoked: bool = False) -> list[TokenInfo]:
    """Every token, oldest first (live ones only unless `include_revoked`)."""
    stmt = select(
        tokens.c.id, tokens.c.user, tokens.c.is_admin, tokens.c.created, tokens.c.revoked
    ).order_by(tokens.c.id)
    if not include_revoked:
        stmt = stmt.where(tokens.c.revoked.is_(False))
    return [
        TokenInfo(
            id=int(r.id),
            user=r.user,
            is_admin=bool(r.is_admin),
            created=as_utc(r.created),
            revoked=bool(r.revoked),
        )
        for r in conn.execute(stmt)
    ]


def revoke_token(conn: Connection, token_id: int) -> bool:
    """Revoke one token by its id; False when no live token has it."""
    result = conn.execute(
        update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked.is_(False))
        .values(revoked=True)
    )
    return result.rowcount == 1
