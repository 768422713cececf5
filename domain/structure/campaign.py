"""Campaign (创建活动): one campaign of one jurisdiction, with its period and time zone."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from domain.kernel.base import Command, CommandContext, Conflict, DomainEvent, Frozen, NotFound, UnhandledEvent, evolver
from domain.kernel.instants import Day, TimeZoneName
from domain.kernel.text import Line, Name


class CampaignStarted(DomainEvent):
    """HQ started a campaign (创建活动启动)."""

    kind = "campaign"
    id_field = "campaign_id"
    campaign_id: UUID
    name: str
    jurisdiction: str
    launched_on: date
    timezone: str = "Asia/Shanghai"
    goals: tuple[str, ...] = ()


class CampaignRenamed(DomainEvent):
    """The campaign's name was changed; the old name stays in history."""

    kind = "campaign"
    id_field = "campaign_id"
    campaign_id: UUID
    name: str


class Campaign(Frozen):
    campaign_id: UUID
    name: str
    jurisdiction: str
    launched_on: date
    timezone: str
    goals: tuple[str, ...]


@evolver("campaign")
def evolve(state: Campaign | None, event: DomainEvent) -> Campaign:
    if isinstance(event, CampaignStarted):
        return Campaign(**event.model_dump(exclude={"meta"}))
    assert state is not None
    if isinstance(event, CampaignRenamed):
        return state.model_copy(update={"name": event.name})
    raise UnhandledEvent("campaign", event)


class StartCampaign(Command):
    """Start a campaign (启动创建活动)."""

    campaign_id: UUID
    name: Name
    jurisdiction: Name
    launched_on: Day
    timezone: TimeZoneName = "Asia/Shanghai"
    goals: tuple[Line, ...] = Field(default=(), max_length=20)


class RenameCampaign(Command):
    campaign_id: UUID
    name: Name


def start_campaign(state: Campaign | None, cmd: StartCampaign, ctx: CommandContext) -> list[DomainEvent]:
    if state is not None:
        raise Conflict("campaign_exists", "创建活动已存在", "campaign already exists", campaign_id=str(cmd.campaign_id))
    return [CampaignStarted(meta=ctx.meta, **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def rename_campaign(state: Campaign | None, cmd: RenameCampaign, ctx: CommandContext) -> list[DomainEvent]:
    if state is None:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(cmd.campaign_id))
    if state.name == cmd.name:
        return []
    return [CampaignRenamed(meta=ctx.meta, campaign_id=cmd.campaign_id, name=cmd.name)]
