"""Problem (问题) state: how a problem's history folds into what is true now.

Timestamps are recording times (`meta.recorded_at`), except `found_at` (field time of the report).
Folding needs no calendar: the events carry every computed fact (deadline, limit, paused hours).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from domain.kernel.base import DomainEvent, Frozen, evolver
from domain.problem.events import (
    KIND, CoordinationRequested, CoordinationResolved, DuplicateAbsorbed, DuplicateFlagDismissed, EvidenceRef,
    ExtensionApproved, ExtensionRejected, ExtensionRequested, ProblemAcknowledged, ProblemAssigned, ProblemClosed,
    ProblemMerged, ProblemParked, ProblemReported, ProblemResumed, ProblemState, ProblemTransferred,
    ProblemWithdrawn, RectificationRejected, RectificationSubmitted, RectificationVerified, RelapseRecorded,
    ProblemEvent, RoutingSource, Source, TransferRejected, TransferRequested,
)
from domain.kernel.taxonomy import Severity


class PendingExtension(Frozen):
    working_days: int
    reason: str
    requested_at: datetime


class PendingTransfer(Frozen):
    unit_id: UUID
    reason: str
    suggested_unit_id: UUID | None
    requested_at: datetime


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


Update = dict[str, Any]


def _reported(e: ProblemReported) -> Problem:
    fields = e.model_dump(exclude={"meta", "problem_id"})
    return Problem(problem_id=e.problem_id, found_at=e.meta.occurred_at, reported_at=e.meta.recorded_at,
                   reported_by=e.meta.actor.person_id, **fields)


def _assigned(s: Problem, e: ProblemAssigned, t: datetime) -> Update:
    return {"state": ProblemState.ASSIGNED, "unit_id": e.unit_id, "routing": e.routing, "assigned_at": t,
            "deadline": e.deadline, "limit_hours": e.limit_hours}


def _submitted(s: Problem, e: RectificationSubmitted, t: datetime) -> Update:
    return {"state": ProblemState.RECTIFICATION_SUBMITTED, "submission_count": s.submission_count + 1,
            "last_submitted_at": t, "last_submitted_by": e.meta.actor.person_id,
            "submitted_evidence": e.evidence, "verification_passed": None}


def _transferred(s: Problem, e: ProblemTransferred, t: datetime) -> Update:
    return {"state": ProblemState.ASSIGNED, "unit_id": e.to_unit_id, "transfer_count": s.transfer_count + 1,
            "pending_transfer": None, "pending_extension": None, "acknowledged_at": None}


def _extended(s: Problem, e: ExtensionApproved, t: datetime) -> Update:
    return {"deadline": e.new_deadline, "limit_hours": s.limit_hours + e.added_hours,
            "extension_count": s.extension_count + 1, "pending_extension": None}


def _resumed(s: Problem, e: ProblemResumed, t: datetime) -> Update:
    assert s.parked_since is not None
    return {"parked_since": None, "pauses": (*s.pauses, (s.parked_since, t)),
            "deadline": e.new_deadline if e.new_deadline is not None else s.deadline}


_APPLY: dict[type[ProblemEvent], Callable[[Problem, Any, datetime], Update]] = {
    ProblemAssigned: _assigned,
    ProblemAcknowledged: lambda s, e, t: {"state": ProblemState.ACKNOWLEDGED, "acknowledged_at": t},
    RectificationSubmitted: _submitted,
    RectificationVerified: lambda s, e, t: {"state": ProblemState.VERIFIED, "verification_passed": True,
                                            "verified_at": t},
    RectificationRejected: lambda s, e, t: {"state": ProblemState.REWORK, "verification_passed": False,
                                            "verified_at": t, "rework_count": s.rework_count + 1},
    ProblemClosed: lambda s, e, t: {"state": ProblemState.CLOSED, "closed_at": t, "pending_extension": None,
                                    "pending_transfer": None, "coordination_pending": False},
    TransferRequested: lambda s, e, t: {"pending_transfer": PendingTransfer(
        unit_id=e.unit_id, reason=e.reason, suggested_unit_id=e.suggested_unit_id, requested_at=t)},
    TransferRejected: lambda s, e, t: {"pending_transfer": None},
    ProblemTransferred: _transferred,
    CoordinationRequested: lambda s, e, t: {"coordination_pending": True},
    CoordinationResolved: lambda s, e, t: {"coordination_pending": False},
    ExtensionRequested: lambda s, e, t: {"pending_extension": PendingExtension(
        working_days=e.working_days, reason=e.reason, requested_at=t)},
    ExtensionApproved: _extended,
    ExtensionRejected: lambda s, e, t: {"pending_extension": None},
    ProblemParked: lambda s, e, t: {"parked_since": t},
    ProblemResumed: _resumed,
    ProblemWithdrawn: lambda s, e, t: {"state": ProblemState.WITHDRAWN, "ended_at": t},
    DuplicateFlagDismissed: lambda s, e, t: {"likely_duplicate_of": ()},
    ProblemMerged: lambda s, e, t: {"state": ProblemState.MERGED, "ended_at": t, "merged_into": e.into_problem_id},
    DuplicateAbsorbed: lambda s, e, t: {"absorbed": (*s.absorbed, e.duplicate_problem_id),
                                        "evidence": (*s.evidence, *e.evidence)},
    RelapseRecorded: lambda s, e, t: {"relapses": (*s.relapses, e.relapse_problem_id)},
}


@evolver(KIND)
def evolve(state: Problem | None, event: DomainEvent) -> Problem:
    if isinstance(event, ProblemReported):
        return _reported(event)
    assert state is not None and isinstance(event, ProblemEvent)
    return state.model_copy(update=_APPLY[type(event)](state, event, event.meta.recorded_at))
