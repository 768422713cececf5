"""Notices (通知): rendered from templates, issued with an ack due time, acknowledged once, escalated if not."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import pytest

from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Meta, fold
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from domain.escalation.ladder import due_steps
from domain.escalation.notice import (
    TEMPLATES, AckRefs, AcknowledgeNotice, IssueNotice, NoticeAcknowledged, NoticeIssued, NoticeRefs, Party,
    acknowledge_notice, issue_notice, notice_work_item, render,
)
from domain.escalation.notice import Notice

pytestmark = pytest.mark.unit

CAL = WorkCalendar()
CAMPAIGN, UNIT, OTHER_UNIT, HEAD, PROBLEM = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
RECIPIENTS = (Party(party_kind="unit", party_id=UNIT, name="东门街道"), Party(party_kind="person", party_id=HEAD))


def at(day: str, hhmm: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


ISSUED = at("2021-12-14")


def ctx(role: str = "hq_office", person: UUID | None = None, now: datetime = ISSUED) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


def issue(notice_id: UUID | None = None, subject_kind: str = "problem", role: str = "hq_office") -> NoticeIssued:
    cmd = IssueNotice(command_id=str(uuid4()), notice_id=notice_id or uuid4(), campaign_id=CAMPAIGN,
                      notice_kind="assignment", subject_kind=subject_kind, subject_id=PROBLEM, recipients=RECIPIENTS,
                      fields={"subject": "垃圾乱倒", "place": "第三网格", "deadline": "2021年12月17日 10:00"})
    (event,) = issue_notice(None, cmd, ctx(role), NoticeRefs(calendar=CAL))
    assert isinstance(event, NoticeIssued)
    return event


def ack(events: list[DomainEvent], person: UUID | None, units: frozenset[UUID] = frozenset()) -> list[DomainEvent]:
    state = fold("notice", events, Notice)
    cmd = AcknowledgeNotice(command_id=str(uuid4()), notice_id=state.notice_id)
    return acknowledge_notice(state, cmd, ctx("unit_officer", person, at("2021-12-14", "15:00")), AckRefs(units))


def test_render_fills_a_template_with_named_fields_and_beijing_times() -> None:
    """render(kind, **fields): the zh-CN template with the fields in, datetimes as 2021年12月17日 10:00."""
    text = render("urge:problem", unit="东门街道", subject="垃圾乱倒", place="第三网格", deadline=at("2021-12-17"),
                  ack_due=at("2021-12-20"))
    assert text.startswith("【催办单】东门街道：第三网格的问题“垃圾乱倒”已超过整改期限（2021年12月17日 10:00）")


def test_render_names_the_missing_field_instead_of_printing_a_hole() -> None:
    """A template field not given is a clear 422, naming the field; an unknown kind too."""
    with pytest.raises(DomainError) as err:
        render("reminder", unit="东门街道")
    assert err.value.code == "template_field_missing" and err.value.details["field"] == "subject"
    with pytest.raises(DomainError):
        render("praise", unit="x")


def test_every_notice_kind_has_a_generic_template() -> None:
    """交办单, 提醒, 催办单 and 督办单 each have a template for any subject."""
    assert {"assignment", "reminder", "urge", "supervision_order"} <= TEMPLATES.keys()


def test_issuing_a_notice_renders_its_text_and_sets_ack_due_24_working_hours_later() -> None:
    """HQ issues a 交办单: recipients, SMS+WeChat channels, text from the template, 签收 due 3 working days on."""
    event = issue()
    assert event.channels == ("sms", "wechat") and event.recipients == RECIPIENTS
    assert event.text_zh.startswith("【交办单】东门街道：经督导发现，第三网格存在问题：垃圾乱倒。")
    assert event.ack_due_at == at("2021-12-17")


def test_a_notice_is_issued_once_and_only_by_hq_or_the_system() -> None:
    """The same notice id twice is 409; a unit officer may not issue notices (403)."""
    event = issue()
    cmd = IssueNotice(command_id="again", notice_id=event.notice_id, campaign_id=CAMPAIGN, notice_kind="reminder",
                      subject_kind="problem", subject_id=PROBLEM, recipients=RECIPIENTS, text_zh="请及时整改")
    with pytest.raises(Conflict):
        issue_notice(fold("notice", [event], Notice), cmd, ctx(), NoticeRefs(calendar=CAL))
    with pytest.raises(Forbidden):
        issue(role="unit_officer")


def test_a_member_of_the_recipient_unit_acknowledges_for_the_unit() -> None:
    """签收 by a member of the addressed unit: recorded with the unit, the notice's clock stops."""
    issued = issue()
    (event,) = ack([issued], uuid4(), frozenset({UNIT}))
    assert isinstance(event, NoticeAcknowledged) and event.by_unit_id == UNIT
    assert fold("notice", [issued, event], Notice).acknowledged_at == at("2021-12-14", "15:00")


def test_the_recipient_person_acknowledges_for_themself() -> None:
    """The addressed person signs as themself (no unit)."""
    (event,) = ack([issue()], HEAD)
    assert isinstance(event, NoticeAcknowledged) and event.by_person_id == HEAD and event.by_unit_id is None


def test_someone_not_addressed_may_not_acknowledge() -> None:
    """A member of another unit gets 403 not_notice_recipient."""
    with pytest.raises(Forbidden) as err:
        ack([issue()], uuid4(), frozenset({OTHER_UNIT}))
    assert err.value.code == "not_notice_recipient"


def test_acknowledging_twice_is_a_no_op() -> None:
    """The unit signed already: a second 签收 by any member writes nothing."""
    issued = issue()
    first = ack([issued], uuid4(), frozenset({UNIT}))
    assert ack([issued, *first], uuid4(), frozenset({UNIT})) == []


def test_an_unacknowledged_notice_escalates_and_an_acknowledged_one_does_not() -> None:
    """签收 overdue after 24 working hours: 催办 falls due at ack_due_at; once signed, nothing is due."""
    issued = issue()
    item = notice_work_item(fold("notice", [issued], Notice))
    steps = {s.step_name: s.due_at for s in due_steps(item, (), CAL, at("2021-12-17", "11:00"))}
    assert steps == {"reminder": at("2021-12-16"), "urge": at("2021-12-17")}
    signed = fold("notice", [issued, *ack([issued], HEAD)], Notice)
    assert due_steps(notice_work_item(signed), (), CAL, at("2022-01-31")) == []


def test_a_notice_about_a_notice_does_not_escalate() -> None:
    """Escalation never chains: a 催办单 about an unsigned notice is not itself escalated."""
    about_notice = fold("notice", [issue(subject_kind="notice")], Notice)
    assert notice_work_item(about_notice).closed
