"""Bearer tokens over HTTP (访问令牌): the FastAPI dependency that turns a request's token into a `Grant`.

Tokens and grants live in `infra.commands.grants` (the CLI reads them too); this module adds what
only HTTP needs: the `Authorization: Bearer` scheme, 401 for a missing, unknown, revoked or expired
token, and the 403 of a campaign-bound token reading another campaign. The actor of every write
comes from the token, never from the request body; what a grant may write is checked by the
command service (`infra.commands.authorization`), whichever edge the command came through.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.kernel import roles
from domain.kernel.base import Forbidden
from infra.commands.grants import (
    TOKENS_DDL, Conn, Grant, Unauthenticated, actor_for_token, check_token, create_token, ensure_tokens_table,
    grant_for_token, revoke_token, token_digest,
)

__all__ = [
    "TOKENS_DDL", "Conn", "Grant", "Unauthenticated", "actor_for_token", "bearer", "check_token", "create_token",
    "current_grant", "ensure_campaign", "ensure_may_write", "ensure_tokens_table", "grant_for_token", "revoke_token",
    "token_digest",
]

bearer = HTTPBearer(auto_error=False, description="访问令牌 (`dudao tokens create`)")


def current_grant(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Grant:
    """FastAPI dependency: the grant of the request's bearer token, or 401 (`token_expired` once it has expired)."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("unauthenticated", "缺少访问令牌", "missing bearer token")
    with request.app.state.read_pool.connection() as conn:
        return check_token(conn, credentials.credentials)


def ensure_campaign(grant: Grant, campaign_id: UUID | None) -> None:
    """403 `campaign_not_allowed` when a campaign-bound token reads outside its campaign."""
    if not grant.may_see(campaign_id):
        raise Forbidden(
            "campaign_not_allowed", "该令牌无权操作其他创建活动", "this token may not act in another campaign",
            token_campaign_id=str(grant.campaign_id), campaign_id=str(campaign_id) if campaign_id else None,
        )


def ensure_may_write(grant: Grant) -> None:
    """403 read_only_role before anything is read when the token's role may write nothing (`domain.kernel.roles`)."""
    roles.ensure_may_write(grant.actor)
