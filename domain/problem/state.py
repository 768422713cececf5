"""Problem (问题) state: how a problem's history folds into what is true now.

Timestamps are recording times (`meta.recorded_at`), except `found_at` (field time of the report).
Folding needs no calendar: the events carry every computed fact (deadline, limit, paused hours),
and each event says which fields it changes (`apply`, beside it in `events`).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.kernel.base import DomainEvent, Frozen, UnhandledEvent, evolver
from domain.problem.events import (
    KIND, EvidenceRef, PendingExtension, PendingTransfer, ProblemEvent, ProblemReported, ProblemState,
    RoutingSource, Source, Update,
)
from domain.kernel.taxonomy import Severity

__all__ = ["PendingExtension", "PendingTransfer", "Problem", "Update", "evolve"]


class Problem(Frozen):
    """A problem's current state. Times are recording times (`meta.recorded_at`) except `found_at`."""

    problem_id: UUID
    campaign_id: UUID
    category: str
    severity: Severity
    place_id: UUID
    description: str
    evidence: tuple[EvidenceRef, ...]
    source: Source
    visit_id: UUID | None
    found_at: datetime  # when it was found in the field (meta.occurred_at of the report)
    reported_at: datetime
    reported_by: UUID | None
    state: ProblemState = ProblemState.REPORTED
    likely_duplicate_of: tuple[UUID, ...] = ()
    relapse_of: UUID | None = None
    unit_id: UUID | None = None
    routing: RoutingSource | None = None
    assigned_at: datetime | None = None  # first assignment: the clock starts here
    deadline: datetime | None = None
    limit_hours: float = 0.0  # working hours allowed, extensions included
    acknowledged_at: datetime | None = None
    submission_count: int = 0
    last_submitted_at: datetime | None = None
    last_submitted_by: UUID | None = None
    submitted_evidence: tuple[EvidenceRef, ...] = ()
    verification_passed: bool | None = None  # outcome of re-inspecting the latest submission
    verified_at: datetime | None = None
    rework_count: int = 0
    extension_count: int = 0
    pending_extension: PendingExtension | None = None
    transfer_count: int = 0
    pending_transfer: PendingTransfer | None = None
    coordination_pending: bool = False
    parked_since: datetime | None = None
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    closed_at: datetime | None = None
    ended_at: datetime | None = None  # withdrawn or merged
    merged_into: UUID | None = None
    absorbed: tuple[UUID, ...] = ()
    relapses: tuple[UUID, ...] = ()

    @property
    def parked(self) -> bool:
        return self.parked_since is not None

    @property
    def relapse_count(self) -> int:
        return len(self.relapses)


@evolver(KIND)
def evolve(state: Problem | None, event: DomainEvent) -> Problem:
    """A report starts a problem; every later event changes the fields its `apply` names."""
    if isinstance(event, ProblemReported):
        return Problem(**event.apply(state))
    if state is None or not isinstance(event, ProblemEvent):
        raise UnhandledEvent(KIND, event)
    return state.model_copy(update=event.apply(state))
