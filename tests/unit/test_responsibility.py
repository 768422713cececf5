"""Responsibility (责任分工/包保) rules, Indicator/Task definitions: given events, when a command, then events or an error."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TypeVar
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from domain import tasks as tk
from domain.structure import indicator as ind
from domain.kernel.base import Actor, CommandContext, Conflict, DomainError, DomainEvent, Meta, NotFound, fold
from domain.structure.responsibility import (
    AssignRefs, AssignResponsibility, PartyKind, ResponsibilityAssigned, ResponsibilityEnded, ResponsibilityRevoked,
    RevokeResponsibility, Role, Subject, assign_responsibility, new_assignment_id, responsibility_id, revoke_responsibility,
)
from domain.structure.indicator import Indicator
from domain.structure.responsibility import Responsibility
from domain.tasks import Task
from infra.commands import HANDLERS, Reader
from infra.commands.responsibility import subject
from infra.commands.tasks import gather_define  # registers the task handlers (DefineTask's roles)

pytestmark = pytest.mark.unit

S = TypeVar("S")
T0 = datetime(2021, 12, 14, 1, 0, tzinfo=timezone.utc)
CAMPAIGN = uuid4()
PLACE = uuid4()
SCOPE_REF = responsibility_id(CAMPAIGN, "place", PLACE)
UNIT_A, UNIT_B, UNIT_C = uuid4(), uuid4(), uuid4()
HERE = Subject(campaign_id=CAMPAIGN)
OK = AssignRefs(scope=HERE, party=HERE)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def ctx(now: datetime = T0, command_id: str = "c") -> CommandContext:
    return CommandContext(meta=Meta(actor=Actor(role="hq_office"), occurred_at=now, recorded_at=now,
                                    correlation_id=uuid4(), command_id=command_id, campaign_id=CAMPAIGN))


def assign(party: UUID = UNIT_A, role: Role = "lead", start: datetime | None = None, command_id: str | None = None,
           party_kind: PartyKind = "unit") -> AssignResponsibility:
    return AssignResponsibility(command_id=command_id or str(uuid4()), campaign_id=CAMPAIGN, scope_kind="place",
                                scope_id=PLACE, party_kind=party_kind, party_id=party, role=role, effective_from=start)


def revoke(assignment_id: UUID, end: datetime | None = None, reason: str = "单位职能调整") -> RevokeResponsibility:
    return RevokeResponsibility(command_id=str(uuid4()), campaign_id=CAMPAIGN, scope_kind="place", scope_id=PLACE,
                                assignment_id=assignment_id, reason=reason, effective_to=end)


def history(*commands: AssignResponsibility | RevokeResponsibility) -> list[DomainEvent]:
    """The events a sequence of accepted commands leaves behind (each decided on the state so far)."""
    events: list[DomainEvent] = []
    for cmd in commands:
        events += decide(events, cmd)
    return events


def decide(events: list[DomainEvent], cmd: AssignResponsibility | RevokeResponsibility,
           refs: AssignRefs = OK, now: datetime = T0) -> list[DomainEvent]:
    state = fold("responsibility", events, Responsibility) if events else None
    if isinstance(cmd, AssignResponsibility):
        return assign_responsibility(state, cmd, ctx(now, cmd.command_id), refs)
    return revoke_responsibility(state, cmd, ctx(now, cmd.command_id))


def assigned_id(events: list[DomainEvent], party: UUID) -> UUID:
    return next(e.assignment_id for e in events if isinstance(e, ResponsibilityAssigned) and e.party_id == party)


def test_a_first_assignment_starts_now_under_the_scope_aggregate() -> None:
    """Without effective_from an assignment starts at ctx.now, under the scope's derived aggregate id."""
    cmd = assign()
    (event,) = decide([], cmd, now=day(1))
    assert isinstance(event, ResponsibilityAssigned)
    assert event.scope_ref_id == SCOPE_REF and event.aggregate_id == SCOPE_REF
    assert event.effective_from == day(1) and event.role == "lead" and event.party_id == UNIT_A


def test_a_retried_command_derives_the_same_assignment_id() -> None:
    """Deciding the same command twice yields the same assignment id (idempotent retries agree)."""
    cmd = assign(command_id="retry-me")
    first, second = decide([], cmd)[0], decide([], cmd)[0]
    assert isinstance(first, ResponsibilityAssigned) and isinstance(second, ResponsibilityAssigned)
    assert first.assignment_id == second.assignment_id == new_assignment_id(SCOPE_REF, "retry-me")


def test_a_new_lead_ends_the_current_lead_at_its_own_start_in_one_decision() -> None:
    """Assigning lead B while A leads ends A at B's effective_from (superseded) and assigns B, together."""
    past = history(assign(UNIT_A, start=day(0)))
    events = decide(past, assign(UNIT_B, start=day(10)))
    assert [type(e) for e in events] == [ResponsibilityEnded, ResponsibilityAssigned]
    ended, assigned = events
    assert isinstance(ended, ResponsibilityEnded) and isinstance(assigned, ResponsibilityAssigned)
    assert ended.assignment_id == assigned_id(past, UNIT_A)
    assert ended.effective_to == day(10) and ended.reason == "superseded"
    lead = fold("responsibility", past + events, Responsibility).current_lead
    assert lead is not None and lead.party_id == UNIT_B


def test_a_new_lead_may_not_start_before_the_current_lead() -> None:
    """A lead backdated before the current lead's start is refused (422 lead_backdated)."""
    past = history(assign(UNIT_A, start=day(5)))
    with pytest.raises(DomainError) as err:
        decide(past, assign(UNIT_B, start=day(4)))
    assert err.value.code == "lead_backdated" and err.value.status == 422


def test_a_new_lead_may_start_at_the_same_instant_as_the_current_lead() -> None:
    """A lead starting exactly when the current one started replaces it (the old interval is empty)."""
    past = history(assign(UNIT_A, start=day(5)))
    events = decide(past, assign(UNIT_B, start=day(5)))
    assert isinstance(events[0], ResponsibilityEnded) and events[0].effective_to == day(5)


def test_a_new_lead_may_not_overlap_a_revoked_former_lead() -> None:
    """After lead A was revoked at day 8, a new lead may not start at day 7 (two leads at once in history)."""
    past = history(assign(UNIT_A, start=day(0)))
    past += decide(past, revoke(assigned_id(past, UNIT_A), end=day(8)))
    with pytest.raises(DomainError) as err:
        decide(past, assign(UNIT_B, start=day(7)))
    assert err.value.code == "lead_backdated"
    assert isinstance(decide(past, assign(UNIT_B, start=day(8)))[0], ResponsibilityAssigned)


def test_co_units_and_bao_bao_do_not_touch_the_lead() -> None:
    """Co-units (配合) and 包保人 add alongside the lead; no one's assignment ends."""
    past = history(assign(UNIT_A), assign(UNIT_B, role="co"), assign(UNIT_C, role="co"))
    events = decide(past, assign(uuid4(), role="bao_bao", party_kind="person"))
    assert [type(e) for e in events] == [ResponsibilityAssigned]
    assert all(a.in_force for a in fold("responsibility", past + events, Responsibility).assignments)


def test_the_same_party_in_the_same_role_in_force_is_a_conflict() -> None:
    """Assigning a unit again in the role it already holds is 409 already_assigned."""
    past = history(assign(UNIT_A, role="co"))
    with pytest.raises(Conflict) as err:
        decide(past, assign(UNIT_A, role="co"))
    assert err.value.code == "already_assigned" and err.value.status == 409


def test_the_current_lead_assigned_lead_again_is_a_conflict() -> None:
    """Re-assigning the sitting lead as lead is 409, not a self-supersession."""
    past = history(assign(UNIT_A))
    with pytest.raises(Conflict):
        decide(past, assign(UNIT_A, start=day(3)))


def test_the_same_party_may_hold_another_role() -> None:
    """A unit that is co may also be 包保 on the same scope."""
    past = history(assign(UNIT_A, role="co"))
    assert decide(past, assign(UNIT_A, role="bao_bao"))


def test_a_party_may_be_assigned_again_after_its_assignment_ended() -> None:
    """A former lead superseded at day 10 may lead again from day 12."""
    past = history(assign(UNIT_A, start=day(0)), assign(UNIT_B, start=day(10)))
    events = decide(past, assign(UNIT_A, start=day(12)))
    assert isinstance(events[-1], ResponsibilityAssigned) and events[-1].party_id == UNIT_A


@pytest.mark.parametrize("refs, code, status", [
    (AssignRefs(scope=None, party=HERE), "scope_not_found", 404),
    (AssignRefs(scope=HERE, party=None), "party_not_found", 404),
    (AssignRefs(scope=Subject(campaign_id=uuid4()), party=HERE), "wrong_campaign", 422),
    (AssignRefs(scope=HERE, party=Subject(campaign_id=uuid4())), "wrong_campaign", 422),
    (AssignRefs(scope=Subject(campaign_id=CAMPAIGN, retired=True), party=HERE), "scope_retired", 422),
    (AssignRefs(scope=HERE, party=Subject(campaign_id=CAMPAIGN, retired=True)), "party_retired", 422),
])
def test_scope_and_party_must_exist_in_the_campaign_and_be_active(refs: AssignRefs, code: str, status: int) -> None:
    """A missing, foreign-campaign or retired scope or party refuses the assignment with a typed error."""
    with pytest.raises(DomainError) as err:
        decide([], assign(), refs)
    assert (err.value.code, err.value.status) == (code, status)


@pytest.mark.parametrize("field, value", [("scope_kind", "grid"), ("party_kind", "leader"), ("role", "boss")])
def test_unknown_scope_kinds_party_kinds_and_roles_are_invalid(field: str, value: str) -> None:
    """Only place/task/indicator scopes, unit/person parties and lead/co/bao_bao roles validate."""
    data = assign().model_dump() | {field: value}
    with pytest.raises(ValidationError):
        AssignResponsibility(**data)


def test_revoking_an_assignment_in_force_records_reason_and_end() -> None:
    """Revoke ends the assignment at effective_to (default now) with the reason; the lead seat is free."""
    past = history(assign(UNIT_A, start=day(0)))
    (event,) = decide(past, revoke(assigned_id(past, UNIT_A), reason="  职能调整 "), now=day(4))
    assert isinstance(event, ResponsibilityRevoked)
    assert event.effective_to == day(4) and event.reason == "职能调整"
    assert fold("responsibility", past + [event], Responsibility).current_lead is None


def test_revoking_an_unknown_assignment_is_not_found() -> None:
    """An assignment id that the scope never had is 404 (also on a scope with no history)."""
    past = history(assign(UNIT_A))
    for events in (past, []):
        with pytest.raises(NotFound) as err:
            decide(events, revoke(uuid4()))
        assert err.value.code == "assignment_not_found"


def test_revoking_an_ended_assignment_is_refused() -> None:
    """A superseded (or already revoked) assignment is no longer in force: 422 assignment_not_in_force."""
    past = history(assign(UNIT_A, start=day(0)), assign(UNIT_B, start=day(2)))
    with pytest.raises(DomainError) as err:
        decide(past, revoke(assigned_id(past, UNIT_A)))
    assert err.value.code == "assignment_not_in_force" and err.value.status == 422


def test_an_assignment_cannot_end_before_it_starts() -> None:
    """effective_to before effective_from is refused (422 end_before_start)."""
    past = history(assign(UNIT_A, start=day(5)))
    with pytest.raises(DomainError) as err:
        decide(past, revoke(assigned_id(past, UNIT_A), end=day(4)))
    assert err.value.code == "end_before_start"


@pytest.mark.parametrize("reason", ["", "   ", "很" * 501])
def test_a_revocation_needs_a_reason_of_1_to_500_characters(reason: str) -> None:
    """An empty, blank or over-long reason fails validation at the edge."""
    with pytest.raises(ValidationError):
        revoke(uuid4(), reason=reason)


def test_naive_times_are_refused_at_the_edge() -> None:
    """effective_from without a time zone is invalid (instants are compared across zones)."""
    with pytest.raises(ValidationError):
        assign(start=datetime(2021, 12, 20))


def test_only_admin_and_hq_office_may_assign_or_revoke() -> None:
    """Both commands are registered for the admin and hq_office roles only."""
    assert HANDLERS[tk.DefineTask].gather is gather_define
    for cmd in (AssignResponsibility, RevokeResponsibility, ind.DefineIndicator, tk.DefineTask):
        assert HANDLERS[cmd].roles == frozenset({"admin", "hq_office"})


class FakeReader(Reader):
    def __init__(self, states: dict[UUID, object]) -> None:
        self.states = states

    def get(self, kind: str, aggregate_id: UUID, state_type: type[S]) -> S | None:
        state = self.states.get(aggregate_id)
        return state if isinstance(state, state_type) else None


def test_an_id_of_another_kind_is_not_a_party() -> None:
    """An indicator's id offered as a unit party gathers as 'not found', not as a unit."""
    reader = FakeReader({IND: ind.Indicator(indicator_id=IND, campaign_id=CAMPAIGN, code="1", name="x", parent_id=None)})
    assert subject(reader, "unit", IND) is None
    assert subject(reader, "indicator", IND) == Subject(campaign_id=CAMPAIGN)


leads = st.lists(st.tuples(st.sampled_from(["assign", "revoke"]), st.integers(0, 40), st.integers(0, 3)), max_size=25)


@settings(max_examples=150, deadline=None)
@given(leads)
def test_lead_intervals_never_overlap(steps: list[tuple[str, int, int]]) -> None:
    """Whatever lead assignments and revocations are tried, the accepted leads' intervals are disjoint."""
    events: list[DomainEvent] = []
    parties = [UNIT_A, UNIT_B, UNIT_C, uuid4()]
    for action, at, who in steps:
        state = fold("responsibility", events, Responsibility) if events else None
        try:
            if action == "assign":
                events += decide(events, assign(parties[who], start=day(at)))
            elif state is not None and state.current_lead is not None:
                events += decide(events, revoke(state.current_lead.assignment_id, end=day(at)))
        except DomainError:
            continue
    if not events:
        return
    spans = sorted((a.effective_from, a.effective_to or datetime.max.replace(tzinfo=timezone.utc))
                   for a in fold("responsibility", events, Responsibility).assignments)
    assert all(end <= nxt_start for (_, end), (nxt_start, _) in zip(spans, spans[1:], strict=False))


IND, TASK = uuid4(), uuid4()


def define_indicator(parent: UUID | None = None, indicator_id: UUID = IND) -> ind.DefineIndicator:
    return ind.DefineIndicator(command_id="d", indicator_id=indicator_id, campaign_id=CAMPAIGN, code="3.2",
                               name="背街小巷环境卫生", parent_id=parent)


def test_an_indicator_is_defined_once() -> None:
    """Defining an indicator records it; defining the same id again is 409 indicator_exists."""
    (event,) = ind.define_indicator(None, define_indicator(), ctx(), ind.IndicatorRefs(campaign_exists=True))
    state = fold("indicator", [event], Indicator)
    assert state.name == "背街小巷环境卫生" and state.campaign_id == CAMPAIGN
    with pytest.raises(Conflict):
        ind.define_indicator(state, define_indicator(), ctx(), ind.IndicatorRefs(campaign_exists=True))


def test_an_indicator_needs_its_campaign_and_a_parent_of_the_same_campaign() -> None:
    """No campaign → 404; a named parent missing → 404; a parent from another campaign → 422 wrong_campaign."""
    other = ind.Indicator(indicator_id=uuid4(), campaign_id=uuid4(), code="3", name="p", parent_id=None)
    cases = [(ind.IndicatorRefs(campaign_exists=False), None, "campaign_not_found"),
             (ind.IndicatorRefs(campaign_exists=True), uuid4(), "indicator_not_found"),
             (ind.IndicatorRefs(campaign_exists=True, parent=other), other.indicator_id, "wrong_campaign")]
    for refs, parent, code in cases:
        with pytest.raises(DomainError) as err:
            ind.define_indicator(None, define_indicator(parent), ctx(), refs)
        assert err.value.code == code


def test_a_task_may_derive_from_an_indicator_of_its_campaign() -> None:
    """A task under an indicator of its campaign is defined; an unknown indicator is 404; redefinition 409."""
    parent = ind.Indicator(indicator_id=IND, campaign_id=CAMPAIGN, code="3", name="p", parent_id=None)
    cmd = tk.DefineTask(command_id="t", task_id=TASK, campaign_id=CAMPAIGN, indicator_id=IND, name="清理小广告")
    (event,) = tk.define_task(None, cmd, ctx(), tk.TaskRefs(campaign_exists=True, indicator=parent))
    assert fold("task", [event], Task).indicator_id == IND
    with pytest.raises(NotFound):
        tk.define_task(None, cmd, ctx(), tk.TaskRefs(campaign_exists=True))
    with pytest.raises(Conflict):
        tk.define_task(fold("task", [event], Task), cmd, ctx(), tk.TaskRefs(campaign_exists=True, indicator=parent))


def test_loading_an_id_of_another_kind_is_a_conflict_not_a_crash() -> None:
    """Folding a task's history as a responsibility raises 409 id_kind_mismatch."""
    cmd = tk.DefineTask(command_id="t", task_id=TASK, campaign_id=CAMPAIGN, name="清理小广告")
    events = tk.define_task(None, cmd, ctx(), tk.TaskRefs(campaign_exists=True))
    with pytest.raises(Conflict) as err:
        fold("responsibility", events, Responsibility)
    assert err.value.code == "id_kind_mismatch"
