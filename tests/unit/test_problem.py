"""Problem lifecycle (问题闭环): every transition, every forbidden one, and the rules that guard them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from domain import problem as pr
from domain.kernel.base import Actor, Conflict, DomainError, Forbidden, NotFound
from domain.problem.events import ProblemState
from domain.problem.rules import has_passed_verification, is_independent_verifier
from tests.unit.problem_kit import (
    ADMIN, AUDITOR, CAMPAIGN, HEAD_A, HQ, LEADER, OFFICER_A, OFFICER_B, PHOTO, PLACE, STAGES, SUPERVISOR,
    SUPERVISOR_IN_A, SYSTEM, UNIT_A, UNIT_B, Life, cid, ctx, id_of, refs_for,
)

pytestmark = pytest.mark.unit

Action = tuple[Callable[..., Any], Callable[[Life], Any], Actor]
ACTIONS: dict[str, Action] = {
    "assign": (pr.assign_problem, lambda life: pr.AssignProblem(command_id=cid(), problem_id=life.problem_id), HQ),
    "acknowledge": (pr.acknowledge_problem,
                    lambda life: pr.AcknowledgeProblem(command_id=cid(), problem_id=life.problem_id), OFFICER_A),
    "submit": (pr.submit_rectification, lambda life: pr.SubmitRectification(
        command_id=cid(), problem_id=life.problem_id, evidence=(PHOTO,)), OFFICER_A),
    "verify": (pr.verify_rectification,
               lambda life: pr.VerifyRectification(command_id=cid(), problem_id=life.problem_id), SUPERVISOR),
    "reject": (pr.reject_rectification, lambda life: pr.RejectRectification(
        command_id=cid(), problem_id=life.problem_id, reason="仍有垃圾"), SUPERVISOR),
    "close": (pr.close_problem, lambda life: pr.CloseProblem(command_id=cid(), problem_id=life.problem_id), HQ),
    "request_transfer": (pr.request_transfer, lambda life: pr.RequestTransfer(
        command_id=cid(), problem_id=life.problem_id, reason="不属本单位职责", suggested_unit_id=UNIT_B), OFFICER_A),
    "transfer": (pr.transfer_problem, lambda life: pr.TransferProblem(
        command_id=cid(), problem_id=life.problem_id, to_unit_id=UNIT_B, reason="派遣有误"), HQ),
    "request_coordination": (pr.request_coordination, lambda life: pr.RequestCoordination(
        command_id=cid(), problem_id=life.problem_id, reason="需城管局配合"), OFFICER_A),
    "request_extension": (pr.request_extension, lambda life: pr.RequestExtension(
        command_id=cid(), problem_id=life.problem_id, working_days=2, reason="需采购设备"), OFFICER_A),
    "park": (pr.park_problem, lambda life: pr.ParkProblem(command_id=cid(), problem_id=life.problem_id, reason="待拆迁"), HQ),
    "resume": (pr.resume_problem, lambda life: pr.ResumeProblem(command_id=cid(), problem_id=life.problem_id), HQ),
    "withdraw": (pr.withdraw_problem, lambda life: pr.WithdrawProblem(
        command_id=cid(), problem_id=life.problem_id, reason="误报"), HQ),
}
OWED = {"assigned", "acknowledged", "rework"}
OPEN = OWED | {"reported", "rectification_submitted", "verified", "parked"}
ALLOWED: dict[str, set[str]] = {
    "assign": {"reported"}, "acknowledge": {"assigned"}, "submit": {"acknowledged", "rework"},
    "verify": {"rectification_submitted"}, "reject": {"rectification_submitted"}, "close": {"verified"},
    "request_transfer": OWED, "transfer": OWED, "request_coordination": OWED, "request_extension": OWED,
    "park": OWED, "resume": {"parked"}, "withdraw": OPEN,
}
STATE_ERRORS = {"invalid_transition", "problem_closed", "problem_withdrawn", "problem_parked",
                "verification_not_passed", "problem_not_parked"}


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_command_is_accepted_exactly_from_its_allowed_states(action: str, stage: str) -> None:
    """Every command succeeds from the states it is allowed in and is refused (409, nothing emitted) elsewhere."""
    life = STAGES[stage]()
    decide, make, actor = ACTIONS[action]
    if stage in ALLOWED[action]:
        assert life.run(decide, make(life), actor)
        assert life.state.state in ProblemState
    else:
        with pytest.raises(Conflict) as raised:
            life.run(decide, make(life), actor)
        assert raised.value.code in STATE_ERRORS


def test_the_main_line_runs_from_report_to_closure() -> None:
    """上报 → 交办 → 签收 → 整改反馈 → 复查通过 → 销号 ends closed, on time, with no rework."""
    life = Life().report()
    assert life.state.state == ProblemState.REPORTED
    life.assign()
    assert (life.state.state, life.state.unit_id, life.state.routing) == (ProblemState.ASSIGNED, UNIT_A, "matrix")
    life.acknowledge()
    assert life.state.state == ProblemState.ACKNOWLEDGED and life.state.acknowledged_at is not None
    life.submit()
    assert life.state.state == ProblemState.RECTIFICATION_SUBMITTED and life.state.submission_count == 1
    life.verify()
    assert life.state.state == ProblemState.VERIFIED and has_passed_verification(life.state)
    life.close()
    assert life.state.state == ProblemState.CLOSED and life.state.rework_count == 0


def test_a_failed_verification_sends_the_problem_to_rework_and_counts_it() -> None:
    """复查不通过 twice means two reworks; the third submission can pass and close."""
    life = Life().report().assign().acknowledge().submit().reject()
    assert life.state.state == ProblemState.REWORK and life.state.rework_count == 1
    life.submit().reject().submit().verify().close()
    assert life.state.state == ProblemState.CLOSED and life.state.rework_count == 2
    assert life.state.submission_count == 3


def test_a_unit_acts_only_on_problems_handed_to_it() -> None:
    """Unit B's officer cannot acknowledge, rectify or ask anything about a problem handed to unit A."""
    life = Life().report().assign()
    for action in ("acknowledge", "request_transfer", "request_coordination", "request_extension"):
        decide, make, _ = ACTIONS[action]
        with pytest.raises(Forbidden) as raised:
            life.run(decide, make(life), OFFICER_B)
        assert raised.value.code == "not_assigned_unit"
    life.acknowledge(HEAD_A)  # the head of unit A may
    submit, make_submit, _ = ACTIONS["submit"]
    with pytest.raises(Forbidden):
        life.run(submit, make_submit(life), OFFICER_B)


@pytest.mark.parametrize("actor", [HQ, SUPERVISOR, LEADER, AUDITOR, SYSTEM], ids=lambda a: a.role)
def test_only_unit_roles_may_acknowledge(actor: Actor) -> None:
    """HQ, supervisors, leaders, auditors and the system are refused 签收 (role_not_allowed)."""
    life = Life().report().assign()
    with pytest.raises(Forbidden) as raised:
        life.run(pr.acknowledge_problem, ACTIONS["acknowledge"][1](life), actor, actor_unit_ids=frozenset({UNIT_A}))
    assert raised.value.code == "role_not_allowed"


@pytest.mark.parametrize("name, actor", [("unit_officer", OFFICER_B), ("auditor", AUDITOR), ("admin", ADMIN)])
def test_only_supervisors_leaders_and_hq_may_verify(name: str, actor: Actor) -> None:
    """复查 by a unit officer, an auditor or an admin is refused by role."""
    life = Life().report().assign().acknowledge().submit()
    with pytest.raises(Forbidden) as raised:
        life.run(pr.verify_rectification, ACTIONS["verify"][1](life), actor)
    assert raised.value.code == "role_not_allowed"


@pytest.mark.parametrize("verifier", [LEADER, HQ], ids=lambda a: a.role)
def test_leaders_and_hq_office_may_verify(verifier: Actor) -> None:
    """A liaison leader or the HQ office may pass the re-inspection."""
    assert Life().report().assign().acknowledge().submit().verify(verifier).state.state == ProblemState.VERIFIED


def test_a_member_of_the_rectifying_unit_cannot_verify_its_own_work() -> None:
    """Separation of duties: a supervisor who belongs to the rectifying unit is refused, for pass and fail."""
    life = Life().report().assign().acknowledge().submit()
    for action in ("verify", "reject"):
        decide, make, _ = ACTIONS[action]
        with pytest.raises(Forbidden) as raised:
            life.run(decide, make(life), SUPERVISOR_IN_A)
        assert raised.value.code == "verifier_not_independent"
    assert life.state.state == ProblemState.RECTIFICATION_SUBMITTED


def test_separation_of_duties_holds_even_when_membership_data_is_missing() -> None:
    """The person who submitted cannot verify even if the member list omits them; a person-less actor never can."""
    life = Life().report().assign().acknowledge().submit(HEAD_A)
    problem = life.state
    submitter = Actor(person_id=HEAD_A.person_id, role="supervisor")
    assert not is_independent_verifier(problem, submitter, frozenset(), frozenset())
    assert not is_independent_verifier(problem, Actor(role="supervisor"), frozenset(), frozenset())
    assert not is_independent_verifier(problem, SUPERVISOR, frozenset({UNIT_A}), frozenset())
    assert is_independent_verifier(problem, SUPERVISOR, frozenset({UNIT_B}), frozenset({id_of(OFFICER_A)}))


def test_a_rectification_without_evidence_is_refused() -> None:
    """整改反馈 with no photo raises evidence_required and leaves the problem acknowledged."""
    life = Life().report().assign().acknowledge()
    cmd = pr.SubmitRectification(command_id=cid(), problem_id=life.problem_id, evidence=())
    with pytest.raises(DomainError) as raised:
        life.run(pr.submit_rectification, cmd, OFFICER_A)
    assert raised.value.code == "evidence_required" and life.state.state == ProblemState.ACKNOWLEDGED


@pytest.mark.parametrize("stage", ["acknowledged", "rectification_submitted", "rework"])
def test_no_closure_without_a_passed_verification(stage: str) -> None:
    """销号 before the latest rectification passed re-inspection is refused with verification_not_passed."""
    life = STAGES[stage]()
    with pytest.raises(Conflict) as raised:
        life.close()
    assert raised.value.code == "verification_not_passed"


def test_nothing_but_relapse_linking_changes_a_closed_problem() -> None:
    """Every command on a closed problem is refused with problem_closed; a relapse still links to it."""
    life = STAGES["closed"]()
    for action, (decide, make, actor) in ACTIONS.items():
        with pytest.raises(Conflict) as raised:
            life.run(decide, make(life), actor)
        assert raised.value.code in {"problem_closed", "verification_not_passed"}, action
    relapse = Life(now=life.now + timedelta(days=5))
    assert life.state.closed_at is not None
    matches = pr.ProblemMatches(recently_closed_matches=(pr.ClosedMatch(problem_id=life.problem_id,
                                                                          closed_at=life.state.closed_at),))
    emitted = pr.report_problem(None, pr.ReportProblem(
        command_id=cid(), problem_id=relapse.problem_id, campaign_id=CAMPAIGN, category="garbage_dumping",
        place_id=PLACE, description="垃圾又堆起来了", source="hotline"), ctx(SUPERVISOR, relapse.now),
        pr.ReportRefs(place_exists=True, matches=matches))
    life.events += [e for e in emitted if e.aggregate_id == life.problem_id]
    assert life.state.state == ProblemState.CLOSED and life.state.relapses == (relapse.problem_id,)


def test_closing_needs_hq() -> None:
    """A supervisor may verify but not close (销号 is HQ's)."""
    life = STAGES["verified"]()
    with pytest.raises(Forbidden):
        life.run(pr.close_problem, pr.CloseProblem(command_id=cid(), problem_id=life.problem_id), SUPERVISOR)


def test_commands_on_an_unknown_problem_are_not_found() -> None:
    """Acknowledging a problem that was never reported is a 404 problem_not_found."""
    with pytest.raises(NotFound) as raised:
        pr.acknowledge_problem(None, pr.AcknowledgeProblem(command_id=cid(), problem_id=uuid4()), ctx(OFFICER_A),
                               refs_for(OFFICER_A, None))
    assert raised.value.code == "problem_not_found"


@pytest.mark.parametrize("bad", [
    {"media_type": "application/pdf"}, {"size": pr.MAX_EVIDENCE_BYTES + 1}, {"size": 0}, {"sha256": "XYZ"},
])
def test_evidence_must_be_an_image_reference_of_bounded_size(bad: dict[str, Any]) -> None:
    """A non-image media type, an oversize or empty file, or a malformed hash is refused at the edge."""
    fields = {"sha256": "ab" * 32, "media_type": "image/jpeg", "size": 1000, **bad}
    with pytest.raises(ValidationError):
        pr.EvidenceRef(**fields)


def test_every_lifecycle_command_has_a_decision_and_reads_only_real_fields() -> None:
    """Each lifecycle command has a decision (@decides) and its `reads` names only ProblemRefs fields, so infra can
    gather by it."""
    fields = {f.name for f in dataclasses.fields(pr.ProblemRefs)}
    lifecycle = {c for c in vars(pr).values() if isinstance(c, type) and issubclass(c, pr.ProblemCommand)}
    assert set(pr.lifecycle()) == lifecycle - {pr.ProblemCommand}
    assert all(command.reads <= fields for command in pr.lifecycle())
