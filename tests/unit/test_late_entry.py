"""Late entry (补录): a 交办/签收/复查 done on paper and typed in later counts from its real time.

A 交办单 handed over on Friday and typed in on Monday starts its deadline on Friday; the event keeps both
times. Only HQ may enter a step late, with a reason, within the campaign's window (default 30 days), never
before the step it follows; anyone else's `occurred_at` on these commands is refused, not ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain import problem as pr
from domain.kernel.base import Actor, DomainError, Forbidden
from domain.policy.campaign import CampaignPolicy, LateEntryWindow, policy_id_for
from domain.problem.events import ProblemState
from domain.problem.rules import is_overdue, is_within_late_entry_window
from tests.unit.problem_kit import (
    ADMIN, CAL, CAMPAIGN, HQ, OFFICER_A, SUPERVISOR, Life, at, cid, ctx, refs_for,
)

pytestmark = pytest.mark.unit

FRIDAY, MONDAY = at("2025-09-19", "15:00"), at("2025-09-22", "10:00")


def run(life: Life, decide: Any, cmd: Any, actor: Actor, occurred_at: datetime | None = None, **overrides: Any) -> Any:
    """Run one decision at the life's now with the command's own occurred_at in the envelope, as the service does."""
    state = life.state
    emitted = decide(state, cmd, ctx(actor, life.now, occurred_at), refs_for(actor, state, policy=life.policy,
                                                                              **overrides))
    life.events += [e for e in emitted if e.aggregate_id == life.problem_id]
    return emitted


def found_on_thursday() -> Life:
    life = Life(now=at("2025-09-18", "09:00")).report()
    life.now = MONDAY
    return life


def late_assign(life: Life, occurred_at: datetime = FRIDAY, actor: Actor = HQ, reason: str | None = "纸质交办单补录") -> Any:
    cmd = pr.AssignProblem(command_id=cid(), problem_id=life.problem_id, occurred_at=occurred_at,
                           late_entry_reason=reason)
    return run(life, pr.assign_problem, cmd, actor, occurred_at)


def test_a_late_assignment_counts_its_deadline_from_the_real_handover() -> None:
    """交办 on Friday 15:00 typed in on Monday: 3 working days run from Friday (due Wednesday 15:00), not Monday."""
    life = found_on_thursday()
    (assigned, *_) = late_assign(life)
    assert assigned.deadline == CAL.add_working_days(FRIDAY, 3) == at("2025-09-24", "15:00")
    assert (assigned.meta.occurred_at, assigned.meta.recorded_at) == (FRIDAY, MONDAY)
    assert assigned.late_entry == pr.LateEntry(reason="纸质交办单补录")
    assert life.state.assigned_at == FRIDAY and "补录" in assigned.summary_zh()


def test_the_clock_of_a_late_assignment_runs_from_its_real_time() -> None:
    """Overdue and the light follow the real time: due Wednesday 15:00, overdue that evening, never by Monday's count."""
    life = found_on_thursday()
    late_assign(life)
    assert not is_overdue(life.state, at("2025-09-24", "14:59"))
    assert is_overdue(life.state, at("2025-09-24", "15:01"))


@pytest.mark.parametrize("actor", [OFFICER_A, SUPERVISOR], ids=lambda a: a.role)
def test_another_roles_occurred_at_on_a_step_is_refused(actor: Actor) -> None:
    """A unit's 签收 or a supervisor's 复查 with occurred_at is refused (422 late_entry_not_allowed), not ignored."""
    life = found_on_thursday()
    late_assign(life)
    if actor is OFFICER_A:
        cmd: Any = pr.AcknowledgeProblem(command_id=cid(), problem_id=life.problem_id, occurred_at=FRIDAY,
                                         late_entry_reason="周五已签收")
        decide: Any = pr.acknowledge_problem
    else:
        life.acknowledge().submit()
        cmd, decide = pr.VerifyRectification(command_id=cid(), problem_id=life.problem_id, occurred_at=life.now,
                                             late_entry_reason="纸面复查"), pr.verify_rectification
    with pytest.raises(DomainError) as refused:
        run(life, decide, cmd, actor, cmd.occurred_at)
    assert refused.value.code == "late_entry_not_allowed" and refused.value.status == 422


def test_a_late_entry_needs_a_reason() -> None:
    """occurred_at without late_entry_reason is refused (late_entry_reason_required)."""
    with pytest.raises(DomainError) as refused:
        late_assign(found_on_thursday(), reason=None)
    assert refused.value.code == "late_entry_reason_required"


def test_a_late_entry_beyond_the_window_is_refused() -> None:
    """With the default 30-day window, a 交办 dated 31 days back is refused; a campaign may widen the window."""
    life = Life(now=at("2025-08-01")).report()
    life.now = at("2025-09-22")
    with pytest.raises(DomainError) as refused:
        late_assign(life, occurred_at=at("2025-08-22"))
    assert refused.value.code == "late_entry_outside_window"
    life.policy = CampaignPolicy(policy_id=policy_id_for(CAMPAIGN), campaign_id=CAMPAIGN,
                                 late_entry_windows=(LateEntryWindow(effective_from=at("2025-01-01"), days=60),))
    (assigned, *_) = late_assign(life, occurred_at=at("2025-08-22"))
    assert assigned.meta.occurred_at == at("2025-08-22")


def test_a_step_cannot_be_entered_before_the_one_it_follows() -> None:
    """A 交办 before the problem was found, or a 签收 before the 交办, is refused (late_entry_before_previous_step)."""
    life = found_on_thursday()
    with pytest.raises(DomainError) as before_found:
        late_assign(life, occurred_at=at("2025-09-17"))
    assert before_found.value.code == "late_entry_before_previous_step"
    late_assign(life)
    cmd = pr.AcknowledgeProblem(command_id=cid(), problem_id=life.problem_id, occurred_at=FRIDAY - timedelta(hours=1),
                                late_entry_reason="纸质签收")
    with pytest.raises(DomainError) as before_assigned:
        run(life, pr.acknowledge_problem, cmd, HQ, cmd.occurred_at)
    assert before_assigned.value.code == "late_entry_before_previous_step"


def test_hq_enters_a_paper_acknowledgement_on_the_units_behalf() -> None:
    """HQ records the unit's 签收 at its real time; without occurred_at HQ may not acknowledge at all (role)."""
    life = found_on_thursday()
    late_assign(life)
    with pytest.raises(Forbidden):
        run(life, pr.acknowledge_problem, pr.AcknowledgeProblem(command_id=cid(), problem_id=life.problem_id), HQ)
    signed = FRIDAY + timedelta(hours=1)
    cmd = pr.AcknowledgeProblem(command_id=cid(), problem_id=life.problem_id, occurred_at=signed,
                                late_entry_reason="签收单已纸质签字")
    (ack,) = run(life, pr.acknowledge_problem, cmd, HQ, signed)
    assert life.state.state == ProblemState.ACKNOWLEDGED and life.state.acknowledged_at == signed
    assert ack.unit_id == life.state.unit_id


def test_an_admin_may_enter_a_paper_verification_late_but_not_verify_now() -> None:
    """复查 done on paper by a supervisor, entered by HQ's operator with its real time; verified_at is that time."""
    life = found_on_thursday()
    late_assign(life)
    life.acknowledge().submit()
    checked = life.now
    life.now += timedelta(days=1)
    cmd = pr.VerifyRectification(command_id=cid(), problem_id=life.problem_id, occurred_at=checked,
                                 late_entry_reason="督导组纸质复查单")
    run(life, pr.verify_rectification, cmd, ADMIN, checked)
    assert life.state.verified_at == checked and life.state.state == ProblemState.VERIFIED


def test_the_window_rule_reads_as_a_sentence() -> None:
    """is_within_late_entry_window: exactly `days` back is still inside, a minute more is not."""
    window = LateEntryWindow(effective_from=at("2025-01-01"), days=30)
    assert is_within_late_entry_window(MONDAY - timedelta(days=30), MONDAY, window)
    assert not is_within_late_entry_window(MONDAY - timedelta(days=30, minutes=1), MONDAY, window)


def test_a_notice_is_signed_when_recorded_so_its_occurred_at_is_refused() -> None:
    """签收 of a notice with occurred_at is refused (occurred_at_not_accepted), never stored and ignored."""
    from domain.escalation.notice import AckRefs, AcknowledgeNotice, acknowledge_notice

    cmd = AcknowledgeNotice(command_id=cid(), notice_id=uuid4(), occurred_at=FRIDAY)
    with pytest.raises(DomainError) as refused:
        acknowledge_notice(None, cmd, ctx(OFFICER_A, MONDAY, FRIDAY), AckRefs())
    assert refused.value.code == "occurred_at_not_accepted"
