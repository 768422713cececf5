"""Setting campaign policy (设定创建活动政策): the seven commands and the one decision that records a version.

A new version may not take effect before the previous version of its kind; one equal to the
version in force is a no-op. Limits and routes must name categories of the taxonomy in force
at `effective_from`, and routes must name existing units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from domain.kernel.base import Command, CommandContext, DomainError, DomainEvent, NotFound
from domain.kernel.instants import Day, Instant
from domain.kernel.scalars import Count, Flag
from domain.policy.campaign import (
    VERSIONS, AutoAssignmentSet, CalendarDaysSet, CampaignPolicy, CategoriesConfigured, CategoryRoute, CategoryRoutingSet,
    DeadlineLimit, DeadlinePolicySet, LateEntryWindowSet, PolicyEvent, PolicyRefs, RelapseWindowSet, TimeLimit, categories_at,
    policy_id_for,
)
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.kernel.taxonomy import Category, category_codes, duplicate_codes


class PolicyCommand(Command):
    abstract: ClassVar[bool] = True  # a base, not a command of its own
    campaign_id: UUID
    effective_from: Instant | None = None  # None: from now


class SetDeadlinePolicy(PolicyCommand):
    """Set the rectification time limits (设定整改时限)."""

    limits: tuple[DeadlineLimit, ...] = Field(default=(), max_length=500)
    default: TimeLimit


class SetRelapseWindow(PolicyCommand):
    """Set the relapse window in calendar days (设定反弹期)."""

    days: Count = Field(ge=1, le=3650)


class SetCategoryRouting(PolicyCommand):
    """Set which department handles which category (设定分类派遣)."""

    routes: tuple[CategoryRoute, ...] = Field(default=(), max_length=500)


class ConfigureCategories(PolicyCommand):
    """Configure the campaign's problem categories (配置问题分类)."""

    categories: tuple[Category, ...] = Field(min_length=1, max_length=200)


class SetCalendarDays(PolicyCommand):
    """Set local days off and make-up working days (设定本地工作日历)."""

    days_off: tuple[Day, ...] = Field(default=(), max_length=400)
    make_up_workdays: tuple[Day, ...] = Field(default=(), max_length=400)


class SetLateEntryWindow(PolicyCommand):
    """Set how many calendar days back HQ may record a 交办/签收/复查 with its real time (设定补录时限; default 30)."""

    days: Count = Field(ge=0, le=365)


class SetAutoAssignment(PolicyCommand):
    """Turn automatic assignment (自动交办) of unambiguously routed reports on or off (default off)."""

    enabled: Flag


_EVENT_FOR: dict[type[PolicyCommand], type[PolicyEvent]] = {
    SetDeadlinePolicy: DeadlinePolicySet,
    SetRelapseWindow: RelapseWindowSet,
    SetCategoryRouting: CategoryRoutingSet,
    ConfigureCategories: CategoriesConfigured,
    SetCalendarDays: CalendarDaysSet,
    SetLateEntryWindow: LateEntryWindowSet,
    SetAutoAssignment: AutoAssignmentSet,
}


def set_policy(state: CampaignPolicy | None, cmd: PolicyCommand, ctx: CommandContext,
               refs: PolicyRefs) -> list[DomainEvent]:
    """Record a new policy version; a version equal to the one in force is a no-op."""
    ensure_role(ctx.actor, HQ_ROLES)
    if not refs.campaign_exists:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(cmd.campaign_id))
    event_cls = _EVENT_FOR[type(cmd)]
    effective_from = cmd.effective_from or ctx.now
    payload = cmd.model_dump(exclude={"command_id", "occurred_at", "campaign_id", "effective_from"})
    history = getattr(state, VERSIONS[event_cls][0]) if state else ()
    if history:
        latest = history[-1]
        if effective_from < latest.effective_from:
            raise DomainError("policy_effective_from_regressed", "新版本的生效时间不得早于上一版本",
                              "a policy version may not take effect before the previous one",
                              previous=latest.effective_from.isoformat())
        if latest.model_dump(exclude={"effective_from"}) == payload:
            return []
    _check(cmd, categories_at(state, effective_from), refs)
    return [event_cls(meta=ctx.meta, policy_id=policy_id_for(cmd.campaign_id), campaign_id=cmd.campaign_id,
                      effective_from=effective_from, **payload)]


def _check(cmd: PolicyCommand, categories: tuple[Category, ...], refs: PolicyRefs) -> None:
    known = category_codes(categories)
    if isinstance(cmd, SetDeadlinePolicy):
        _known_categories({r.category for r in cmd.limits if r.category}, known)
        keys = [(r.category, r.severity) for r in cmd.limits]
        _unique(keys, "deadline_limit_repeated", "同一类别和等级的时限重复设置", "a category/severity limit is repeated")
    elif isinstance(cmd, SetCategoryRouting):
        _known_categories({r.category for r in cmd.routes}, known)
        _unique([r.category for r in cmd.routes], "category_routed_twice", "同一类别派遣给多个单位",
                "a category is routed to two units")
        if unknown := sorted(str(r.unit_id) for r in cmd.routes if r.unit_id not in refs.known_unit_ids):
            raise NotFound("unit_not_found", "单位不存在", "unit not found", unit_ids=unknown)
    elif isinstance(cmd, ConfigureCategories):
        if dupes := duplicate_codes(cmd.categories):
            raise DomainError("category_code_repeated", "问题类别编码重复", "category code repeated", codes=dupes)
    elif isinstance(cmd, SetCalendarDays):
        if both := sorted(set(cmd.days_off) & set(cmd.make_up_workdays)):
            raise DomainError("calendar_day_conflict", "同一天不能既放假又上班", "a date cannot be both off and working",
                              dates=[d.isoformat() for d in both])


def _known_categories(used: set[str], known: frozenset[str]) -> None:
    if unknown := sorted(used - known):
        raise DomainError("unknown_category", "问题类别不存在", "unknown problem category", categories=unknown)


def _unique(keys: Sequence[object], code: str, message_zh: str, message_en: str) -> None:
    if len(set(keys)) != len(keys):
        raise DomainError(code, message_zh, message_en)
