"""Evaluation queries (考评查询): one place that turns a request for figures or a ranking into the read model's answer.

HTTP (`infra.http.routes_metrics_eval`, `grids/progress`, the bulletin draft) and the CLI (`dudao metrics`)
ask the same thing — a campaign, a grouping, a period (week, month, 双月, a custom range or the campaign
to date) and an instant `as_of` — and get the same body: the period and the instant J the figures were
judged at, the formulas, the groups' figures with numerators and denominators, the totals, or a ranking.
The campaign's time zone and calendar (national plus local days) come from its own aggregates.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any, cast
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.consequences.ranking import UnitRate
from domain.kernel.base import DomainError, NotFound
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from domain.structure.campaign import Campaign
from infra.commands.escalation import calendar_for
from infra.commands.service import StoreReader
from projections import metrics as mt

BY = ("unit", "grid", "sub_command", "indicator", "campaign")
PERIODS = ("week", "month", "two_month", "custom", "all")


def campaign_calendar(app: Any, campaign_id: UUID) -> tuple[Campaign, WorkCalendar]:
    """The campaign (404 if unknown) and its calendar, in its own time zone."""
    reader = StoreReader(app)
    campaign = reader.get("campaign", campaign_id, Campaign)
    if campaign is None:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(campaign_id))
    calendar = calendar_for(reader, campaign_id)
    try:
        tz = ZoneInfo(campaign.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = cast(Any, CHINA_TZ)
    return campaign, calendar if calendar.tz == tz else _in_zone(calendar, tz)


def _in_zone(calendar: WorkCalendar, tz: Any) -> WorkCalendar:
    return replace(calendar, tz=tz)


def aware(value: datetime | None, calendar: WorkCalendar, now: datetime) -> datetime:
    """`as_of` made aware (a naive instant is read in the campaign's zone); now when absent."""
    if value is None:
        return now
    return value if value.tzinfo is not None else value.replace(tzinfo=calendar.tz)


def period_of(kind: str, day: date | None, start: date | None, end: date | None, as_of: datetime,
              campaign: Campaign, calendar: WorkCalendar) -> mt.EvaluationPeriod:
    """The period asked for (422 `period_invalid` for an unknown kind or a custom range that ends before it starts)."""
    if kind not in PERIODS:
        raise DomainError("period_invalid", "考评周期须为 week、month、two_month、custom 或 all",
                          "period must be week, month, two_month, custom or all", period=kind)
    on = day or as_of.astimezone(calendar.tz).date()
    try:
        return mt.evaluation_period(cast(mt.PeriodKind, kind), on, start, end, campaign.launched_on)
    except ValueError as err:
        raise DomainError("period_invalid", "自定义周期须给出开始和结束日期，且结束不早于开始",
                          "a custom period needs start and end, end not before start") from err


def _by(by: str) -> mt.By:
    if by not in BY:
        raise DomainError("by_invalid", "分组须为 unit、grid、sub_command、indicator 或 campaign",
                          "by must be unit, grid, sub_command, indicator or campaign", by=by)
    return cast(mt.By, by)


def evaluation_body(system: Any, conn: Any, campaign_id: UUID, by: str, period: str, day: date | None,
                    start: date | None, end: date | None, as_of: datetime | None) -> dict[str, Any]:
    """The figures of every group (考评结果) with numerators, denominators, totals and formulas."""
    campaign, calendar = campaign_calendar(system.app, campaign_id)
    at = aware(as_of, calendar, system.clock())
    chosen = period_of(period, day, start, end, at, campaign, calendar)
    w = mt.window(campaign_id, chosen, at, calendar.tz)
    result = mt.evaluate(conn, w, _by(by), calendar)
    return {"campaign_id": campaign_id, "by": by, "period": period_body(chosen), "as_of": at,
            "judged_at": w.judged_at, "formulas": formulas(), **result}


def ranking_body(system: Any, conn: Any, campaign_id: UUID, by: str, metric: str, period: str, day: date | None,
                 start: date | None, end: date | None, as_of: datetime | None) -> dict[str, Any]:
    """The ranking of the period's groups by one figure, best first, with the documented tie-break."""
    if metric not in mt.FORMULAS:
        raise DomainError("metric_invalid", "排名指标不存在", "unknown metric", metric=metric, known=sorted(mt.FORMULAS))
    body = evaluation_body(system, conn, campaign_id, by, period, day, start, end, as_of)
    name_zh, formula_zh, formula_en = mt.FORMULAS[metric]
    return {"campaign_id": campaign_id, "by": by, "metric": metric, "metric_zh": name_zh, "formula_zh": formula_zh,
            "formula_en": formula_en, "lower_is_better": metric in mt.LOWER_IS_BETTER,
            "tie_break": "同值按名称（码位顺序）再按编号排列 / ties: name in code-point order, then id",
            "period": body["period"], "as_of": body["as_of"], "judged_at": body["judged_at"],
            "rows": mt.rank(body["rows"], metric)}


def bulletin_rankings(app: Any, conn: Any, campaign_id: UUID, first: date, last: date,
                      as_of: datetime) -> list[UnitRate]:
    """The 按期整改率 of each unit with problems due to close in the days [first, last], judged at min(end, as_of):
    the bulletin draft's 红黑榜 and 红黄旗 come from here, so they are the metrics' 按期结案率 (one definition)."""
    campaign, calendar = campaign_calendar(app, campaign_id)
    w = mt.window(campaign_id, mt.evaluation_period("custom", first, first, last), as_of, calendar.tz)
    return [UnitRate(unit_id=r["unit_id"], name=r["name"], due=r["due"], closed_on_time=r["closed_on_time"],
                     on_time_rate=r["closed_on_time"] / r["due"]) for r in mt.unit_on_time_rates(conn, w, calendar)]


def period_body(p: mt.EvaluationPeriod) -> dict[str, Any]:
    return {"kind": p.kind, "start": p.start, "end_exclusive": p.end, "label_zh": p.label_zh}


def formulas() -> dict[str, dict[str, str]]:
    return {k: {"name_zh": zh, "formula_zh": fz, "formula_en": fe,
                "better": "lower" if k in mt.LOWER_IS_BETTER else "higher"} for k, (zh, fz, fe) in mt.FORMULAS.items()}
