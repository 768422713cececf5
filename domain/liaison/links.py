"""Liaison links (挂钩联系): which leader is linked to which places and units, from when to when.

One `liaison` aggregate per leader (id `liaison_id_for(person_id)`) holds the leader's designation
(which 班子 — 市委, 人大, 政府, 政协 or other — their rank, and their liaison officer 联络员), every
link they were given with its validity `[valid_from, valid_to)`, and the exemptions (公出/病假 …)
granted to them. Keeping a leader's links together makes the duplicate rule exact: the same leader
cannot hold two links to the same place or unit whose intervals overlap (409). A place may have
several leaders; a leader several links.

HQ creates and ends links, always with a reason. A handover (交接) ends the outgoing leader's link
and starts the incoming leader's link to the same place at the same instant, in one write; each
side names the other link. An exemption is a range of whole local days that must overlap at least
one of the leader's links (an exemption from nothing is refused).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime

from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Frozen, Meta, NotFound, UnhandledEvent, derived_id,
    evolver,
)
from domain.kernel.roles import HQ_ROLES, ensure_role
from domain.liaison.periods import is_midnight
from domain.kernel.instants import Day, Instant
from domain.kernel.text import Name, Text

KIND = "liaison"

LeaderBody = Literal["party_committee", "people_congress", "government", "cppcc", "other"]
BODY_NAMES_ZH: dict[str, str] = {
    "party_committee": "市委", "people_congress": "市人大常委会", "government": "市政府", "cppcc": "市政协", "other": "其他",
}
TargetKind = Literal["place", "unit"]
ExemptionKind = Literal["business_trip", "sick_leave", "leave", "training", "other"]
EXEMPTION_NAMES_ZH: dict[str, str] = {
    "business_trip": "公出", "sick_leave": "病假", "leave": "休假", "training": "学习培训", "other": "其他",
}


def liaison_id_for(person_id: UUID) -> UUID:
    """The id of a leader's liaison record (one per person)."""
    return derived_id(KIND, person_id)


# --- events -------------------------------------------------------------------------------------


class _LiaisonEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind: ClassVar[str] = KIND
    id_field: ClassVar[str] = "liaison_id"
    liaison_id: UUID
    campaign_id: UUID
    person_id: UUID


class LeaderDesignated(_LiaisonEvent):
    """A person was designated a liaison leader (挂钩领导), or their 班子, rank or liaison officer changed."""

    body: LeaderBody
    rank: str
    liaison_officer_id: UUID | None = None
    reason: str | None = None


class LiaisonLinked(_LiaisonEvent):
    """HQ linked the leader to a place or unit from `valid_from` (挂钩联系), giving a reason."""

    link_id: UUID
    target_kind: TargetKind
    target_id: UUID
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    reason: str
    handover_from: UUID | None = None  # the outgoing leader's link this one takes over (交接)


class LiaisonLinkEnded(_LiaisonEvent):
    """HQ ended a link at `valid_to`, giving a reason (or it was handed over to another leader's link)."""

    link_id: UUID
    valid_to: AwareDatetime
    reason: str
    handover_to: UUID | None = None


class DutyExemptionGranted(_LiaisonEvent):
    """HQ exempted the leader from liaison duty on the local days [starts_on, ends_on] (公出/病假 …)."""

    exemption_id: UUID
    exemption_kind: ExemptionKind
    starts_on: date
    ends_on: date
    reason: str


class DutyExemptionRevoked(_LiaisonEvent):
    """HQ revoked an exemption, giving a reason; the periods it covered are judged without it."""

    exemption_id: UUID
    reason: str


# --- state --------------------------------------------------------------------------------------


class Link(Frozen):
    """One link of a leader to a place or unit, valid on [valid_from, valid_to)."""

    link_id: UUID
    target_kind: TargetKind
    target_id: UUID
    valid_from: datetime
    valid_to: datetime | None = None
    reason: str
    end_reason: str | None = None
    handover_from: UUID | None = None
    handover_to: UUID | None = None

    @property
    def ended(self) -> bool:
        return self.end_reason is not None


class Exemption(Frozen):
    exemption_id: UUID
    exemption_kind: ExemptionKind
    starts_on: date
    ends_on: date
    reason: str
    revoked: bool = False
    revoke_reason: str | None = None


class LeaderRecord(Frozen):
    """A leader's liaison record (挂钩联系档案): designation, links, exemptions."""

    liaison_id: UUID
    campaign_id: UUID
    person_id: UUID
    body: LeaderBody | None = None
    rank: str | None = None
    liaison_officer_id: UUID | None = None
    links: tuple[Link, ...] = ()
    exemptions: tuple[Exemption, ...] = ()

    @property
    def designated(self) -> bool:
        return self.body is not None

    def link(self, link_id: UUID) -> Link | None:
        return next((x for x in self.links if x.link_id == link_id), None)

    def exemption(self, exemption_id: UUID) -> Exemption | None:
        return next((x for x in self.exemptions if x.exemption_id == exemption_id), None)


def _replace_link(state: LeaderRecord, link_id: UUID, **changes: object) -> LeaderRecord:
    links = tuple(x.model_copy(update=changes) if x.link_id == link_id else x for x in state.links)
    return state.model_copy(update={"links": links})


@evolver(KIND)
def evolve(state: LeaderRecord | None, event: DomainEvent) -> LeaderRecord:
    if not isinstance(event, _LiaisonEvent):
        raise UnhandledEvent(KIND, event)
    if state is None:
        state = LeaderRecord(liaison_id=event.liaison_id, campaign_id=event.campaign_id, person_id=event.person_id)
    if isinstance(event, LeaderDesignated):
        return state.model_copy(update={"body": event.body, "rank": event.rank,
                                        "liaison_officer_id": event.liaison_officer_id})
    if isinstance(event, LiaisonLinked):
        link = Link(**event.model_dump(include=set(Link.model_fields)))
        return state.model_copy(update={"links": (*state.links, link)})
    if isinstance(event, LiaisonLinkEnded):
        return _replace_link(state, event.link_id, valid_to=event.valid_to, end_reason=event.reason,
                             handover_to=event.handover_to)
    if isinstance(event, DutyExemptionGranted):
        exemption = Exemption(**event.model_dump(include=set(Exemption.model_fields)))
        return state.model_copy(update={"exemptions": (*state.exemptions, exemption)})
    if isinstance(event, DutyExemptionRevoked):
        exemptions = tuple(x.model_copy(update={"revoked": True, "revoke_reason": event.reason})
                           if x.exemption_id == event.exemption_id else x for x in state.exemptions)
        return state.model_copy(update={"exemptions": exemptions})
    raise UnhandledEvent(KIND, event)


# --- rules (named predicates) -------------------------------------------------------------------


def intervals_overlap(a_from: datetime, a_to: datetime | None, b_from: datetime, b_to: datetime | None) -> bool:
    """Two half-open intervals [from, to) share an instant (None: open-ended)."""
    return (b_to is None or a_from < b_to) and (a_to is None or b_from < a_to)


def is_duplicate_link(state: LeaderRecord | None, target_kind: str, target_id: UUID, valid_from: datetime,
                      valid_to: datetime | None) -> Link | None:
    """The leader's link to the same target whose interval overlaps the new one, if any."""
    if state is None:
        return None
    return next((x for x in state.links if (x.target_kind, x.target_id) == (target_kind, target_id)
                 and intervals_overlap(x.valid_from, x.valid_to, valid_from, valid_to)), None)


def days_of_link(link: Link, tz: tzinfo) -> tuple[date, date | None]:
    """The local days a link touches: [first, last] (last None while open-ended)."""
    first = link.valid_from.astimezone(tz).date()
    if link.valid_to is None:
        return first, None
    end = link.valid_to.astimezone(tz)
    last = date.fromordinal(end.date().toordinal() - 1) if is_midnight(end) else end.date()
    return first, max(first, last)


def exemption_overlaps_a_link(state: LeaderRecord, starts_on: date, ends_on: date, tz: tzinfo) -> bool:
    """Some link of the leader is valid on at least one of the exempted days."""
    for link in state.links:
        first, last = days_of_link(link, tz)
        if first <= ends_on and (last is None or starts_on <= last):
            return True
    return False


# --- commands -----------------------------------------------------------------------------------


class DesignateLeader(Command):
    """Designate a person a liaison leader (确定挂钩领导): 班子, rank, liaison officer; again to change them."""

    person_id: UUID
    campaign_id: UUID
    body: LeaderBody
    rank: Name
    liaison_officer_id: UUID | None = None
    reason: Text | None = None


class LinkLiaison(Command):
    """Link a leader to a place or unit (建立挂钩联系) from `valid_from` (None: now), with a reason."""

    link_id: UUID
    person_id: UUID
    campaign_id: UUID
    target_kind: TargetKind = "place"
    target_id: UUID
    valid_from: Instant | None = None
    valid_to: Instant | None = None
    reason: Text


class EndLiaisonLink(Command):
    """End a leader's link at `valid_to` (None: now), with a reason (结束挂钩联系)."""

    person_id: UUID
    link_id: UUID
    valid_to: Instant | None = None
    reason: Text


class HandOverLiaison(Command):
    """Hand a link over to another leader (挂钩交接): the old link ends and the new one starts at `at`."""

    person_id: UUID
    link_id: UUID
    to_person_id: UUID
    new_link_id: UUID
    at: Instant | None = None
    reason: Text


class GrantDutyExemption(Command):
    """Exempt a leader from liaison duty on the local days [starts_on, ends_on] (公出/病假), with a reason."""

    person_id: UUID
    exemption_id: UUID
    exemption_kind: ExemptionKind
    starts_on: Day
    ends_on: Day
    reason: Text


class RevokeDutyExemption(Command):
    person_id: UUID
    exemption_id: UUID
    reason: Text


class Subject(Frozen):
    """What the rules need of a person, place or unit: its campaign and whether it is retired."""

    campaign_id: UUID
    retired: bool = False
    name: str | None = None


@dataclass(frozen=True)
class LinkRefs:
    """What link decisions read.

    person: the leader (None: no such person); officer: the named liaison officer; target: the place
    or unit; other: the incoming leader's record (handover); other_person: that person;
    link_id_taken: the new link id is already another leader's; tz: the campaign's time zone.
    """

    person: Subject | None = None
    officer: Subject | None = None
    target: Subject | None = None
    other: LeaderRecord | None = None
    other_person: Subject | None = None
    link_id_taken: bool = False
    tz: tzinfo | None = None


def _meta(ctx: CommandContext, campaign_id: UUID) -> Meta:
    return ctx.meta if ctx.meta.campaign_id == campaign_id else ctx.meta.model_copy(update={"campaign_id": campaign_id})


def _person(subject: Subject | None, person_id: UUID, campaign_id: UUID | None, what: str = "person") -> Subject:
    zh = {"person": "人员", "officer": "联络员", "to_person": "接任领导"}[what]
    if subject is None:
        raise NotFound(f"{what}_not_found", f"{zh}不存在", f"{what.replace('_', ' ')} not found", id=str(person_id))
    if campaign_id is not None and subject.campaign_id != campaign_id:
        raise DomainError("wrong_campaign", f"{zh}不属于该创建活动", f"the {what.replace('_', ' ')} belongs to another campaign",
                          id=str(person_id))
    if subject.retired:
        raise DomainError(f"{what}_retired", f"{zh}已撤销", f"the {what.replace('_', ' ')} is retired", id=str(person_id))
    return subject


def _leader(state: LeaderRecord | None, person_id: UUID) -> LeaderRecord:
    if state is None or not state.designated:
        raise DomainError("not_a_leader", "该人员不是挂钩领导，请先确定其挂钩领导身份",
                          "the person is not a designated liaison leader", person_id=str(person_id))
    return state


def _target(cmd: LinkLiaison, target: Subject | None) -> None:
    zh = {"place": "区域/点位", "unit": "单位"}[cmd.target_kind]
    if target is None:
        raise NotFound(f"{cmd.target_kind}_not_found", f"{zh}不存在", f"{cmd.target_kind} not found",
                       id=str(cmd.target_id))
    if target.campaign_id != cmd.campaign_id:
        raise DomainError("wrong_campaign", f"{zh}不属于该创建活动", f"the {cmd.target_kind} belongs to another campaign",
                          id=str(cmd.target_id))
    if target.retired:
        raise DomainError(f"{cmd.target_kind}_retired", f"{zh}已撤销", f"the {cmd.target_kind} is retired",
                          id=str(cmd.target_id))


def _ends_after_start(valid_from: datetime, valid_to: datetime | None) -> None:
    if valid_to is not None and valid_to <= valid_from:
        raise DomainError("link_ends_before_start", "挂钩联系的结束时间必须晚于开始时间",
                          "a link must end after it starts", valid_from=valid_from.isoformat(),
                          valid_to=valid_to.isoformat())


def _no_duplicate(state: LeaderRecord | None, target_kind: str, target_id: UUID, valid_from: datetime,
                  valid_to: datetime | None) -> None:
    if (found := is_duplicate_link(state, target_kind, target_id, valid_from, valid_to)) is not None:
        raise Conflict("link_overlaps", "该领导对同一对象已有时间重叠的挂钩联系",
                       "the leader already has an overlapping link to this place or unit",
                       link_id=str(found.link_id), valid_from=found.valid_from.isoformat(),
                       valid_to=found.valid_to.isoformat() if found.valid_to else None)


def _new_link_id(state: LeaderRecord | None, link_id: UUID, taken: bool) -> None:
    if taken or (state is not None and state.link(link_id) is not None):
        raise Conflict("link_exists", "挂钩联系编号已被使用", "the link id is already used", link_id=str(link_id))


# --- decisions ----------------------------------------------------------------------------------


def designate_leader(state: LeaderRecord | None, cmd: DesignateLeader, ctx: CommandContext,
                     refs: LinkRefs) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    _person(refs.person, cmd.person_id, cmd.campaign_id)
    if cmd.liaison_officer_id is not None:
        if cmd.liaison_officer_id == cmd.person_id:
            raise DomainError("officer_is_leader", "联络员不能是领导本人", "the liaison officer cannot be the leader")
        _person(refs.officer, cmd.liaison_officer_id, cmd.campaign_id, "officer")
    if state is not None and (state.body, state.rank, state.liaison_officer_id) == (
            cmd.body, cmd.rank, cmd.liaison_officer_id):
        return []
    return [LeaderDesignated(meta=_meta(ctx, cmd.campaign_id), liaison_id=liaison_id_for(cmd.person_id),
                             campaign_id=cmd.campaign_id, person_id=cmd.person_id, body=cmd.body, rank=cmd.rank,
                             liaison_officer_id=cmd.liaison_officer_id, reason=cmd.reason)]


def link_liaison(state: LeaderRecord | None, cmd: LinkLiaison, ctx: CommandContext,
                 refs: LinkRefs) -> list[DomainEvent]:
    """Link a leader: the person exists and is a leader, the target exists in the campaign, no overlap."""
    ensure_role(ctx.actor, HQ_ROLES)
    _person(refs.person, cmd.person_id, cmd.campaign_id)
    leader = _leader(state, cmd.person_id)
    if leader.campaign_id != cmd.campaign_id:
        raise DomainError("wrong_campaign", "挂钩领导不属于该创建活动", "the leader belongs to another campaign")
    _target(cmd, refs.target)
    valid_from = cmd.valid_from or ctx.now
    _ends_after_start(valid_from, cmd.valid_to)
    _new_link_id(leader, cmd.link_id, refs.link_id_taken)
    _no_duplicate(leader, cmd.target_kind, cmd.target_id, valid_from, cmd.valid_to)
    return [LiaisonLinked(meta=_meta(ctx, cmd.campaign_id), liaison_id=leader.liaison_id, campaign_id=cmd.campaign_id,
                          person_id=cmd.person_id, link_id=cmd.link_id, target_kind=cmd.target_kind,
                          target_id=cmd.target_id, valid_from=valid_from, valid_to=cmd.valid_to, reason=cmd.reason)]


def _open_link(state: LeaderRecord | None, person_id: UUID, link_id: UUID) -> tuple[LeaderRecord, Link]:
    link = state.link(link_id) if state is not None else None
    if state is None or link is None:
        raise NotFound("link_not_found", "挂钩联系不存在", "link not found", person_id=str(person_id),
                       link_id=str(link_id))
    if link.ended:
        raise DomainError("link_already_ended", "该挂钩联系已结束", "the link has already ended", link_id=str(link_id),
                          valid_to=link.valid_to.isoformat() if link.valid_to else None)
    return state, link


def _end(link: Link, at: datetime) -> None:
    if at <= link.valid_from:
        raise DomainError("link_ends_before_start", "挂钩联系的结束时间必须晚于开始时间", "a link must end after it starts",
                          valid_from=link.valid_from.isoformat(), valid_to=at.isoformat())
    if link.valid_to is not None and at > link.valid_to:
        raise DomainError("link_end_after_planned_end", "结束时间晚于该挂钩联系原定的结束时间",
                          "the end is after the link's planned end", valid_to=link.valid_to.isoformat())


def end_liaison_link(state: LeaderRecord | None, cmd: EndLiaisonLink, ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    leader, link = _open_link(state, cmd.person_id, cmd.link_id)
    at = cmd.valid_to or ctx.now
    _end(link, at)
    return [LiaisonLinkEnded(meta=_meta(ctx, leader.campaign_id), liaison_id=leader.liaison_id,
                             campaign_id=leader.campaign_id, person_id=leader.person_id, link_id=link.link_id,
                             valid_to=at, reason=cmd.reason)]


def hand_over_liaison(state: LeaderRecord | None, cmd: HandOverLiaison, ctx: CommandContext,
                      refs: LinkRefs) -> list[DomainEvent]:
    """交接: end the outgoing link and start the incoming leader's at the same instant, one write."""
    ensure_role(ctx.actor, HQ_ROLES)
    leader, link = _open_link(state, cmd.person_id, cmd.link_id)
    if cmd.to_person_id == cmd.person_id:
        raise DomainError("handover_to_self", "不能交接给本人", "a link cannot be handed over to the same leader")
    _person(refs.other_person, cmd.to_person_id, leader.campaign_id, "to_person")
    incoming = _leader(refs.other, cmd.to_person_id)
    at = cmd.at or ctx.now
    _end(link, at)
    _new_link_id(incoming, cmd.new_link_id, refs.link_id_taken or cmd.new_link_id == cmd.link_id)
    _no_duplicate(incoming, link.target_kind, link.target_id, at, link.valid_to)
    meta = _meta(ctx, leader.campaign_id)
    return [
        LiaisonLinkEnded(meta=meta, liaison_id=leader.liaison_id, campaign_id=leader.campaign_id,
                         person_id=leader.person_id, link_id=link.link_id, valid_to=at, reason=cmd.reason,
                         handover_to=cmd.new_link_id),
        LiaisonLinked(meta=meta, liaison_id=incoming.liaison_id, campaign_id=leader.campaign_id,
                      person_id=cmd.to_person_id, link_id=cmd.new_link_id, target_kind=link.target_kind,
                      target_id=link.target_id, valid_from=at, valid_to=link.valid_to, reason=cmd.reason,
                      handover_from=link.link_id),
    ]


def grant_duty_exemption(state: LeaderRecord | None, cmd: GrantDutyExemption, ctx: CommandContext,
                         refs: LinkRefs) -> list[DomainEvent]:
    """An exemption must end on or after its start and overlap at least one of the leader's links."""
    ensure_role(ctx.actor, HQ_ROLES)
    leader = _leader(state, cmd.person_id)
    if cmd.ends_on < cmd.starts_on:
        raise DomainError("exemption_ends_before_start", "免除履职的结束日期早于开始日期",
                          "the exemption ends before it starts", starts_on=cmd.starts_on.isoformat(),
                          ends_on=cmd.ends_on.isoformat())
    if (found := leader.exemption(cmd.exemption_id)) is not None:
        raise Conflict("exemption_exists", "免除履职记录编号已被使用", "the exemption id is already used",
                       exemption_id=str(found.exemption_id))
    assert refs.tz is not None, "the gather names the campaign's time zone"
    if not exemption_overlaps_a_link(leader, cmd.starts_on, cmd.ends_on, refs.tz):
        raise DomainError("exemption_overlaps_nothing", "免除履职的日期与该领导的任何挂钩联系都不重叠",
                          "the exemption overlaps none of the leader's links", starts_on=cmd.starts_on.isoformat(),
                          ends_on=cmd.ends_on.isoformat())
    return [DutyExemptionGranted(meta=_meta(ctx, leader.campaign_id), liaison_id=leader.liaison_id,
                                 campaign_id=leader.campaign_id, person_id=leader.person_id,
                                 exemption_id=cmd.exemption_id, exemption_kind=cmd.exemption_kind,
                                 starts_on=cmd.starts_on, ends_on=cmd.ends_on, reason=cmd.reason)]


def revoke_duty_exemption(state: LeaderRecord | None, cmd: RevokeDutyExemption,
                          ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, HQ_ROLES)
    found = state.exemption(cmd.exemption_id) if state is not None else None
    if state is None or found is None:
        raise NotFound("exemption_not_found", "免除履职记录不存在", "exemption not found",
                       exemption_id=str(cmd.exemption_id))
    if found.revoked:
        return []
    return [DutyExemptionRevoked(meta=_meta(ctx, state.campaign_id), liaison_id=state.liaison_id,
                                 campaign_id=state.campaign_id, person_id=state.person_id,
                                 exemption_id=cmd.exemption_id, reason=cmd.reason)]


def links_in_force(links: Iterable[Link], at: datetime) -> list[Link]:
    """The links valid at instant `at`."""
    return [x for x in links if x.valid_from <= at and (x.valid_to is None or at < x.valid_to)]
