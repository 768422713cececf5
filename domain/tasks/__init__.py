"""Tasks (任务分解): indicators decomposed into tasks, handed over, reported on per cadence, completed.

The public API below is what the rest of the system uses (`from domain import tasks as tk`):
`cadence` (报送频次 — daily, weekly on a weekday, monthly on a day — and the calendar rules that
turn it into due days, 遇节假日顺延), `events` (the facts of a task's life), `state` (how they fold),
`commands` (requests and the references decisions read), `rules` (named predicates: which reports
are due, missed, on time), `decisions` (分解, 交办, 签收, 进度报送, 未按时报送, 申报完成, 验收/退回, 延期)
and `work` (a task and a missed report as the escalator's work items).
"""

from __future__ import annotations

from domain.tasks.cadence import (
    DAILY, NO_CADENCE, Cadence, CadenceKind, day_has_ended, day_start, due_day, due_days, first_report_day,
    is_nominal_day, is_on_time, monthly, nominal_days, overdue_from, parse_cadence, weekly,
)
from domain.tasks.commands import (
    AcceptTaskCompletion, AcknowledgeTask, ApproveTaskExtension, AssignTask, ClaimTaskCompletion, DefineTask,
    RecordMissedReport, RejectTaskExtension, ReportTaskProgress, RequestTaskExtension, ReturnTaskCompletion,
    TaskCommand, TaskRefs, UnitRef,
)
from domain.tasks.decisions import (
    accept_task_completion, acknowledge_task, approve_task_extension, assign_task, assignment_notice_id,
    claim_task_completion, define_task, record_missed_report, reject_task_extension, report_task_progress,
    request_task_extension, return_task_completion,
)
from domain.tasks.events import (
    IN_PROGRESS, KIND, STATE_NAMES_ZH, PendingTaskExtension, Report, TaskAcknowledged, TaskAssigned,
    TaskCompletionAccepted, TaskCompletionClaimed, TaskCompletionReturned, TaskDefined, TaskEvent,
    TaskExtensionApproved, TaskExtensionRejected, TaskExtensionRequested, TaskProgressReported, TaskReportMissed,
    TaskState,
)
from domain.tasks.rules import (
    acts_for_lead_unit, is_before_deadline, is_missed, is_report_due, is_reporting_at, may_report_for,
    missed_report_days, report_due_days, report_period, task_deadline,
)
from domain.tasks.state import Task, evolve
from domain.tasks.work import (
    REPORT_ITEM, REPORT_STEPS_DONE, TASK_ITEM, is_report_item_open, report_item_id, report_work_item, task_work_item,
)

__all__ = [
    "DAILY", "NO_CADENCE", "Cadence", "CadenceKind", "day_has_ended", "day_start", "due_day", "due_days",
    "first_report_day", "is_nominal_day", "is_on_time", "monthly", "nominal_days", "overdue_from", "parse_cadence",
    "weekly",
    "AcceptTaskCompletion", "AcknowledgeTask", "ApproveTaskExtension", "AssignTask", "ClaimTaskCompletion",
    "DefineTask", "RecordMissedReport", "RejectTaskExtension", "ReportTaskProgress", "RequestTaskExtension",
    "ReturnTaskCompletion", "TaskCommand", "TaskRefs", "UnitRef",
    "accept_task_completion", "acknowledge_task", "approve_task_extension", "assign_task", "assignment_notice_id",
    "claim_task_completion", "define_task", "record_missed_report", "reject_task_extension", "report_task_progress",
    "request_task_extension", "return_task_completion",
    "IN_PROGRESS", "KIND", "STATE_NAMES_ZH", "PendingTaskExtension", "Report", "TaskAcknowledged", "TaskAssigned",
    "TaskCompletionAccepted", "TaskCompletionClaimed", "TaskCompletionReturned", "TaskDefined", "TaskEvent",
    "TaskExtensionApproved", "TaskExtensionRejected", "TaskExtensionRequested", "TaskProgressReported",
    "TaskReportMissed", "TaskState",
    "acts_for_lead_unit", "is_before_deadline", "is_missed", "is_report_due", "is_reporting_at", "may_report_for",
    "missed_report_days", "report_due_days", "report_period", "task_deadline",
    "Task", "evolve",
    "REPORT_ITEM", "REPORT_STEPS_DONE", "TASK_ITEM", "is_report_item_open", "report_item_id", "report_work_item",
    "task_work_item",
]
