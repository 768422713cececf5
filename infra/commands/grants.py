"""Grants (授权) and the bearer tokens (访问令牌) that carry them: who acts, in which campaign, over which units and places.

A token is random (`secrets.token_urlsafe(32)`) and shown once; only its sha256 is stored, in
`dudao_tokens`, with the role, the person it stands for, the one campaign it is bound to (if any),
an optional scope — the unit ids and/or place ids it is narrowed to — and when it expires. An
unknown, revoked or expired token grants nothing (401 at once: expiry is judged by the database's
wall clock, never by a simulated campaign clock). HTTP and the CLI both read tokens here, so the
command service sees the same `Grant` whichever edge a command came through.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.kernel.base import Actor, DomainError
from domain.kernel.roles import ROLES

TOKENS_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_tokens ("
    " token_sha256 text PRIMARY KEY, person_id uuid NULL, role text NOT NULL, name text,"
    " campaign_id uuid NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " revoked_at timestamptz NULL)",
    # Added after the first release: each is safe to run again on a table that has it already.
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS expires_at timestamptz NULL",
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS unit_ids uuid[] NULL",
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS place_ids uuid[] NULL",
    # Tokens over HTTP (POST/GET/DELETE /tokens): an id to name a token by, who issued it, when it was last used.
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS token_id uuid NOT NULL DEFAULT gen_random_uuid()",
    "CREATE UNIQUE INDEX IF NOT EXISTS dudao_tokens_id ON dudao_tokens (token_id)",
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS created_by text NULL",
    "ALTER TABLE dudao_tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz NULL",
)
# A token's last use is written at most this often (every request would otherwise write).
LAST_USED_RESOLUTION = "1 minute"
TOKEN_COLUMNS = ("token_id, role, person_id, name, campaign_id, unit_ids, place_ids, created_at, created_by, expires_at,"
                 " revoked_at, last_used_at")

Conn = psycopg.Connection[Any]


class Unauthenticated(DomainError):
    """No valid bearer token (未认证): missing, unknown, revoked or expired."""

    status = 401


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: the actor it stands for, the one campaign it is bound to (None: any, for admin
    and process tokens), and the units and places it is narrowed to (None: not narrowed by the token)."""

    actor: Actor
    campaign_id: UUID | None = None
    unit_ids: frozenset[UUID] | None = None
    place_ids: frozenset[UUID] | None = None
    expires_at: datetime | None = None

    def may_see(self, campaign_id: UUID | None) -> bool:
        return self.campaign_id is None or self.campaign_id == campaign_id


def unbound(actor: Actor) -> Grant:
    """The grant of an in-process caller (the escalator, the demo loader): any campaign, no token scope."""
    return Grant(actor)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_tokens_table(conn: Conn) -> None:
    """Create the tokens table, or add the columns a later version needs (idempotent, serialised)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_tokens_ddl'))")
        for statement in TOKENS_DDL:
            conn.execute(statement)


def create_token(conn: Conn, role: str, person_id: UUID | None = None, name: str | None = None,
                 campaign_id: UUID | None = None, *, unit_ids: Iterable[UUID] | None = None,
                 place_ids: Iterable[UUID] | None = None, expires_in: timedelta | None = None,
                 created_by: str | None = None) -> str:
    """Issue a new token and return it (the only time it is ever visible); `expires_in` None: no expiry."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("expires_in must be positive")
    token = secrets.token_urlsafe(32)
    ensure_tokens_table(conn)  # tokens are issued rarely; this spares every caller a migration step
    with conn.transaction():
        conn.execute(
            "INSERT INTO dudao_tokens (token_sha256, person_id, role, name, campaign_id, unit_ids, place_ids, expires_at,"
            " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, clock_timestamp() + %s, %s)",
            (token_digest(token), person_id, role, name, campaign_id, _ids(unit_ids), _ids(place_ids), expires_in,
             created_by),
        )
    return token


def _ids(values: Iterable[UUID] | None) -> list[UUID] | None:
    return None if values is None else sorted(set(values))


def _scope(values: list[UUID] | None) -> frozenset[UUID] | None:
    return None if values is None else frozenset(values)


def check_token(conn: Conn, token: str) -> Grant:
    """The grant of a live token; 401 `unauthenticated` when unknown or revoked, `token_expired` once expired."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT person_id, role, name, campaign_id, unit_ids, place_ids, expires_at,"
            " expires_at IS NOT NULL AND expires_at <= clock_timestamp() AS expired,"
            f" last_used_at IS NULL OR last_used_at < clock_timestamp() - interval '{LAST_USED_RESOLUTION}' AS stale_use"
            " FROM dudao_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
            (token_digest(token),),
        ).fetchone()
    if row is None:
        raise Unauthenticated("unauthenticated", "访问令牌无效或已吊销", "invalid or revoked token")
    if row["expired"]:
        raise Unauthenticated("token_expired", "访问令牌已过期", "the token has expired",
                              expired_at=row["expires_at"].isoformat())
    if row["stale_use"]:
        conn.execute("UPDATE dudao_tokens SET last_used_at = clock_timestamp() WHERE token_sha256 = %s",
                     (token_digest(token),))
    return Grant(Actor(person_id=row["person_id"], role=row["role"], name=row["name"]), row["campaign_id"],
                 _scope(row["unit_ids"]), _scope(row["place_ids"]), row["expires_at"])


def grant_for_token(conn: Conn, token: str) -> Grant | None:
    """The grant of a live token, or None when it is unknown, revoked or expired."""
    try:
        return check_token(conn, token)
    except Unauthenticated:
        return None


def actor_for_token(conn: Conn, token: str) -> Actor | None:
    grant = grant_for_token(conn, token)
    return grant.actor if grant else None


def revoke_token(conn: Conn, token: str) -> bool:
    """Revoke a token; True when a live token was revoked."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE dudao_tokens SET revoked_at = clock_timestamp() WHERE token_sha256 = %s AND revoked_at IS NULL",
            (token_digest(token),),
        )
        return cur.rowcount == 1


def token_rows(conn: Conn, *, campaign_id: UUID | None = None, token_id: UUID | None = None,
               include_revoked: bool = False) -> list[dict[str, Any]]:
    """Tokens as their holders' managers see them (never the token or its hash): role, person, campaign, scope,
    expiry, revocation, last use, who issued it; newest first, of one campaign or one id when given."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {TOKEN_COLUMNS}, expires_at IS NOT NULL AND expires_at <= clock_timestamp() AS expired"
            " FROM dudao_tokens WHERE (%(campaign)s::uuid IS NULL OR campaign_id = %(campaign)s::uuid)"
            "   AND (%(id)s::uuid IS NULL OR token_id = %(id)s::uuid) AND (%(all)s OR revoked_at IS NULL)"
            " ORDER BY created_at DESC, token_id",
            {"campaign": campaign_id, "id": token_id, "all": include_revoked}).fetchall()


def token_id_of(conn: Conn, token: str) -> UUID | None:
    """The id of a token (to name it in the token list), None when unknown."""
    row = conn.execute("SELECT token_id FROM dudao_tokens WHERE token_sha256 = %s", (token_digest(token),)).fetchone()
    if row is None:
        return None
    value = row["token_id"] if isinstance(row, dict) else row[0]
    return value if isinstance(value, UUID) else UUID(str(value))


def revoke_token_id(conn: Conn, token_id: UUID) -> bool:
    """Revoke the token with this id; True when a live token was revoked (401 from its next request on)."""
    with conn.transaction():
        cur = conn.execute("UPDATE dudao_tokens SET revoked_at = clock_timestamp() WHERE token_id = %s"
                           " AND revoked_at IS NULL", (token_id,))
        return cur.rowcount == 1
