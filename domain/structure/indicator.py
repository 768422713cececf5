"""Indicator (测评指标): the assessment tree (e.g. 9 major indicators, 121 sub-indicators; codes like 3.2.1).

A task (任务分解) derived from an indicator is its own aggregate in `domain.tasks`, with its lead and
co-units, cadence and lifecycle; `Task` here is what the tree and the responsibility rules read of
it (its campaign, indicator, name and due day), and `domain.tasks.Task` extends it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel

from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Frozen, NotFound, UnhandledEvent, evolver,
)
from domain.kernel.text import Name, single_line
from domain.structure.tree import require_kind


class IndicatorDefined(DomainEvent):
    """HQ defined an assessment indicator (测评指标), optionally under a parent indicator."""

    kind = "indicator"
    id_field = "indicator_id"
    indicator_id: UUID
    campaign_id: UUID
    code: str
    name: str
    parent_id: UUID | None = None


class Indicator(Frozen):
    indicator_id: UUID
    campaign_id: UUID
    code: str
    name: str
    parent_id: UUID | None
    retired: bool = False


class Task(Frozen):
    task_id: UUID
    campaign_id: UUID
    indicator_id: UUID | None
    name: str
    due_on: date | None
    retired: bool = False


@evolver("indicator")
def evolve_indicator(state: Indicator | None, event: DomainEvent) -> Indicator:
    require_kind("indicator", event)
    if isinstance(event, IndicatorDefined):
        return Indicator(**event.model_dump(exclude={"meta"}))
    raise UnhandledEvent("indicator", event)


class DefineIndicator(Command):
    """Define an indicator (定义测评指标)."""

    indicator_id: UUID
    campaign_id: UUID
    code: Annotated[str, single_line(32)]
    name: Name
    parent_id: UUID | None = None


class IndicatorRefs(BaseModel):
    """What defining an indicator needs to know: the campaign and the parent (if named)."""

    campaign_exists: bool
    parent: Indicator | None = None


def _require_campaign(exists: bool, campaign_id: UUID) -> None:
    if not exists:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(campaign_id))


def _require_indicator(indicator: Indicator | None, indicator_id: UUID, campaign_id: UUID) -> None:
    if indicator is None:
        raise NotFound("indicator_not_found", "测评指标不存在", "indicator not found", indicator_id=str(indicator_id))
    if indicator.campaign_id != campaign_id:
        raise DomainError("wrong_campaign", "测评指标不属于该创建活动", "indicator belongs to another campaign",
                          indicator_id=str(indicator_id))


def define_indicator(
    state: Indicator | None, cmd: DefineIndicator, ctx: CommandContext, refs: IndicatorRefs
) -> list[DomainEvent]:
    if state is not None:
        raise Conflict("indicator_exists", "测评指标已存在", "indicator already exists", indicator_id=str(cmd.indicator_id))
    _require_campaign(refs.campaign_exists, cmd.campaign_id)
    if cmd.parent_id is not None:
        _require_indicator(refs.parent, cmd.parent_id, cmd.campaign_id)
    return [IndicatorDefined(meta=ctx.meta, **cmd.model_dump(exclude={"command_id", "occurred_at"}))]
