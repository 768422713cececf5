"""Business-key idempotency (已记录): a repeat of a stored upload is already recorded; other content names what differs.

For any set of fields changed in a repeated log_visit or report_problem, the decision answers
`AlreadyRecorded` (pointing at where the first upload is stored) exactly when the set is empty, and
otherwise a Conflict whose `differing_fields` are exactly the changed ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st

from domain import problem as pr
from domain import visit as vi
from domain.kernel.base import Conflict, DomainEvent, fold
from domain.kernel.recorded import AlreadyRecorded, differing_fields
from domain.kernel.taxonomy import Severity
from domain.problem.state import Problem
from domain.visit import Visit
from tests.unit.problem_kit import CAMPAIGN, PLACE, SUPERVISOR, T0, cid, ctx

pytestmark = pytest.mark.unit

ALLEY = uuid4()
FIELD_TIME = T0 - timedelta(hours=3)


def visit_content() -> dict[str, Any]:
    return {"visit_id": uuid4(), "campaign_id": CAMPAIGN, "place_id": PLACE, "participants": (SUPERVISOR.person_id,),
            "occurred_at": FIELD_TIME, "checklist": (vi.ChecklistResult(item="门前三包", result="fail"),),
            "findings": (vi.Finding(problem_id=uuid4(), category="garbage_dumping", description="垃圾堆放"),)}


# One other value for each field of an upload a client might get wrong on a retry.
VISIT_CHANGES: dict[str, Any] = {
    "place_id": ALLEY, "participants": (uuid4(),), "occurred_at": FIELD_TIME - timedelta(minutes=30),
    "visit_type": "inspection", "note": "复查", "checklist": (),
    "findings": (vi.Finding(problem_id=uuid4(), category="clutter", description="楼道堆物"),),
}


def refs() -> vi.VisitRefs:
    return vi.VisitRefs(known_place_ids=frozenset({PLACE, ALLEY}))


def logged(content: dict[str, Any]) -> Visit:
    """The visit as stored after its first upload."""
    events = vi.log_visit(None, vi.LogVisit(command_id=cid(), **content), ctx(SUPERVISOR, T0, FIELD_TIME), refs())
    stored = fold("visit", [e for e in events if isinstance(e, vi.VisitLogged)], Visit)
    assert stored is not None
    return stored


def decided(decide: Any, state: object, cmd: Any, *extra: Any) -> list[DomainEvent] | Conflict:
    try:
        return decide(state, cmd, ctx(SUPERVISOR, T0 + timedelta(minutes=5), FIELD_TIME), *extra)
    except Conflict as conflict:
        return conflict


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(VISIT_CHANGES))))
def test_a_repeated_visit_is_already_recorded_exactly_when_no_field_differs(changed: set[str]) -> None:
    """Same content under a new command_id: AlreadyRecorded at the visit; else visit_exists naming the changed fields."""
    content = visit_content()
    state = logged(content)
    repeat = vi.LogVisit(command_id=cid(), **{**content, **{name: VISIT_CHANGES[name] for name in changed}})
    answer = decided(vi.log_visit, state, repeat, refs())
    if not changed:
        assert isinstance(answer, AlreadyRecorded)
        assert (answer.aggregate_id, answer.version, len(answer)) == (content["visit_id"], 1, 0)
    else:
        assert isinstance(answer, Conflict) and answer.code == "visit_exists"
        assert answer.details["differing_fields"] == sorted(changed)


REPORT_CHANGES: dict[str, Any] = {
    "category": "clutter", "severity": Severity.SERIOUS, "place_id": ALLEY, "description": "另一处",
    "source": "assessment",
}


def reported(content: dict[str, Any]) -> Problem:
    cmd = pr.ReportProblem(command_id=cid(), **content)
    events = pr.report_problem(None, cmd, ctx(SUPERVISOR, T0), pr.ReportRefs(place_exists=True))
    stored = fold("problem", events, Problem)
    assert stored is not None
    return stored


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(sorted(REPORT_CHANGES))))
def test_a_repeated_report_is_already_recorded_exactly_when_no_field_differs(changed: set[str]) -> None:
    """Same report under a new command_id: AlreadyRecorded at the problem; else problem_exists naming the changes."""
    content = {"problem_id": uuid4(), "campaign_id": CAMPAIGN, "category": "garbage_dumping", "place_id": PLACE,
               "description": "垃圾堆放", "source": "hotline"}
    state = reported(content)
    repeat = pr.ReportProblem(command_id=cid(), **{**content, **{name: REPORT_CHANGES[name] for name in changed}})
    answer = decided(pr.report_problem, state, repeat, pr.ReportRefs(place_exists=True))
    if not changed:
        assert isinstance(answer, AlreadyRecorded) and answer.aggregate_id == content["problem_id"]
    else:
        assert isinstance(answer, Conflict) and answer.code == "problem_exists"
        assert answer.details["differing_fields"] == sorted(changed)


def test_a_finding_added_again_with_another_category_names_the_field_inside_the_finding() -> None:
    """The same problem id added to an open visit with another category is a conflict naming finding.category."""
    opened = vi.OpenVisit(command_id=cid(), **{k: v for k, v in visit_content().items() if k not in ("checklist", "findings")})
    state = fold("visit", vi.open_visit(None, opened, ctx(SUPERVISOR, T0, FIELD_TIME), refs()), Visit)
    finding = vi.Finding(problem_id=uuid4(), category="garbage_dumping", description="垃圾堆放")
    add = vi.AddFinding(command_id=cid(), visit_id=opened.visit_id, finding=finding)
    state = fold("visit", [e for e in vi.add_finding(state, add, ctx(SUPERVISOR, T0), refs())
                           if isinstance(e, vi.FindingAdded)], Visit, state)
    again = decided(vi.add_finding, state, add.model_copy(update={"command_id": cid()}), refs())
    assert isinstance(again, AlreadyRecorded) and again.aggregate_id == finding.problem_id
    other = add.model_copy(update={"command_id": cid(), "finding": finding.model_copy(update={"category": "clutter"})})
    conflict = decided(vi.add_finding, state, other, refs())
    assert isinstance(conflict, Conflict) and conflict.details["differing_fields"] == ["finding.category"]


def test_differing_fields_names_nested_model_fields_and_whole_collections() -> None:
    """A changed sub-model is named field.subfield; a changed tuple or scalar by its own name; equal ones not at all."""
    a = vi.Finding(problem_id=UUID(int=1), category="garbage_dumping", description="垃圾")
    b = a.model_copy(update={"description": "杂物", "severity": Severity.SERIOUS})

    class Holder(vi.Frozen):
        finding: vi.Finding
        tags: tuple[str, ...] = ()
        note: str | None = None

    assert differing_fields(Holder(finding=a, tags=("x",)), Holder(finding=b, tags=("y",), note="n"),
                            Holder.model_fields) == ["finding.description", "finding.severity", "note", "tags"]
    assert differing_fields(Holder(finding=a), Holder(finding=a), Holder.model_fields) == []
