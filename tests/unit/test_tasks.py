"""Task (任务分解) lifecycle rules: given events, when a command, then events or an error."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st

from domain import tasks as tk
from domain.escalation.notice import Notice, NoticeAcknowledged, NoticeIssued
from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Meta, NotFound, fold
from domain.kernel.calendar import CHINA_TZ
from domain.problem.events import EvidenceRef
from domain.structure.indicator import Indicator
from domain.structure.responsibility import ResponsibilityAssigned
from infra.calendars import official_calendar

pytestmark = pytest.mark.unit

CAL = official_calendar()
CAMPAIGN, TASK, IND = uuid4(), uuid4(), uuid4()
LEAD, CO, OTHER = uuid4(), uuid4(), uuid4()
OFFICER = uuid4()
UNITS = {u: tk.UnitRef(unit_id=u, campaign_id=CAMPAIGN, name=n) for u, n in ((LEAD, "市城管局"), (CO, "市住建局"),
                                                                              (OTHER, "市公安局"))}
PHOTO = EvidenceRef(sha256="a" * 64, media_type="image/jpeg", size=1024)
MONDAY = datetime(2021, 12, 20, 10, 0, tzinfo=CHINA_TZ)  # a Monday; Friday 12-24 is the first weekly due day


def at(day: str, hhmm: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


def ctx(now: datetime = MONDAY, role: str = "hq_office", person: UUID | None = None) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


def unit_ctx(now: datetime) -> CommandContext:
    return ctx(now, role="unit_officer", person=OFFICER)


def refs(**kw: Any) -> tk.TaskRefs:
    return tk.TaskRefs(**{"units": UNITS, "calendar": CAL, "actor_unit_ids": frozenset({LEAD}),
                          "known_evidence": {PHOTO.sha256: PHOTO}, **kw})


def define(**kw: Any) -> tk.DefineTask:
    fields: dict[str, Any] = {"command_id": "define", "task_id": TASK, "campaign_id": CAMPAIGN, "indicator_id": IND,
                              "name": "背街小巷环境整治", "due_on": date(2022, 1, 28), "lead_unit_id": LEAD,
                              "co_unit_ids": (CO,), "measures": "每周巡查", "cadence": tk.weekly(5), "assign": True}
    return tk.DefineTask(**{**fields, **kw})


INDICATOR = Indicator(indicator_id=IND, campaign_id=CAMPAIGN, code="3.2.1", name="背街小巷", parent_id=None)


def assigned(**kw: Any) -> list[DomainEvent]:
    return tk.define_task(None, define(**kw), ctx(), refs(indicator=INDICATOR))


def task_of(events: list[DomainEvent]) -> tk.Task:
    return fold("task", [e for e in events if e.kind == "task"], tk.Task)


def then(events: list[DomainEvent], decide: Any, cmd: Any, c: CommandContext, r: tk.TaskRefs | None = None
         ) -> list[DomainEvent]:
    return events + decide(task_of(events), cmd, c, r or refs())


def report(events: list[DomainEvent], now: datetime, due_on: date | None = None, percent: int = 20
           ) -> list[DomainEvent]:
    cmd = tk.ReportTaskProgress(command_id=str(uuid4()), task_id=TASK, due_on=due_on, text="已清理", percent=percent)
    return then(events, tk.report_task_progress, cmd, unit_ctx(now))


# --- 分解 and 交办 ------------------------------------------------------------------------------------------


def test_defining_with_assign_records_the_task_its_responsibilities_and_hands_it_over() -> None:
    """TaskDefined, lead and co responsibility entries, TaskAssigned due the working morning after its day, a 交办单."""
    events = assigned()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TaskDefined", "ResponsibilityAssigned", "ResponsibilityAssigned", "TaskAssigned", "NoticeIssued"]
    roles = {(e.party_id, e.role) for e in events if isinstance(e, ResponsibilityAssigned)}
    assert roles == {(LEAD, "lead"), (CO, "co")}
    task = task_of(events)
    assert task.state == tk.TaskState.ASSIGNED and task.deadline == at("2022-01-29", "09:00")  # 调休 Saturday
    notice = next(e for e in events if isinstance(e, NoticeIssued))
    assert notice.subject_kind == "task" and notice.recipients[0].party_id == LEAD
    assert "背街小巷环境整治" in notice.text_zh and "每周五报送" in notice.text_zh


def test_a_definition_names_known_units_of_its_campaign_once_each() -> None:
    """An unknown lead is 404; a co-unit repeating the lead is 422; handing over without a lead is 422; twice is 409."""
    with pytest.raises(NotFound):
        tk.define_task(None, define(lead_unit_id=uuid4()), ctx(), refs(indicator=INDICATOR))
    with pytest.raises(DomainError) as err:
        tk.define_task(None, define(co_unit_ids=(LEAD,)), ctx(), refs(indicator=INDICATOR))
    assert err.value.code == "co_units_repeated"
    with pytest.raises(DomainError) as err:
        tk.define_task(None, define(lead_unit_id=None, co_unit_ids=()), ctx(), refs(indicator=INDICATOR))
    assert err.value.code == "lead_unit_required"
    with pytest.raises(Conflict):
        tk.define_task(task_of(assigned()), define(), ctx(), refs(indicator=INDICATOR))


def test_only_the_lead_unit_acknowledges_and_its_notice_is_signed_with_it() -> None:
    """签收 by a member of the lead unit acknowledges the 交办单 too; another unit is 403; a second 签收 is 409."""
    events = assigned()
    notice = fold("notice", [e for e in events if isinstance(e, NoticeIssued)], Notice)
    cmd = tk.AcknowledgeTask(command_id="ack", task_id=TASK)
    with pytest.raises(Forbidden):
        then(events, tk.acknowledge_task, cmd, unit_ctx(MONDAY), refs(actor_unit_ids=frozenset({OTHER})))
    events = then(events, tk.acknowledge_task, cmd, unit_ctx(MONDAY), refs(open_notice=notice))
    assert [type(e) for e in events[-2:]] == [tk.TaskAcknowledged, NoticeAcknowledged]
    with pytest.raises(Conflict):
        then(events, tk.acknowledge_task, cmd, unit_ctx(MONDAY))


# --- 进度报送 --------------------------------------------------------------------------------------------------


def test_a_report_answers_the_next_due_day_and_says_whether_it_was_on_time() -> None:
    """Filed Thursday, it answers Friday's period on time; a second report for Friday is 409."""
    events = report(assigned(), at("2021-12-23"))
    last = events[-1]
    assert isinstance(last, tk.TaskProgressReported) and last.due_on == date(2021, 12, 24) and last.on_time
    with pytest.raises(Conflict):
        report(events, at("2021-12-24"), due_on=date(2021, 12, 24))


def test_a_late_report_fills_the_oldest_missed_period() -> None:
    """Nothing filed for Friday 12-24; a report on Monday 12-27 answers 12-24, late; the next one answers 12-31."""
    events = report(assigned(), at("2021-12-27"))
    late = events[-1]
    assert isinstance(late, tk.TaskProgressReported) and late.due_on == date(2021, 12, 24) and late.on_time is False
    events = report(events, at("2021-12-28"))
    assert events[-1].due_on == date(2021, 12, 31)  # type: ignore[attr-defined]  # a TaskProgressReported


def test_a_report_may_not_name_a_day_that_is_not_due_or_not_yet_open() -> None:
    """A Thursday is no weekly due day; two Fridays ahead is not open yet: both 422 not_a_report_day."""
    for day in (date(2021, 12, 23), date(2022, 1, 7)):
        with pytest.raises(DomainError) as err:
            report(assigned(), at("2021-12-21"), due_on=day)
        assert err.value.code == "not_a_report_day"


def test_a_missed_report_is_recorded_once_and_only_once_its_day_has_ended() -> None:
    """Friday 12-24 unreported: not missed on Friday evening, missed from Saturday on, recorded once, overdue from
    Monday 09:00; a day that was reported is not missed."""
    events = assigned()
    cmd = tk.RecordMissedReport(command_id="miss", task_id=TASK, due_on=date(2021, 12, 24))
    with pytest.raises(DomainError) as err:
        then(events, tk.record_missed_report, cmd, ctx(at("2021-12-24", "23:00"), role="system"))
    assert err.value.code == "report_not_missed"
    events = then(events, tk.record_missed_report, cmd, ctx(at("2021-12-25"), role="system"))
    missed = events[-1]
    assert isinstance(missed, tk.TaskReportMissed) and missed.overdue_from == at("2021-12-27", "09:00")
    with pytest.raises(Conflict):
        then(events, tk.record_missed_report, cmd, ctx(at("2021-12-26"), role="system"))
    reported = report(assigned(), at("2021-12-24"))
    with pytest.raises(DomainError):
        then(reported, tk.record_missed_report, cmd, ctx(at("2021-12-25"), role="system"))


def test_reports_are_owed_through_the_due_day_and_not_after_it() -> None:
    """Due 01-28: the Fridays up to 01-28 are missed when unreported, none after it — past its deadline the task is
    overdue as one work item instead; an approved extension to 02-25 makes the due days up to 02-25 owed again (02-04 falls in 春节: due 02-07)."""
    events = assigned()
    march = at("2022-03-10")
    fridays = [date(2021, 12, 24), date(2021, 12, 31), date(2022, 1, 7), date(2022, 1, 14), date(2022, 1, 21),
               date(2022, 1, 28)]
    assert tk.missed_report_days(task_of(events), CAL, march) == fridays
    assert date(2022, 2, 11) in tk.due_days(tk.weekly(5), CAL, date(2022, 2, 1), date(2022, 2, 28))
    assert not tk.is_report_due(task_of(events), date(2022, 2, 11), CAL)
    assert tk.task_work_item(task_of(events)).deadline == at("2022-01-29", "09:00")  # 01-29: a 调休 working Saturday
    with pytest.raises(DomainError) as err:
        then(events, tk.record_missed_report, tk.RecordMissedReport(command_id="m", task_id=TASK,
                                                                    due_on=date(2022, 2, 11)),
             ctx(march, role="system"))
    assert err.value.code == "report_not_missed"
    ask = tk.RequestTaskExtension(command_id="ask", task_id=TASK, to_due_on=date(2022, 2, 25), reason="雨雪天气影响施工")
    events = then(events, tk.request_task_extension, ask, unit_ctx(at("2022-01-10")))
    events = then(events, tk.approve_task_extension, tk.ApproveTaskExtension(command_id="ok", task_id=TASK),
                  ctx(at("2022-01-11")))
    extended = tk.missed_report_days(task_of(events), CAL, march)
    assert extended[len(fridays):] == [date(2022, 2, 7), date(2022, 2, 11), date(2022, 2, 18), date(2022, 2, 25)]


# --- 申报完成, 验收, 退回 --------------------------------------------------------------------------------------


def test_a_completion_claim_pauses_reporting_until_it_is_returned() -> None:
    """Claimed on 12-22: no report is owed on 12-24 or 12-31; returned on 01-04, Friday 01-07 is owed again."""
    claim = tk.ClaimTaskCompletion(command_id="claim", task_id=TASK, text="已全部完成", evidence=(PHOTO,))
    events = then(assigned(), tk.claim_task_completion, claim, unit_ctx(at("2021-12-22")))
    task = task_of(events)
    assert task.state == tk.TaskState.COMPLETION_CLAIMED and tk.missed_report_days(task, CAL, at("2022-01-04")) == []
    back = tk.ReturnTaskCompletion(command_id="return", task_id=TASK, reason="佐证不足")
    events = then(events, tk.return_task_completion, back, ctx(at("2022-01-04")))
    assert tk.missed_report_days(task_of(events), CAL, at("2022-01-08")) == [date(2022, 1, 7)]
    assert tk.task_work_item(task).closed  # claimed: the unit's clock stopped
    assert not tk.task_work_item(task_of(events)).closed


def test_only_a_claimed_task_is_accepted_and_acceptance_ends_it() -> None:
    """Accepting an unclaimed task is 409; accepted, it is completed and its work item closed."""
    accept = tk.AcceptTaskCompletion(command_id="accept", task_id=TASK)
    with pytest.raises(Conflict):
        then(assigned(), tk.accept_task_completion, accept, ctx())
    claim = tk.ClaimTaskCompletion(command_id="claim", task_id=TASK, text="已全部完成", evidence=(PHOTO,))
    events = then(assigned(), tk.claim_task_completion, claim, unit_ctx(at("2021-12-22")))
    events = then(events, tk.accept_task_completion, accept, ctx(at("2021-12-23")))
    task = task_of(events)
    assert task.state == tk.TaskState.COMPLETED and tk.task_work_item(task).closed


# --- 延期 ------------------------------------------------------------------------------------------------------


def test_an_extension_is_asked_for_before_the_deadline_and_moves_it_when_approved() -> None:
    """Asked after the deadline → 422; to an earlier day → 422; approved → due 02-25, overdue from 02-28 09:00."""
    ask = tk.RequestTaskExtension(command_id="ask", task_id=TASK, to_due_on=date(2022, 2, 25), reason="雨雪天气影响施工")
    with pytest.raises(DomainError) as err:
        then(assigned(), tk.request_task_extension, ask, unit_ctx(at("2022-01-29", "10:00")))
    assert err.value.code == "deadline_passed"
    early = ask.model_copy(update={"to_due_on": date(2022, 1, 20)})
    with pytest.raises(DomainError):
        then(assigned(), tk.request_task_extension, early, unit_ctx(at("2022-01-10")))
    events = then(assigned(), tk.request_task_extension, ask, unit_ctx(at("2022-01-10")))
    events = then(events, tk.approve_task_extension, tk.ApproveTaskExtension(command_id="ok", task_id=TASK),
                  ctx(at("2022-01-11")))
    task = task_of(events)
    assert task.due_on == date(2022, 2, 25) and task.deadline == at("2022-02-28", "09:00")
    assert task.extension_count == 1 and task.pending_extension is None


# --- the escalator's work items --------------------------------------------------------------------------------


def test_a_missed_report_is_work_until_a_late_report_answers_it() -> None:
    """The report item is open from the record on, overdue from the next working morning, closed by the late report."""
    events = then(assigned(), tk.record_missed_report,
                  tk.RecordMissedReport(command_id="m", task_id=TASK, due_on=date(2021, 12, 24)),
                  ctx(at("2021-12-25"), role="system"))
    item = tk.report_work_item(task_of(events), date(2021, 12, 24), CAL)
    assert not item.closed and item.deadline == at("2021-12-27", "09:00") and "reminder" in item.steps_done
    events = report(events, at("2021-12-27", "11:00"))
    assert tk.report_work_item(task_of(events), date(2021, 12, 24), CAL).closed


reported_weeks = st.lists(st.booleans(), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(reported_weeks)
def test_every_due_friday_is_either_reported_or_missed(pattern: list[bool]) -> None:
    """Whatever Fridays are reported on time, the missed days are exactly the due days left unreported (长期任务)."""
    events = assigned(due_on=None)
    fridays = tk.due_days(tk.weekly(5), CAL, date(2021, 12, 21), date(2021, 12, 21) + timedelta(weeks=len(pattern)))
    for day, filed in zip(fridays, pattern, strict=False):
        if filed:
            events = report(events, datetime.combine(day, datetime.min.time(), CHINA_TZ) + timedelta(hours=16),
                            due_on=day)
    end = datetime.combine(fridays[-1] + timedelta(days=1), datetime.min.time(), CHINA_TZ)
    task = task_of(events)
    missed = tk.missed_report_days(task, CAL, end)
    assert set(missed) | task.reported_days() == set(fridays) and not set(missed) & task.reported_days()
