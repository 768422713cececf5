"""Accountability cases (问责) — and the basis they share with summons (约谈, `domain.consequences.summons`).

Both rest on a basis: references (kind + id) to the problems, notices, bulletins and escalation
steps that led there — references, not copies. The system (escalation level 3/4, rankings) may
only propose. HQ office and discipline bodies (纪委) open cases; measures and appeal decisions are
taken only by `discipline` (纪委监委) or `hq_leader` (总指挥长) — `admin` is a technical operator
and decides nothing, and auditors (督查室/审计) read every case but write none. The role groups
are in `domain.kernel.roles`.

Case: proposed → open → decided → [appealed → appeal_decided] → closed; proposed → declined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from domain.kernel.base import (
    Actor, Command, CommandContext, Conflict, DomainError, DomainEvent, Forbidden, Frozen, NotFound, UnhandledEvent,
    derived_id, evolver,
)
from domain.escalation.notice import Party
from domain.kernel.roles import (
    CASE_CLOSER_ROLES, CASE_DECIDER_ROLES, CASE_OPENER_ROLES, PROPOSER_ROLES, ensure_may_write, ensure_role,
)
from domain.escalation.work_item import ItemKindCode
from domain.kernel.text import LongText, Note

CASE = "accountability_case"

Text = LongText  # a reason, a basis, a decision: up to 4000 characters
Source = Literal["escalation", "ranking", "manual"]
Measure = Literal["public_criticism", "written_self_criticism", "admonishment", "organisational_handling",
                  "referral_to_discipline"]
MEASURE_NAMES_ZH: dict[str, str] = {
    "public_criticism": "通报批评", "written_self_criticism": "责令书面检查", "admonishment": "诫勉谈话",
    "organisational_handling": "组织处理", "referral_to_discipline": "移送纪检监察机关",
}


class BasisRef(Frozen):
    """One piece of the basis (依据): a reference to a problem, notice, bulletin, escalation step…"""

    kind: ItemKindCode
    id: UUID


Basis = Annotated[tuple[BasisRef, ...], Field(min_length=1, max_length=500)]


def case_id_for(*key: object) -> UUID:
    return derived_id(CASE, *key)


# --- accountability cases (问责) --------------------------------------------------------------------


class _CaseEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind = CASE
    id_field = "case_id"
    case_id: UUID


class AccountabilityProposed(_CaseEvent):
    """问责 was proposed against a unit or person, with its basis; people decide whether to open it."""

    campaign_id: UUID
    subject: Party
    reason_zh: Text
    basis: Basis
    source: Source


class AccountabilityProposalDeclined(_CaseEvent):
    """HQ or discipline declined the proposal (不予立案), with the reason."""

    reason: Text


class AccountabilityOpened(_CaseEvent):
    """A person opened the case (立案) — from a proposal, or directly with subject and basis."""

    campaign_id: UUID
    subject: Party
    reason_zh: Text
    basis: tuple[BasisRef, ...] = ()


class MeasureDecided(_CaseEvent):
    """An authorised person decided the measures (问责措施)."""

    measures: tuple[Measure, ...] = Field(min_length=1)
    reason_zh: Text


class AppealFiled(_CaseEvent):
    """The subject appealed (申诉) against the measures."""

    by_person_id: UUID
    reason: Text


class AppealDecided(_CaseEvent):
    """The appeal was decided: upheld (维持), overturned (撤销) or modified (变更, with the new measures)."""

    outcome: Literal["upheld", "overturned", "modified"]
    measures: tuple[Measure, ...] = ()
    reason_zh: Text


class AccountabilityClosed(_CaseEvent):
    """The case was closed (结案)."""

    note: str | None = None


CaseStatus = Literal["proposed", "declined", "open", "decided", "appealed", "appeal_decided", "closed"]


class AccountabilityCase(Frozen):
    case_id: UUID
    campaign_id: UUID
    subject: Party
    reason_zh: str
    basis: tuple[BasisRef, ...]
    source: Source
    status: CaseStatus
    opened_by: UUID | None = None
    measures: tuple[Measure, ...] = ()
    appeal_by: UUID | None = None
    appeal_outcome: str | None = None


@evolver(CASE)
def evolve_case(state: AccountabilityCase | None, event: DomainEvent) -> AccountabilityCase:
    if state is None:
        assert isinstance(event, (AccountabilityProposed, AccountabilityOpened))
        source = event.source if isinstance(event, AccountabilityProposed) else "manual"
        state = AccountabilityCase(case_id=event.case_id, campaign_id=event.campaign_id, subject=event.subject,
                                   reason_zh=event.reason_zh, basis=event.basis, source=source, status="proposed")
        if isinstance(event, AccountabilityProposed):
            return state
    return state.model_copy(update=_case_update(state, event))


def _case_update(s: AccountabilityCase, e: DomainEvent) -> dict[str, object]:
    if isinstance(e, AccountabilityOpened):
        extra = tuple(b for b in e.basis if b not in s.basis)
        return {"status": "open", "opened_by": e.meta.actor.person_id, "basis": (*s.basis, *extra)}
    if isinstance(e, AccountabilityProposalDeclined):
        return {"status": "declined"}
    if isinstance(e, MeasureDecided):
        return {"status": "decided", "measures": e.measures}
    if isinstance(e, AppealFiled):
        return {"status": "appealed", "appeal_by": e.by_person_id}
    if isinstance(e, AppealDecided):
        measures = {"upheld": s.measures, "overturned": (), "modified": e.measures}[e.outcome]
        return {"status": "appeal_decided", "appeal_outcome": e.outcome, "measures": measures}
    if isinstance(e, AccountabilityClosed):
        return {"status": "closed"}
    raise UnhandledEvent(CASE, e)


class ProposeAccountability(Command):
    """Propose 问责 against a unit or person (提议问责), with its basis."""

    case_id: UUID
    campaign_id: UUID
    subject: Party
    reason_zh: Text
    basis: Basis
    source: Source = "manual"


class OpenAccountabilityCase(Command):
    """Open a case (立案): accept a proposal, or open directly with subject, reason and basis."""

    case_id: UUID
    campaign_id: UUID
    subject: Party | None = None
    reason_zh: Text | None = None
    basis: tuple[BasisRef, ...] = Field(default=(), max_length=500)


class DeclineAccountabilityProposal(Command):
    case_id: UUID
    reason: Text


class DecideMeasures(Command):
    """Decide the measures of an open case (作出问责决定)."""

    case_id: UUID
    measures: tuple[Measure, ...] = Field(min_length=1, max_length=5)
    reason_zh: Text


class FileAppeal(Command):
    case_id: UUID
    reason: Text


class DecideAppeal(Command):
    case_id: UUID
    outcome: Literal["upheld", "overturned", "modified"]
    measures: tuple[Measure, ...] = Field(default=(), max_length=5)
    reason_zh: Text


class CloseAccountabilityCase(Command):
    case_id: UUID
    note: Note | None = None


@dataclass(frozen=True)
class CaseRefs:
    """What an appeal needs: the units the acting person belongs to (the subject may be a unit)."""

    actor_unit_ids: frozenset[UUID] = field(default_factory=frozenset)


def propose_accountability(state: AccountabilityCase | None, cmd: ProposeAccountability,
                           ctx: CommandContext) -> list[DomainEvent]:
    ensure_role(ctx.actor, PROPOSER_ROLES)
    if state is not None:
        raise Conflict("case_exists", "问责案件已存在", "accountability case already exists", case_id=str(cmd.case_id))
    return [AccountabilityProposed(meta=ctx.meta, **cmd.model_dump(exclude={"command_id", "occurred_at"}))]


def open_case(state: AccountabilityCase | None, cmd: OpenAccountabilityCase, ctx: CommandContext) -> list[DomainEvent]:
    _person_in(ctx.actor, CASE_OPENER_ROLES)
    if state is None:
        if cmd.subject is None or cmd.reason_zh is None or not cmd.basis:
            raise DomainError("case_basis_required", "直接立案须写明问责对象、事由和依据",
                              "opening a case directly needs its subject, reason and basis")
        return [AccountabilityOpened(meta=ctx.meta, case_id=cmd.case_id, campaign_id=cmd.campaign_id,
                                     subject=cmd.subject, reason_zh=cmd.reason_zh, basis=cmd.basis)]
    _case_in(state, {"proposed"})
    if cmd.subject is not None and cmd.subject != state.subject:
        raise DomainError("case_subject_mismatch", "立案对象与提议不一致", "the subject differs from the proposal")
    return [AccountabilityOpened(meta=ctx.meta, case_id=state.case_id, campaign_id=state.campaign_id,
                                 subject=state.subject, reason_zh=cmd.reason_zh or state.reason_zh, basis=cmd.basis)]


def decline_proposal(state: AccountabilityCase | None, cmd: DeclineAccountabilityProposal,
                     ctx: CommandContext) -> list[DomainEvent]:
    _person_in(ctx.actor, CASE_OPENER_ROLES)
    s = _case_in(_exists(state, cmd.case_id), {"proposed"})
    return [AccountabilityProposalDeclined(meta=ctx.meta, case_id=s.case_id, reason=cmd.reason)]


def decide_measures(state: AccountabilityCase | None, cmd: DecideMeasures, ctx: CommandContext) -> list[DomainEvent]:
    _person_in(ctx.actor, CASE_DECIDER_ROLES)
    s = _case_in(_exists(state, cmd.case_id), {"open"})
    return [MeasureDecided(meta=ctx.meta, case_id=s.case_id, measures=tuple(dict.fromkeys(cmd.measures)),
                           reason_zh=cmd.reason_zh)]


def file_appeal(state: AccountabilityCase | None, cmd: FileAppeal, ctx: CommandContext,
                refs: CaseRefs) -> list[DomainEvent]:
    ensure_may_write(ctx.actor)
    s = _exists(state, cmd.case_id)
    if not is_case_subject(s, ctx.actor, refs.actor_unit_ids) or ctx.actor.person_id is None:
        raise Forbidden("not_case_subject", "只有被问责对象可以申诉", "only the subject of the case may appeal",
                        case_id=str(s.case_id))
    if s.appeal_by is not None:
        raise Conflict("appeal_already_filed", "已提出过申诉", "an appeal was already filed", case_id=str(s.case_id))
    _case_in(s, {"decided"})
    return [AppealFiled(meta=ctx.meta, case_id=s.case_id, by_person_id=ctx.actor.person_id, reason=cmd.reason)]


def decide_appeal(state: AccountabilityCase | None, cmd: DecideAppeal, ctx: CommandContext) -> list[DomainEvent]:
    _person_in(ctx.actor, CASE_DECIDER_ROLES)
    s = _case_in(_exists(state, cmd.case_id), {"appealed"})
    if (cmd.outcome == "modified") != bool(cmd.measures):
        raise DomainError("appeal_measures_invalid", "仅“变更”决定须列明新的问责措施",
                          "new measures are given exactly when the outcome is modified")
    return [AppealDecided(meta=ctx.meta, case_id=s.case_id, outcome=cmd.outcome,
                          measures=tuple(dict.fromkeys(cmd.measures)), reason_zh=cmd.reason_zh)]


def close_case(state: AccountabilityCase | None, cmd: CloseAccountabilityCase, ctx: CommandContext) -> list[DomainEvent]:
    _person_in(ctx.actor, CASE_CLOSER_ROLES)
    s = _case_in(_exists(state, cmd.case_id), {"decided", "appeal_decided"})
    return [AccountabilityClosed(meta=ctx.meta, case_id=s.case_id, note=cmd.note)]


def is_case_subject(case: AccountabilityCase, actor: Actor, actor_unit_ids: frozenset[UUID]) -> bool:
    """The actor is the person the case is against, or a member of the unit it is against."""
    subject = case.subject
    if subject.party_kind == "person":
        return actor.person_id == subject.party_id
    return subject.party_id in actor_unit_ids


def _person_in(actor: Actor, roles: frozenset[str]) -> None:
    """People decide: the role must be allowed and the actor must be a person, not a process."""
    ensure_role(actor, roles)
    if actor.person_id is None:
        raise Forbidden("person_required", "此操作须由具体人员作出", "a person must take this decision", role=actor.role)


def _exists(state: AccountabilityCase | None, case_id: UUID) -> AccountabilityCase:
    if state is None:
        raise NotFound("case_not_found", "问责案件不存在", "accountability case not found", case_id=str(case_id))
    return state


def _case_in(state: AccountabilityCase, allowed: set[str]) -> AccountabilityCase:
    if state.status not in allowed:
        raise Conflict("invalid_case_state", "问责案件当前状态不允许此操作", "the case is not in a state allowing this",
                       status=state.status, allowed=sorted(allowed))
    return state
