"""HTTP routes of the audit (问责审计): trails, as-of and knowledge views, escalation replay and the dossier.

`GET /{kind}/{id}/trail` (JSON or `format=csv`, paginated, by period), `GET /{kind}/{id}/knowledge?as_of=T`,
`GET /{kind}/{id}/as_of?as_of=T[&basis=recorded|occurred]` for every kind (the audit view: state, names then in
force, who answered for it), `GET /{kind}/{id}?as_of=T` for the kinds without an entity route of their own
(policies, liaisons, liaison duties; every other entity route takes `as_of` itself: `infra.http.replayed`),
`GET /campaigns/{id}/escalation_replay`, `GET /accountability_cases/{id}/escalation_replay`,
`GET /accountability_cases/{id}/dossier` and `GET /audit/chain`. Readers are the audit roles
(`domain.kernel.roles.AUDIT_READER_ROLES`: auditor, discipline and HQ; 403 `role_not_allowed` for the others); a
token bound to a campaign reads only that campaign's entities (403 `campaign_not_allowed`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response
from psycopg.rows import dict_row

from domain.kernel.base import DomainError, Forbidden
from domain.kernel.roles import AUDIT_READER_ROLES
from infra.audit import asof, chain, digests, queries as aq
from infra.http import replayed
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.http.params import ReadInstant
from infra.http.errors import error_responses

router = APIRouter(tags=["audit"])
ERRORS = error_responses(401, 403, 404)  # a read's own; 400, 413, 422 and 503 are every route's (the app's)
AsOf = Query(None, description="ISO-8601 instant with offset (as of then). Default: now.")
MAX_OFFSET = 10**9  # far past any trail, and within the bigint PostgreSQL's OFFSET takes (a larger one was a 500)
TRAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS, 200: {"description": "the trail: JSON, or with `format=csv` a CSV file (UTF-8 with a BOM)",
                    "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}},
}
OWN_GET = ("policies", "liaisons", "liaison_duties")  # kinds with no GET /{kind}/{id} elsewhere (visits: routes_visits)


def auditor(grant: Grant = Depends(current_grant)) -> Grant:
    """The grant of an audit reader (403 for other roles)."""
    if grant.actor.role not in AUDIT_READER_ROLES:
        raise Forbidden("role_not_allowed", "该角色不能查阅审计记录", "this role may not read the audit",
                        role=grant.actor.role, allowed=sorted(AUDIT_READER_ROLES))
    return grant


def visible(request: Request, grant: Grant, kinds: tuple[str, ...], entity_id: UUID) -> str:
    kind, campaign = aq.existing(request.app.state.system.app, kinds, entity_id)
    ensure_campaign(grant, campaign if campaign is not None else entity_id if kind == "campaign" else None)
    return kind


def now_or(request: Request, at: datetime | None) -> datetime:
    at = at or request.app.state.system.clock()
    if at.tzinfo is None:
        raise DomainError("naive_timestamp", "时间须带时区", "the instant needs an offset")  # 422: bad input
    return at


def read(request: Request, fn: Callable[[Any], Any]) -> Any:
    with request.app.state.read_pool.connection() as conn:
        return fn(conn)


def as_of_view(request: Request, grant: Grant, kinds: tuple[str, ...], entity_id: UUID, at: datetime | None,
               basis: str = "recorded") -> dict[str, Any]:
    """The entity as it stood at `at`, folded from the store (what the entity routes answer when given `as_of`)."""
    visible(request, grant, kinds, entity_id)
    return jsonable_encoder(aq.as_of(request.app.state.system.app, kinds, entity_id, now_or(request, at), basis))


def trail_endpoint(plural: str) -> Callable[..., Any]:
    kinds = aq.KINDS[plural]

    def endpoint(entity_id: UUID, request: Request, since: ReadInstant | None = None, until: ReadInstant | None = None,
                 by: str = Query("recorded", pattern="^(recorded|occurred)$"), limit: int = Query(200, ge=1, le=5000),
                 offset: int = Query(0, ge=0, le=MAX_OFFSET), format: str = Query("json", pattern="^(json|csv)$"),
                 grant: Grant = Depends(auditor)) -> Any:
        visible(request, grant, kinds, entity_id)
        body = read(request, lambda conn: aq.trail(conn, entity_id, since=since, until=until, by=by, limit=limit,
                                                    offset=offset))
        if format == "csv":
            return Response(trail_csv(body["rows"]), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="trail-{entity_id}.csv"'})
        return body

    endpoint.__name__ = f"trail_of_{plural}"
    endpoint.__doc__ = (f"Every event touching this {kinds[0]} (履历) — directly or as a named party — with actor, times, "
                        "reason, command, correlation and causation chain.")
    return endpoint


CSV_COLUMNS = ("notification_id", "event_id", "event_type", "actor", "occurred_at", "recorded_at", "reason", "command_id",
               "correlation_id", "causation_id", "root_command_id", "relations")


def trail_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        actor = r["actor"] or {}
        writer.writerow([r["notification_id"], r["event_id"], r["event_type"], f"{actor.get('name') or ''}({actor.get('role')})",
                         r["occurred_at"], r["recorded_at"], r["reason"] or "", r["command_id"], r["correlation_id"],
                         r["causation_id"] or "", r["root_command_id"], " ".join(r["relations"])])
    return "\ufeff" + out.getvalue()  # BOM: spreadsheet programs read the Chinese text as UTF-8


def knowledge_endpoint(plural: str) -> Callable[..., Any]:
    kinds = aq.KINDS[plural]

    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 grant: Grant = Depends(auditor)) -> Any:
        visible(request, grant, kinds, entity_id)
        at = now_or(request, as_of)
        return jsonable_encoder(read(request, lambda conn: asof.knowledge(request.app.state.system.app, conn, kinds,
                                                                            entity_id, at)))

    endpoint.__name__ = f"knowledge_of_{plural}"
    endpoint.__doc__ = ("What HQ could see at `as_of` (events recorded by then) next to what had happened by then "
                        "(events occurred by then): 知情视图.")
    return endpoint


def entity_endpoint(plural: str) -> Callable[..., Any]:
    kinds = aq.KINDS[plural]

    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 basis: str = Query("recorded", pattern="^(recorded|occurred)$"),
                 grant: Grant = Depends(auditor)) -> Any:
        return as_of_view(request, grant, kinds, entity_id, as_of, basis)

    endpoint.__name__ = f"get_{plural}_as_of"
    endpoint.__doc__ = f"The {kinds[0]} folded from its stored events as of `as_of` (default now), with the names then in force."
    return endpoint


for _plural in aq.KINDS:
    router.add_api_route(f"/{_plural}/{{entity_id}}/trail", trail_endpoint(_plural), methods=["GET"],
                         responses=TRAIL_RESPONSES)
    router.add_api_route(f"/{_plural}/{{entity_id}}/knowledge", knowledge_endpoint(_plural), methods=["GET"],
                         responses=ERRORS)
    router.add_api_route(f"/{_plural}/{{entity_id}}/as_of", entity_endpoint(_plural), methods=["GET"], responses=ERRORS)


def own_endpoint(plural: str) -> Callable[..., Any]:
    """`GET /{plural}/{id}` for a kind with no entity route of its own: the same body as the other entity routes."""
    kinds = aq.KINDS[plural]

    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 grant: Grant = Depends(auditor)) -> Any:
        kind = visible(request, grant, kinds, entity_id)
        return replayed.entity_at(request.app.state.system.app, kind, kind, entity_id, now_or(request, as_of))

    endpoint.__name__ = f"get_{plural}"
    endpoint.__doc__ = (f"The {kinds[0]} folded from its events recorded by `as_of` (default now), with its version then "
                        "and the names then in force (`names_in_force`).")
    return endpoint


for _plural in OWN_GET:
    router.add_api_route(f"/{_plural}/{{entity_id}}", own_endpoint(_plural), methods=["GET"], responses=ERRORS)


@router.get("/campaigns/{campaign_id}/escalation_replay", responses=ERRORS)
def campaign_replay(campaign_id: UUID, request: Request, case: UUID | None = None, item: UUID | None = None,
                    since: ReadInstant | None = None, until: ReadInstant | None = None,
                    grace_minutes: int = Query(60, ge=0, le=100_000), grant: Grant = Depends(auditor)) -> dict[str, Any]:
    """Escalation replay (督办复盘) of one case, one work item or the campaign's period: did each step follow from policy?"""
    visible(request, grant, ("campaign",), campaign_id)
    end = now_or(request, until)
    result = read(request, lambda conn: aq.replay_scope(
        request.app.state.system.app, conn, case=case, item=item, campaign=None if case or item else campaign_id,
        since=since, until=end, grace=timedelta(minutes=grace_minutes)))
    return jsonable_encoder(result.as_json())


@router.get("/accountability_cases/{case_id}/escalation_replay", responses=ERRORS)
def case_replay(case_id: UUID, request: Request, grant: Grant = Depends(auditor)) -> dict[str, Any]:
    """Escalation replay of the work items a case rests on."""
    visible(request, grant, ("accountability_case",), case_id)
    end = now_or(request, None)
    result = read(request, lambda conn: aq.replay_scope(request.app.state.system.app, conn, case=case_id, until=end))
    return jsonable_encoder(result.as_json())


@router.get("/accountability_cases/{case_id}/dossier", response_class=HTMLResponse, responses=ERRORS)
def case_dossier(case_id: UUID, request: Request, grant: Grant = Depends(auditor)) -> HTMLResponse:
    """The case's dossier (问责卷宗): zh-CN HTML for printing on A4, with trails, links then in force, notices,
    escalation replay and the integrity proof."""
    visible(request, grant, ("accountability_case",), case_id)
    system = request.app.state.system
    html = read(request, lambda conn: aq.dossier_html(system.app, system.database_url, conn, case_id, system.clock(),
                                                       getattr(request.app.state, "audit_key", None)))
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="dossier-{case_id}.html"'})


@router.get("/audit/chain", responses=ERRORS)
def chain_status(request: Request, grant: Grant = Depends(auditor)) -> dict[str, Any]:
    """How far the hash chain reaches and the latest signed digest (run `dudao verify` to recompute it)."""
    with psycopg.connect(request.app.state.system.database_url, row_factory=dict_row, autocommit=True) as conn:
        chain.create_tables(conn)
        digests.create_table(conn)
        head = chain.head(conn)
        last = digests.latest(conn)
    log_head = request.app.state.system.app.recorder.max_notification_id() or 0
    return {"chain_position": head.position, "head_hash": head.hash.hex(), "log_head": log_head,
            "unchained": max(log_head - head.position, 0),
            "latest_digest": None if last is None else {**last[0].as_json(),
                                                        "published_at": last[1].isoformat() if last[1] else None}}
