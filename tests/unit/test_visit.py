"""Supervision visits (督导/督查): one-upload logging, offline retries, late uploads, the open/add/close flow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import problem as pr
from domain import visit as vi
from domain.kernel.base import Conflict, DomainError, DomainEvent, Forbidden, NotFound, event_class, fold
from domain.problem.events import ProblemState
from domain.visit import Visit
from tests.unit.problem_kit import (
    CAL, CAMPAIGN, LEADER, OFFICER_A, PHOTO, PLACE, SUPERVISOR, UPLOADED, Life, at, cid, ctx, id_of,
)

pytestmark = pytest.mark.unit

ALLEY = uuid4()  # a back alley inside PLACE
FIELD_TIME = at("2025-09-19", "15:30")  # Friday afternoon, in the field
UPLOAD = at("2025-09-22", "15:30")  # uploaded three days later, Monday


def finding(category: str = "garbage_dumping", place_id: UUID | None = None, **kw: Any) -> vi.Finding:
    return vi.Finding(problem_id=kw.pop("problem_id", uuid4()), category=category, description="垃圾堆放",
                      evidence=(PHOTO,), place_id=place_id, **kw)


def log(findings: tuple[vi.Finding, ...] = (), visit_id: UUID | None = None, **kw: Any) -> vi.LogVisit:
    fields: dict[str, Any] = {"campaign_id": CAMPAIGN, "place_id": PLACE, "participants": (SUPERVISOR.person_id,),
                              "occurred_at": FIELD_TIME, "checklist": (vi.ChecklistResult(item="门前三包", result="fail"),),
                              "findings": findings, **kw}
    return vi.LogVisit(command_id=cid(), visit_id=visit_id or uuid4(), **fields)


def refs(**kw: Any) -> vi.VisitRefs:
    return vi.VisitRefs(known_place_ids=frozenset({PLACE, ALLEY}), **{"known_evidence": UPLOADED, **kw})


def logged(cmd: vi.LogVisit, state: vi.Visit | None = None, now: Any = UPLOAD, **kw: Any) -> list[DomainEvent]:
    return vi.log_visit(state, cmd, ctx(SUPERVISOR, now, occurred_at=cmd.occurred_at), refs(**kw))


def of(events: list[DomainEvent], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def test_a_visit_logged_in_one_upload_reports_each_finding_as_a_problem() -> None:
    """VisitLogged plus one ProblemReported per finding, sourced from the visit, at the finding's own place."""
    cmd = log((finding(), finding("clutter", place_id=ALLEY)))
    events = logged(cmd)
    (visit,), problems = of(events, vi.VisitLogged), of(events, pr.ProblemReported)
    assert visit.visit_id == cmd.visit_id and len(visit.findings) == 2
    assert [(p.source, p.visit_id, p.place_id) for p in problems] == [
        ("visit", cmd.visit_id, PLACE), ("visit", cmd.visit_id, ALLEY)]
    assert [p.problem_id for p in problems] == [f.problem_id for f in cmd.findings]
    assert all(e.meta.campaign_id == CAMPAIGN for e in events)


def test_an_offline_visit_uploaded_twice_is_one_visit() -> None:
    """The retried upload of the same visit (new command id, same content) emits nothing."""
    cmd = log((finding(),))
    state = fold("visit", of(logged(cmd), vi.VisitLogged), Visit)
    retry = cmd.model_copy(update={"command_id": cid()})
    assert logged(retry, state, now=UPLOAD + timedelta(minutes=5)) == []


def test_the_same_visit_id_with_other_content_is_a_conflict() -> None:
    """Another upload under a used visit id with different findings is refused with visit_exists."""
    cmd = log((finding(),))
    state = fold("visit", of(logged(cmd), vi.VisitLogged), Visit)
    with pytest.raises(Conflict) as raised:
        logged(cmd.model_copy(update={"findings": (finding(),)}), state)
    assert raised.value.code == "visit_exists"


def test_a_visit_uploaded_three_days_late_keeps_its_field_time_and_the_deadline_counts_from_assignment() -> None:
    """Field time Fri 15:30 is kept as occurred_at; 交办 on Monday at 16:00 gets a deadline 3 working days later."""
    cmd = log((finding(),))
    events = logged(cmd)
    visit = fold("visit", of(events, vi.VisitLogged), Visit)
    assert (visit.occurred_at, visit.recorded_at) == (FIELD_TIME, UPLOAD)
    problem_id = cmd.findings[0].problem_id
    life = Life(problem_id=problem_id, now=UPLOAD + timedelta(minutes=30))
    life.events = [e for e in events if e.aggregate_id == problem_id]
    assert life.state.found_at == FIELD_TIME and life.state.reported_at == UPLOAD
    life.assign()
    assert life.state.deadline == at("2025-09-25", "16:00") == CAL.add_working_days(life.now, 3)


def test_a_visit_in_the_future_is_refused() -> None:
    """occurred_at more than the allowed clock skew after now is refused with occurred_in_future."""
    with pytest.raises(DomainError) as raised:
        logged(log(occurred_at=UPLOAD + timedelta(hours=1)))
    assert raised.value.code == "occurred_in_future"
    assert logged(log(occurred_at=UPLOAD + timedelta(minutes=5)))


def test_a_visit_naming_an_unknown_place_is_refused_whole() -> None:
    """An unknown finding place is a 404 naming it, and no event at all is emitted."""
    nowhere = uuid4()
    with pytest.raises(NotFound) as raised:
        logged(log((finding(), finding(place_id=nowhere))))
    assert raised.value.details["place_ids"] == [str(nowhere)]


def test_problem_ids_must_be_new_and_distinct() -> None:
    """A repeated id within one upload is refused; an id already used by another problem is a 409."""
    same = uuid4()
    with pytest.raises(DomainError, match="twice"):
        logged(log((finding(problem_id=same), finding("clutter", problem_id=same))))
    with pytest.raises(Conflict):
        logged(log((finding(problem_id=same),)), existing_problem_ids=frozenset({same}))


def test_only_supervisors_leaders_and_hq_log_visits() -> None:
    """A unit officer cannot log a visit; a liaison leader can."""
    cmd = log()
    with pytest.raises(Forbidden):
        vi.log_visit(None, cmd, ctx(OFFICER_A, UPLOAD), refs())
    assert vi.log_visit(None, cmd, ctx(LEADER, UPLOAD), refs())


def test_findings_are_checked_for_duplicates_and_relapse() -> None:
    """Same place and category twice in one upload flags the second; a recently closed match links a relapse."""
    first, second, original = finding(), finding(), uuid4()
    closed = pr.ProblemMatches(recently_closed_matches=(pr.ClosedMatch(problem_id=original,
                                                                        closed_at=at("2025-09-01")),))
    events = logged(log((first, second, finding("sewage"))), matches={(PLACE, "sewage"): closed})
    reports = {e.problem_id: e for e in of(events, pr.ProblemReported)}
    assert reports[first.problem_id].likely_duplicate_of == ()
    assert reports[second.problem_id].likely_duplicate_of == (first.problem_id,)
    (relapse,) = of(events, pr.RelapseRecorded)
    assert relapse.problem_id == original
    assert vi.finding_keys(log((first, finding("clutter", place_id=ALLEY)))) == {(PLACE, "garbage_dumping"),
                                                                                (ALLEY, "clutter")}


def test_the_open_add_close_flow_builds_the_same_visit() -> None:
    """OpenVisit, AddFinding twice (the second a retry), CloseVisit: one finding, one problem, closed with results."""
    visit_id, f = uuid4(), finding()
    opened = vi.open_visit(None, vi.OpenVisit(command_id=cid(), visit_id=visit_id, campaign_id=CAMPAIGN,
                                              place_id=PLACE, participants=(id_of(SUPERVISOR),),
                                              occurred_at=FIELD_TIME), ctx(SUPERVISOR, FIELD_TIME), refs())
    history: list[DomainEvent] = list(opened)
    add = vi.AddFinding(command_id=cid(), visit_id=visit_id, finding=f)
    emitted = vi.add_finding(fold("visit", history, Visit), add, ctx(SUPERVISOR, FIELD_TIME), refs())
    assert [type(e).__name__ for e in emitted] == ["FindingAdded", "ProblemReported"]
    history += of(emitted, vi.FindingAdded)
    assert vi.add_finding(fold("visit", history, Visit), add, ctx(SUPERVISOR, FIELD_TIME), refs()) == []
    close = vi.CloseVisit(command_id=cid(), visit_id=visit_id, checklist=(vi.ChecklistResult(item="绿化", result="pass"),))
    history += vi.close_visit(fold("visit", history, Visit), close, ctx(SUPERVISOR, FIELD_TIME + timedelta(hours=1)))
    visit = fold("visit", history, Visit)
    assert (visit.status, len(visit.findings), visit.checklist[0].item) == ("closed", 1, "绿化")


def test_a_closed_or_unknown_visit_takes_no_findings() -> None:
    """Adding to a closed visit is visit_closed; closing twice too; an unknown visit is not found."""
    cmd = log()
    state = fold("visit", logged(cmd), Visit)
    with pytest.raises(Conflict, match="closed"):
        vi.add_finding(state, vi.AddFinding(command_id=cid(), visit_id=cmd.visit_id, finding=finding()),
                       ctx(SUPERVISOR, UPLOAD), refs())
    with pytest.raises(Conflict):
        vi.close_visit(state, vi.CloseVisit(command_id=cid(), visit_id=cmd.visit_id), ctx(SUPERVISOR, UPLOAD))
    with pytest.raises(NotFound):
        vi.close_visit(None, vi.CloseVisit(command_id=cid(), visit_id=uuid4()), ctx(SUPERVISOR, UPLOAD))


def test_a_finding_added_with_another_content_under_its_id_is_a_conflict() -> None:
    """Re-adding a finding id with a different description is refused."""
    f = finding()
    cmd = vi.OpenVisit(command_id=cid(), visit_id=uuid4(), campaign_id=CAMPAIGN, place_id=PLACE,
                       participants=(id_of(SUPERVISOR),), occurred_at=FIELD_TIME)
    history = vi.open_visit(None, cmd, ctx(SUPERVISOR, FIELD_TIME), refs())
    history += of(vi.add_finding(fold("visit", history, Visit), vi.AddFinding(command_id=cid(), visit_id=cmd.visit_id,
                                                                       finding=f), ctx(SUPERVISOR, FIELD_TIME),
                                 refs()), vi.FindingAdded)
    changed = vi.AddFinding(command_id=cid(), visit_id=cmd.visit_id, finding=f.model_copy(update={"description": "别的"}))
    with pytest.raises(Conflict):
        vi.add_finding(fold("visit", history, Visit), changed, ctx(SUPERVISOR, FIELD_TIME), refs())


def test_visit_and_problem_events_survive_a_json_round_trip() -> None:
    """Every event of a logged visit and its problem's life reads back equal from its stored JSON form."""
    events = logged(log((finding(), finding("clutter"))))
    life = Life().report().assign().acknowledge().submit().reject().submit().verify().close()
    for e in events + life.events:
        assert event_class(e.event_name).model_validate(e.model_dump(mode="json")) == e
    assert life.state.state == ProblemState.CLOSED
