"""Every 交办 issues a 交办单 to the unit in the same write, and the unit's 签收 of the problem acknowledges it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from domain import problem as pr
from domain.problem.assignment_notice import assignment_notice_id
from domain.escalation.notice import NoticeAcknowledged, NoticeIssued
from infra.bootstrap import System
from tests.support.problem_world import World, photo

pytestmark = pytest.mark.integration


def notice_events(system: System, notice_id: Any) -> list[Any]:
    return [s.event for s in system.app.history(notice_id)]


def test_assigning_a_problem_issues_one_assignment_notice_that_its_acknowledgement_signs(world: World) -> None:
    """交办 writes a 交办单 addressed to the lead unit with the place in its text; 签收 acknowledges it; a retry adds nothing."""
    pid = uuid4()
    world.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=world.campaign_id, category="sanitation",
               place_id=world["s1"], description="路面有垃圾堆积", evidence=(photo("before"),), source="hotline")
    assign = pr.AssignProblem(command_id=str(uuid4()), problem_id=pid)
    world.system.service.handle(assign, world.actors["hq"])
    world.system.service.handle(assign, world.actors["hq"])  # a retried delivery
    notice_id = assignment_notice_id(pid, world["unit_a"], 0)
    (issued,) = notice_events(world.system, notice_id)
    assert isinstance(issued, NoticeIssued) and issued.notice_kind == "assignment"
    assert [r.party_id for r in issued.recipients] == [world["unit_a"]]
    assert "交办单" in issued.text_zh and "路面有垃圾堆积" in issued.text_zh and "unit_a" in issued.text_zh
    assert issued.ack_due_at > issued.meta.recorded_at
    world.send("officer_a", pr.AcknowledgeProblem, problem_id=pid)
    issued_again, acked = notice_events(world.system, notice_id)
    assert isinstance(acked, NoticeAcknowledged) and acked.by_unit_id == world["unit_a"]
    assert acked.by_person_id == world.actors["officer_a"].person_id


def test_a_transfer_issues_a_new_assignment_notice_to_the_new_unit(world: World) -> None:
    """转办 by HQ hands the problem to another unit, which gets its own 交办单."""
    pid = uuid4()
    world.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=world.campaign_id, category="sanitation",
               place_id=world["s1"], description="绿化带被毁", evidence=(photo("b"),), source="hotline")
    world.send("hq", pr.AssignProblem, problem_id=pid)
    world.send("hq", pr.TransferProblem, problem_id=pid, to_unit_id=world["unit_b"], reason="属住建局职责")
    (issued,) = notice_events(world.system, assignment_notice_id(pid, world["unit_b"], 1))
    assert [r.party_id for r in issued.recipients] == [world["unit_b"]]
