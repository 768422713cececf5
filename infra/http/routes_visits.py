"""HTTP routes of supervision visits (督导记录): one visit folded from its events, and a campaign's visit list.

What a field app uploads it can read back: `GET /visits/{id}` is the visit as the store has it (as it stood
at `as_of`: the events recorded by then), with its place, its participants' names and each finding with the
problem it became (state, responsible unit, deadline, closure, at the same instant);
`GET /campaigns/{id}/visits` lists them, newest first, by supervisor, place, grid and local days of
occurrence, each with its findings and their problems (from the visits and metrics read models).
A unit's token sees the visits that found something handed to its units (those findings only); a leader's,
those at their linked places; `out_of_scope` (403) for a single visit outside.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from domain import visit as vi
from domain.kernel.base import NotFound
from domain.problem.state import Problem
from infra.audit.history import AsOfReader, Cutoff, History
from infra.http.auth import Grant, current_grant, ensure_campaign
from infra.http.params import AsOf, ReadDay, ReadInstant
from infra.http.queries import ERRORS, existing, instant, read_consistently, visible_campaign, zone
from infra.http.scope import Visible, out_of_scope, visible
from infra.http.timestamps import respond_in
from projections import visits as pv

router = APIRouter(tags=["visits"])
VISIT_MODELS = (pv.VisitsProjection.name, "metrics", "structure")
PROBLEM_FIELDS = ("state", "unit_id", "assigned_at", "deadline", "acknowledged_at", "last_submitted_at", "closed_at",
                  "merged_into", "likely_duplicate_of", "relapse_of")


def problem_summary(problem: Problem, names: dict[UUID, str]) -> dict[str, Any]:
    """What a finding became: the problem's state, responsible unit (with its name), deadline and closure."""
    body = {name: getattr(problem, name) for name in PROBLEM_FIELDS}
    return {**body, "unit_name": names.get(problem.unit_id) if problem.unit_id else None}


def unit_of(problem: Problem | None) -> UUID | None:
    return problem.unit_id if problem is not None else None


def name_of(reader: AsOfReader, kind: str, entity_id: UUID | None) -> str | None:
    state = reader.get(kind, entity_id, object) if entity_id is not None else None
    name = getattr(state, "name", None)
    return name if isinstance(name, str) else None


def finding_visible(seen: Visible, unit_id: Any, place_id: Any) -> bool:
    """A finding is visible unrestricted, or when the problem it became is one this token may see."""
    return not seen.restricted or (unit_id is not None or seen.unit_ids is None) and seen.problem(unit_id, place_id)


def visit_visible(seen: Visible, place_id: Any, shown: list[Any]) -> bool:
    """A visit is visible at the token's places (a leader's), and to a unit's token when it found something of theirs."""
    in_places = seen.place_ids is None or str(place_id) in seen.place_ids
    return in_places and (seen.unit_ids is None or bool(shown))


@router.get("/visits/{visit_id}", responses=ERRORS)
def get_visit(visit_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
              grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """One supervision visit (督导记录) as recorded by `as_of` (default: now): who, where, when it happened and when it
    was recorded, the checklist, and each finding with the problem it became (问题: state, unit, deadline)."""
    app = request.app.state.system.app
    history = History(app)
    first = history.of(visit_id)[0].event if history.kind_of(visit_id) == vi.KIND else None
    if not isinstance(first, (vi.VisitLogged, vi.VisitOpened)):
        raise NotFound("visit_not_found", "督导记录不存在", "visit not found", id=str(visit_id))
    ensure_campaign(grant, first.campaign_id)
    campaign, _ = existing(app, "campaign", first.campaign_id)
    respond_in(request, campaign.timezone)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    reader = AsOfReader(history, Cutoff(recorded_by=at))
    visit = reader.get(vi.KIND, visit_id, vi.Visit)
    if visit is None:
        raise NotFound("visit_not_found", "督导记录在该时间尚未录入", "the visit was not recorded yet at as_of",
                       id=str(visit_id), as_of=at.isoformat())
    seen = visible(request, grant)
    history.load([f.problem_id for f in visit.findings] + list(visit.participants))
    problems = {f.problem_id: reader.get("problem", f.problem_id, Problem) for f in visit.findings}
    shown = [f for f in visit.findings if finding_visible(seen, unit_of(problems[f.problem_id]),
                                                           f.place_id or visit.place_id)]
    if not visit_visible(seen, visit.place_id, shown) or not seen.visit(visit.logged_by, visit.participants):
        raise out_of_scope("visit", visit_id)
    units = {p.unit_id for p in problems.values() if p is not None and p.unit_id is not None}
    names = {u: n for u in units if (n := name_of(reader, "unit", u)) is not None}
    body = jsonable_encoder(visit)
    body["findings"] = [{**jsonable_encoder(f), "problem": jsonable_encoder(problem_summary(p, names))
                         if (p := problems[f.problem_id]) is not None else None} for f in shown]
    body["place_name"] = name_of(reader, "place", visit.place_id)
    body["participant_names"] = {str(p): name_of(reader, "person", p) for p in visit.participants}
    return {**body, "as_of": at, "version": len(reader.events(visit_id))}


def day_bounds(start: date | None, end: date | None, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, the day after end 00:00) in the campaign's zone; either side open when not given."""
    return (datetime.combine(start, time(0), tz) if start else None,
            datetime.combine(end + timedelta(days=1), time(0), tz) if end else None)


@router.get("/campaigns/{campaign_id}/visits", responses=ERRORS)
def campaign_visits(campaign_id: UUID, request: Request,
                    person_id: UUID | None = Query(None, description="a supervisor (督导人员): visits they took part in"),
                    place_id: UUID | None = Query(None, description="visits at this place or a place inside it"),
                    grid_id: UUID | None = Query(None, description="visits in this grid (网格)"),
                    date_from: ReadDay | None = Query(None, description="first local day of occurrence (YYYY-MM-DD)"),
                    date_to: ReadDay | None = Query(None, description="last local day of occurrence (YYYY-MM-DD)"),
                    as_of: ReadInstant | None = AsOf, limit: int = Query(200, ge=1, le=5000),
                    offset: int = Query(0, ge=0, le=10**9),  # within the bigint OFFSET takes (past it: a 500)
                    grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The campaign's supervision visits (督导记录), newest occurrence first, as recorded by `as_of` (default now),
    each with its findings and the problems they became (as of the same instant); `total` counts every match."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    start, end = day_bounds(date_from, date_to, zone(campaign.timezone))
    seen = visible(request, grant)
    found: dict[str, Any] = {}

    def read(conn: Any) -> list[dict[str, Any]]:
        rows, found["total"] = pv.list_visits(conn, campaign_id, person_id=person_id, place_id=place_id,
                                              grid_id=grid_id, start=start, end=end,
                                              as_of=at if as_of is not None else None, limit=limit, offset=offset)
        return [r for r in (scoped(r, seen) for r in rows) if r is not None]

    body = read_consistently(request, VISIT_MODELS, read)
    return {"campaign_id": str(campaign_id), "as_of": at, "total": found["total"], "limit": limit, "offset": offset,
            **body}


def scoped(row: dict[str, Any], seen: Visible) -> dict[str, Any] | None:
    """The row as this token may see it: only findings of its units' problems (a unit's token), only visits at its
    places (a leader's, or a place-scoped token); None when nothing of it is visible."""
    if not seen.restricted:
        return row
    findings = [f for f in row["findings"]
                if finding_visible(seen, (f["problem"] or {}).get("unit_id"), f.get("place_id") or row["place_id"])]
    if not visit_visible(seen, row["place_id"], findings) or not seen.visit(row["logged_by"], row["participants"]):
        return None
    return {**row, "findings": findings, "finding_count": len(findings)}
