"""Problem (问题) commands and the references their decisions read.

Every lifecycle decision has the signature `decide(state, cmd, ctx, refs: ProblemRefs)` and is marked
`@decides(TheCommand)`; each command says beside its fields who may issue it, which `ProblemRefs`
fields its decision reads and which of its fields name other entities, so infra registers and
gathers by the command alone. Reporting takes `ReportRefs` (place, policy, matching problems).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, TypeVar
from uuid import UUID

from domain.kernel.base import Command, DomainEvent, Frozen
from domain.kernel.calendar import WorkCalendar
from domain.kernel.text import Text
from domain.policy.campaign import CampaignPolicy
from domain.problem.events import Evidence, EvidenceRef, Source
from domain.problem.state import Problem
from domain.kernel.taxonomy import CategoryCode, Severity


class NewProblem(Frozen):
    """The content of a reported problem (from a report or a visit finding)."""

    problem_id: UUID
    campaign_id: UUID
    category: CategoryCode
    severity: Severity = Severity.NORMAL
    place_id: UUID
    description: Text
    evidence: Evidence = ()
    source: Source
    visit_id: UUID | None = None


# What lifecycle decisions commonly read (see `ProblemCommand.reads`).
ACTOR_UNITS = frozenset({"actor_unit_ids"})
CLOCK = frozenset({"calendar", "policy"})


class ProblemCommand(Command):
    """A step of a problem's lifecycle. Beside its fields each one declares what the service needs to run it:
    `roles` (who may issue it), `reads` (the `ProblemRefs` fields its decision reads: infra gathers only those) and
    `references` (its fields naming other entities, field → kind: each must exist in the campaign). Its decision is
    marked `@decides(TheCommand)`; infra/commands/problem.py registers one handler per command from these."""

    abstract: ClassVar[bool] = True  # a base, not a command of its own
    roles: ClassVar[frozenset[str]]
    reads: ClassVar[frozenset[str]]
    references: ClassVar[Mapping[str, str]] = {}
    problem_id: UUID


class StepCommand(ProblemCommand):
    """A 交办, 签收 or 复查: HQ may enter one done on paper with its real time (补录) — `occurred_at` within the
    campaign's late-entry window and `late_entry_reason`; any other role's `occurred_at` is refused (422)."""

    abstract: ClassVar[bool] = True  # a base, not a command of its own
    late_entry_reason: Text | None = None  # 补录理由: required with occurred_at


# --- references -----------------------------------------------------------------------------------


class ClosedMatch(Frozen):
    """A closed problem at the same place and category, and when it was closed."""

    problem_id: UUID
    closed_at: datetime


class ProblemMatches(Frozen):
    """Other problems at the same place and category (from the duplicates projection)."""

    open_matches: tuple[UUID, ...] = ()
    recently_closed_matches: tuple[ClosedMatch, ...] = ()


KnownEvidence = Mapping[str, EvidenceRef]
"""The cited photos uploaded to the command's campaign, by SHA-256, as the upload store recorded them."""


@dataclass(frozen=True)
class AutoDispatch:
    """What automatic assignment (自动交办) of a new problem reads, gathered when the campaign's policy ever turned it
    on: the national calendar, the lead units (牵头单位) of each reported place as the matrix has them now (those of
    the nearest place up the tree that has any: more than one is ambiguous), and the names its 交办单 prints."""

    calendar: WorkCalendar
    matrix_leads: Mapping[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    unit_names: Mapping[UUID, str] = field(default_factory=dict)
    place_names: Mapping[UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportRefs:
    """What reporting reads: does the place exist, the campaign policy, matching problems, the cited photos, and
    (when the policy has automatic assignment) what dispatching needs."""

    place_exists: bool
    policy: CampaignPolicy | None = None
    matches: ProblemMatches = ProblemMatches()
    known_evidence: KnownEvidence = field(default_factory=dict)
    dispatch: AutoDispatch | None = None


@dataclass(frozen=True)
class ProblemRefs:
    """What lifecycle decisions read besides the problem (each command's `reads` says which fields its decision reads).

    calendar: the national calendar (campaign local days are added from `policy`).
    actor_unit_ids: the units the acting person belongs to.
    rectifying_unit_member_ids: the members of the problem's current unit.
    matrix_unit_id: the lead unit of the problem's place in the responsibility matrix, now.
    named_unit_exists: whether the unit named by the command (unit_id, to_unit_id, suggested_unit_id) exists.
    merge_target: the problem named by `into_problem_id`.
    known_evidence: the photos the command cites that were uploaded to the problem's campaign.
    """

    calendar: WorkCalendar
    policy: CampaignPolicy | None = None
    actor_unit_ids: frozenset[UUID] = field(default_factory=frozenset)
    rectifying_unit_member_ids: frozenset[UUID] = field(default_factory=frozenset)
    matrix_unit_id: UUID | None = None
    named_unit_exists: bool = True
    merge_target: Problem | None = None
    known_evidence: KnownEvidence = field(default_factory=dict)


Decision = Callable[..., list[DomainEvent]]
"""`decide(state: Problem | None, cmd, ctx: CommandContext, refs: ProblemRefs) -> events`."""
D = TypeVar("D", bound=Decision)
_DECISIONS: dict[type[ProblemCommand], Decision] = {}


def decides(command: type[ProblemCommand]) -> Callable[[D], D]:
    """Marks the function below as the decision of `command`: the service runs it for that command."""

    def mark(decide: D) -> D:
        if command in _DECISIONS:
            raise TypeError(f"{command.__name__} already has a decision: {_DECISIONS[command].__name__}")
        _DECISIONS[command] = decide
        return decide

    return mark


def lifecycle() -> dict[type[ProblemCommand], Decision]:
    """Every lifecycle command with its decision (those of the modules imported so far: all, via `domain.problem`)."""
    return dict(_DECISIONS)
