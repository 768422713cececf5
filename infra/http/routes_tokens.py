"""HTTP routes of access tokens (访问令牌): admins and the HQ office create, list and revoke them.

`POST /tokens` issues a token — role, the person it stands for, the campaign it is bound to, an optional scope
(units and/or places) and an expiry — and shows it this once (only its hash is kept); `GET /tokens` lists them with
who issued each, its expiry, revocation and last use (never the token); `DELETE /tokens/{token_id}` revokes one,
and its next request is 401 at once. An admin manages every token; the HQ office (总指挥部办公室) only tokens bound
to its own campaign, and issues no admin or process token. The CLI (`dudao tokens create`) stays for bootstrap.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, model_validator

from domain.kernel.base import DomainError, Forbidden, NotFound
from domain.kernel.edge import at_the_edge
from domain.kernel.roles import ADMIN_ISSUED_ROLES, ROLES, TOKEN_MANAGER_ROLES
from domain.kernel.scalars import Count, Flag
from domain.kernel.text import Name
from infra.commands.grants import create_token, revoke_token_id, token_id_of, token_rows
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.http.errors import ErrorBody
from infra.http.queries import existing

router = APIRouter(tags=["tokens"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (401, 403, 404, 422, 503)}
MANAGERS = TOKEN_MANAGER_ROLES
ADMIN_ONLY_ROLES = ADMIN_ISSUED_ROLES  # the HQ office may not issue or revoke these
RoleName = Literal[ROLES]  # type: ignore[valid-type]  # the choices come from domain.kernel.roles


class NewToken(BaseModel):
    """A token to issue: who it stands for, where it acts, how narrowly, and until when (default: 90 days)."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName
    person_id: UUID | None = None
    name: Name | None = None
    campaign_id: UUID | None = None
    unit_ids: list[UUID] | None = Field(default=None, max_length=200, description="narrow it to these units")
    place_ids: list[UUID] | None = Field(default=None, max_length=200,
                                         description="narrow it to these places and the places inside them")
    expires_in_days: Count | None = Field(default=90, ge=1, le=3650)
    no_expiry: Flag = False

    @model_validator(mode="wrap")
    @classmethod
    def _at_the_edge(cls, data: Any, handler: ModelWrapValidatorHandler[NewToken]) -> NewToken:
        with at_the_edge():
            return handler(data)


class TokenInfo(BaseModel):
    """A token as its managers see it (never the token itself)."""

    token_id: UUID
    role: str
    person_id: UUID | None
    name: str | None
    campaign_id: UUID | None
    unit_ids: list[UUID] | None
    place_ids: list[UUID] | None
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    expired: bool
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedToken(TokenInfo):
    """The new token, shown this once: keep it (only its hash is stored)."""

    token: str


def manager(grant: Grant = Depends(current_grant)) -> Grant:
    """The grant of an admin or the HQ office (403 for other roles)."""
    if grant.actor.role not in MANAGERS:
        raise Forbidden("role_not_allowed", "只有系统管理员和总指挥部办公室可以管理访问令牌",
                        "only an admin or the HQ office manages tokens", role=grant.actor.role,
                        allowed=sorted(MANAGERS))
    return grant


def ensure_may_issue(request: Request, grant: Grant, new: NewToken) -> None:
    """The HQ office issues only tokens bound to its campaign, and no admin or process token; the campaign exists."""
    if grant.actor.role != "admin":
        if new.role in ADMIN_ONLY_ROLES:
            raise Forbidden("role_not_grantable", "总指挥部办公室不能签发该角色的令牌",
                            "the HQ office may not issue a token of this role", role=new.role)
        if new.campaign_id is None:
            raise DomainError("campaign_required", "总指挥部办公室签发的令牌须绑定创建活动（campaign_id）",
                              "a token the HQ office issues is bound to a campaign (campaign_id)")
    if new.campaign_id is not None:
        ensure_campaign(grant, new.campaign_id)
        existing(request.app.state.system.app, "campaign", new.campaign_id)
    if new.person_id is not None:
        existing(request.app.state.system.app, "person", new.person_id)


@router.post("/tokens", status_code=201, response_model=IssuedToken, responses=ERRORS)
def issue_token(new: NewToken, request: Request, grant: Grant = Depends(manager)) -> dict[str, Any]:
    """Issue an access token (签发访问令牌) with role, person, campaign, scope and expiry; the token is in this answer
    only. The HQ office issues tokens bound to its own campaign, and no admin or process (system) token."""
    ensure_may_issue(request, grant, new)
    by = f"{grant.actor.role}:{grant.actor.person_id or grant.actor.name or '-'}"
    with request.app.state.read_pool.connection() as conn:
        token = create_token(conn, new.role, person_id=new.person_id, name=new.name, campaign_id=new.campaign_id,
                             unit_ids=new.unit_ids, place_ids=new.place_ids, created_by=by,
                             expires_in=None if new.no_expiry else timedelta(days=new.expires_in_days or 90))
        token_id = token_id_of(conn, token)
        (row,) = token_rows(conn, token_id=token_id)
    return {**jsonable_encoder(row), "token": token}


@router.get("/tokens", responses=ERRORS)
def list_tokens(request: Request, campaign_id: UUID | None = Query(None, description="only this campaign's tokens"),
                include_revoked: bool = Query(False, description="also the revoked ones"),
                grant: Grant = Depends(manager)) -> dict[str, Any]:
    """The access tokens (访问令牌) this manager oversees — an admin: all (or one campaign's); the HQ office: its
    campaign's — with role, person, campaign, scope, expiry, revocation and last use, newest first."""
    campaign = campaign_id
    if grant.actor.role != "admin":
        campaign = campaign_id or grant.campaign_id
        if campaign is None:
            raise DomainError("campaign_required", "请指明创建活动（campaign_id）", "name the campaign (campaign_id)")
        ensure_campaign(grant, campaign)
    with request.app.state.read_pool.connection() as conn:
        rows = token_rows(conn, campaign_id=campaign, include_revoked=include_revoked)
    return {"rows": jsonable_encoder([TokenInfo(**r) for r in rows])}


@router.delete("/tokens/{token_id}", response_model=TokenInfo, responses=ERRORS)
def revoke(token_id: UUID, request: Request, grant: Grant = Depends(manager)) -> TokenInfo:
    """Revoke a token (吊销): from its next request on it is refused (401 `unauthenticated`). Revoking a revoked token
    answers it unchanged; the HQ office revokes only tokens bound to its campaign."""
    with request.app.state.read_pool.connection() as conn:
        found = token_rows(conn, token_id=token_id, include_revoked=True)
        if not found or (grant.actor.role != "admin" and (found[0]["campaign_id"] is None
                                                           or not grant.may_see(found[0]["campaign_id"]))):
            raise NotFound("token_not_found", "访问令牌不存在", "token not found", token_id=str(token_id))
        if grant.actor.role != "admin" and found[0]["role"] in ADMIN_ONLY_ROLES:
            raise Forbidden("role_not_grantable", "总指挥部办公室不能吊销该角色的令牌",
                            "the HQ office may not revoke a token of this role", role=found[0]["role"])
        revoke_token_id(conn, token_id)
        (row,) = token_rows(conn, token_id=token_id, include_revoked=True)
    return TokenInfo(**row)
