"""Task (任务分解) commands and the references their decisions read.

Every decision has the signature `decide(state, cmd, ctx, refs: TaskRefs)`: infra gathers the
campaign calendar, the units the command names, the indicator, the acting person's units and the
open 交办单, so the rules in `rules` and `decisions` stay pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from domain.escalation.notice import DEFAULT_ACK_WORKING_HOURS, Notice
from domain.kernel.base import Command, Frozen
from domain.kernel.calendar import WorkCalendar
from domain.kernel.instants import Day
from domain.kernel.scalars import Count, Flag
from domain.kernel.text import Name, Note, Text, free_text, single_line
from domain.problem.events import Evidence, EvidenceRef
from domain.structure.indicator import Indicator
from domain.tasks.cadence import NO_CADENCE, Cadence

Measures = Annotated[str, free_text(4000)]
RowKey = Annotated[str, single_line(200)]
Percent = Annotated[Count, Field(ge=0, le=100)]


class DefineTask(Command):
    """Define a task (分解任务): its indicator, lead unit (牵头), co-units (配合), measures, deadline and cadence.

    With `assign`, hand it to the lead unit (交办) in the same write; a lead and co-units become
    responsibility entries (责任分工) of the task in the matrix.
    """

    task_id: UUID
    campaign_id: UUID
    indicator_id: UUID | None = None
    name: Name
    due_on: Day | None = None
    lead_unit_id: UUID | None = None
    co_unit_ids: tuple[UUID, ...] = Field(default=(), max_length=30)
    measures: Measures | None = None
    cadence: Cadence = NO_CADENCE
    row_key: RowKey | None = None
    assign: Flag = False


class TaskCommand(Command):
    abstract: ClassVar[bool] = True  # a base, not a command of its own
    task_id: UUID


class AssignTask(TaskCommand):
    """Hand the task to its lead unit (交办), with a 交办单 to acknowledge."""


class AcknowledgeTask(TaskCommand):
    """Acknowledge receipt of the task (签收)."""

    note: Note | None = None


class ReportTaskProgress(TaskCommand):
    """Report progress (进度报送): text, percent done, evidence; for the period due on `due_on` (default: see rules)."""

    due_on: Day | None = None
    text: Text
    percent: Percent
    evidence: Evidence = ()


class RecordMissedReport(TaskCommand):
    """Record that the report due on `due_on` was not filed by the end of that day (未按时报送)."""

    due_on: Day


class ClaimTaskCompletion(TaskCommand):
    """The lead unit reports the task done, with evidence (申报完成)."""

    text: Text
    evidence: Evidence = Field(min_length=1)


class AcceptTaskCompletion(TaskCommand):
    """Accept the completion (验收通过, 办结)."""

    note: Note | None = None


class ReturnTaskCompletion(TaskCommand):
    """Return the completion claim (退回), with the reason."""

    reason: Text


class RequestTaskExtension(TaskCommand):
    """Apply, before the deadline, to finish by a later day (延期申请)."""

    to_due_on: Day
    reason: Text


class ApproveTaskExtension(TaskCommand):
    """Approve the extension, to the requested day unless another is given (批准延期)."""

    to_due_on: Day | None = None
    note: Note | None = None


class RejectTaskExtension(TaskCommand):
    reason: Text


class UnitRef(Frozen):
    """What a rule needs to know of a unit a command names: its campaign, whether retired, its name."""

    unit_id: UUID
    campaign_id: UUID
    name: str
    retired: bool = False


@dataclass(frozen=True)
class TaskRefs:
    """What task decisions read besides the task.

    campaign_exists: the campaign named by a definition exists.
    indicator: the indicator a definition names.
    units: the units a definition names (lead and co-units), or the task's lead unit.
    calendar: the campaign calendar (national plus local days).
    actor_unit_ids: the units the acting person belongs to.
    open_notice: the task's 交办单 awaiting 签收.
    ack_working_hours: how long a 交办单 may wait for 签收 (the ladder in force).
    known_evidence: the photos the command cites that were uploaded to the task's campaign, by SHA-256.
    """

    campaign_exists: bool = True
    indicator: Indicator | None = None
    units: dict[UUID, UnitRef] = field(default_factory=dict)
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    actor_unit_ids: frozenset[UUID] = field(default_factory=frozenset)
    open_notice: Notice | None = None
    ack_working_hours: float = DEFAULT_ACK_WORKING_HOURS
    known_evidence: dict[str, EvidenceRef] = field(default_factory=dict)


def due_on_text(day: date | None) -> str:
    return f"{day:%Y-%m-%d}" if day else "长期"
