"""Task (任务分解) events: the facts of a task's life, how each folds, and how each reads in its timeline.

Lifecycle: defined (分解) → assigned (交办, to its lead unit 牵头单位) → acknowledged (签收) → progress
reports per cadence (进度报送), a missed one recorded by the escalator (未按时报送) → completion claimed
by the lead unit with evidence (申报完成) → accepted (验收通过, 办结) or returned (退回, back to work).
An extension (延期) is requested by the lead unit before the deadline and decided by HQ.

Each event states beside its fields `apply` (the fields of the `Task` it changes) and `summary_zh`
(its line in the task's timeline). `TaskDefined` keeps the stable name `dudao.task.TaskDefined`
it was first stored under; the fields it gained (lead and co-units, measures, cadence, row key)
have defaults, so the first stored definitions read as they were.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from pydantic import AwareDatetime

from domain.kernel.base import DomainEvent, Frozen, UnhandledEvent
from domain.kernel.timefmt import format_local
from domain.problem.events import Evidence
from domain.tasks.cadence import NO_CADENCE, Cadence

if TYPE_CHECKING:
    from domain.tasks.state import Task

KIND = "task"
Update = dict[str, Any]


class TaskState(StrEnum):
    DEFINED = "defined"  # 已分解, not yet handed over
    ASSIGNED = "assigned"  # 已交办
    ACKNOWLEDGED = "acknowledged"  # 已签收, in progress (推进中)
    COMPLETION_CLAIMED = "completion_claimed"  # 已申报完成, awaiting HQ's acceptance (待验收)
    COMPLETED = "completed"  # 已办结


# The unit works on the task, reports per cadence and its clock runs.
IN_PROGRESS = frozenset({TaskState.ASSIGNED, TaskState.ACKNOWLEDGED})
STATE_NAMES_ZH = {"defined": "已分解", "assigned": "已交办", "acknowledged": "推进中",
                  "completion_claimed": "待验收", "completed": "已办结"}


class Report(Frozen):
    """One progress report (进度报送): the period (its due day) it answers, when it was filed, how far along."""

    due_on: date | None  # None: an ad hoc report of a task without a cadence
    filed_at: datetime
    percent: int
    on_time: bool | None


class PendingTaskExtension(Frozen):
    """An extension request (延期申请) awaiting HQ's decision."""

    to_due_on: date
    reason: str
    requested_at: datetime


class TaskEvent(DomainEvent):
    """What every task event has: the task's id, how it folds and how it reads (not itself an event)."""

    abstract: ClassVar[bool] = True
    kind = KIND
    id_field = "task_id"
    task_id: UUID

    def apply(self, s: Task) -> Update:
        """The fields of `s` this event changes (every concrete event defines it)."""
        raise UnhandledEvent(KIND, self)

    def summary_zh(self) -> str:
        """The event's line in the task's timeline (every concrete event defines it)."""
        raise NotImplementedError(f"{type(self).__name__} has no timeline summary")


class TaskDefined(TaskEvent):
    """HQ defined a task (任务分解), optionally under an indicator, with its lead and co-units, measures and cadence."""

    campaign_id: UUID
    indicator_id: UUID | None = None
    name: str
    due_on: date | None = None
    lead_unit_id: UUID | None = None
    co_unit_ids: tuple[UUID, ...] = ()
    measures: str | None = None
    cadence: Cadence = NO_CADENCE
    row_key: str | None = None

    def apply(self, s: Task | None) -> Update:
        """Every field of the new task (a definition starts the fold; `s` is None)."""
        return {**self.model_dump(exclude={"meta"}), "defined_at": self.meta.recorded_at}

    def summary_zh(self) -> str:
        due = f"，完成时限 {self.due_on:%Y-%m-%d}" if self.due_on else ""
        return f"任务分解（{self.cadence.label_zh}{due}）"


class TaskAssigned(TaskEvent):
    """The task was handed to its lead unit (交办), due by `deadline` (the first working instant after `due_on`)."""

    unit_id: UUID
    due_on: date | None = None
    deadline: AwareDatetime | None = None

    def apply(self, s: Task) -> Update:
        return {"state": TaskState.ASSIGNED, "assigned_at": self.meta.recorded_at, "deadline": self.deadline}

    def summary_zh(self) -> str:
        return f"交办，完成时限 {self.due_on:%Y-%m-%d}" if self.due_on else "交办（长期任务）"


class TaskAcknowledged(TaskEvent):
    """The lead unit acknowledged the task (签收)."""

    unit_id: UUID
    note: str | None = None

    def apply(self, s: Task) -> Update:
        return {"state": TaskState.ACKNOWLEDGED, "acknowledged_at": self.meta.recorded_at}

    def summary_zh(self) -> str:
        return "签收"


class TaskProgressReported(TaskEvent):
    """The lead unit reported progress (进度报送) for one period (its due day), with text, percent and evidence."""

    unit_id: UUID
    due_on: date | None = None
    text: str
    percent: int
    evidence: Evidence = ()
    on_time: bool | None = None

    def apply(self, s: Task) -> Update:
        report = Report(due_on=self.due_on, filed_at=self.meta.recorded_at, percent=self.percent, on_time=self.on_time)
        return {"reports": (*s.reports, report), "percent": self.percent, "last_report_at": self.meta.recorded_at}

    def summary_zh(self) -> str:
        period = f"（{self.due_on:%m-%d}期{'' if self.on_time else '，逾期补报'}）" if self.due_on else ""
        return f"进度报送{period}：完成 {self.percent}%"


class TaskReportMissed(TaskEvent):
    """A progress report was not filed by the end of its due day (未按时报送): overdue from `overdue_from`."""

    unit_id: UUID | None = None
    due_on: date
    overdue_from: AwareDatetime

    def apply(self, s: Task) -> Update:
        return {"missed": (*s.missed, self.due_on)}

    def summary_zh(self) -> str:
        return f"{self.due_on:%Y-%m-%d} 应报送的进度未报送，{format_local(self.overdue_from)} 起超期"


class TaskCompletionClaimed(TaskEvent):
    """The lead unit reported the task done, with evidence (申报完成): reporting pauses while HQ decides."""

    unit_id: UUID
    text: str
    evidence: Evidence = ()

    def apply(self, s: Task) -> Update:
        at = self.meta.recorded_at
        return {"state": TaskState.COMPLETION_CLAIMED, "claimed_at": at, "percent": 100,
                "reporting_paused": (*s.reporting_paused, (at, None))}

    def summary_zh(self) -> str:
        return f"申报完成（{len(self.evidence)} 份佐证）"


class TaskCompletionAccepted(TaskEvent):
    """HQ accepted the completion (验收通过): the task is done (办结)."""

    note: str | None = None

    def apply(self, s: Task) -> Update:
        return {"state": TaskState.COMPLETED, "completed_at": self.meta.recorded_at, "pending_extension": None}

    def summary_zh(self) -> str:
        return "验收通过，办结"


class TaskCompletionReturned(TaskEvent):
    """HQ returned the completion claim (退回): the unit works on, and reports again."""

    reason: str

    def apply(self, s: Task) -> Update:
        return {"state": TaskState.ACKNOWLEDGED, "return_count": s.return_count + 1, "claimed_at": None,
                "reporting_paused": _resumed(s.reporting_paused, self.meta.recorded_at)}

    def summary_zh(self) -> str:
        return f"退回：{self.reason}"


class TaskExtensionRequested(TaskEvent):
    """The lead unit applied, before the deadline, to finish by a later day (延期申请)."""

    unit_id: UUID
    to_due_on: date
    reason: str

    def apply(self, s: Task) -> Update:
        pending = PendingTaskExtension(to_due_on=self.to_due_on, reason=self.reason, requested_at=self.meta.recorded_at)
        return {"pending_extension": pending}

    def summary_zh(self) -> str:
        return f"申请延期至 {self.to_due_on:%Y-%m-%d}：{self.reason}"


class TaskExtensionApproved(TaskEvent):
    """HQ approved the extension (批准延期): the due day and the deadline move."""

    previous_due_on: date | None
    new_due_on: date
    new_deadline: AwareDatetime
    note: str | None = None

    def apply(self, s: Task) -> Update:
        return {"due_on": self.new_due_on, "deadline": self.new_deadline, "extension_count": s.extension_count + 1,
                "pending_extension": None}

    def summary_zh(self) -> str:
        return f"批准延期，完成时限改为 {self.new_due_on:%Y-%m-%d}"


class TaskExtensionRejected(TaskEvent):
    """HQ rejected the extension (驳回延期)."""

    reason: str

    def apply(self, s: Task) -> Update:
        return {"pending_extension": None}

    def summary_zh(self) -> str:
        return f"驳回延期：{self.reason}"


def _resumed(paused: tuple[tuple[datetime, datetime | None], ...], at: datetime) -> tuple[tuple[datetime, datetime | None], ...]:
    """The pauses with the open one (if any) ended at `at`."""
    return tuple((start, at if end is None else end) for start, end in paused)
