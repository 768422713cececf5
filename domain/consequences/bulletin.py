"""Bulletins (通报): drafted, edited, issued (then immutable) and acknowledged by the units named.

HQ drafts a bulletin for a period, pre-filled by `draft_contents` from the period's rankings by
按期整改率 (top 5 红榜, bottom 3 黑榜 by default) and the level-3 escalations (listed for 通报);
HQ edits and issues it; each named unit acknowledges. An issued bulletin is immutable: a
correction is a new bulletin referencing the old (`corrects`). The ranking rules
(`draft_contents`, `ranking_consequences`) live in `domain.consequences.ranking` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Frozen, NotFound, UnhandledEvent, evolver,
)
from domain.kernel.instants import Day
from domain.kernel.roles import HQ_ROLES, ensure_may_write, ensure_role
from domain.kernel.text import Document, Name
from domain.consequences.ranking import (
    DEFAULT_RANKING_POLICY, DraftContents, FlagAward, LiaisonListing, ListedStep, RankEntry, RankingPolicy, UnitRate,
    draft_contents, ranking_consequences,
)

__all__ = [
    "DEFAULT_RANKING_POLICY", "DraftContents", "FlagAward", "LiaisonListing", "ListedStep", "RankEntry", "RankingPolicy", "UnitRate",
    "draft_contents", "ranking_consequences",
]

KIND = "bulletin"
# --- events and state ---------------------------------------------------------------------------


class _BulletinEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind = KIND
    id_field = "bulletin_id"
    bulletin_id: UUID


class BulletinDrafted(_BulletinEvent):
    """HQ drafted a bulletin (通报草稿) for a period."""

    campaign_id: UUID
    period_start: date
    period_end: date
    title: str
    body_zh: str
    red_list: tuple[RankEntry, ...] = ()
    black_list: tuple[RankEntry, ...] = ()
    flags: tuple[FlagAward, ...] = ()
    listed_escalations: tuple[ListedStep, ...] = ()
    liaison_duties: tuple[LiaisonListing, ...] = ()  # 挂钩联系履职 section
    corrects: UUID | None = None


class BulletinEdited(_BulletinEvent):
    """HQ edited the draft; the fields given replace the draft's."""

    title: str | None = None
    body_zh: str | None = None
    red_list: tuple[RankEntry, ...] | None = None
    black_list: tuple[RankEntry, ...] | None = None
    flags: tuple[FlagAward, ...] | None = None
    listed_escalations: tuple[ListedStep, ...] | None = None
    liaison_duties: tuple[LiaisonListing, ...] | None = None


class BulletinIssued(_BulletinEvent):
    """HQ issued the bulletin (印发通报); from now on it is immutable."""


class BulletinAcknowledged(_BulletinEvent):
    """A unit named in the bulletin acknowledged it (签收)."""

    unit_id: UUID
    by_person_id: UUID | None


class Bulletin(Frozen):
    bulletin_id: UUID
    campaign_id: UUID
    period_start: date
    period_end: date
    title: str
    body_zh: str
    red_list: tuple[RankEntry, ...]
    black_list: tuple[RankEntry, ...]
    flags: tuple[FlagAward, ...]
    listed_escalations: tuple[ListedStep, ...]
    liaison_duties: tuple[LiaisonListing, ...] = ()
    corrects: UUID | None = None
    issued_at: datetime | None = None
    acknowledged_by: tuple[UUID, ...] = ()

    @property
    def named_unit_ids(self) -> frozenset[UUID]:
        """Every unit the bulletin names: on a list, flagged, or responsible for a listed escalation."""
        units = {e.unit_id for e in (*self.red_list, *self.black_list)} | {f.unit_id for f in self.flags}
        return frozenset(units | {s.unit_id for s in self.listed_escalations if s.unit_id is not None})


@evolver(KIND)
def evolve(state: Bulletin | None, event: DomainEvent) -> Bulletin:
    if isinstance(event, BulletinDrafted):
        return Bulletin(**event.model_dump(exclude={"meta"}))
    assert state is not None
    if isinstance(event, BulletinEdited):
        changes = {k: v for k, v in event.model_dump(exclude={"meta", "bulletin_id"}).items() if v is not None}
        return state.model_copy(update={k: getattr(event, k) for k in changes})
    if isinstance(event, BulletinIssued):
        return state.model_copy(update={"issued_at": event.meta.recorded_at})
    if isinstance(event, BulletinAcknowledged):
        return state.model_copy(update={"acknowledged_by": (*state.acknowledged_by, event.unit_id)})
    raise UnhandledEvent(KIND, event)


# --- commands and decisions ---------------------------------------------------------------------


class DraftBulletin(Command):
    """Draft a bulletin (起草通报) — usually pre-filled from `draft_contents`."""

    bulletin_id: UUID
    campaign_id: UUID
    period_start: Day
    period_end: Day
    title: Name
    body_zh: Document
    red_list: tuple[RankEntry, ...] = Field(default=(), max_length=50)
    black_list: tuple[RankEntry, ...] = Field(default=(), max_length=50)
    flags: tuple[FlagAward, ...] = Field(default=(), max_length=200)
    listed_escalations: tuple[ListedStep, ...] = Field(default=(), max_length=2000)
    liaison_duties: tuple[LiaisonListing, ...] = Field(default=(), max_length=500)
    corrects: UUID | None = None


class EditBulletin(Command):
    bulletin_id: UUID
    title: Name | None = None
    body_zh: Document | None = None
    red_list: tuple[RankEntry, ...] | None = Field(default=None, max_length=50)
    black_list: tuple[RankEntry, ...] | None = Field(default=None, max_length=50)
    flags: tuple[FlagAward, ...] | None = Field(default=None, max_length=200)
    listed_escalations: tuple[ListedStep, ...] | None = Field(default=None, max_length=2000)
    liaison_duties: tuple[LiaisonListing, ...] | None = Field(default=None, max_length=500)


class IssueBulletin(Command):
    bulletin_id: UUID


class AcknowledgeBulletin(Command):
    bulletin_id: UUID
    unit_id: UUID


@dataclass(frozen=True)
class BulletinRefs:
    """corrected: the bulletin a correction names; actor_unit_ids: the acting person's units."""

    corrected: Bulletin | None = None
    actor_unit_ids: frozenset[UUID] = field(default_factory=frozenset)


def draft_bulletin(state: Bulletin | None, cmd: DraftBulletin, ctx: CommandContext,
                   refs: BulletinRefs) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    if state is not None:
        raise Conflict("bulletin_exists", "通报已存在", "bulletin already exists", bulletin_id=str(cmd.bulletin_id))
    if cmd.period_end < cmd.period_start:
        raise DomainError("period_invalid", "通报期间的结束日期早于开始日期", "the period ends before it starts")
    if cmd.corrects is not None and (refs.corrected is None or refs.corrected.issued_at is None):
        raise NotFound("corrected_bulletin_not_found", "被更正的通报不存在或尚未印发",
                       "the corrected bulletin does not exist or was not issued", corrects=str(cmd.corrects))
    _lists_disjoint(cmd.red_list, cmd.black_list)
    return [BulletinDrafted(meta=ctx.meta, **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def edit_bulletin(state: Bulletin | None, cmd: EditBulletin, ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    b = _draft(state, cmd.bulletin_id)
    changes = {k: v for k, v in cmd.model_dump(exclude={"command_id", "occurred_at", "bulletin_id"}).items()
               if v is not None and getattr(cmd, k) != getattr(b, k)}
    if not changes:
        return []
    edited = BulletinEdited(meta=ctx.meta, bulletin_id=b.bulletin_id, **{k: getattr(cmd, k) for k in changes})
    after = evolve(b, edited)
    _lists_disjoint(after.red_list, after.black_list)
    return [edited]


def issue_bulletin(state: Bulletin | None, cmd: IssueBulletin, ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    if state is not None and state.issued_at is not None:
        return []
    b = _draft(state, cmd.bulletin_id)
    return [BulletinIssued(meta=ctx.meta, bulletin_id=b.bulletin_id)]


def acknowledge_bulletin(state: Bulletin | None, cmd: AcknowledgeBulletin, ctx: CommandContext,
                         refs: BulletinRefs) -> list[DomainEvent]:
    """签收: only units named in an issued bulletin, by a member who may write; a repeat is a no-op."""
    ensure_may_write(ctx.actor)
    b = _exists(state, cmd.bulletin_id)
    if b.issued_at is None:
        raise DomainError("bulletin_not_issued", "通报尚未印发", "the bulletin is not issued yet")
    if cmd.unit_id not in b.named_unit_ids:
        raise Forbidden("unit_not_named", "本单位未在通报中点名", "the unit is not named in the bulletin")
    if cmd.unit_id not in refs.actor_unit_ids:
        raise Forbidden("not_unit_member", "只能代表本单位签收", "one may acknowledge only for one's own unit")
    if cmd.unit_id in b.acknowledged_by:
        return []
    return [BulletinAcknowledged(meta=ctx.meta, bulletin_id=b.bulletin_id, unit_id=cmd.unit_id,
                                 by_person_id=ctx.actor.person_id)]


def _exists(state: Bulletin | None, bulletin_id: UUID) -> Bulletin:
    if state is None:
        raise NotFound("bulletin_not_found", "通报不存在", "bulletin not found", bulletin_id=str(bulletin_id))
    return state


def _draft(state: Bulletin | None, bulletin_id: UUID) -> Bulletin:
    b = _exists(state, bulletin_id)
    if b.issued_at is not None:
        raise DomainError("bulletin_issued", "通报已印发，不能修改；如需更正请另发更正通报",
                          "an issued bulletin is immutable; issue a correction instead", bulletin_id=str(bulletin_id))
    return b


def _lists_disjoint(red: Sequence[RankEntry], black: Sequence[RankEntry]) -> None:
    if both := sorted(str(u) for u in {e.unit_id for e in red} & {e.unit_id for e in black}):
        raise DomainError("unit_on_both_lists", "同一单位不能同时列入红榜和黑榜", "a unit cannot be on both lists",
                          unit_ids=both)
