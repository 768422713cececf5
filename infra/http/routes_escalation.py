"""Escalation queries over HTTP: the escalation list and HQ overview, the pre-filled bulletin draft, notices,
summons and accountability cases, and single bulletins/notices/summons/cases/steps folded from their events.

Lists read the projections in one REPEATABLE READ snapshot and report `projection_position` and
`log_head`; working-time ages and next steps are computed at the clock's now on the campaign
calendar. A campaign-bound token only sees its campaign.
"""

from __future__ import annotations

from typing import Any, Callable
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from domain.kernel.base import DomainError, NotFound
from domain.escalation.ladder import EscalationPolicy, escalation_policy_id, ranking_policy_in_force
from domain.consequences.ranking import UnitRate, best_first, draft_contents
from infra.escalator import views as views
from infra.evaluation import bulletin_rankings
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.http import replayed
from infra.http.params import AsOf, ReadDay, ReadInstant
from infra.http.queries import ERRORS, campaign_of, instant, load_state, snapshot, timezone_of, visible_campaign, zone
from infra.http.scope import ensure_notice_visible, visible
from infra.commands.escalation import calendar_for, ladders_of
from infra.escalator.schedule import rules_for
from infra.commands.service import StoreReader
from projections import bulletins as bl
from projections import escalation_lists as el
from projections import liaison_duties as ld

router = APIRouter(tags=["escalation"])

READ_MODELS = ("work_items", "bulletins", "structure", "matrix", "liaison_duties")


@router.get("/campaigns/{campaign_id}/escalations", responses=ERRORS)
def escalations(campaign_id: UUID, request: Request, level: int | None = Query(None, ge=0, le=4),
                unit_id: UUID | None = None, grid_id: UUID | None = None, sub_command_id: UUID | None = None,
                bao_bao_id: UUID | None = Query(None, description="包保责任人 (person or unit) of the place"),
                leader_id: UUID | None = Query(None, description="挂钩领导: their places' rows and their unmet duties"),
                limit: int = Query(200, ge=1, le=5000), offset: int = Query(0, ge=0),
                as_of: ReadInstant | None = AsOf, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """Open escalations (督办清单) by level and age, filtered per unit, grid, sub-command, 包保责任人 or 挂钩领导, with the
    HQ overview (总览) of the same selection: each row says what is overdue, since when, the next step and when —
    ages and next steps read at `as_of` (default now), over the open work as it stands."""
    campaign = visible_campaign(request, grant, campaign_id)
    now = instant(as_of, campaign.timezone, request.app.state.system.clock)
    reader = StoreReader(request.app.state.system.app)
    rules = rules_for(ladders_of(reader, campaign_id), calendar_for(reader, campaign_id))
    raw, positions = snapshot(request, READ_MODELS, lambda conn: el.open_escalations(
        conn, campaign_id, level=level, unit_id=unit_id, grid_id=grid_id, sub_command_id=sub_command_id,
        bao_bao_id=bao_bao_id, leader_id=leader_id, at=now))
    seen = visible(request, grant)  # a unit's token: its units' rows; a leader's: rows at their linked places
    rows = views.sort_rows([views.escalation_row(r, rules, now) for r in seen.rows(raw)])
    body = {"campaign_id": campaign_id, "as_of": now, "overview": views.overview(rows), "total": len(rows),
            "rows": rows[offset:offset + limit], **positions}
    return jsonable_encoder(views.in_zone(body, zone(campaign.timezone)))


@router.get("/campaigns/{campaign_id}/bulletins/draft", responses=ERRORS)
def bulletin_draft(campaign_id: UUID, request: Request, period_start: ReadDay, period_end: ReadDay,
                   as_of: ReadInstant | None = Query(None, description="judge the period as of this instant (default: now)"),
                   grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """A pre-filled bulletin (通报草稿) for the period: 红榜/黑榜 and 红黄旗 by 按期整改率 — the evaluation metrics'
    按期结案率 per unit (`projections.metrics`, one definition), judged at min(period end, `as_of`) — the level-3
    escalations taken by then and not yet listed in an issued bulletin, and the 挂钩联系履职 section (leaders whose
    unmet liaison duties the ladder listed). Post it back (edited) as DraftBulletin."""
    campaign = visible_campaign(request, grant, campaign_id)
    if period_end < period_start:
        raise DomainError("period_invalid", "通报期间的结束日期早于开始日期", "the period ends before it starts")
    start, end = views.period_bounds(period_start, period_end, zone(campaign.timezone))
    now = instant(as_of, campaign.timezone, request.app.state.system.clock)
    policy_state = StoreReader(request.app.state.system.app).get(
        "escalation_policy", escalation_policy_id(campaign_id), EscalationPolicy
    )
    policy = ranking_policy_in_force(policy_state.ranking_policies if policy_state else (), min(end, now))

    def read(conn: Any) -> tuple[list[UnitRate], list[Any], set[UUID], dict[UUID, Any]]:
        steps = el.listing_steps(conn, campaign_id, end if as_of is None else min(end, now))
        leaders = ld.listing_leaders(conn, [s["parent_id"] for s in steps if s["item_kind"] == "liaison_duty"])
        rates = bulletin_rankings(request.app.state.system.app, conn, campaign_id, period_start, period_end, now)
        return rates, steps, bl.listed_step_ids(conn, campaign_id), leaders

    (rates, steps, listed, leaders), positions = snapshot(request, READ_MODELS + ("metrics",), read)
    contents = draft_contents(rates, views.listed_steps(steps, listed), policy, period_start=period_start,
                              period_end=period_end, liaison=views.liaison_listings(steps, listed, leaders))
    return jsonable_encoder({"campaign_id": campaign_id, "period_start": period_start, "period_end": period_end,
                             "as_of": now, "draft": contents, "rankings": best_first(rates),
                             "ranking_policy": policy, **positions})


@router.get("/campaigns/{campaign_id}/bulletins", responses=ERRORS)
def bulletins(campaign_id: UUID, request: Request, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The campaign's bulletins (通报), drafts and issued, oldest first."""
    visible_campaign(request, grant, campaign_id)
    rows, positions = snapshot(request, READ_MODELS, lambda conn: bl.list_bulletins(conn, campaign_id))
    return jsonable_encoder({"campaign_id": campaign_id, "rows": rows, **positions})


@router.get("/campaigns/{campaign_id}/notices", responses=ERRORS)
def notices(campaign_id: UUID, request: Request,
            unit_id: UUID | None = Query(None, description="an addressee: a unit (or a person)"),
            pending: bool | None = Query(None, description="true: only unacknowledged (待签收)"),
            limit: int = Query(200, ge=1, le=5000), grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """Notices (通知: 交办单/提醒/催办单/督办单), newest first, per addressee, optionally only those awaiting 签收.

    A unit's token lists only the notices addressed to its units or to its person (of the `limit` newest)."""
    visible_campaign(request, grant, campaign_id)
    seen = visible(request, grant)
    rows, positions = snapshot(request, READ_MODELS, lambda conn: [
        r for r in el.notices_for(conn, campaign_id, unit_id, pending, limit) if seen.notice(r["recipients"])])
    return jsonable_encoder({"campaign_id": campaign_id, "rows": rows, **positions})


def proposals_endpoint(kind: str, what: str) -> Callable[..., dict[str, Any]]:
    def endpoint(campaign_id: UUID, request: Request, status: str | None = None,
                 grant: Grant = Depends(current_grant)) -> dict[str, Any]:
        visible_campaign(request, grant, campaign_id)
        rows, positions = snapshot(request, READ_MODELS, lambda conn: bl.list_proposals(conn, campaign_id, kind, status))
        return jsonable_encoder({"campaign_id": campaign_id, "rows": rows, **positions})

    endpoint.__name__ = f"list_{kind}"
    endpoint.__doc__ = f"The campaign's {what} with status and basis, oldest first."
    return endpoint


router.add_api_route("/campaigns/{campaign_id}/summons", proposals_endpoint("summons", "summons (约谈)"),
                     methods=["GET"], responses=ERRORS)
router.add_api_route("/campaigns/{campaign_id}/accountability_cases",
                     proposals_endpoint("accountability_case", "accountability cases (问责)"),
                     methods=["GET"], responses=ERRORS)

ENTITIES = {"bulletins": ("bulletin", "通报"), "notices": ("notice", "通知"), "summons": ("summons", "约谈"),
            "accountability_cases": ("accountability_case", "问责案件"), "escalation_steps": ("escalation", "督办步骤")}


def entity_endpoint(kind: str, zh: str) -> Callable[..., dict[str, Any]]:
    def endpoint(entity_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                 grant: Grant = Depends(current_grant)) -> dict[str, Any]:
        app = request.app.state.system.app
        found = load_state(app, kind, entity_id)
        if found is None:
            raise NotFound(f"{kind}_not_found", f"{zh}不存在", f"{kind} not found", id=str(entity_id))
        state, version = found
        ensure_campaign(grant, campaign_of(state))
        if kind == "notice":
            ensure_notice_visible(request, grant, state)  # 403 out_of_scope: addressed to another unit
        if as_of is not None:
            at = instant(as_of, timezone_of(app, state), request.app.state.system.clock)
            return replayed.entity_at(app, kind, zh, entity_id, at)
        return {**jsonable_encoder(state), "version": version}

    endpoint.__name__ = f"get_{kind}"
    endpoint.__doc__ = (f"The {kind} ({zh}) folded from its events, with its version; with `as_of`, folded from the "
                        "events recorded by then, with the names then in force (`names_in_force`).")
    return endpoint


for _plural, (_kind, _zh) in ENTITIES.items():
    router.add_api_route(f"/{_plural}/{{entity_id}}", entity_endpoint(_kind, _zh), methods=["GET"], responses=ERRORS)
