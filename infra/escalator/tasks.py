"""The escalator's task round (任务报送): each missed progress report recorded once, so the ladder climbs it.

Every tick, before the ladder is judged, the escalator reads the tasks in progress that have a
cadence (the tasks read model, brought up to the log head) and, for each due day that ended with
no report and is not yet recorded, issues `RecordMissedReport` as the system. The decision
re-judges from the task's own events (a report filed meanwhile makes it refuse), the command id
derives from (task, day), and a second record is refused (409), so a doubled or restarted
escalator records each miss at most once. The record makes a `task_report` work item overdue
from the next working instant after the day — the 催办 falls due then, in the same or a later tick.
Each record is caused (`causation_id`) by the 交办 that started the task's reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from domain import tasks as tk
from domain.kernel.base import Actor, DomainError
from infra.audit.causes import task_report_cause
from infra.commands.escalation import calendar_for
from infra.commands.service import CommandService, StoreReader
from projections.tasks import reporting_tasks

log = structlog.get_logger("dudao.escalator.tasks")

ALREADY = frozenset({"report_missed_already"})
NOT_NOW = frozenset({"report_not_missed", "task_not_found", "task_state"})


@dataclass
class RoundReport:
    recorded: int = 0
    already: int = 0
    skipped: int = 0
    failed: int = 0


def missed_commands(conn: Any, service: CommandService, now: datetime) -> list[tk.RecordMissedReport]:
    """What the round issues at `now`: one record per missed, unrecorded report of every task in progress."""
    reader = StoreReader(service.app)
    out = []
    for campaign_id, tasks in reporting_tasks(conn).items():
        calendar = calendar_for(reader, campaign_id)
        out += [tk.RecordMissedReport(command_id=f"task-missed:{task.task_id}:{day.isoformat()}", task_id=task.task_id,
                                      due_on=day)
                for task in tasks for day in tk.missed_report_days(task, calendar, now)]
    return out


def run_round(conn: Any, service: CommandService, actor: Actor, now: datetime) -> RoundReport:
    """Record every missed report; each command's outcome is counted, none stops the rest."""
    report = RoundReport()
    for cmd in missed_commands(conn, service, now):
        try:
            result = service.handle(cmd, actor, causation_id=task_report_cause(service.app, cmd.task_id))
        except DomainError as err:
            outcome = "already" if err.code in ALREADY else "skipped" if err.code in NOT_NOW else "failed"
            if outcome == "failed":
                log.warning("missed_report_failed", task_id=str(cmd.task_id), code=err.code, details=err.details)
            setattr(report, outcome, getattr(report, outcome) + 1)
            continue
        outcome = "already" if result.replayed else "recorded"
        setattr(report, outcome, getattr(report, outcome) + 1)
    if report.recorded or report.failed:
        log.info("task_round", at=now.isoformat(), recorded=report.recorded, already=report.already,
                 skipped=report.skipped, failed=report.failed)
    return report
