"""HTTP routes of campaigns (创建活动) as a whole: the list a token may see, the policies in force, the calendar.

- `GET /campaigns`: the campaigns this token may read (a campaign-bound token: its own), started by `as_of`;
- `GET /campaigns/{id}/policies`: every policy in force at `as_of` (default now), as recorded by then — deadlines
  (整改时限), relapse window, category routing, categories, local calendar days, late-entry window (补录时限),
  automatic assignment (自动交办), escalation ladder, ranking policy, liaison duty policy — each with its
  versions, and `default: true` where the campaign never set one (the product default applies);
- `GET /campaigns/{id}/calendar?year=`: the national holidays and make-up working days (节假日/调休) of the year
  with their names, the campaign's local days in force, and the working days that leaves;
- `GET /campaigns/{id}/calendar/deadline?from=T&working_days=N` (or `working_hours=H`): the working-day
  calculator (工作日计算器) — the very `TimeLimit.due` a 交办 counts its deadline with, on the calendar in force
  at `from`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from domain.escalation import ladder as esc
from domain.kernel.base import DomainError
from domain.kernel.calendar import WorkCalendar
from domain.liaison import policy as lp
from domain.policy import campaign as cp
from infra.audit.history import AsOfReader, Cutoff, History
from infra.calendars import official_calendar, official_holidays
from infra.http.auth import Grant, current_grant
from infra.http.params import AsOf, ReadInstant
from infra.http.queries import ERRORS, instant, load_state, read_consistently, visible_campaign
from projections import campaigns as pc

router = APIRouter(tags=["campaigns"])


@router.get("/campaigns", responses=ERRORS)
def campaigns(request: Request, as_of: ReadInstant | None = AsOf,
              grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The campaigns (创建活动) this token may see — a token bound to one campaign sees that one — started by
    `as_of` (default: now), newest launch first."""
    at = instant(as_of, "Asia/Shanghai", request.app.state.system.clock)
    body = read_consistently(request, (pc.CampaignsProjection.name,),
                             lambda conn: pc.list_campaigns(conn, grant.campaign_id, at))
    return {"as_of": at, **body}


# --- policies ----------------------------------------------------------------------------------------------


def version_view(versions: tuple[Any, ...], in_force: Any, default: Any) -> dict[str, Any]:
    """One policy: the version in force, whether that is the product default, and every version recorded."""
    return {"in_force": jsonable_encoder(in_force), "default": in_force is default,
            "versions": jsonable_encoder(list(versions))}


def policies_at(reader: AsOfReader, campaign_id: UUID, at: datetime) -> dict[str, Any]:
    """Every policy of the campaign in force at `at`, from the versions recorded by then."""
    p = reader.get(cp.KIND, cp.policy_id_for(campaign_id), cp.CampaignPolicy)
    e = reader.get(esc.POLICY_KIND, esc.escalation_policy_id(campaign_id), esc.EscalationPolicy)
    d = reader.get(lp.KIND, lp.duty_policy_id(campaign_id), lp.DutyPolicyHistory)

    def of(attr: str, default: Any) -> dict[str, Any]:
        versions = getattr(p, attr) if p is not None else ()
        return version_view(versions, cp.in_force(versions, at, default), default)

    ladders = e.ladders if e is not None else ()
    rankings = e.ranking_policies if e is not None else ()
    duties = d.versions if d is not None else ()
    return {
        "deadlines": of("deadlines", cp.DEFAULT_DEADLINE_POLICY),
        "relapse_window": of("relapse_windows", cp.DEFAULT_RELAPSE_WINDOW),
        "category_routing": of("routings", cp.DEFAULT_ROUTING),
        "categories": of("taxonomies", cp.DEFAULT_TAXONOMY),
        "calendar_days": of("calendars", cp.DEFAULT_CALENDAR_DAYS),
        "late_entry_window": of("late_entry_windows", cp.DEFAULT_LATE_ENTRY_WINDOW),
        "auto_assignment": of("auto_assignments", cp.DEFAULT_AUTO_ASSIGNMENT),
        "escalation_ladder": version_view(ladders, esc.ladder_in_force(ladders, at), esc.DEFAULT_LADDER),
        "ranking": version_view(rankings, esc.ranking_policy_in_force(rankings, at), esc.DEFAULT_RANKING_POLICY),
        "liaison_duty": version_view(duties, cp.in_force(duties, at, lp.DEFAULT_DUTY_POLICY), lp.DEFAULT_DUTY_POLICY),
    }


@router.get("/campaigns/{campaign_id}/policies", responses=ERRORS)
def campaign_policies(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                      grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The policies in force (现行政策) at `as_of` (default: now), as recorded by then, each with its versions."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    reader = AsOfReader(History(request.app.state.system.app), Cutoff(recorded_by=at))
    return {"campaign_id": campaign_id, "as_of": at, "policies": policies_at(reader, campaign_id, at)}


# --- the calendar --------------------------------------------------------------------------------------------


def calendar_at(request: Request, campaign_id: UUID, at: datetime) -> tuple[WorkCalendar, cp.CalendarDays]:
    """The campaign calendar in force at `at` (national days plus the campaign's local days then), as a 交办 uses it."""
    found = load_state(request.app.state.system.app, cp.KIND, cp.policy_id_for(campaign_id))
    policy = found[0] if found else None
    local = cp.in_force(policy.calendars if policy else (), at, cp.DEFAULT_CALENDAR_DAYS)
    return cp.campaign_calendar(official_calendar(), policy, at), local


@router.get("/campaigns/{campaign_id}/calendar", responses=ERRORS)
def campaign_calendar_year(campaign_id: UUID, request: Request,
                           year: int = Query(..., ge=2000, le=2099, description="the calendar year"),
                           as_of: ReadInstant | None = AsOf, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The working calendar (工作日历) of a year: the national holidays and make-up working days (节假日/调休) with
    their names, the campaign's local days in force at `as_of` (default now), and every day off and working day
    they give — the calendar deadlines are counted on."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    calendar, local = calendar_at(request, campaign_id, at)
    days = [date(year, 1, 1) + timedelta(days=i) for i in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
    holidays = official_holidays().get(year)
    return {
        "campaign_id": campaign_id, "year": year, "as_of": at, "official": holidays is not None,
        "holidays": holidays or [],
        "local": {"effective_from": local.effective_from if local is not cp.DEFAULT_CALENDAR_DAYS else None,
                  "days_off": sorted(d for d in local.days_off if d.year == year),
                  "make_up_workdays": sorted(d for d in local.make_up_workdays if d.year == year)},
        "days_off": [d for d in days if d.weekday() < 5 and not calendar.is_workday(d)],
        "make_up_workdays": [d for d in days if d.weekday() >= 5 and calendar.is_workday(d)],
        "working_days": sum(1 for d in days if calendar.is_workday(d)),
        "workday_hours": {"start": calendar.workday_start, "end": calendar.workday_end},
    }


@router.get("/campaigns/{campaign_id}/calendar/deadline", responses=ERRORS)
def deadline_calculator(campaign_id: UUID, request: Request,
                        start: ReadInstant = Query(..., alias="from", description="the instant counting starts from "
                                                   "(ISO 8601; without an offset, in the campaign's time zone)"),
                        working_days: int | None = Query(None, ge=1, le=2000,
                                                         description="a limit in working days (工作日)"),
                        working_hours: int | None = Query(None, ge=1, le=2000,
                                                          description="a limit in working hours (工作时)"),
                        grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The working-day calculator (工作日计算器): when a limit of N working days (or hours) counted from `from` runs out,
    on the campaign calendar in force then — the same rule a 交办 sets its deadline with."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(start, campaign.timezone, request.app.state.system.clock)
    if (working_days is None) == (working_hours is None):
        raise DomainError("one_limit_required", "须给出 working_days 或 working_hours 之一",
                          "give exactly one of working_days and working_hours")
    limit = (cp.TimeLimit(amount=working_days) if working_days is not None
             else cp.TimeLimit(amount=working_hours or 0, unit="working_hours"))
    calendar, _ = calendar_at(request, campaign_id, at)
    due = limit.due(calendar, at)
    return {"campaign_id": campaign_id, "from": at, "limit": limit.model_dump(), "deadline": due,
            "working_hours_between": calendar.working_hours_between(at, due)}
