"""Bearer tokens (访问令牌): who is calling, in which role, and in which campaign they may act.

A token is random (`secrets.token_urlsafe(32)`) and shown once; only its sha256 is stored, in
`dudao_tokens`. The actor of every write comes from the token, never from the request body.
A token bound to a campaign may only act and read within that campaign.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.kernel.base import Actor, Forbidden
from domain.kernel import roles
from domain.kernel.roles import ROLES
from infra.http.errors import Unauthenticated

TOKENS_DDL = (
    "CREATE TABLE IF NOT EXISTS dudao_tokens ("
    " token_sha256 text PRIMARY KEY, person_id uuid NULL, role text NOT NULL, name text,"
    " campaign_id uuid NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " revoked_at timestamptz NULL)"
)

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: the actor it stands for and, optionally, the one campaign it is bound to."""

    actor: Actor
    campaign_id: UUID | None = None

    def may_see(self, campaign_id: UUID | None) -> bool:
        return self.campaign_id is None or self.campaign_id == campaign_id


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_tokens_table(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dudao_tokens_ddl'))")
        conn.execute(TOKENS_DDL)


def create_token(conn: Conn, role: str, person_id: UUID | None = None, name: str | None = None,
                 campaign_id: UUID | None = None) -> str:
    """Issue a new token and return it (the only time it is ever visible)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    ensure_tokens_table(conn)  # tokens are issued rarely; this spares every caller a migration step
    with conn.transaction():
        conn.execute(
            "INSERT INTO dudao_tokens (token_sha256, person_id, role, name, campaign_id) VALUES (%s, %s, %s, %s, %s)",
            (token_digest(token), person_id, role, name, campaign_id),
        )
    return token


def grant_for_token(conn: Conn, token: str) -> Grant | None:
    """The grant of a live token, or None when it is unknown or revoked."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT person_id, role, name, campaign_id FROM dudao_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
            (token_digest(token),),
        ).fetchone()
    if row is None:
        return None
    person_id, role, name, campaign_id = row["person_id"], row["role"], row["name"], row["campaign_id"]
    return Grant(Actor(person_id=person_id, role=role, name=name), campaign_id)


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


bearer = HTTPBearer(auto_error=False, description="访问令牌 (`dudao tokens create`)")


def current_grant(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Grant:
    """FastAPI dependency: the grant of the request's bearer token, or 401."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("unauthenticated", "缺少访问令牌", "missing bearer token")
    with request.app.state.read_pool.connection() as conn:
        grant = grant_for_token(conn, credentials.credentials)
    if grant is None:
        raise Unauthenticated("unauthenticated", "访问令牌无效或已吊销", "invalid or revoked token")
    return grant


def ensure_campaign(grant: Grant, campaign_id: UUID | None) -> None:
    """403 when a campaign-bound token reaches outside its campaign."""
    if not grant.may_see(campaign_id):
        raise Forbidden(
            "wrong_campaign", "该令牌无权操作其他创建活动", "this token may not act in another campaign",
            token_campaign_id=str(grant.campaign_id), campaign_id=str(campaign_id) if campaign_id else None,
        )


def ensure_may_write(grant: Grant) -> None:
    """403 read_only_role before anything is read when the token's role may write nothing (`domain.kernel.roles`)."""
    roles.ensure_may_write(grant.actor)
