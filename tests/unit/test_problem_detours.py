"""Detours and the clock (转办、协调、延期、挂账、作废、合并；三色督办): side paths and the working-time clock."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain import problem as pr
from domain.kernel.base import Conflict, DomainError, Forbidden, NotFound
from domain.problem.events import ProblemState
from domain.problem.rules import closed_on_time, is_overdue, time_used_fraction, traffic_light
from tests.unit.problem_kit import (
    CAL, HQ, OFFICER_A, OFFICER_B, OTHER_CAMPAIGN, PHOTO, STAGES, SUPERVISOR, SYSTEM, UNIT_A, UNIT_B, UNIT_C, Life,
    at, cid,
)

pytestmark = pytest.mark.unit


def assigned() -> Life:
    return Life().report().assign()  # Mon 2025-09-22 10:00, deadline Thu 09-25 10:00 (3 working days)


# --- 转办 -------------------------------------------------------------------------------------------


def test_an_approved_transfer_hands_the_problem_to_the_suggested_unit_and_keeps_the_deadline() -> None:
    """申请转办 → 批准: unit B holds it, must acknowledge afresh; unit A can no longer act; the deadline stays."""
    life = assigned().acknowledge()
    deadline = life.state.deadline
    life.run(pr.request_transfer, pr.RequestTransfer(command_id=cid(), problem_id=life.problem_id, reason="非本单位",
                                                     suggested_unit_id=UNIT_B), OFFICER_A)
    assert life.state.pending_transfer is not None
    life.run(pr.approve_transfer, pr.ApproveTransfer(command_id=cid(), problem_id=life.problem_id), HQ)
    s = life.state
    assert (s.unit_id, s.state, s.deadline, s.transfer_count, s.pending_transfer) == (
        UNIT_B, ProblemState.ASSIGNED, deadline, 1, None)
    assert isinstance(transferred := life.events[-1], pr.ProblemTransferred)
    assert transferred.mode == "approved_request"
    with pytest.raises(Forbidden):
        life.acknowledge(OFFICER_A)
    assert life.acknowledge(OFFICER_B).state.state == ProblemState.ACKNOWLEDGED


def test_approving_a_transfer_needs_a_target_unit() -> None:
    """With no suggested unit HQ must name one; naming one transfers there."""
    life = assigned()
    life.run(pr.request_transfer, pr.RequestTransfer(command_id=cid(), problem_id=life.problem_id, reason="x"),
             OFFICER_A)
    with pytest.raises(DomainError) as raised:
        life.run(pr.approve_transfer, pr.ApproveTransfer(command_id=cid(), problem_id=life.problem_id), HQ)
    assert raised.value.code == "transfer_target_required"
    life.run(pr.approve_transfer, pr.ApproveTransfer(command_id=cid(), problem_id=life.problem_id,
                                                     to_unit_id=UNIT_C), HQ)
    assert life.state.unit_id == UNIT_C


def test_a_rejected_transfer_leaves_the_unit_responsible() -> None:
    """驳回转办 clears the request; a second request while one is pending is refused; approving none is refused."""
    life = assigned()
    request = pr.RequestTransfer(command_id=cid(), problem_id=life.problem_id, reason="x", suggested_unit_id=UNIT_B)
    life.run(pr.request_transfer, request, OFFICER_A)
    with pytest.raises(Conflict, match="pending"):
        life.run(pr.request_transfer, request, OFFICER_A)
    life.run(pr.reject_transfer, pr.RejectTransfer(command_id=cid(), problem_id=life.problem_id, reason="属本单位"), HQ)
    assert life.state.pending_transfer is None and life.state.unit_id == UNIT_A
    with pytest.raises(Conflict) as raised:
        life.run(pr.approve_transfer, pr.ApproveTransfer(command_id=cid(), problem_id=life.problem_id), HQ)
    assert raised.value.code == "no_pending_transfer"


def test_hq_transfers_directly_and_the_system_automatically() -> None:
    """HQ's direct transfer is hq_direct, the system's is automatic; neither may target the same unit."""
    life = assigned()
    with pytest.raises(DomainError, match="same unit"):
        life.run(pr.transfer_problem, pr.TransferProblem(command_id=cid(), problem_id=life.problem_id,
                                                         to_unit_id=UNIT_A, reason="x"), HQ)
    life.run(pr.transfer_problem, pr.TransferProblem(command_id=cid(), problem_id=life.problem_id, to_unit_id=UNIT_B,
                                                     reason="派遣有误"), HQ)
    life.run(pr.transfer_problem, pr.TransferProblem(command_id=cid(), problem_id=life.problem_id, to_unit_id=UNIT_C,
                                                     reason="责任矩阵已更新"), SYSTEM)
    assert [e.mode for e in life.events[-2:] if isinstance(e, pr.ProblemTransferred)] == ["hq_direct", "automatic"]
    with pytest.raises(Forbidden):
        life.run(pr.transfer_problem, pr.TransferProblem(command_id=cid(), problem_id=life.problem_id,
                                                         to_unit_id=UNIT_A, reason="x"), OFFICER_A)
    with pytest.raises(NotFound):
        life.run(pr.transfer_problem, pr.TransferProblem(command_id=cid(), problem_id=life.problem_id,
                                                         to_unit_id=uuid4(), reason="x"), HQ, named_unit_exists=False)


# --- 需协调 ------------------------------------------------------------------------------------------


def test_a_coordination_request_is_answered_by_hq() -> None:
    """需协调 is pending until HQ resolves it; one at a time; resolving none is refused; the state does not move."""
    life = assigned().acknowledge()
    request = pr.RequestCoordination(command_id=cid(), problem_id=life.problem_id, reason="需供电公司迁移线杆",
                                     unit_ids=(UNIT_C,))
    life.run(pr.request_coordination, request, OFFICER_A)
    assert life.state.coordination_pending and life.state.state == ProblemState.ACKNOWLEDGED
    with pytest.raises(Conflict):
        life.run(pr.request_coordination, request, OFFICER_A)
    resolve = pr.ResolveCoordination(command_id=cid(), problem_id=life.problem_id, note="已协调供电公司")
    life.run(pr.resolve_coordination, resolve, HQ)
    assert not life.state.coordination_pending
    with pytest.raises(Conflict):
        life.run(pr.resolve_coordination, resolve, HQ)


# --- 延期 -------------------------------------------------------------------------------------------


def extension(life: Life, days: int = 2) -> pr.RequestExtension:
    return pr.RequestExtension(command_id=cid(), problem_id=life.problem_id, working_days=days, reason="需采购")


def test_an_approved_extension_moves_the_deadline_by_working_days_across_the_holiday() -> None:
    """Deadline Sat Oct 11 (调休) + 2 working days approved = Tue Oct 14; the limit grows by 16 hours."""
    life = Life(now=at("2025-09-30")).report().assign()
    assert life.state.deadline == at("2025-10-11")
    life.run(pr.request_extension, extension(life), OFFICER_A)
    life.run(pr.approve_extension, pr.ApproveExtension(command_id=cid(), problem_id=life.problem_id), HQ)
    s = life.state
    assert (s.deadline, s.limit_hours, s.extension_count, s.pending_extension) == (at("2025-10-14"), 40, 1, None)


def test_hq_may_grant_fewer_days_than_requested() -> None:
    """Asked for 5, granted 1: the deadline moves by one working day."""
    life = assigned()
    life.run(pr.request_extension, extension(life, 5), OFFICER_A)
    life.run(pr.approve_extension, pr.ApproveExtension(command_id=cid(), problem_id=life.problem_id,
                                                       working_days=1), HQ)
    assert life.state.deadline == at("2025-09-26")


def test_an_extension_can_only_be_requested_before_the_deadline() -> None:
    """After the deadline passed the request is refused with deadline_passed."""
    life = assigned()
    life.now = at("2025-09-25", "10:01")
    with pytest.raises(DomainError) as raised:
        life.run(pr.request_extension, extension(life), OFFICER_A)
    assert raised.value.code == "deadline_passed"


def test_a_rejected_extension_keeps_the_deadline_and_only_hq_decides() -> None:
    """A unit cannot approve its own extension; HQ's rejection leaves the deadline; a second pending one is refused."""
    life = assigned()
    deadline = life.state.deadline
    life.run(pr.request_extension, extension(life), OFFICER_A)
    with pytest.raises(Conflict):
        life.run(pr.request_extension, extension(life), OFFICER_A)
    with pytest.raises(Forbidden):
        life.run(pr.approve_extension, pr.ApproveExtension(command_id=cid(), problem_id=life.problem_id), OFFICER_A)
    life.run(pr.reject_extension, pr.RejectExtension(command_id=cid(), problem_id=life.problem_id, reason="不予延期"), HQ)
    assert life.state.deadline == deadline and life.state.pending_extension is None
    with pytest.raises(Conflict, match="no pending extension"):
        life.run(pr.approve_extension, pr.ApproveExtension(command_id=cid(), problem_id=life.problem_id), HQ)


# --- 挂账 and the clock -------------------------------------------------------------------------------


def test_parking_pauses_the_clock_and_resuming_moves_the_deadline_by_the_paused_working_hours() -> None:
    """Parked Mon 14:00 to Wed 14:00 (16 working hours): deadline Thu 10:00 becomes the 调休 Sunday 10:00."""
    life = assigned()
    life.now = at("2025-09-22", "14:00")
    life.park()
    assert life.state.parked and not is_overdue(life.state, at("2025-09-30"))
    assert time_used_fraction(life.state, CAL, at("2025-09-24", "14:00")) == pytest.approx(4 / 24)
    life.now = at("2025-09-24", "14:00")
    life.run(pr.resume_problem, pr.ResumeProblem(command_id=cid(), problem_id=life.problem_id), HQ)
    resumed = life.events[-1]
    assert isinstance(resumed, pr.ProblemResumed)
    assert resumed.paused_hours == 16 and life.state.deadline == at("2025-09-28")
    assert time_used_fraction(life.state, CAL, at("2025-09-28")) == pytest.approx(1.0)
    assert not is_overdue(life.state, at("2025-09-28")) and is_overdue(life.state, at("2025-09-28", "10:01"))


def test_a_parked_problem_accepts_only_resume_withdraw_and_hq_bookkeeping() -> None:
    """While parked, the unit cannot submit and HQ cannot park again; resuming an unparked problem is refused."""
    life = STAGES["parked"]()
    with pytest.raises(Conflict, match="parked"):
        life.submit()
    with pytest.raises(Conflict, match="parked"):
        life.park()
    life.run(pr.resume_problem, pr.ResumeProblem(command_id=cid(), problem_id=life.problem_id), HQ)
    with pytest.raises(Conflict) as raised:
        life.run(pr.resume_problem, pr.ResumeProblem(command_id=cid(), problem_id=life.problem_id), HQ)
    assert raised.value.code == "problem_not_parked"
    assert life.submit().state.state == ProblemState.RECTIFICATION_SUBMITTED


@pytest.mark.parametrize("fraction, light", [(0.0, "green"), (0.79, "green"), (0.8, "yellow"), (1.0, "yellow"),
                                             (1.01, "red")])
def test_traffic_light_thresholds(fraction: float, light: str) -> None:
    """三色督办: green under 80 %, yellow from 80 % to 100 %, red past 100 %."""
    assert traffic_light(fraction) == light


def test_time_used_counts_working_hours_and_stops_at_the_submission() -> None:
    """One working day of three used is 1/3; the clock stops when the rectification is submitted."""
    life = assigned()
    assert time_used_fraction(life.state, CAL, at("2025-09-23")) == pytest.approx(1 / 3)
    assert time_used_fraction(Life().report().state, CAL, at("2025-09-23")) == 0.0
    life.acknowledge().submit()  # submitted Mon 13:00: 3 of 24 hours
    assert time_used_fraction(life.state, CAL, at("2025-10-30")) == pytest.approx(3 / 24)


def test_overdue_only_while_the_unit_still_owes_the_rectification() -> None:
    """Past the deadline an acknowledged problem is overdue; once submitted it is not, and closes late."""
    life = assigned().acknowledge()
    assert not is_overdue(life.state, at("2025-09-25")) and is_overdue(life.state, at("2025-09-25", "10:01"))
    life.now = at("2025-09-26")
    life.submit().verify().close()
    assert not is_overdue(life.state, at("2025-09-30")) and closed_on_time(life.state) is False
    assert closed_on_time(STAGES["closed"]().state) is True and closed_on_time(assigned().state) is None


# --- 作废, 疑似重复, 合并 ---------------------------------------------------------------------------------


def test_withdrawing_ends_the_problem_and_needs_hq() -> None:
    """作废 by a supervisor is refused; by HQ it ends the problem as withdrawn."""
    life = assigned()
    with pytest.raises(Forbidden):
        life.run(pr.withdraw_problem, pr.WithdrawProblem(command_id=cid(), problem_id=life.problem_id, reason="x"),
                 SUPERVISOR)
    assert life.withdraw().state.state == ProblemState.WITHDRAWN


def duplicate_of(target: Life) -> Life:
    life = Life().report()
    flagged = life.events[0].model_copy(update={"likely_duplicate_of": (target.problem_id,)})
    life.events[0] = flagged
    return life


def test_hq_may_dismiss_a_duplicate_flag() -> None:
    """非重复: the flag clears; dismissing an unflagged problem is refused."""
    life = duplicate_of(assigned())
    dismiss = pr.DismissDuplicateFlag(command_id=cid(), problem_id=life.problem_id, reason="不同位置")
    life.run(pr.dismiss_duplicate_flag, dismiss, HQ)
    assert life.state.likely_duplicate_of == ()
    with pytest.raises(Conflict):
        life.run(pr.dismiss_duplicate_flag, dismiss, HQ)


def test_merging_ends_the_duplicate_and_the_target_gains_its_evidence() -> None:
    """合并 emits ProblemMerged on the duplicate and DuplicateAbsorbed (with the photos) on the target."""
    target = assigned()
    dup = duplicate_of(target)
    merge = pr.MergeProblem(command_id=cid(), problem_id=dup.problem_id, into_problem_id=target.problem_id, reason="重复")
    emitted = dup.run(pr.merge_problem, merge, HQ, merge_target=target.state)
    target.events += [e for e in emitted if e.aggregate_id == target.problem_id]
    assert dup.state.state == ProblemState.MERGED and dup.state.merged_into == target.problem_id
    assert target.state.absorbed == (dup.problem_id,) and target.state.evidence == (PHOTO, PHOTO)


def test_merging_is_refused_into_itself_a_missing_or_ended_target_or_another_campaign() -> None:
    """Each bad merge target gets its own error and emits nothing."""
    dup = Life().report()
    merge = pr.MergeProblem(command_id=cid(), problem_id=dup.problem_id, into_problem_id=dup.problem_id, reason="x")
    with pytest.raises(DomainError, match="itself"):
        dup.run(pr.merge_problem, merge, HQ, merge_target=dup.state)
    closed, foreign = STAGES["closed"](), Life().report(campaign_id=OTHER_CAMPAIGN)
    for target, error in ((None, NotFound), (closed, Conflict), (foreign, DomainError)):
        into = target.problem_id if target else uuid4()
        cmd = merge.model_copy(update={"into_problem_id": into})
        with pytest.raises(error):
            dup.run(pr.merge_problem, cmd, HQ, merge_target=target.state if target else None)
    assert dup.state.state == ProblemState.REPORTED
