"""The problem state machine: random commands, actors and timing, with the invariants checked after every step.

Hypothesis drives one problem through any order of commands issued by any actor (HQ, the system,
supervisors inside and outside the rectifying unit, leaders, auditors, officers of three units).
A refused command must raise a DomainError; an accepted one is folded in. After every step the
invariants of DESIGN §4–§5 must hold over the whole history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, event as tally, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain import problem as pr
from domain.kernel.base import Actor, DomainError, DomainEvent, fold
from domain.kernel.roles import HQ_ROLES, INSPECTOR_ROLES, SYSTEM_ROLES, UNIT_ROLES
from domain.problem.events import OWED, ProblemState
from domain.problem.rules import is_overdue, is_terminal, problem_light, time_used_fraction
from domain.problem.state import Problem, evolve
from tests.unit.problem_kit import (
    ADMIN, AFTER, AUDITOR, CAL, CAMPAIGN, HEAD_A, HQ, LEADER, MEMBERS, OFFICER_A, OFFICER_B, OFFICER_C, PLACE, SUPERVISOR,
    SUPERVISOR_IN_A, SYSTEM, T0, UNIT_A, UNIT_B, UNIT_C, Life, cid, ctx, refs_for, units_of,
)

pytestmark = pytest.mark.unit

ACTORS = [HQ, ADMIN, SYSTEM, SUPERVISOR, SUPERVISOR_IN_A, LEADER, AUDITOR, OFFICER_A, HEAD_A, OFFICER_B, OFFICER_C]
UNITS = st.sampled_from([UNIT_A, UNIT_B, UNIT_C])
MAYBE_UNIT = st.one_of(st.none(), UNITS)
TARGET = Life().report()  # an open problem to merge into

Build = Callable[[st.DataObject, Any], Any]
# command name → (decision, command builder, the actor who would normally issue it)
COMMANDS: dict[str, tuple[Callable[..., list[DomainEvent]], Build, Actor]] = {
    "assign": (pr.assign_problem, lambda d, p: pr.AssignProblem(
        command_id=cid(), problem_id=p, unit_id=d.draw(MAYBE_UNIT), reason=d.draw(st.sampled_from([None, "改派"]))), HQ),
    "acknowledge": (pr.acknowledge_problem, lambda d, p: pr.AcknowledgeProblem(command_id=cid(), problem_id=p),
                    OFFICER_A),
    "submit": (pr.submit_rectification, lambda d, p: pr.SubmitRectification(
        command_id=cid(), problem_id=p, evidence=d.draw(st.sampled_from([(), (AFTER,)]))), OFFICER_A),
    "verify": (pr.verify_rectification, lambda d, p: pr.VerifyRectification(command_id=cid(), problem_id=p),
               SUPERVISOR),
    "reject": (pr.reject_rectification, lambda d, p: pr.RejectRectification(
        command_id=cid(), problem_id=p, reason="未整改到位"), SUPERVISOR),
    "close": (pr.close_problem, lambda d, p: pr.CloseProblem(command_id=cid(), problem_id=p), HQ),
    "request_transfer": (pr.request_transfer, lambda d, p: pr.RequestTransfer(
        command_id=cid(), problem_id=p, reason="非本单位职责", suggested_unit_id=d.draw(MAYBE_UNIT)), OFFICER_A),
    "approve_transfer": (pr.approve_transfer, lambda d, p: pr.ApproveTransfer(
        command_id=cid(), problem_id=p, to_unit_id=d.draw(MAYBE_UNIT)), HQ),
    "reject_transfer": (pr.reject_transfer, lambda d, p: pr.RejectTransfer(command_id=cid(), problem_id=p,
                                                                           reason="属本单位"), HQ),
    "transfer": (pr.transfer_problem, lambda d, p: pr.TransferProblem(
        command_id=cid(), problem_id=p, to_unit_id=d.draw(UNITS), reason="派遣有误"), HQ),
    "request_coordination": (pr.request_coordination, lambda d, p: pr.RequestCoordination(
        command_id=cid(), problem_id=p, reason="需协调"), OFFICER_A),
    "resolve_coordination": (pr.resolve_coordination, lambda d, p: pr.ResolveCoordination(
        command_id=cid(), problem_id=p, note="已协调"), HQ),
    "request_extension": (pr.request_extension, lambda d, p: pr.RequestExtension(
        command_id=cid(), problem_id=p, working_days=d.draw(st.integers(1, 5)), reason="需采购"), OFFICER_A),
    "approve_extension": (pr.approve_extension, lambda d, p: pr.ApproveExtension(
        command_id=cid(), problem_id=p, working_days=d.draw(st.one_of(st.none(), st.integers(1, 3)))), HQ),
    "reject_extension": (pr.reject_extension, lambda d, p: pr.RejectExtension(command_id=cid(), problem_id=p,
                                                                             reason="不予延期"), HQ),
    "park": (pr.park_problem, lambda d, p: pr.ParkProblem(command_id=cid(), problem_id=p, reason="待资金"), HQ),
    "resume": (pr.resume_problem, lambda d, p: pr.ResumeProblem(command_id=cid(), problem_id=p), HQ),
    "withdraw": (pr.withdraw_problem, lambda d, p: pr.WithdrawProblem(command_id=cid(), problem_id=p,
                                                                     reason="无效"), HQ),
    "dismiss_duplicate": (pr.dismiss_duplicate_flag, lambda d, p: pr.DismissDuplicateFlag(
        command_id=cid(), problem_id=p, reason="非重复"), HQ),
    "merge": (pr.merge_problem, lambda d, p: pr.MergeProblem(
        command_id=cid(), problem_id=p, into_problem_id=TARGET.problem_id, reason="重复"), HQ),
}
# `command` favours detours (next_step drives the main line); ending a problem early is rarer.
MAIN_LINE = ["assign", "acknowledge", "submit", "verify", "reject", "close"]
ENDERS = ["withdraw", "merge"]
WEIGHTED = MAIN_LINE * 2 + [n for n in sorted(COMMANDS) if n not in MAIN_LINE + ENDERS] * 3 + ENDERS
OFFICERS = {UNIT_A: OFFICER_A, UNIT_B: OFFICER_B, UNIT_C: OFFICER_C}
NEXT: dict[ProblemState, tuple[str, ...]] = {
    ProblemState.REPORTED: ("assign",), ProblemState.ASSIGNED: ("acknowledge",),
    ProblemState.ACKNOWLEDGED: ("submit",), ProblemState.REWORK: ("submit",),
    ProblemState.RECTIFICATION_SUBMITTED: ("verify", "reject"), ProblemState.VERIFIED: ("close",),
}
# Which roles may cause each event (the actor recorded in its meta).
EVENT_ROLES: dict[type, frozenset[str]] = {
    pr.ProblemAssigned: HQ_ROLES | SYSTEM_ROLES, pr.ProblemTransferred: HQ_ROLES | SYSTEM_ROLES,
    pr.ProblemAcknowledged: UNIT_ROLES, pr.RectificationSubmitted: UNIT_ROLES, pr.TransferRequested: UNIT_ROLES,
    pr.CoordinationRequested: UNIT_ROLES, pr.ExtensionRequested: UNIT_ROLES,
    pr.RectificationVerified: INSPECTOR_ROLES, pr.RectificationRejected: INSPECTOR_ROLES,
}
UNIT_EVENTS = (pr.ProblemAcknowledged, pr.RectificationSubmitted, pr.TransferRequested, pr.CoordinationRequested,
               pr.ExtensionRequested)
DEADLINE_MOVERS = (pr.ExtensionApproved, pr.ProblemResumed)


class ProblemMachine(RuleBasedStateMachine):
    """One problem under a random sequence of commands."""

    def __init__(self) -> None:
        super().__init__()
        self.life = Life()
        self.state: Problem
        self.steps: list[tuple[Problem, DomainEvent, Problem]] = []  # (before, event, after)

    @initialize(flagged=st.booleans())
    def report(self, flagged: bool) -> None:
        cmd = pr.ReportProblem(command_id=cid(), problem_id=self.life.problem_id, campaign_id=CAMPAIGN,
                               place_id=PLACE, category="clutter", description="杂物乱堆", source="hotline")
        matches = pr.ProblemMatches(open_matches=(TARGET.problem_id,) if flagged else ())
        self.life.events += pr.report_problem(None, cmd, ctx(SUPERVISOR, T0), pr.ReportRefs(True, matches=matches))
        self.state = self.life.state

    def _apply(self, emitted: list[DomainEvent]) -> None:
        for event in emitted:
            if event.aggregate_id == self.life.problem_id:
                before, self.state = self.state, evolve(self.state, event)
                self.life.events.append(event)
                self.steps.append((before, event, self.state))

    def _issue(self, name: str, data: st.DataObject, minutes: int, random_actor: bool) -> None:
        decide, build, usual = COMMANDS[name]
        state = self.state
        if usual.role in UNIT_ROLES:  # the officer of whichever unit holds the problem now
            usual = OFFICERS.get(state.unit_id, usual)  # type: ignore[arg-type]
        actor = data.draw(st.sampled_from(ACTORS)) if random_actor else usual
        self.life.now += timedelta(minutes=minutes)
        refs = refs_for(actor, state, merge_target=TARGET.state)
        try:
            emitted = decide(state, build(data, self.life.problem_id), ctx(actor, self.life.now), refs)
        except DomainError as refused:
            tally(f"refused {name}: {refused.code}")
            return  # refused: nothing was emitted
        tally(f"accepted {name}")
        self._apply(emitted)

    @rule(name=st.sampled_from(WEIGHTED), data=st.data(), minutes=st.integers(0, 24 * 60),
          random_actor=st.booleans())
    def command(self, name: str, data: st.DataObject, minutes: int, random_actor: bool) -> None:
        """Any command, by its usual actor or by anyone."""
        self._issue(name, data, minutes, random_actor)

    @rule(data=st.data(), minutes=st.integers(0, 8 * 60))
    def next_step(self, data: st.DataObject, minutes: int) -> None:
        """A natural next command (answer a request, resume, or move along), by its usual actor, so runs get deep."""
        s = self.state
        answers = (("approve_extension", "reject_extension") if s.pending_extension else ()) + (
            ("approve_transfer", "reject_transfer") if s.pending_transfer else ()) + (
            ("resolve_coordination",) if s.coordination_pending else ())
        options = ("resume",) if s.parked else answers + NEXT.get(s.state, ())
        if options:
            self._issue(data.draw(st.sampled_from(options)), data, minutes, random_actor=False)

    @rule(days=st.integers(0, 120))
    def found_again(self, days: int) -> None:
        """The same place and category are reported again; a closed problem may be linked as relapsed."""
        state = self.state
        if state.closed_at is None:
            return
        self.life.now += timedelta(days=days)
        cmd = pr.ReportProblem(command_id=cid(), problem_id=uuid4(), campaign_id=CAMPAIGN, place_id=PLACE,
                               category="clutter", description="又乱堆了", source="hotline")
        closed = pr.ClosedMatch(problem_id=self.life.problem_id, closed_at=state.closed_at)
        matches = pr.ProblemMatches(recently_closed_matches=(closed,))
        emitted = pr.report_problem(None, cmd, ctx(SUPERVISOR, self.life.now), pr.ReportRefs(True, matches=matches))
        tally(f"found again after {'more' if len(emitted) == 1 else 'less'} than the relapse window")
        self._apply(emitted)

    @invariant()
    def state_is_a_defined_state_and_the_fold_of_the_history(self) -> None:
        if len(self.steps) % 10 == 0:  # folding from scratch each step would be quadratic
            assert fold("problem", self.life.events, Problem) == self.state
        assert self.state.state in ProblemState

    @invariant()
    def never_closed_without_a_passed_verification_after_the_last_submission(self) -> None:
        events = self.life.events
        if self.state.state != ProblemState.CLOSED:
            return
        closed_at = next(i for i, e in enumerate(events) if isinstance(e, pr.ProblemClosed))
        last_submission = max(i for i, e in enumerate(events[:closed_at]) if isinstance(e, pr.RectificationSubmitted))
        between = events[last_submission + 1:closed_at]
        assert any(isinstance(e, pr.RectificationVerified) for e in between)
        assert not any(isinstance(e, pr.RectificationRejected) for e in between)

    @invariant()
    def rework_count_equals_failed_verifications(self) -> None:
        rejected = sum(isinstance(e, pr.RectificationRejected) for e in self.life.events)
        assert self.state.rework_count == rejected

    @invariant()
    def nothing_changes_after_an_end_except_relapse_linking(self) -> None:
        ends = [i for i, (before, _, _) in enumerate(self.steps) if is_terminal(before)]
        for i in ends:
            before, event, after = self.steps[i]
            assert isinstance(event, pr.RelapseRecorded) and before.state == ProblemState.CLOSED
            assert after.model_dump(exclude={"relapses"}) == before.model_dump(exclude={"relapses"})

    @invariant()
    def the_deadline_moves_only_by_an_approved_extension_or_a_resume(self) -> None:
        for before, event, after in self.steps:
            if before.deadline != after.deadline:
                first = isinstance(event, pr.ProblemAssigned) and before.deadline is None
                assert first or isinstance(event, DEADLINE_MOVERS), type(event).__name__

    @invariant()
    def every_step_was_taken_by_an_allowed_actor(self) -> None:
        for before, event, _ in self.steps:
            actor = event.meta.actor
            assert actor.role in EVENT_ROLES.get(type(event), HQ_ROLES | INSPECTOR_ROLES | SYSTEM_ROLES)
            if isinstance(event, UNIT_EVENTS):
                assert before.unit_id in units_of(actor)  # a unit acts only on what it was handed
            if isinstance(event, (pr.RectificationVerified, pr.RectificationRejected)):
                assert before.unit_id is not None
                assert actor.person_id not in MEMBERS[before.unit_id]  # separation of duties
                assert before.state == ProblemState.RECTIFICATION_SUBMITTED and before.submitted_evidence
            if isinstance(event, pr.RectificationSubmitted):
                assert event.evidence
            if isinstance(event, pr.ExtensionRequested):
                assert before.deadline is not None and event.meta.recorded_at < before.deadline

    @invariant()
    def overdue_agrees_with_the_working_time_used(self) -> None:
        state, now = self.state, self.life.now
        if state.state not in OWED or state.parked:
            return
        fraction, overdue = time_used_fraction(state, CAL, now), is_overdue(state, now)
        one_minute = 1 / 60 / state.limit_hours  # deadlines moved by working hours are rounded to the minute
        assert overdue or fraction <= 1 + one_minute
        assert not overdue or fraction >= 1 - one_minute
        assert (problem_light(state, CAL, now) == "red") == overdue


ProblemMachine.TestCase.settings = settings(
    max_examples=400, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
TestProblemMachine = ProblemMachine.TestCase
