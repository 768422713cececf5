"""Handlers for tasks (任务分解): define, 交办, 签收, progress reports, missed reports, completion, extension; and a
task and a missed report as the escalator's work items.

The gathers read the campaign, the indicator and the units a definition names, the task's lead
unit, the acting person's units, the open 交办单, the cited photos uploaded to the campaign and the
campaign calendar, so the decisions in
domain/tasks stay pure. A task plugs into the escalator as two work-item kinds through
`item_adapter`: `task` (the task against its deadline) and `task_report` (a missed report).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from domain import tasks as tk
from domain.escalation.ladder import ladder_in_force
from domain.escalation.notice import Notice
from domain.kernel.calendar import WorkCalendar
from domain.kernel.roles import HQ_ROLES, STEP_ROLES, UNIT_ROLES
from domain.structure.campaign import Campaign
from domain.structure.indicator import Indicator
from domain.structure.unit import Unit
from infra.commands import Handler, Reader, actor_unit_ids, register
from infra.commands.escalation import LATEST, ItemView, calendar_for, item_adapter, ladders_of
from infra.commands.indicator import get_of_kind
from infra.commands.references import TARGET, Of
from infra.store.uploads import cited_evidence, known_evidence


def unit_refs(reader: Reader, unit_ids: Iterable[UUID | None]) -> dict[UUID, tk.UnitRef]:
    """The named units as the rules see them (an id of another kind reads as unknown)."""
    out = {}
    for unit_id in {u for u in unit_ids if u is not None}:
        unit = get_of_kind(reader, "unit", unit_id, Unit)
        if unit is not None:
            out[unit_id] = tk.UnitRef(unit_id=unit_id, campaign_id=unit.campaign_id, name=unit.name,
                                      retired=unit.retired)
    return out


def ack_hours(reader: Reader, campaign_id: UUID) -> float:
    return ladder_in_force(ladders_of(reader, campaign_id), LATEST).notice_ack_working_hours


def gather_define(cmd: tk.DefineTask, reader: Reader) -> tk.TaskRefs:
    indicator = get_of_kind(reader, "indicator", cmd.indicator_id, Indicator) if cmd.indicator_id else None
    return tk.TaskRefs(campaign_exists=reader.get("campaign", cmd.campaign_id, Campaign) is not None,
                       indicator=indicator, units=unit_refs(reader, (cmd.lead_unit_id, *cmd.co_unit_ids)),
                       calendar=calendar_for(reader, cmd.campaign_id), ack_working_hours=ack_hours(reader, cmd.campaign_id))


def gather_task(cmd: tk.TaskCommand, reader: Reader) -> tk.TaskRefs:
    """The task's calendar, lead unit, open 交办单 and the actor's units (an unknown task: the decision answers 404)."""
    task = get_of_kind(reader, "task", cmd.task_id, tk.Task)
    if task is None:
        return tk.TaskRefs()
    notice = (reader.get("notice", tk.assignment_notice_id(task.task_id, task.lead_unit_id), Notice)
              if task.lead_unit_id is not None else None)
    cited = [e.sha256 for e in cited_evidence(cmd)]
    return tk.TaskRefs(units=unit_refs(reader, (task.lead_unit_id,)), calendar=calendar_for(reader, task.campaign_id),
                       actor_unit_ids=actor_unit_ids(reader), open_notice=notice,
                       ack_working_hours=ack_hours(reader, task.campaign_id),
                       known_evidence=reader.query(known_evidence, task.campaign_id, cited) if cited else {})


# --- the escalator's work items ----------------------------------------------------------------------


@item_adapter(tk.TASK_ITEM)
def task_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    """A task in progress, the lead unit's, against its deadline (完成时限)."""
    task = get_of_kind(reader, "task", item_id, tk.Task)
    if task is None:
        return None
    return ItemView(tk.task_work_item(task), {"subject": f"任务“{task.name}”", "place": "任务分解表"})


@item_adapter(tk.REPORT_ITEM)
def report_item(reader: Reader, item_id: UUID, calendar: WorkCalendar) -> ItemView | None:
    """A missed progress report (未按时报送): its task is the work item row's parent, its day the one whose id matches."""
    task_id = reader.query(_parent_of_report, item_id)
    task = get_of_kind(reader, "task", task_id, tk.Task) if task_id else None
    day = next((d for d in task.missed if tk.report_item_id(task.task_id, d) == item_id), None) if task else None
    if task is None or day is None:
        return None
    return ItemView(tk.report_work_item(task, day, calendar),
                    {"subject": f"任务“{task.name}”{day:%m月%d日}应报送的进度", "place": "任务分解表"})


def _parent_of_report(conn: Any, item_id: UUID) -> UUID | None:
    row = conn.execute("SELECT parent_id FROM work_items WHERE item_kind = %s AND item_id = %s",
                       (tk.REPORT_ITEM, item_id)).fetchone()
    return None if row is None else (row["parent_id"] if isinstance(row, dict) else row[0])


# --- registration --------------------------------------------------------------------------------------

_TARGET = {"task_id": TARGET}


def _task(cmd: tk.TaskCommand) -> UUID:
    return cmd.task_id


LIFECYCLE: tuple[tuple[type[tk.TaskCommand], Any, frozenset[str]], ...] = (
    (tk.AssignTask, tk.assign_task, HQ_ROLES),
    (tk.AcknowledgeTask, tk.acknowledge_task, UNIT_ROLES),
    (tk.ReportTaskProgress, tk.report_task_progress, UNIT_ROLES),
    (tk.RecordMissedReport, tk.record_missed_report, STEP_ROLES),
    (tk.ClaimTaskCompletion, tk.claim_task_completion, UNIT_ROLES),
    (tk.AcceptTaskCompletion, tk.accept_task_completion, HQ_ROLES),
    (tk.ReturnTaskCompletion, tk.return_task_completion, HQ_ROLES),
    (tk.RequestTaskExtension, tk.request_task_extension, UNIT_ROLES),
    (tk.ApproveTaskExtension, tk.approve_task_extension, HQ_ROLES),
    (tk.RejectTaskExtension, tk.reject_task_extension, HQ_ROLES),
)

register(
    Handler(tk.DefineTask, tk.KIND, lambda cmd: cmd.task_id, tk.define_task, gather_define, HQ_ROLES,
            refs={"task_id": TARGET, "indicator_id": Of("indicator"), "lead_unit_id": Of("unit"),
                  "co_unit_ids": Of("unit")}),
    *(Handler(command, tk.KIND, _task, decide, gather_task, roles, refs=_TARGET) for command, decide, roles in LIFECYCLE),
)
