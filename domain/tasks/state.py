"""Task (任务分解) state: how a task's history folds into what is true now.

Times are recording times (`meta.recorded_at`). Folding needs no calendar: the events carry every
computed fact (deadline, on-time flag, overdue instant); each event says which fields it changes.
`Task` extends the indicator tree's first, minimal task state, so code that read that one reads
this one too.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from domain.kernel.base import DomainEvent, UnhandledEvent, evolver
from domain.structure import indicator as structure
from domain.structure.tree import require_kind
from domain.tasks.cadence import NO_CADENCE, Cadence
from domain.tasks.events import (
    IN_PROGRESS, KIND, PendingTaskExtension, Report, TaskDefined, TaskEvent, TaskState,
)


class Task(structure.Task):
    """A task's current state (任务): its definition, where it stands, its reports, misses and extensions."""

    lead_unit_id: UUID | None = None
    co_unit_ids: tuple[UUID, ...] = ()
    measures: str | None = None
    cadence: Cadence = NO_CADENCE
    row_key: str | None = None
    defined_at: datetime | None = None
    state: TaskState = TaskState.DEFINED
    assigned_at: datetime | None = None
    deadline: datetime | None = None
    acknowledged_at: datetime | None = None
    reports: tuple[Report, ...] = ()
    missed: tuple[date, ...] = ()
    percent: int = 0
    last_report_at: datetime | None = None
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    return_count: int = 0
    extension_count: int = 0
    pending_extension: PendingTaskExtension | None = None
    reporting_paused: tuple[tuple[datetime, datetime | None], ...] = ()

    @property
    def in_progress(self) -> bool:
        """Handed over and not claimed or done: the unit owes work and reports."""
        return self.state in IN_PROGRESS

    def reported_days(self) -> frozenset[date]:
        return frozenset(r.due_on for r in self.reports if r.due_on is not None)

    def report_for(self, day: date) -> Report | None:
        return next((r for r in self.reports if r.due_on == day), None)


@evolver(KIND)
def evolve(state: Task | None, event: DomainEvent) -> Task:
    """A definition starts a task; every later event changes the fields its `apply` names."""
    if isinstance(event, TaskDefined):
        return Task(**event.apply(state))
    if state is None or not isinstance(event, TaskEvent):
        require_kind(KIND, event)
        raise UnhandledEvent(KIND, event)
    return state.model_copy(update=event.apply(state))
