"""Automatic assignment (自动交办): which unit routing names unambiguously, and a report handed over in its own write."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain import problem as pr
from domain.escalation.notice import NoticeIssued
from domain.kernel.base import DomainEvent
from domain.policy.campaign import AutoAssignment, CampaignPolicy, CategoryRoute, CategoryRouting, policy_id_for
from domain.problem.decisions import AUTO_ASSIGNER, unambiguous_route
from tests.unit.problem_kit import CAL, CAMPAIGN, PHOTO, PLACE, SUPERVISOR, T0, UNIT_A, UNIT_B, UPLOADED, at, cid, ctx

pytestmark = pytest.mark.unit

ON = CampaignPolicy(policy_id=policy_id_for(CAMPAIGN), campaign_id=CAMPAIGN,
                    auto_assignments=(AutoAssignment(effective_from=at("2025-01-01"), enabled=True),))


def dispatch(*leads: UUID) -> pr.AutoDispatch:
    return pr.AutoDispatch(calendar=CAL, matrix_leads={PLACE: tuple(leads)}, unit_names={UNIT_A: "城管局"})


def report(policy: CampaignPolicy | None, refs_dispatch: pr.AutoDispatch | None) -> list[DomainEvent]:
    cmd = pr.ReportProblem(command_id=cid(), problem_id=uuid4(), campaign_id=CAMPAIGN, category="garbage_dumping",
                           place_id=PLACE, description="垃圾堆积", evidence=(PHOTO,), source="hotline")
    refs = pr.ReportRefs(place_exists=True, policy=policy, known_evidence=UPLOADED, dispatch=refs_dispatch)
    emitted = pr.report_problem(None, cmd, ctx(SUPERVISOR, T0), refs)
    assert isinstance(emitted, list)
    return emitted


def test_one_lead_unit_is_unambiguous_two_or_none_are_not() -> None:
    """The matrix names the unit when the place has exactly one lead; none or two leave it to HQ."""
    assert unambiguous_route("garbage_dumping", PLACE, ON, T0, dispatch(UNIT_A)) == (UNIT_A, "matrix")
    assert unambiguous_route("garbage_dumping", PLACE, ON, T0, dispatch()) is None
    assert unambiguous_route("garbage_dumping", PLACE, ON, T0, dispatch(UNIT_A, UNIT_B)) is None


def test_a_category_route_names_its_department_whatever_the_matrix_says() -> None:
    """分类派遣 is unambiguous on its own: the category's department, even where the place has other leads."""
    routed = ON.model_copy(update={"routings": (CategoryRouting(
        effective_from=at("2025-01-01"), routes=(CategoryRoute(category="garbage_dumping", unit_id=UNIT_B),)),)})
    assert unambiguous_route("garbage_dumping", PLACE, routed, T0, dispatch(UNIT_A, UNIT_A)) == (UNIT_B,
                                                                                            "category_routing")


def test_a_report_is_handed_over_with_its_assignment_notice_when_the_policy_is_on() -> None:
    """Policy on: ProblemReported, ProblemAssigned (by 自动交办, deadline from now) and the 交办单, in one decision."""
    reported, assigned, notice = report(ON, dispatch(UNIT_A))
    assert isinstance(assigned, pr.ProblemAssigned) and assigned.unit_id == UNIT_A
    assert assigned.meta.actor == AUTO_ASSIGNER and assigned.deadline == CAL.add_working_days(T0, 3)
    assert isinstance(notice, NoticeIssued) and "城管局" in notice.text_zh


def test_with_the_policy_off_or_not_gathered_a_report_waits_for_hq() -> None:
    """Off (the default), or with nothing gathered for dispatch, a report is only reported."""
    assert [type(e).__name__ for e in report(None, dispatch(UNIT_A))] == ["ProblemReported"]
    assert [type(e).__name__ for e in report(ON, None)] == ["ProblemReported"]
