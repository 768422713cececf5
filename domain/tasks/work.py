"""A task as the escalator's work (待办): the task against its deadline, and each missed report against its day.

Two kinds of work item come from a task. `task`: the lead unit owes the task until it claims
completion; its deadline is the first working instant after the due day, so the ladder's 提醒
comes the working day before and its 催办 the working day after. `task_report`: one per missed
report (未按时报送), overdue from the first working instant after its due day, closed by a late
report or by the task's completion. A missed report is recorded only once its day has ended, so
its reminder has no use any more: its row starts with that step done, as the unmet liaison
duty's does.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.escalation.work_item import WorkItem
from domain.kernel.base import derived_id
from domain.kernel.calendar import WorkCalendar
from domain.tasks.cadence import overdue_from
from domain.tasks.events import KIND
from domain.tasks.state import Task

TASK_ITEM = KIND
REPORT_ITEM = "task_report"
REPORT_STEPS_DONE = frozenset({"reminder"})


def report_item_id(task_id: UUID, due_on: date) -> UUID:
    """The work item of the report due on `due_on` (deterministic: one per task and period)."""
    return derived_id(REPORT_ITEM, task_id, due_on.isoformat())


def task_work_item(task: Task, steps_done: frozenset[str] = frozenset()) -> WorkItem:
    """The task (任务) as a work item: the lead unit's, due at its deadline, open while in progress."""
    return WorkItem(item_kind=TASK_ITEM, item_id=task.task_id, campaign_id=task.campaign_id,
                    responsible_unit_id=task.lead_unit_id, deadline=task.deadline,
                    closed=not task.in_progress, steps_done=steps_done)


def is_report_item_open(task: Task, due_on: date) -> bool:
    """A missed report is owed until a report for its day comes in or the task leaves work (claimed, done)."""
    return due_on in task.missed and task.report_for(due_on) is None and task.in_progress


def report_work_item(task: Task, due_on: date, calendar: WorkCalendar,
                     steps_done: frozenset[str] = REPORT_STEPS_DONE) -> WorkItem:
    """A missed report (未按时报送) as the lead unit's work item, overdue from the working instant after its day."""
    return WorkItem(item_kind=REPORT_ITEM, item_id=report_item_id(task.task_id, due_on), campaign_id=task.campaign_id,
                    responsible_unit_id=task.lead_unit_id, deadline=overdue_from(due_on, calendar),
                    closed=not is_report_item_open(task, due_on), steps_done=steps_done)
