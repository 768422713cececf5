"""Taking an escalation step: once only, only when due (or by HQ's hand), with its notice or proposal."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

import pytest

from domain.consequences.accountability import AccountabilityProposed, BasisRef
from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Meta, NotFound, fold
from domain.kernel.calendar import CHINA_TZ, WorkCalendar
from domain.escalation.ladder import StepName, due_steps, step_id_for
from domain.escalation.step import (
    EscalationStepTaken, StepParties, StepRefs, TakeEscalationStep, take_command, take_escalation_step,
)
from domain.escalation.notice import NoticeIssued, Party, notice_id_for_step
from domain.problem.events import ProblemState
from domain.problem.state import PendingExtension, Problem
from domain.consequences.summons import SummonsProposed
from domain.kernel.taxonomy import Severity
from domain.escalation.work_item import WorkItem, extension_request_work_item, problem_work_item
from domain.consequences.accountability import AccountabilityCase
from domain.escalation.step import EscalationStep
from domain.consequences.summons import Summons

pytestmark = pytest.mark.unit

CAL = WorkCalendar(days_off=frozenset({date(2022, 1, 1), date(2022, 1, 2), date(2022, 1, 3)}))
CAMPAIGN, UNIT, HEAD, GRID, LEADER = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
PARTIES = StepParties(
    unit=(Party(party_kind="unit", party_id=UNIT, name="东门街道"),),
    unit_head=(Party(party_kind="person", party_id=HEAD, name="王主任"),),
    sub_command_or_grid_lead=(Party(party_kind="unit", party_id=GRID, name="第九网格牵头单位"),),
    liaison_leader=(Party(party_kind="person", party_id=LEADER, name="李副市长"),),
)
FIELDS = {"subject": "占道经营", "place": "解放路农贸市场"}


def at(day: str, hhmm: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=CHINA_TZ)


DEADLINE = at("2021-12-28")
ITEM = WorkItem(item_kind="problem", item_id=uuid4(), campaign_id=CAMPAIGN, responsible_unit_id=UNIT,
                deadline=DEADLINE)


def ctx(role: str = "system", now: datetime = DEADLINE, person: UUID | None = None) -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


def take(step_name: StepName, work: WorkItem = ITEM, now: datetime = DEADLINE, role: str = "system",
         state: object = None) -> list[DomainEvent]:
    cmd = TakeEscalationStep(command_id=str(uuid4()), campaign_id=CAMPAIGN, item_kind=work.item_kind,
                             item_id=work.item_id, step_name=step_name)
    refs = StepRefs(item=work, calendar=CAL, parties=PARTIES, fields=FIELDS)
    return take_escalation_step(state, cmd, ctx(role, now), refs)  # type: ignore[arg-type]  # state or None


def test_the_urge_step_records_itself_and_issues_a_催办单_to_the_unit_and_its_head() -> None:
    """At the deadline the system takes 催办: the step event and a notice with recipients, text and ack due."""
    taken, notice = take("urge")
    step_id = step_id_for("problem", ITEM.item_id, "urge")
    assert isinstance(taken, EscalationStepTaken) and taken.aggregate_id == step_id
    assert (taken.level, taken.due_at, taken.trigger) == (1, DEADLINE, "time")
    assert isinstance(notice, NoticeIssued) and notice.notice_id == taken.notice_id == notice_id_for_step(step_id)
    assert [r.party_id for r in notice.recipients] == [UNIT, HEAD]
    assert notice.notice_kind == "urge" and notice.channels == ("sms", "wechat")
    assert "【催办单】东门街道" in notice.text_zh and "解放路农贸市场" in notice.text_zh and "占道经营" in notice.text_zh
    assert notice.ack_due_at == at("2021-12-31")  # 24 working hours later


def test_the_supervise_step_tells_the_grid_lead_and_the_liaison_leader_too() -> None:
    """督办 goes to the unit, its head, the grid lead unit and the liaison leader."""
    _, notice = take("supervise", now=at("2021-12-31"))
    assert isinstance(notice, NoticeIssued) and notice.notice_kind == "supervision_order"
    assert {r.party_id for r in notice.recipients} == {UNIT, HEAD, GRID, LEADER}


def test_a_step_already_taken_is_refused() -> None:
    """The step's aggregate exists: a second take is 409 step_already_taken, whoever asks."""
    state = fold("escalation", take("urge")[:1], EscalationStep)
    with pytest.raises(Conflict) as err:
        take("urge", state=state)
    assert err.value.code == "step_already_taken" and err.value.status == 409


def test_two_escalators_produce_the_same_command_so_the_step_is_taken_once() -> None:
    """Doubled escalators derive the same command id and step id; the loser's decision is refused."""
    (first,) = [take_command(s) for s in due_steps(ITEM, (), CAL, DEADLINE) if s.step_name == "urge"]
    (second,) = [take_command(s) for s in due_steps(ITEM, (), CAL, DEADLINE) if s.step_name == "urge"]
    assert first == second and first.command_id == f"escalation-step:{first.step_id}"
    state = fold("escalation", take("urge")[:1], EscalationStep)
    with pytest.raises(Conflict):
        take("urge", state=state)


def test_the_system_may_not_take_a_step_before_it_is_due() -> None:
    """督办 is due three working days after the deadline: the system asking earlier gets 422 step_not_due."""
    with pytest.raises(DomainError) as err:
        take("supervise", now=at("2021-12-30"))
    assert err.value.code == "step_not_due"


def test_hq_may_take_a_ladder_step_early_by_hand() -> None:
    """HQ escalates ahead of the ladder: the step is recorded as manual, with its ladder due time."""
    taken, _ = take("supervise", now=at("2021-12-29"), role="hq_office")
    assert isinstance(taken, EscalationStepTaken) and taken.trigger == "manual"
    assert taken.due_at == at("2021-12-31")


def test_a_closed_item_is_not_escalated_even_if_the_escalator_thought_so() -> None:
    """The item was closed since the escalator read it: 409 work_item_closed, nothing recorded."""
    with pytest.raises(Conflict) as err:
        take("urge", work=ITEM.model_copy(update={"closed": True}))
    assert err.value.code == "work_item_closed"


def test_a_unit_officer_may_not_take_escalation_steps() -> None:
    """Only the system and HQ office climb the ladder (403 for others)."""
    with pytest.raises(Forbidden):
        take("urge", role="unit_officer")


def test_an_unknown_work_item_is_not_found() -> None:
    """No work item behind the command: 404 work_item_not_found."""
    cmd = TakeEscalationStep(command_id="x", campaign_id=CAMPAIGN, item_kind="problem", item_id=uuid4(),
                             step_name="urge")
    with pytest.raises(NotFound):
        take_escalation_step(None, cmd, ctx(), StepRefs(item=None, calendar=CAL))


def test_level_three_proposes_a_summons_of_the_unit_with_references_as_its_basis() -> None:
    """+7 working days: 约谈 proposed to HQ against the unit; the basis references the item and the step."""
    taken, summons = take("summons_proposed", now=at("2022-01-07"))
    assert isinstance(taken, EscalationStepTaken) and taken.notice_id is None
    assert isinstance(summons, SummonsProposed) and taken.summons_id == summons.summons_id
    assert summons.subject.party_id == UNIT and summons.source == "escalation"
    assert summons.basis == (BasisRef(kind="problem", id=ITEM.item_id), BasisRef(kind="escalation", id=taken.step_id))
    assert fold("summons", [summons], Summons).status == "proposed"


def test_the_third_relapse_proposes_accountability_at_once() -> None:
    """A third relapse: 问责 proposed (only proposed) against the unit, giving the relapse as the reason."""
    relapsed = ITEM.model_copy(update={"relapse_count": 3, "relapse_at": at("2021-12-20")})
    taken, case = take("accountability_proposed", work=relapsed, now=at("2021-12-20"))
    assert isinstance(taken, EscalationStepTaken) and taken.trigger == "relapse" and taken.level == 4
    assert isinstance(case, AccountabilityProposed) and "第3次反弹" in case.reason_zh
    assert fold("accountability_case", [case], AccountabilityCase).status == "proposed"


def problem(**changes: object) -> Problem:
    base = Problem(problem_id=uuid4(), campaign_id=CAMPAIGN, category="garbage_dumping", severity=Severity.NORMAL,
                   place_id=uuid4(), description="垃圾乱倒", evidence=(), source="visit", visit_id=None,
                   found_at=at("2021-12-20"), reported_at=at("2021-12-20"), reported_by=None)
    return base.model_copy(update=changes)


def test_a_problem_becomes_a_work_item_whose_clock_runs_only_while_the_unit_owes_work() -> None:
    """Owed problems are open; a submitted rectification stops the clock; a parked one carries its open pause."""
    owed = problem_work_item(problem(state=ProblemState.ACKNOWLEDGED, unit_id=UNIT, deadline=DEADLINE))
    assert not owed.closed and owed.deadline == DEADLINE and owed.responsible_unit_id == UNIT
    assert problem_work_item(problem(state=ProblemState.RECTIFICATION_SUBMITTED, deadline=DEADLINE)).closed
    parked = problem_work_item(problem(state=ProblemState.ASSIGNED, deadline=DEADLINE, parked_since=at("2021-12-21")))
    assert parked.paused == ((at("2021-12-21"), None),)


def test_a_reported_third_relapse_escalates_before_it_is_even_assigned() -> None:
    """The original closed problem has three relapses: the new report's item is open and 问责 is due at once."""
    original = problem(state=ProblemState.CLOSED, unit_id=UNIT, relapses=(uuid4(), uuid4(), uuid4()))
    work = problem_work_item(problem(relapse_of=original.problem_id), original=original)
    (step,) = due_steps(work, (), CAL, at("2021-12-20"))
    assert step.step_name == "accountability_proposed" and work.responsible_unit_id == UNIT


def test_an_undecided_extension_request_is_hqs_work_item() -> None:
    """延期申请 awaiting HQ: due 8 working hours after the request, HQ's unit responsible; none when not pending."""
    hq = uuid4()
    pending = PendingExtension(working_days=2, reason="材料未到", requested_at=at("2021-12-24", "15:00"))
    owed = problem(state=ProblemState.ACKNOWLEDGED, unit_id=UNIT, deadline=DEADLINE, pending_extension=pending)
    work = extension_request_work_item(owed, CAL, hq)
    assert work is not None and work.responsible_unit_id == hq and work.deadline == at("2021-12-27", "15:00")
    assert extension_request_work_item(problem(state=ProblemState.ACKNOWLEDGED), CAL, hq) is None
