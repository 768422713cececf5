"""Reporting, routing and deadlines (上报、派遣、时限): duplicates, relapse, the policy in force, the calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import problem as pr
from domain.policy import campaign as po
from domain.policy import commands as pc
from domain.kernel.base import Conflict, DomainError, Forbidden, NotFound, fold
from domain.problem.events import ProblemState
from domain.kernel.taxonomy import Category, Severity
from domain.policy.campaign import CampaignPolicy
from domain.problem.state import Problem
from tests.unit.problem_kit import (
    CAMPAIGN, HQ, LEADER, OFFICER_A, PLACE, SUPERVISOR, SYSTEM, T0, UNIT_A, UNIT_B, UNIT_C, Life, at, cid, ctx,
)

POLICY_TIME = at("2025-09-01")
NO_MATCHES = pr.ProblemMatches()

pytestmark = pytest.mark.unit


def policy_with(*commands: pc.PolicyCommand, now: datetime = POLICY_TIME) -> po.CampaignPolicy:
    """A campaign policy built by running the real policy decisions."""
    events: list[Any] = []
    for cmd in commands:
        state = fold("campaign_policy", events, CampaignPolicy) if events else None
        events += pc.set_policy(state, cmd, ctx(HQ, now), pc.PolicyRefs(known_unit_ids=frozenset({UNIT_A, UNIT_B,
                                                                                                   UNIT_C})))
    return fold("campaign_policy", events, CampaignPolicy)


def report(problem_id: UUID | None = None, found_at: datetime | None = None, now: datetime = T0,
           matches: pr.ProblemMatches = NO_MATCHES, policy: po.CampaignPolicy | None = None,
           place_exists: bool = True, **kw: Any) -> list[Any]:
    fields = {"category": "garbage_dumping", "description": "垃圾乱倒", "source": "hotline", **kw}
    cmd = pr.ReportProblem(command_id=cid(), problem_id=problem_id or uuid4(), campaign_id=CAMPAIGN, place_id=PLACE,
                           **fields)
    return pr.report_problem(None, cmd, ctx(SUPERVISOR, now, occurred_at=found_at),
                             pr.ReportRefs(place_exists=place_exists, policy=policy, matches=matches))


def closed(problem_id: UUID, closed_at: datetime) -> pr.ProblemMatches:
    return pr.ProblemMatches(recently_closed_matches=(pr.ClosedMatch(problem_id=problem_id, closed_at=closed_at),))


# --- routing --------------------------------------------------------------------------------------


def test_assignment_routes_by_the_responsibility_matrix_by_default() -> None:
    """With no category routing, 交办 goes to the place's lead unit from the matrix."""
    life = Life().report().assign()
    assert (life.state.unit_id, life.state.routing) == (UNIT_A, "matrix")


def test_category_routing_takes_precedence_over_the_matrix() -> None:
    """违规乱建 routed to the urban-management department goes there, not to the place's lead unit."""
    policy = policy_with(pc.SetCategoryRouting(command_id=cid(), campaign_id=CAMPAIGN, routes=(
        po.CategoryRoute(category="illegal_building", unit_id=UNIT_C),)))
    life = Life(policy=policy).report(category="illegal_building").assign()
    assert (life.state.unit_id, life.state.routing) == (UNIT_C, "category_routing")


def test_an_hq_override_needs_a_reason_and_is_recorded_as_such() -> None:
    """HQ naming another unit without a reason is refused; with one, routing is hq_override and the reason kept."""
    life = Life().report()
    with pytest.raises(DomainError) as raised:
        life.assign(unit_id=UNIT_B)
    assert raised.value.code == "override_reason_required"
    life.assign(unit_id=UNIT_B, reason="该路段已移交")
    assigned = life.events[-1]
    assert isinstance(assigned, pr.ProblemAssigned)
    assert (assigned.unit_id, assigned.routing, assigned.reason) == (UNIT_B, "hq_override", "该路段已移交")


def test_naming_the_routed_unit_is_not_an_override() -> None:
    """HQ naming the very unit the matrix gives needs no reason and stays matrix-routed."""
    assert Life().report().assign(unit_id=UNIT_A).state.routing == "matrix"


def test_an_override_to_an_unknown_unit_is_not_found() -> None:
    """Overriding to a unit that does not exist is a 404 unit_not_found."""
    life = Life().report()
    cmd = pr.AssignProblem(command_id=cid(), problem_id=life.problem_id, unit_id=uuid4(), reason="改派")
    with pytest.raises(NotFound):
        life.run(pr.assign_problem, cmd, HQ, named_unit_exists=False)


def test_the_system_may_auto_assign_but_not_override() -> None:
    """The system actor assigns by routing; naming another unit is HQ's alone."""
    life = Life().report()
    with pytest.raises(Forbidden):
        life.run(pr.assign_problem, pr.AssignProblem(command_id=cid(), problem_id=life.problem_id, unit_id=UNIT_B,
                                                     reason="x"), SYSTEM)
    life.run(pr.assign_problem, pr.AssignProblem(command_id=cid(), problem_id=life.problem_id), SYSTEM)
    assert life.state.unit_id == UNIT_A


def test_a_place_with_no_responsible_unit_needs_hq_to_name_one() -> None:
    """No matrix unit and no category routing: no_responsible_unit, and nothing is emitted."""
    life = Life().report()
    with pytest.raises(DomainError) as raised:
        life.run(pr.assign_problem, pr.AssignProblem(command_id=cid(), problem_id=life.problem_id), HQ,
                 matrix_unit_id=None)
    assert raised.value.code == "no_responsible_unit" and life.state.state == ProblemState.REPORTED


# --- deadlines --------------------------------------------------------------------------------------


def test_the_deadline_is_counted_in_working_days_across_a_public_holiday() -> None:
    """3 working days from Tue 2025-09-30 10:00 skip 国庆 Oct 1–8 and land on the 调休 Saturday Oct 11."""
    life = Life(now=at("2025-09-30")).report().assign()
    assert life.state.deadline == at("2025-10-11")
    assert life.state.limit_hours == 24


def test_severity_picks_the_limit_and_a_make_up_sunday_counts() -> None:
    """严重 gets 1 working day by default: from Fri 2025-09-26 that is the 调休 Sunday Sep 28."""
    life = Life(now=at("2025-09-26")).report(severity=Severity.SERIOUS).assign()
    assert life.state.deadline == at("2025-09-28")


def test_a_campaign_local_day_off_moves_the_deadline() -> None:
    """A local day off on Wed 2025-09-24 pushes a 3-working-day deadline from Thu to Fri."""
    policy = policy_with(pc.SetCalendarDays(command_id=cid(), campaign_id=CAMPAIGN, days_off=(date(2025, 9, 24),)))
    assert Life().report().assign().state.deadline == at("2025-09-25")
    assert Life(policy=policy).report().assign().state.deadline == at("2025-09-26")


def test_an_old_assignment_is_judged_by_the_policy_in_force_then() -> None:
    """A limit cut from 3 to 1 working day on Oct 13 leaves earlier deadlines alone and applies to later ones."""
    v1 = pc.SetDeadlinePolicy(command_id=cid(), campaign_id=CAMPAIGN, effective_from=at("2025-09-01"),
                              default=po.TimeLimit(amount=3))
    v2 = pc.SetDeadlinePolicy(command_id=cid(), campaign_id=CAMPAIGN, effective_from=at("2025-10-13", "00:00"),
                              default=po.TimeLimit(amount=1))
    policy = policy_with(v1, v2)
    before = Life(now=at("2025-09-22"), policy=policy).report(category="other").assign()
    after = Life(now=at("2025-10-14"), policy=policy).report(category="other").assign()
    assert before.state.deadline == at("2025-09-25") and after.state.deadline == at("2025-10-15")
    assert isinstance(assigned := before.events[-1], pr.ProblemAssigned)
    assert assigned.policy_effective_from == at("2025-09-01")
    assert po.policy_in_force(policy.deadlines, at("2025-09-22")).default.amount == 3
    assert fold("problem", before.events, Problem).deadline == at("2025-09-25")  # replay keeps the old deadline


# --- reporting, duplicates, relapse ---------------------------------------------------------------------


def test_a_report_at_an_unknown_place_is_not_found() -> None:
    """Reporting at a place that does not exist is a 404 and emits nothing."""
    with pytest.raises(NotFound) as raised:
        report(place_exists=False)
    assert raised.value.code == "place_not_found"


def test_a_category_outside_the_campaign_taxonomy_is_refused() -> None:
    """A campaign that configured only 占道经营 refuses 垃圾乱倒 and accepts its own category."""
    policy = policy_with(pc.ConfigureCategories(command_id=cid(), campaign_id=CAMPAIGN, categories=(
        Category(code="road_occupation", name_zh="占道经营"),)))
    with pytest.raises(DomainError) as raised:
        report(policy=policy)
    assert raised.value.code == "unknown_category"
    assert report(policy=policy, category="road_occupation")[0].category == "road_occupation"


def test_only_inspectors_may_report() -> None:
    """A unit officer cannot report problems; a leader can."""
    cmd = pr.ReportProblem(command_id=cid(), problem_id=uuid4(), campaign_id=CAMPAIGN, place_id=PLACE,
                           category="clutter", description="杂物", source="leader")
    with pytest.raises(Forbidden):
        pr.report_problem(None, cmd, ctx(OFFICER_A), pr.ReportRefs(place_exists=True))
    assert pr.report_problem(None, cmd, ctx(LEADER), pr.ReportRefs(place_exists=True))


def test_reporting_the_same_problem_again_is_a_no_op_and_different_content_conflicts() -> None:
    """A re-sent report with the same id and content emits nothing; another description under that id is a 409."""
    life = Life().report()
    again = pr.ReportProblem(command_id=cid(), problem_id=life.problem_id, campaign_id=CAMPAIGN, place_id=PLACE,
                             category="garbage_dumping", description="背街小巷垃圾堆积", evidence=life.state.evidence,
                             source="hotline")
    assert pr.report_problem(life.state, again, ctx(SUPERVISOR), pr.ReportRefs(place_exists=True)) == []
    with pytest.raises(Conflict):
        pr.report_problem(life.state, again.model_copy(update={"description": "别的"}), ctx(SUPERVISOR),
                          pr.ReportRefs(place_exists=True))


def test_a_report_matching_an_open_problem_is_flagged_as_a_likely_duplicate() -> None:
    """Same place and category as an open problem: flagged, and not linked as a relapse even if one closed lately."""
    open_id, closed_id = uuid4(), uuid4()
    matches = pr.ProblemMatches(open_matches=(open_id,), recently_closed_matches=closed(closed_id, at(
        "2025-09-20")).recently_closed_matches)
    events = report(matches=matches)
    assert len(events) == 1 and events[0].likely_duplicate_of == (open_id,) and events[0].relapse_of is None


def test_a_report_within_the_relapse_window_links_to_the_closed_original() -> None:
    """Found 10 days after the original's closure: relapse_of is set and the original records the relapse."""
    original = uuid4()
    reported, relapse = report(matches=closed(original, at("2025-09-12")))
    assert reported.relapse_of == original
    assert isinstance(relapse, pr.RelapseRecorded) and relapse.problem_id == original
    assert relapse.relapse_problem_id == reported.problem_id


def test_relapses_raise_the_originals_relapse_count_while_it_stays_closed() -> None:
    """Two relapses on a closed problem: relapse_count 2, state closed."""
    life = Life().report().assign().acknowledge().submit().verify().close()
    assert life.state.closed_at is not None
    for days in (3, 6):
        events = report(now=life.now + timedelta(days=days), matches=closed(life.problem_id, life.state.closed_at))
        life.events.append(events[1])
    assert life.state.relapse_count == 2 and life.state.state == ProblemState.CLOSED


@pytest.mark.parametrize("closed_on, linked", [("2025-06-24", True), ("2025-06-23", False), ("2025-09-23", False)])
def test_the_relapse_window_is_counted_from_closure_to_the_field_time(closed_on: str, linked: bool) -> None:
    """Default window 90 days before the find (Sep 22): closed Jun 24 links, Jun 23 and after the find do not."""
    events = report(found_at=at("2025-09-22"), now=at("2025-09-25"), matches=closed(uuid4(), at(closed_on)))
    assert (events[0].relapse_of is not None) == linked


def test_the_campaign_relapse_window_applies_and_the_latest_closure_wins() -> None:
    """With a 10-day window only closures in the last 10 days count, and the most recent one is linked."""
    policy = policy_with(pc.SetRelapseWindow(command_id=cid(), campaign_id=CAMPAIGN, days=10))
    old, recent, newest = uuid4(), uuid4(), uuid4()
    matches = pr.ProblemMatches(recently_closed_matches=(
        pr.ClosedMatch(problem_id=old, closed_at=at("2025-09-01")),
        pr.ClosedMatch(problem_id=newest, closed_at=at("2025-09-20")),
        pr.ClosedMatch(problem_id=recent, closed_at=at("2025-09-15")),
    ))
    assert report(policy=policy, matches=matches)[0].relapse_of == newest
    assert report(policy=policy, matches=closed(old, at("2025-09-01")))[0].relapse_of is None
