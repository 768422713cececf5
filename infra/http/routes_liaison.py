"""Liaison duty queries over HTTP (挂钩联系履职): compliance per campaign, leader and place, a leader's own view,
each leader's duty trail (JSON or CSV), the leaders in force, and the escalation list per leader.

Commands (designate a leader, link, end, hand over, exempt, set the duty policy, close an unmet duty) go
through the generic `POST /commands/{name}` routes. Verdicts are computed at `as_of` (default: the
clock's now) from what was recorded by then, on the campaign calendar; lists report the read models'
`projection_position` and the `log_head`. A campaign-bound token only sees its campaign.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from domain.kernel.base import DomainError, NotFound
from domain.kernel.calendar import WorkCalendar
from domain.liaison import Status
from domain.structure.person import Person
from domain.structure.place import Place
from infra.commands.escalation import calendar_for, ladders_of
from infra.commands.service import StoreReader
from infra.escalator import views
from infra.escalator.schedule import rules_for
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.http.params import AsOf, ReadDay, ReadInstant
from infra.http.queries import ERRORS, existing, instant, snapshot, visible_campaign, zone
from projections import escalation_lists as el
from projections import liaison_duties as ld

router = APIRouter(tags=["liaison"])

READ_MODELS = ("liaison_duties", "structure", "matrix", "work_items", "ledger")


def _calendar(request: Request, campaign_id: UUID) -> WorkCalendar:
    return calendar_for(StoreReader(request.app.state.system.app), campaign_id)


def _window(period_from: date | None, period_to: date | None) -> tuple[date | None, date | None]:
    if period_from is not None and period_to is not None and period_to < period_from:
        raise DomainError("period_invalid", "查询期间的结束日期早于开始日期", "the period ends before it starts",
                          period_from=period_from.isoformat(), period_to=period_to.isoformat())
    return period_from, period_to


def _person_campaign(request: Request, grant: Grant, person_id: UUID) -> Any:
    state, _ = existing(request.app.state.system.app, "person", person_id)
    assert isinstance(state, Person)
    ensure_campaign(grant, state.campaign_id)
    return visible_campaign(request, grant, state.campaign_id)


def _compliance(request: Request, campaign: Any, as_of: datetime | None, **filters: Any) -> dict[str, Any]:
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    calendar = _calendar(request, campaign.campaign_id)
    rows, positions = snapshot(request, READ_MODELS, lambda conn: ld.compliance(
        conn, campaign.campaign_id, calendar, at, **filters))
    body = {"campaign_id": campaign.campaign_id, "as_of": at, "summary": ld.summary(rows), "rows": rows, **positions}
    return jsonable_encoder(views.in_zone(body, zone(campaign.timezone)))


@router.get("/campaigns/{campaign_id}/duties", responses=ERRORS)
def campaign_duties(campaign_id: UUID, request: Request, person_id: UUID | None = None, place_id: UUID | None = None,
                    period_from: ReadDay | None = Query(None, description="first day of the periods wanted"),
                    period_to: ReadDay | None = Query(None, description="last day of the periods wanted"),
                    status: Status | None = None, as_of: ReadInstant | None = AsOf,
                    grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """挂钩联系履职情况: per leader × linked place × period — due, done, the visits (occurred/recorded), last visit,
    days since, status (met / met_late / unmet / pending / exempt / not_due), the policy version that judges the
    period, the problems found on those visits with their state, and any reminder, unmet record or resolution."""
    campaign = visible_campaign(request, grant, campaign_id)
    first, last = _window(period_from, period_to)
    return _compliance(request, campaign, as_of, person_id=person_id, place_id=place_id, first=first, last=last,
                       status=status)


@router.get("/persons/{person_id}/duties/compliance", responses=ERRORS)
def leader_compliance(person_id: UUID, request: Request, period_from: ReadDay | None = None,
                      period_to: ReadDay | None = None, as_of: ReadInstant | None = AsOf,
                      grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """One leader's compliance rows, every linked place and period (as of `as_of`)."""
    campaign = _person_campaign(request, grant, person_id)
    first, last = _window(period_from, period_to)
    return _compliance(request, campaign, as_of, person_id=person_id, first=first, last=last)


@router.get("/places/{place_id}/duties", responses=ERRORS)
def place_duties(place_id: UUID, request: Request, period_from: ReadDay | None = None, period_to: ReadDay | None = None,
                 as_of: ReadInstant | None = AsOf, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The liaison duties toward one place: each leader linked to it, per period."""
    state, _ = existing(request.app.state.system.app, "place", place_id)
    assert isinstance(state, Place)
    campaign = visible_campaign(request, grant, state.campaign_id)
    first, last = _window(period_from, period_to)
    return _compliance(request, campaign, as_of, place_id=place_id, first=first, last=last)


@router.get("/persons/{person_id}/duties", responses=ERRORS)
def leader_view(person_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """挂钩领导本人视图: linked places with open problems and escalations there, this period's duty status, and what is
    due next (visits still owed and by when)."""
    campaign = _person_campaign(request, grant, person_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    calendar = _calendar(request, campaign.campaign_id)
    reader = StoreReader(request.app.state.system.app)
    rules = rules_for(ladders_of(reader, campaign.campaign_id), calendar)

    def read(conn: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        return (ld.leader_view(conn, campaign.campaign_id, person_id, calendar, at),
                el.open_escalations(conn, campaign.campaign_id, leader_id=person_id, at=at))

    (view, raw), positions = snapshot(request, READ_MODELS, read)
    if view is None:
        raise NotFound("leader_not_found", "该人员不是挂钩领导", "the person is not a liaison leader",
                       person_id=str(person_id))
    rows = views.sort_rows([views.escalation_row(r, rules, at) for r in raw])
    body = {**view, "as_of": at, "escalations": rows, **positions}
    return jsonable_encoder(views.in_zone(body, zone(campaign.timezone)))


@router.get("/persons/{person_id}/duties/trail", responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
def duty_trail(person_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
               format: str = Query("json", pattern="^(json|csv)$", description="json or csv (UTF-8 with BOM)"),
               grant: Grant = Depends(current_grant)) -> Any:
    """履职轨迹: every link given or ended (by whom, why), every visit (occurred/recorded, who logged it), every period's
    verdict and the policy version that judged it, exemptions, reminders and escalations — with actor, times, reason
    and correlation/causation ids, in order."""
    campaign = _person_campaign(request, grant, person_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    calendar = _calendar(request, campaign.campaign_id)
    entries, positions = snapshot(request, READ_MODELS, lambda conn: ld.trail(
        conn, campaign.campaign_id, person_id, calendar, at))
    if format == "csv":
        return Response(trail_csv(entries), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="duty-trail-{person_id}.csv"'})
    body = {"person_id": person_id, "as_of": at, "entries": [_public(e) for e in entries], **positions}
    return jsonable_encoder(views.in_zone(body, zone(campaign.timezone)))


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("order",)}


def trail_csv(entries: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ld.TRAIL_CSV_COLUMNS)
    writer.writerows(ld.trail_csv_rows(entries))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


@router.get("/campaigns/{campaign_id}/leaders", responses=ERRORS)
def leaders_in_force(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                     grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The liaison leader (挂钩领导) of each place and unit at `as_of`, with 班子 and rank."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    rows, positions = snapshot(request, READ_MODELS, lambda conn: ld.linked_in_force(conn, campaign_id, at))
    return jsonable_encoder({"campaign_id": campaign_id, "as_of": at, "rows": rows, **positions})


@router.get("/campaigns/{campaign_id}/escalations/by_leader", responses=ERRORS)
def escalations_by_leader(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                          grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """督办清单（按挂钩领导）: the open escalations grouped per liaison leader — the items at the places they are linked
    to (the 包保责任人 standing in where no link is defined) and their own unmet liaison duties — read at `as_of`
    (default now)."""
    campaign = visible_campaign(request, grant, campaign_id)
    now = instant(as_of, campaign.timezone, request.app.state.system.clock)
    reader = StoreReader(request.app.state.system.app)
    rules = rules_for(ladders_of(reader, campaign_id), calendar_for(reader, campaign_id))

    def read(conn: Any) -> tuple[list[dict[str, Any]], dict[UUID, Any]]:
        raw = el.open_escalations(conn, campaign_id, at=now)
        return raw, ld.listing_leaders(conn, [r["parent_id"] for r in raw if r["parent_id"]] + _leader_ids(raw))

    (raw, known), positions = snapshot(request, READ_MODELS, read)
    rows = views.sort_rows([views.escalation_row(r, rules, now) for r in raw])
    body = {"campaign_id": campaign_id, "as_of": now, "leaders": by_leader(rows, known),
            "without_leader": sum(not _leaders_of(r) for r in rows), **positions}
    return jsonable_encoder(views.in_zone(body, zone(campaign.timezone)))


def _leader_ids(raw: list[dict[str, Any]]) -> list[UUID]:
    return [UUID(str(p["party_id"])) for r in raw for p in (r.get("liaison_leaders") or r["bao_bao"])
            if p["party_kind"] == "person"]


def _leaders_of(row: dict[str, Any]) -> list[tuple[UUID, str | None]]:
    """Whose list a row is on: the leader of an unmet duty, else the place's liaison leaders (or 包保 persons)."""
    if row["item_kind"] == "liaison_duty" and row.get("person_id"):
        return [(UUID(str(row["person_id"])), None)]
    return [(UUID(str(p["party_id"])), p.get("name")) for p in row["liaison_leaders"] if p["party_kind"] == "person"]


def by_leader(rows: list[dict[str, Any]], known: dict[UUID, Any]) -> list[dict[str, Any]]:
    groups: dict[UUID, dict[str, Any]] = {}
    for row in rows:
        for person_id, name in _leaders_of(row):
            info = known.get(person_id, {})
            group = groups.setdefault(person_id, {
                "person_id": person_id, "name": info.get("name") or name, "rank": info.get("rank"),
                "designated": person_id in known, "rows": []})
            group["rows"].append(row)
    out = []
    for g in groups.values():
        levels = Counter(r["level"] for r in g["rows"])
        out.append({**{k: v for k, v in g.items() if k != "rows"}, "open": len(g["rows"]),
                    "overdue": sum(r["overdue"] for r in g["rows"]),
                    "unmet_duties": sum(r["item_kind"] == "liaison_duty" for r in g["rows"]),
                    "by_level": {str(lv): n for lv, n in sorted(levels.items(), reverse=True)},
                    "rows": g["rows"]})
    return sorted(out, key=lambda g: (-g["open"], g["name"] or "", str(g["person_id"])))
