"""Rankings (排名) and what they lead to: 红黑榜 and 红黄旗 in a bulletin draft, and the consequence ladder.

`draft_contents` pre-fills a bulletin (通报) from the period's rankings by 按期整改率 (top 5 红榜,
bottom 3 黑榜 by default), the level-3 escalations listed for 通报, and — in its own section (挂钩联系履职) —
the leaders whose unmet liaison duties the ladder listed, with how many periods they left unmet. `ranking_consequences`
turns the history of 黑榜 into proposed summons (约谈) and accountability (问责). The numbers are
policy (`RankingPolicy`), versioned on the campaign's escalation policy aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import Frozen
from domain.kernel.scalars import Count, Number
from domain.kernel.text import Label, Line, LongText, Name, Prose

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Consequence = Literal["summons_by_city_leader", "summons_by_organisation_department", "accountability_proposed"]
CONSEQUENCE_NAMES_ZH: dict[str, str] = {
    "summons_by_city_leader": "由分管市领导约谈", "summons_by_organisation_department": "由组织部约谈",
    "accountability_proposed": "提请问责",
}


class RankingPolicy(Frozen):
    """How rankings are listed and what they lead to (排名规则); versioned with the escalation ladder.

    `accountability_counting`: "total" counts every 黑榜 listing in the history given (累计三次);
    "in_a_row" only the current unbroken run.
    """

    effective_from: AwareDatetime = _EPOCH
    red_list_size: Count = Field(default=5, ge=0, le=50)
    black_list_size: Count = Field(default=3, ge=0, le=50)
    red_flag_min_rate: Number = Field(default=0.95, ge=0, le=1)
    yellow_flag_below_rate: Number = Field(default=0.6, ge=0, le=1)
    organisation_summons_after: Count = Field(default=2, ge=1)  # listings in a row
    accountability_after: Count = Field(default=3, ge=1)
    accountability_counting: Literal["total", "in_a_row"] = "total"


DEFAULT_RANKING_POLICY = RankingPolicy()


class UnitRate(Frozen):
    """A unit's 按期整改率 for the period: items due, and how many were closed on time."""

    unit_id: UUID
    name: str
    on_time_rate: float = Field(ge=0, le=1)
    due: int = Field(ge=0)
    closed_on_time: int = Field(ge=0)


class RankEntry(Frozen):
    rank: Count
    unit_id: UUID
    name: Label
    on_time_rate: Number


class FlagAward(Frozen):
    """红旗 (praise) or 黄旗 (warning) for a unit."""

    unit_id: UUID
    name: Label
    flag: Literal["red", "yellow"]


class ListedStep(Frozen):
    """A level-3 escalation listed in the bulletin (逾期问题通报), naming its responsible unit."""

    step_id: UUID
    unit_id: UUID | None = None
    unit_name: Label | None = None
    summary_zh: Prose | None = None


class LiaisonListing(Frozen):
    """A leader listed in the 挂钩联系履职 section: the unmet duties the ladder listed, and how many periods in all."""

    person_id: UUID
    name: Name | None = None
    rank: Name | None = None
    step_ids: tuple[UUID, ...] = Field(default=(), max_length=500)
    places_zh: tuple[Line, ...] = Field(default=(), max_length=50)
    unmet_periods: Count = Field(default=1, ge=1)
    summary_zh: LongText | None = None


class DraftContents(Frozen):
    title: str
    body_zh: str
    red_list: tuple[RankEntry, ...] = ()
    black_list: tuple[RankEntry, ...] = ()
    flags: tuple[FlagAward, ...] = ()
    listed_escalations: tuple[ListedStep, ...] = ()
    liaison_duties: tuple[LiaisonListing, ...] = ()


def tie_break(name: str | None, unit_id: UUID | str) -> tuple[str, str]:
    """The one tie-break of every ranking (排名同分): the unit's (or group's) name in code-point order, then its id.

    Equal figures are listed in this order whether the list runs best-first (红榜) or worst-first (黑榜),
    so a ranking is stable across queries, rebuilds and replays; the metrics' rankings use it too.
    """
    return (name or "", str(unit_id))


def best_first(rankings: Sequence[UnitRate]) -> list[UnitRate]:
    """Units with something due, by 按期整改率 from the highest (the ranking, 排名), ties by `tie_break`."""
    return sorted((r for r in rankings if r.due > 0), key=lambda r: (-r.on_time_rate, *tie_break(r.name, r.unit_id)))


def worst_first(rankings: Sequence[UnitRate]) -> list[UnitRate]:
    """Units with something due, by 按期整改率 from the lowest, ties by `tie_break` (the 黑榜's order)."""
    return sorted((r for r in rankings if r.due > 0), key=lambda r: (r.on_time_rate, *tie_break(r.name, r.unit_id)))


def draft_contents(rankings: Sequence[UnitRate], level3_steps: Sequence[ListedStep],
                   policy: RankingPolicy = DEFAULT_RANKING_POLICY, *, period_start: date | None = None,
                   period_end: date | None = None, liaison: Sequence[LiaisonListing] = ()) -> DraftContents:
    """A bulletin pre-filled from the rankings: ties broken by `tie_break`, units with nothing due left out.

    The 黑榜 is taken from the units not already on the 红榜, so with few units no one is on both.
    """
    best = best_first(rankings)
    red = best[:policy.red_list_size]
    red_ids = {r.unit_id for r in red}
    black = [r for r in worst_first(rankings) if r.unit_id not in red_ids][:policy.black_list_size]
    flags = tuple(FlagAward(unit_id=r.unit_id, name=r.name, flag=f) for r in best if (f := _flag(r, policy)))
    contents = DraftContents(
        title=_title(period_start, period_end), body_zh="",
        red_list=tuple(_entry(i, r) for i, r in enumerate(red, 1)),
        black_list=tuple(_entry(i, r) for i, r in enumerate(black, 1)),
        flags=flags, listed_escalations=tuple(level3_steps), liaison_duties=tuple(liaison))
    return contents.model_copy(update={"body_zh": render_body(contents)})


def _flag(rate: UnitRate, policy: RankingPolicy) -> Literal["red", "yellow"] | None:
    if rate.on_time_rate >= policy.red_flag_min_rate:
        return "red"
    return "yellow" if rate.on_time_rate < policy.yellow_flag_below_rate else None


def _entry(rank: int, rate: UnitRate) -> RankEntry:
    return RankEntry(rank=rank, unit_id=rate.unit_id, name=rate.name, on_time_rate=rate.on_time_rate)


def _title(start: date | None, end: date | None) -> str:
    if start is None or end is None:
        return "创建工作情况通报"
    return f"创建工作情况通报（{start.month}月{start.day}日至{end.month}月{end.day}日）"


def render_body(c: DraftContents) -> str:
    """The zh-CN body of a bulletin from its lists."""
    def names(entries: Sequence[RankEntry]) -> str:
        return "、".join(f"{e.name}（{e.on_time_rate:.0%}）" for e in entries) or "无"
    lines = [f"一、红榜（按期整改率前{len(c.red_list)}名）：{names(c.red_list)}。",
             f"二、黑榜（按期整改率后{len(c.black_list)}名）：{names(c.black_list)}。"]
    red_flags = "、".join(f.name for f in c.flags if f.flag == "red") or "无"
    yellow_flags = "、".join(f.name for f in c.flags if f.flag == "yellow") or "无"
    lines.append(f"三、授予红旗：{red_flags}；亮黄旗：{yellow_flags}。")
    overdue = "；".join(f"{s.unit_name or '责任单位'}：{s.summary_zh or '逾期未整改问题'}" for s in c.listed_escalations)
    lines.append(f"四、逾期未整改问题通报：{overdue or '无'}。")
    if c.liaison_duties:
        leaders = "；".join(x.summary_zh or f"{x.name or '挂钩领导'}未履行挂钩联系督查职责" for x in c.liaison_duties)
        lines.append(f"五、挂钩联系履职情况：{leaders}。")
    return "\n".join(lines)


def ranking_consequences(history_of_black_lists: Sequence[frozenset[UUID]],
                         policy: RankingPolicy = DEFAULT_RANKING_POLICY) -> dict[UUID, Consequence]:
    """What the latest 黑榜 leads to for each unit on it, given every 黑榜 so far (oldest first).

    Once → 约谈 by the responsible city leader; `organisation_summons_after` times in a row → 约谈 by
    the organisation department; `accountability_after` times (in total, or in a row — per policy)
    → 问责 proposed. A correction's list replaces the list it corrects before calling this.
    """
    if not history_of_black_lists:
        return {}
    out: dict[UUID, Consequence] = {}
    for unit in history_of_black_lists[-1]:
        run = _run_length(history_of_black_lists, unit)
        total = sum(unit in listed for listed in history_of_black_lists)
        counted = total if policy.accountability_counting == "total" else run
        if counted >= policy.accountability_after:
            out[unit] = "accountability_proposed"
        elif run >= policy.organisation_summons_after:
            out[unit] = "summons_by_organisation_department"
        else:
            out[unit] = "summons_by_city_leader"
    return out


def _run_length(history: Sequence[frozenset[UUID]], unit: UUID) -> int:
    run = 0
    for listed in reversed(history):
        if unit not in listed:
            break
        run += 1
    return run
