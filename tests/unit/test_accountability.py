"""Summons (约谈) and accountability cases (问责): the system proposes and records, people decide."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable
from uuid import UUID, uuid4

import pytest

from domain.consequences.accountability import (
    AccountabilityClosed, AccountabilityOpened, AppealDecided, AppealFiled, BasisRef, CaseRefs, CloseAccountabilityCase,
    DecideAppeal, DecideMeasures, DeclineAccountabilityProposal, FileAppeal, MeasureDecided, OpenAccountabilityCase,
    ProposeAccountability, close_case, decide_appeal, decide_measures, decline_proposal, file_appeal, open_case,
    propose_accountability,
)
from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Meta, fold
from domain.kernel.calendar import CHINA_TZ
from domain.kernel.roles import ROLES
from domain.escalation.notice import Party
from domain.consequences.summons import (
    CancelSummons, HoldSummons, ProposeSummons, ScheduleSummons, SummonsHeld, cancel_summons, hold_summons,
    propose_summons, schedule_summons,
)
from domain.consequences.accountability import AccountabilityCase
from domain.consequences.summons import Summons

pytestmark = pytest.mark.unit

NOW = datetime(2022, 1, 10, 10, tzinfo=CHINA_TZ)
CAMPAIGN, UNIT, PROBLEM, STEP = uuid4(), uuid4(), uuid4(), uuid4()
SUBJECT = Party(party_kind="unit", party_id=UNIT, name="东门街道")
BASIS = (BasisRef(kind="problem", id=PROBLEM), BasisRef(kind="escalation", id=STEP))
ALL_ROLES = list(ROLES)


def ctx(role: str, person: UUID | None = None) -> CommandContext:
    person = person if person is not None or role == "system" else uuid4()
    return CommandContext(meta=Meta(actor=Actor(role=role, person_id=person), occurred_at=NOW, recorded_at=NOW,
                                    correlation_id=uuid4(), command_id=str(uuid4()), campaign_id=CAMPAIGN))


# --- summons --------------------------------------------------------------------------------------


def proposed_summons() -> list[DomainEvent]:
    cmd = ProposeSummons(command_id="p", summons_id=uuid4(), campaign_id=CAMPAIGN, subject=SUBJECT,
                         reason_zh="逾期7个工作日未整改", basis=BASIS, source="escalation")
    return propose_summons(None, cmd, ctx("system"))


def test_a_summons_is_proposed_scheduled_and_held_with_minutes_and_commitments() -> None:
    """Proposed by the system, scheduled and held by HQ: the minutes and commitments are on record."""
    events = proposed_summons()
    sid = events[0].aggregate_id
    convener = Party(party_kind="person", party_id=uuid4(), name="张副市长")
    events += schedule_summons(fold("summons", events, Summons), ScheduleSummons(
        command_id="s", summons_id=sid, at=NOW + timedelta(days=2), convened_by=convener), ctx("hq_office"))
    events += hold_summons(fold("summons", events, Summons), HoldSummons(
        command_id="h", summons_id=sid, minutes_zh="约谈东门街道主要负责人", commitments=("一周内整改到位",)),
        ctx("hq_office"))
    state = fold("summons", events, Summons)
    assert isinstance(events[-1], SummonsHeld) and state.status == "held"
    assert state.commitments == ("一周内整改到位",) and state.basis == BASIS


def test_a_summons_is_held_only_once_scheduled_and_cancelled_only_while_open() -> None:
    """Holding a merely proposed summons is 409; a held summons cannot be cancelled."""
    events = proposed_summons()
    sid = events[0].aggregate_id
    with pytest.raises(Conflict):
        hold_summons(fold("summons", events, Summons), HoldSummons(command_id="h", summons_id=sid, minutes_zh="x"),
                     ctx("hq_office"))
    cancelled = cancel_summons(fold("summons", events, Summons), CancelSummons(command_id="c", summons_id=sid, reason="已整改"),
                               ctx("hq_office"))
    assert fold("summons", events + cancelled, Summons).status == "cancelled"


def test_the_system_may_propose_a_summons_but_not_schedule_it() -> None:
    """People convene summons: the system scheduling one is 403."""
    events = proposed_summons()
    cmd = ScheduleSummons(command_id="s", summons_id=events[0].aggregate_id, at=NOW,
                          convened_by=Party(party_kind="person", party_id=uuid4()))
    with pytest.raises(Forbidden):
        schedule_summons(fold("summons", events, Summons), cmd, ctx("system"))


def test_a_summons_needs_a_basis() -> None:
    """A proposal without any reference is invalid at the edge."""
    with pytest.raises(ValueError):
        ProposeSummons(command_id="p", summons_id=uuid4(), campaign_id=CAMPAIGN, subject=SUBJECT,
                       reason_zh="x", basis=())


# --- accountability -------------------------------------------------------------------------------

Decide = Callable[[Any, Any, CommandContext], list[DomainEvent]]
CASE = uuid4()


def run(events: list[DomainEvent], decide: Decide, cmd: Any, role: str, person: UUID | None = None) -> list[DomainEvent]:
    state = fold("accountability_case", events, AccountabilityCase) if events else None
    return events + decide(state, cmd, ctx(role, person))


def proposed() -> list[DomainEvent]:
    cmd = ProposeAccountability(command_id="p", case_id=CASE, campaign_id=CAMPAIGN, subject=SUBJECT,
                                reason_zh="逾期15个工作日未整改", basis=BASIS, source="escalation")
    return run([], propose_accountability, cmd, "system")


def opened() -> list[DomainEvent]:
    return run(proposed(), open_case, OpenAccountabilityCase(command_id="o", case_id=CASE, campaign_id=CAMPAIGN),
               "discipline")


def decided() -> list[DomainEvent]:
    cmd = DecideMeasures(command_id="d", case_id=CASE, measures=("public_criticism", "written_self_criticism"),
                         reason_zh="整改不力")
    return run(opened(), decide_measures, cmd, "discipline")


def test_a_case_goes_from_proposal_to_decision_appeal_and_closure() -> None:
    """Proposed → opened → measures decided → appeal filed by the subject → appeal decided → closed."""
    events = decided()
    member = uuid4()
    state = fold("accountability_case", events, AccountabilityCase)
    events += file_appeal(state, FileAppeal(command_id="a", case_id=CASE, reason="已按期整改，系数据延迟"),
                          ctx("unit_officer", member), CaseRefs(actor_unit_ids=frozenset({UNIT})))
    events = run(events, decide_appeal, DecideAppeal(command_id="ad", case_id=CASE, outcome="modified",
                                                     measures=("public_criticism",), reason_zh="部分采纳"), "hq_leader")
    events = run(events, close_case, CloseAccountabilityCase(command_id="c", case_id=CASE), "discipline")
    assert [type(e) for e in events[2:]] == [MeasureDecided, AppealFiled, AppealDecided, AccountabilityClosed]
    state = fold("accountability_case", events, AccountabilityCase)
    assert state.status == "closed" and state.measures == ("public_criticism",) and state.appeal_by == member


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_discipline_and_the_hq_leader_decide_measures(role: str) -> None:
    """Measures are decided by 纪委 (discipline) or the HQ leader only; every other role, the system too, gets 403."""
    cmd = DecideMeasures(command_id="d", case_id=CASE, measures=("admonishment",), reason_zh="整改不力")
    if role in ("discipline", "hq_leader"):
        assert isinstance(run(opened(), decide_measures, cmd, role)[-1], MeasureDecided)
    else:
        with pytest.raises(Forbidden):
            run(opened(), decide_measures, cmd, role)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_discipline_and_the_hq_leader_decide_appeals(role: str) -> None:
    """An appeal decision is a decision too: 403 for every other role."""
    state = fold("accountability_case", decided(), AccountabilityCase)
    events = decided() + file_appeal(state, FileAppeal(command_id="a", case_id=CASE, reason="不服"),
                                     ctx("unit_officer"), CaseRefs(actor_unit_ids=frozenset({UNIT})))
    cmd = DecideAppeal(command_id="ad", case_id=CASE, outcome="upheld", reason_zh="维持")
    if role in ("discipline", "hq_leader"):
        assert isinstance(run(events, decide_appeal, cmd, role)[-1], AppealDecided)
    else:
        with pytest.raises(Forbidden):
            run(events, decide_appeal, cmd, role)


def test_a_decider_must_be_a_person() -> None:
    """A discipline-role token without a person (a process) may not decide: 403 person_required."""
    cmd = DecideMeasures(command_id="d", case_id=CASE, measures=("admonishment",), reason_zh="x")
    with pytest.raises(Forbidden) as err:
        decide_measures(fold("accountability_case", opened(), AccountabilityCase), cmd, CommandContext(meta=Meta(
            actor=Actor(role="discipline"), occurred_at=NOW, recorded_at=NOW, correlation_id=uuid4(),
            command_id="d")))
    assert err.value.code == "person_required"


def test_measures_are_decided_only_on_an_open_case() -> None:
    """A mere proposal must be opened first (409 invalid_case_state)."""
    cmd = DecideMeasures(command_id="d", case_id=CASE, measures=("admonishment",), reason_zh="x")
    with pytest.raises(Conflict):
        run(proposed(), decide_measures, cmd, "discipline")


def test_hq_or_discipline_may_decline_a_proposal() -> None:
    """People decide: a proposal can be declined with a reason, and then nothing more happens."""
    events = run(proposed(), decline_proposal, DeclineAccountabilityProposal(command_id="x", case_id=CASE,
                                                                            reason="已整改，情节轻微"), "hq_office")
    assert fold("accountability_case", events, AccountabilityCase).status == "declined"
    with pytest.raises(Conflict):
        run(events, open_case, OpenAccountabilityCase(command_id="o", case_id=CASE, campaign_id=CAMPAIGN), "hq_office")


def test_discipline_opens_a_case_directly_with_its_basis() -> None:
    """Without a proposal the opener (纪委) gives subject, reason and references; without them it is 422."""
    cmd = OpenAccountabilityCase(command_id="o", case_id=uuid4(), campaign_id=CAMPAIGN, subject=SUBJECT,
                                 reason_zh="多次通报仍未整改", basis=BASIS)
    (event,) = open_case(None, cmd, ctx("discipline"))
    assert isinstance(event, AccountabilityOpened) and fold("accountability_case", [event], AccountabilityCase).status == "open"
    with pytest.raises(DomainError) as err:
        open_case(None, cmd.model_copy(update={"basis": ()}), ctx("discipline"))
    assert err.value.code == "case_basis_required"


def test_the_system_may_propose_but_not_open_a_case() -> None:
    """Opening is a human act: the system gets 403."""
    with pytest.raises(Forbidden):
        run(proposed(), open_case, OpenAccountabilityCase(command_id="o", case_id=CASE, campaign_id=CAMPAIGN),
            "system")


def test_only_the_subject_appeals_and_only_once() -> None:
    """A member of another unit may not appeal (403); a second appeal is 409."""
    state = fold("accountability_case", decided(), AccountabilityCase)
    with pytest.raises(Forbidden):
        file_appeal(state, FileAppeal(command_id="a", case_id=CASE, reason="x"), ctx("unit_officer"),
                    CaseRefs(actor_unit_ids=frozenset({uuid4()})))
    events = decided() + file_appeal(state, FileAppeal(command_id="a", case_id=CASE, reason="x"),
                                     ctx("unit_officer"), CaseRefs(actor_unit_ids=frozenset({UNIT})))
    with pytest.raises(Conflict):
        file_appeal(fold("accountability_case", events, AccountabilityCase), FileAppeal(command_id="b", case_id=CASE, reason="y"),
                    ctx("unit_officer"), CaseRefs(actor_unit_ids=frozenset({UNIT})))


def test_a_case_with_a_pending_appeal_cannot_be_closed() -> None:
    """Closing waits for the appeal decision (409)."""
    state = fold("accountability_case", decided(), AccountabilityCase)
    events = decided() + file_appeal(state, FileAppeal(command_id="a", case_id=CASE, reason="x"),
                                     ctx("unit_officer"), CaseRefs(actor_unit_ids=frozenset({UNIT})))
    with pytest.raises(Conflict):
        run(events, close_case, CloseAccountabilityCase(command_id="c", case_id=CASE), "discipline")
