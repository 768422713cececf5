"""The problem loop over the command service against real PostgreSQL: 督导 → 问题 → 交办 → 签收 → 整改 → 复查 → 销号."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from domain import problem as pr
from domain import visit as vi
from domain.kernel.base import Conflict, DomainError, Forbidden, derived_id
from domain.kernel.calendar import CHINA_TZ
from infra.bootstrap import bootstrap
from infra.calendars import official_calendar
from infra.clock import SimulatedClock
from infra.commands.problem import gather_problem
from infra.commands.service import StoreReader
from tests.support.problem_world import World, build_world, photo

pytestmark = pytest.mark.integration


@pytest.fixture
def world(database_url: str, clock: SimulatedClock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


def state(w: World, problem_id: UUID) -> pr.Problem:
    problem = StoreReader(w.system.app).get("problem", problem_id, pr.Problem)
    assert problem is not None
    return problem


def report(w: World, place: str = "s1", category: str = "sanitation") -> UUID:
    pid = uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category=category,
           place_id=w[place], description="路面有垃圾堆积", evidence=(photo("before"),), source="hotline")
    return pid


def rectify(w: World, pid: UUID, officer: str = "officer_a") -> None:
    """交办 (matrix routing), 签收 and 整改反馈 with evidence."""
    w.send("hq", pr.AssignProblem, problem_id=pid)
    w.send(officer, pr.AcknowledgeProblem, problem_id=pid)
    w.send(officer, pr.SubmitRectification, problem_id=pid, evidence=(photo("after"),))


def close(w: World, pid: UUID) -> None:
    rectify(w, pid)
    w.send("supervisor", pr.VerifyRectification, problem_id=pid)
    w.send("hq", pr.CloseProblem, problem_id=pid)


def test_a_problem_goes_from_report_to_closure_through_every_step(world: World) -> None:
    """Reported, assigned by the matrix to the grid's lead unit, acknowledged, rectified, verified by an outsider, closed."""
    pid = report(world)
    close(world, pid)
    p = state(world, pid)
    assert p.state == pr.ProblemState.CLOSED and p.unit_id == world["unit_a"] and p.routing == "matrix"
    assert p.verification_passed and p.closed_at is not None


def test_hq_may_override_the_matrix_routing_only_with_a_reason(world: World) -> None:
    """Naming another unit than the matrix's needs a reason; with one, the routing is recorded as hq_override."""
    pid = report(world)
    head = world.log_head()
    with pytest.raises(DomainError) as err:
        world.send("hq", pr.AssignProblem, problem_id=pid, unit_id=world["unit_b"])
    assert err.value.code == "override_reason_required" and world.log_head() == head
    world.send("hq", pr.AssignProblem, problem_id=pid, unit_id=world["unit_b"], reason="该路段由住建局施工维护")
    p = state(world, pid)
    assert (p.unit_id, p.routing) == (world["unit_b"], "hq_override")


def test_a_site_without_its_own_lead_is_routed_to_its_grids_lead_unit(world: World) -> None:
    """The matrix lookup walks up the place tree: a problem at site s3 goes to grid 2's lead (住建局)."""
    pid = report(world, "s3")
    world.send("hq", pr.AssignProblem, problem_id=pid)
    assert state(world, pid).unit_id == world["unit_b"]


def visit_cmd(w: World, visit_id: UUID, found: list[UUID], days_ago: int = 0) -> vi.LogVisit:
    when = w.system.clock() - timedelta(days=days_ago)
    findings = tuple(vi.Finding(problem_id=p, category="clutter", description=f"杂物乱堆 {i}", place_id=w[f"s{i % 2 + 1}"],
                                evidence=(photo(str(p)),)) for i, p in enumerate(found))
    w.upload(tuple(e for f in findings for e in f.evidence))  # as the field app uploads before it logs
    return vi.LogVisit(command_id=str(uuid4()), occurred_at=when, visit_id=visit_id, campaign_id=w.campaign_id,
                       place_id=w["grid1"], participants=(w["supervisor"],), findings=findings,
                       checklist=(vi.ChecklistResult(item="背街小巷卫生", result="fail"),))


def test_an_offline_visit_uploaded_twice_is_recorded_once(world: World) -> None:
    """The same visit uploaded again (new command id, same client visit id and content) writes nothing and answers
    with the first upload's result."""
    visit_id, found = uuid4(), [uuid4(), uuid4()]
    first = world.system.service.handle(visit_cmd(world, visit_id, found), world.actors["supervisor"])
    head = world.log_head()
    again = world.system.service.handle(visit_cmd(world, visit_id, found), world.actors["supervisor"])
    assert len(first.events) == 3 and world.log_head() == head
    assert again.replayed and (again.command_id, again.events) == (first.command_id, first.events)


def test_a_visit_uploaded_three_days_late_keeps_its_field_time_and_the_deadline_counts_from_assignment(
        world: World, clock: SimulatedClock) -> None:
    """occurred_at stays the field time; the problem's clock starts when it is handed over, not when it was found."""
    visit_id, pid = uuid4(), uuid4()
    clock.advance(timedelta(days=3))  # Friday 2021-12-17 09:00 in 高安
    cmd = visit_cmd(world, visit_id, [pid], days_ago=3)
    world.system.service.handle(cmd, world.actors["supervisor"])
    visit = StoreReader(world.system.app).get("visit", visit_id, vi.Visit)
    assert visit is not None
    assert visit.occurred_at == cmd.occurred_at and visit.recorded_at == world.system.clock()
    assert state(world, pid).found_at == cmd.occurred_at
    world.send("hq", pr.AssignProblem, problem_id=pid)
    p = state(world, pid)
    assigned = world.system.clock()
    assert p.assigned_at == assigned
    assert p.deadline == official_calendar().add_working_days(assigned, 3)
    assert p.deadline.astimezone(CHINA_TZ).date().isoformat() == "2021-12-22"  # Fri + 3 working days over a weekend


def test_a_new_problem_at_the_place_and_category_of_an_open_one_is_flagged_as_a_likely_duplicate(world: World) -> None:
    """The ledger lookup finds the open problem at s1/sanitation and the new report names it."""
    first = report(world)
    world.catch_up()
    second = report(world)
    assert state(world, second).likely_duplicate_of == (first,)
    assert state(world, first).likely_duplicate_of == ()


def test_a_problem_found_again_after_closure_is_linked_as_a_relapse_and_counted_on_the_original(
        world: World, clock: SimulatedClock) -> None:
    """A report at the place and category of a problem closed within the window is a relapse of it."""
    original = report(world)
    close(world, original)
    world.catch_up()
    clock.advance(timedelta(days=10))
    again = report(world)
    assert state(world, again).relapse_of == original
    assert state(world, original).relapse_count == 1


def test_findings_of_one_visit_at_the_same_place_and_category_flag_each_other(world: World) -> None:
    """Two findings of one upload at s1/clutter: the second is a likely duplicate of the first."""
    a, b, c = uuid4(), uuid4(), uuid4()
    world.system.service.handle(visit_cmd(world, uuid4(), [a, b, c]), world.actors["supervisor"])
    assert state(world, c).likely_duplicate_of == (a,)  # a and c are both at s1


def test_the_rectifying_units_own_people_cannot_verify_its_work(world: World) -> None:
    """A supervisor who belongs to the rectifying unit is refused (查改分离), and nothing is written."""
    pid = report(world)
    rectify(world, pid)
    world.catch_up()
    head = world.log_head()
    with pytest.raises(Forbidden) as err:
        world.send("supervisor_in_a", pr.VerifyRectification, problem_id=pid)
    assert err.value.code == "verifier_not_independent" and world.log_head() == head


def test_the_gather_reads_the_rectifying_units_members_from_the_structure_projection(world: World) -> None:
    """ProblemRefs for a verification carries the members of the problem's unit and the verifier's own units."""
    pid = report(world)
    rectify(world, pid)
    reader = StoreReader(world.system.app, world.actors["supervisor_in_a"])
    refs = gather_problem(pr.VerifyRectification(command_id="x", problem_id=pid), reader)
    assert world["officer_a"] in refs.rectifying_unit_member_ids
    assert refs.actor_unit_ids == frozenset({world["unit_a"]})


def test_another_unit_cannot_act_on_a_problem_not_handed_to_it(world: World) -> None:
    """住建局's officer may not acknowledge a problem handed to 城管局."""
    pid = report(world)
    world.send("hq", pr.AssignProblem, problem_id=pid)
    with pytest.raises(Forbidden) as err:
        world.send("officer_b", pr.AcknowledgeProblem, problem_id=pid)
    assert err.value.code == "not_assigned_unit"


def test_a_transition_from_the_wrong_state_is_refused_with_a_clear_error_and_writes_nothing(world: World) -> None:
    """Closing a problem that was never verified is a 409 conflict; the log does not move."""
    pid = report(world)
    world.send("hq", pr.AssignProblem, problem_id=pid)
    head = world.log_head()
    with pytest.raises(Conflict) as err:
        world.send("hq", pr.CloseProblem, problem_id=pid)
    assert err.value.code == "verification_not_passed" and err.value.status == 409
    with pytest.raises(Conflict) as err:
        world.send("officer_a", pr.SubmitRectification, problem_id=pid, evidence=(photo("x"),))
    assert err.value.code == "invalid_transition" and world.log_head() == head


def test_a_report_at_an_unknown_place_is_not_found_and_writes_nothing(world: World) -> None:
    """An unknown place id (or another campaign's place) reads as unknown: 404 place_not_found."""
    head = world.log_head()
    with pytest.raises(DomainError) as err:
        world.send("supervisor", pr.ReportProblem, problem_id=uuid4(), campaign_id=world.campaign_id,
                   category="sanitation", place_id=derived_id("nowhere"), description="x", source="hotline")
    assert (err.value.code, err.value.status) == ("place_not_found", 404) and world.log_head() == head


def test_rework_transfer_extension_and_parking_run_through_the_service(world: World, clock: SimulatedClock) -> None:
    """A rejected rectification is reworked; a transfer, an extension and a park/resume each move the problem."""
    pid = report(world)
    rectify(world, pid)
    world.send("supervisor", pr.RejectRectification, problem_id=pid, reason="仍有垃圾")
    assert state(world, pid).state == pr.ProblemState.REWORK and state(world, pid).rework_count == 1
    world.send("officer_a", pr.RequestExtension, problem_id=pid, working_days=2, reason="需调机械")
    before = state(world, pid).deadline
    assert before is not None
    world.send("hq", pr.ApproveExtension, problem_id=pid)
    assert state(world, pid).deadline == official_calendar().add_working_days(before, 2)
    world.send("hq", pr.ParkProblem, problem_id=pid, reason="待拆迁")
    clock.advance(timedelta(days=1))
    world.send("hq", pr.ResumeProblem, problem_id=pid)
    world.send("hq", pr.TransferProblem, problem_id=pid, to_unit_id=world["unit_b"], reason="属住建局")
    p = state(world, pid)
    assert p.unit_id == world["unit_b"] and len(p.pauses) == 1 and p.transfer_count == 1
