"""Notices (通知): 交办单, 提醒, 催办单 and 督办单, each tracked to acknowledgement (签收).

A notice is addressed to units and/or persons, carries the zh-CN text rendered from a template
(templates are data) and the channels downstream gateways deliver it on (SMS, WeChat), and is
due to be acknowledged within a number of working hours (default 24). The first acknowledgement
by any addressee stops the notice's clock; each addressee's receipt is recorded once, so
acknowledging twice is a no-op. An unacknowledged notice escalates like any work item — unless
its subject is itself a notice, so escalation never chains notices about notices.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import (
    Command, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Frozen, Meta, NotFound, UnhandledEvent,
    derived_id, evolver,
)
from domain.kernel.calendar import WorkCalendar
from domain.kernel.text import Label, LongText, Note, single_line
from domain.kernel.roles import NOTICE_ISSUER_ROLES, ensure_may_write, ensure_role
from domain.kernel.timefmt import format_zh
from domain.escalation.work_item import ITEM_KIND_PATTERN, ItemKindCode, WorkItem

KIND = "notice"
NoticeKind = Literal["assignment", "reminder", "urge", "supervision_order"]
PartyKind = Literal["unit", "person"]
DEFAULT_CHANNELS: tuple[str, ...] = ("sms", "wechat")
DEFAULT_ACK_WORKING_HOURS = 24.0

NOTICE_NAMES_ZH: dict[str, str] = {
    "assignment": "交办单", "reminder": "提醒", "urge": "催办单", "supervision_order": "督办单",
}

# Templates as data: "<notice kind>" (any subject) or "<notice kind>:<subject kind>" → zh-CN text with
# named fields. Fields: unit, subject, place, deadline, ack_due.
TEMPLATES: dict[str, str] = {
    "assignment": "【交办单】{unit}：现将“{subject}”交由你单位办理，请于{deadline}前办结并反馈，并于{ack_due}前签收。",
    "reminder": "【提醒】{unit}：“{subject}”的办理期限为{deadline}，即将到期，请抓紧办理并及时反馈。",
    "urge": "【催办单】{unit}：“{subject}”已超过办理期限（{deadline}），请立即办理，并于{ack_due}前签收本催办单。",
    "supervision_order": "【督办单】{unit}：“{subject}”逾期未办结（期限{deadline}），现予督办。请单位主要负责人亲自督促办理，"
                         "并于{ack_due}前签收、反馈办理情况。",
    "assignment:problem": "【交办单】{unit}：经督导发现，{place}存在问题：{subject}。请于{deadline}前整改到位并反馈整改情况，"
                          "并于{ack_due}前签收本交办单。",
    "reminder:problem": "【提醒】{unit}：{place}的问题“{subject}”整改期限为{deadline}，即将到期，请抓紧整改并及时反馈。",
    "urge:problem": "【催办单】{unit}：{place}的问题“{subject}”已超过整改期限（{deadline}），请立即整改，"
                    "并于{ack_due}前签收本催办单。",
    "supervision_order:problem": "【督办单】{unit}：{place}的问题“{subject}”逾期未整改（整改期限{deadline}），现予督办。"
                                 "请单位主要负责人亲自督促整改，并于{ack_due}前签收、反馈整改情况。",
    "reminder:notice": "【提醒】{unit}：{subject}尚未签收，签收时限为{deadline}，请及时签收。",
    "urge:notice": "【催办单】{unit}：{subject}已超过签收时限（{deadline}）仍未签收，请立即签收办理，"
                   "并于{ack_due}前签收本催办单。",
    "supervision_order:notice": "【督办单】{unit}：{subject}逾期未签收（签收时限{deadline}），现予督办。"
                                "请单位主要负责人督促签收办理，并于{ack_due}前签收本督办单。",
}


def template_key(notice_kind: str, subject_kind: str) -> str:
    """The most specific template for a notice about this kind of subject."""
    specific = f"{notice_kind}:{subject_kind}"
    return specific if specific in TEMPLATES else notice_kind


def render(kind: str, **fields: object) -> str:
    """The text of template `kind` with its named fields filled in (datetimes in Beijing time)."""
    template = TEMPLATES.get(kind)
    if template is None:
        raise DomainError("unknown_notice_kind", "通知类型不存在", "unknown notice kind", notice_kind=kind)
    values = {k: format_zh(v) if isinstance(v, datetime) else str(v) for k, v in fields.items()}
    try:
        return template.format_map(values)
    except KeyError as missing:
        raise DomainError("template_field_missing", "通知模板缺少必填内容", "a template field is missing",
                          notice_kind=kind, field=str(missing.args[0])) from None


class Party(Frozen):
    """A unit or a person (单位/个人) named by a notice, a bulletin, a summons or a case."""

    party_kind: PartyKind
    party_id: UUID
    name: Label | None = None


Recipient = Party  # a notice's addressee (收件方)


# --- events and state ---------------------------------------------------------------------------


class NoticeIssued(DomainEvent):
    """A notice was issued (发出通知) to its recipients, due to be acknowledged by `ack_due_at`."""

    kind = KIND
    id_field = "notice_id"
    notice_id: UUID
    campaign_id: UUID
    notice_kind: NoticeKind
    subject_kind: str = Field(pattern=ITEM_KIND_PATTERN)
    subject_id: UUID
    recipients: tuple[Recipient, ...] = Field(min_length=1)
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    text_zh: str
    ack_due_at: AwareDatetime
    escalation_step_id: UUID | None = None


class NoticeAcknowledged(DomainEvent):
    """An addressee acknowledged the notice (签收): a member of a recipient unit, or the recipient person."""

    kind = KIND
    id_field = "notice_id"
    notice_id: UUID
    by_person_id: UUID | None
    by_unit_id: UUID | None = None  # the recipient unit acknowledged for; None: as the recipient person


class Ack(Frozen):
    by_person_id: UUID | None
    by_unit_id: UUID | None
    at: datetime


class Notice(Frozen):
    notice_id: UUID
    campaign_id: UUID
    notice_kind: NoticeKind
    subject_kind: str
    subject_id: UUID
    recipients: tuple[Recipient, ...]
    channels: tuple[str, ...]
    text_zh: str
    issued_at: datetime
    ack_due_at: datetime
    escalation_step_id: UUID | None = None
    acks: tuple[Ack, ...] = ()

    @property
    def acknowledged_at(self) -> datetime | None:
        return self.acks[0].at if self.acks else None


@evolver(KIND)
def evolve(state: Notice | None, event: DomainEvent) -> Notice:
    if isinstance(event, NoticeIssued):
        return Notice(issued_at=event.meta.recorded_at, **event.model_dump(exclude={"meta"}))
    assert state is not None
    if isinstance(event, NoticeAcknowledged):
        ack = Ack(by_person_id=event.by_person_id, by_unit_id=event.by_unit_id, at=event.meta.recorded_at)
        return state.model_copy(update={"acks": (*state.acks, ack)})
    raise UnhandledEvent(KIND, event)


# --- rules --------------------------------------------------------------------------------------


def escalates_when_unacknowledged(notice: Notice) -> bool:
    """A notice escalates on missed 签收 unless it is about a notice (no chains of notices about notices)."""
    return notice.subject_kind != KIND


def has_acknowledged(notice: Notice, recipient: Recipient) -> bool:
    """This addressee's receipt is already on record."""
    if recipient.party_kind == "unit":
        return any(a.by_unit_id == recipient.party_id for a in notice.acks)
    return any(a.by_unit_id is None and a.by_person_id == recipient.party_id for a in notice.acks)


def recipients_for_actor(notice: Notice, person_id: UUID | None, unit_ids: Collection[UUID]) -> list[Recipient]:
    """The addressees the actor may acknowledge for: themself, or a unit they belong to."""
    return [r for r in notice.recipients
            if (r.party_kind == "person" and person_id is not None and r.party_id == person_id)
            or (r.party_kind == "unit" and r.party_id in unit_ids)]


def notice_work_item(notice: Notice, steps_done: frozenset[str] = frozenset(), subject_open: bool = True) -> WorkItem:
    """A notice awaiting 签收 as a work item: due at `ack_due_at`, closed once acknowledged."""
    unit = next((r.party_id for r in notice.recipients if r.party_kind == "unit"), None)
    closed = notice.acknowledged_at is not None or not subject_open or not escalates_when_unacknowledged(notice)
    return WorkItem(item_kind=KIND, item_id=notice.notice_id, campaign_id=notice.campaign_id,
                    responsible_unit_id=unit, deadline=notice.ack_due_at, closed=closed, steps_done=steps_done)


# --- commands and decisions ---------------------------------------------------------------------


def notice_id_for_step(step_id: UUID) -> UUID:
    """The notice an escalation step issues has an id derived from the step's."""
    return derived_id(KIND, step_id)


def build_notice(meta: Meta, calendar: WorkCalendar, *, notice_id: UUID, campaign_id: UUID, notice_kind: NoticeKind,
                 subject_kind: str, subject_id: UUID, recipients: tuple[Recipient, ...], fields: Mapping[str, object],
                 ack_working_hours: float = DEFAULT_ACK_WORKING_HOURS, channels: tuple[str, ...] = DEFAULT_CHANNELS,
                 text_zh: str | None = None, escalation_step_id: UUID | None = None,
                 issued_at: datetime | None = None) -> NoticeIssued:
    """A NoticeIssued with its ack due time counted in working hours from now (or from `issued_at`, a 交办单 handed
    over on paper and entered late: 补录) and its text rendered."""
    ack_due = calendar.add_working_hours(issued_at or meta.recorded_at, ack_working_hours)
    first_unit = next((r.name for r in recipients if r.name), "")
    values = {"unit": first_unit, "ack_due": ack_due, **fields}
    text = text_zh or render(template_key(notice_kind, subject_kind), **values)
    return NoticeIssued(meta=meta, notice_id=notice_id, campaign_id=campaign_id, notice_kind=notice_kind,
                        subject_kind=subject_kind, subject_id=subject_id, recipients=recipients, channels=channels,
                        text_zh=text, ack_due_at=ack_due, escalation_step_id=escalation_step_id)


class IssueNotice(Command):
    """Issue a notice (发出通知) about a problem, task or other work item."""

    notice_id: UUID
    campaign_id: UUID
    notice_kind: NoticeKind
    subject_kind: ItemKindCode
    subject_id: UUID
    recipients: tuple[Recipient, ...] = Field(min_length=1, max_length=50)
    channels: tuple[Annotated[str, single_line(32)], ...] = Field(default=DEFAULT_CHANNELS, max_length=10)
    fields: dict[Annotated[str, single_line(40)], Note] = Field(default_factory=dict, max_length=20)
    text_zh: LongText | None = None


class AcknowledgeNotice(Command):
    """Acknowledge receipt of a notice (签收)."""

    notice_id: UUID


@dataclass(frozen=True)
class NoticeRefs:
    """What issuing needs: the campaign calendar and the acknowledgement time limit in force."""

    calendar: WorkCalendar
    ack_working_hours: float = DEFAULT_ACK_WORKING_HOURS


@dataclass(frozen=True)
class AckRefs:
    """What acknowledging needs: the units the acting person belongs to."""

    actor_unit_ids: frozenset[UUID] = field(default_factory=frozenset)


def issue_notice(state: Notice | None, cmd: IssueNotice, ctx: CommandContext, refs: NoticeRefs) -> list[DomainEvent]:
    ensure_role(ctx.actor, NOTICE_ISSUER_ROLES)
    if state is not None:
        raise Conflict("notice_exists", "通知已发出", "notice already issued", notice_id=str(cmd.notice_id))
    return [build_notice(ctx.meta, refs.calendar, notice_id=cmd.notice_id, campaign_id=cmd.campaign_id,
                         notice_kind=cmd.notice_kind, subject_kind=cmd.subject_kind, subject_id=cmd.subject_id,
                         recipients=cmd.recipients, fields=cmd.fields, ack_working_hours=refs.ack_working_hours,
                         channels=cmd.channels, text_zh=cmd.text_zh)]


def acknowledge_notice(state: Notice | None, cmd: AcknowledgeNotice, ctx: CommandContext,
                       refs: AckRefs) -> list[DomainEvent]:
    """签收: the first matching addressee not yet on record; a repeat is a no-op; a stranger or a reader gets 403.

    A notice is signed when the signing is recorded: an `occurred_at` is refused (422), never silently ignored (a
    paper 签收 of a 交办单 is entered late by HQ with `acknowledge_problem`, 补录)."""
    ensure_may_write(ctx.actor)
    if cmd.occurred_at is not None:
        raise DomainError("occurred_at_not_accepted", "签收时间以录入时间为准，不能指定 occurred_at（纸质签收由总指挥部补录）",
                          "a notice is signed when the signing is recorded: occurred_at is not accepted (HQ enters a "
                          "paper 签收 late with acknowledge_problem)")
    if state is None:
        raise NotFound("notice_not_found", "通知不存在", "notice not found", notice_id=str(cmd.notice_id))
    mine = recipients_for_actor(state, ctx.actor.person_id, refs.actor_unit_ids)
    if not mine:
        raise Forbidden("not_notice_recipient", "只有通知的接收单位或接收人可以签收", "only a recipient may acknowledge",
                        notice_id=str(cmd.notice_id))
    pending = [r for r in mine if not has_acknowledged(state, r)]
    if not pending:
        return []
    r = pending[0]
    return [NoticeAcknowledged(meta=ctx.meta, notice_id=state.notice_id, by_person_id=ctx.actor.person_id,
                               by_unit_id=r.party_id if r.party_kind == "unit" else None)]
