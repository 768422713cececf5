"""Task (任务分解) decisions: 分解, 交办, 签收, 进度报送, 未按时报送, 申报完成, 验收/退回, 延期.

Each decision guards with the named rules of `rules` and returns events (or raises). Defining a
task with a lead and co-units also records them as the task's responsibility entries (责任分工) in
the same write; handing a task over (交办) issues its 交办单, and 签收 acknowledges that notice.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.escalation.notice import NoticeAcknowledged, NoticeIssued, Recipient, build_notice
from domain.kernel.base import CommandContext, Conflict, DomainError, DomainEvent, Meta, NotFound, derived_id
from domain.kernel.roles import HQ_ROLES, STEP_ROLES, UNIT_ROLES, ensure_role
from domain.kernel.timefmt import format_zh
from domain.problem.rules import ensure_evidence_uploaded
from domain.structure.responsibility import ResponsibilityAssigned, Role, new_assignment_id, responsibility_id
from domain.tasks.cadence import is_on_time
from domain.tasks.commands import (
    AcceptTaskCompletion, AcknowledgeTask, ApproveTaskExtension, AssignTask, ClaimTaskCompletion, DefineTask,
    RecordMissedReport, RejectTaskExtension, ReportTaskProgress, RequestTaskExtension, ReturnTaskCompletion, TaskRefs,
    UnitRef, due_on_text,
)
from domain.tasks.events import (
    IN_PROGRESS, TaskAcknowledged, TaskAssigned, TaskCompletionAccepted, TaskCompletionClaimed, TaskCompletionReturned,
    TaskDefined, TaskExtensionApproved, TaskExtensionRejected, TaskExtensionRequested, TaskProgressReported,
    TaskReportMissed, TaskState,
)
from domain.tasks.rules import (
    ensure_day, ensure_exists, ensure_lead_unit, ensure_state, is_before_deadline, is_missed, may_report_for, meta_for,
    overdue_at, report_period, task_deadline,
)
from domain.tasks.state import Task

Events = list[DomainEvent]
_IN_PROGRESS = tuple(IN_PROGRESS)


def assignment_notice_id(task_id: UUID, unit_id: UUID) -> UUID:
    """The 交办单 of a task to its lead unit: one per (task, unit), so a retried command issues it once."""
    return derived_id("task-assignment-notice", task_id, unit_id)


# --- 分解 (define) ----------------------------------------------------------------------------------


def _check_unit(units: dict[UUID, UnitRef], unit_id: UUID, campaign_id: UUID, role_zh: str) -> UnitRef:
    unit = units.get(unit_id)
    if unit is None:
        raise NotFound("unit_not_found", f"{role_zh}不存在", "unit not found", unit_id=str(unit_id))
    if unit.campaign_id != campaign_id:
        raise DomainError("wrong_campaign", f"{role_zh}不属于该创建活动", "unit belongs to another campaign",
                          unit_id=str(unit_id))
    if unit.retired:
        raise DomainError("unit_retired", f"{role_zh}已撤销", "unit is retired", unit_id=str(unit_id))
    return unit


def _check_definition(cmd: DefineTask, refs: TaskRefs) -> None:
    if not refs.campaign_exists:
        raise NotFound("campaign_not_found", "创建活动不存在", "campaign not found", campaign_id=str(cmd.campaign_id))
    if cmd.indicator_id is not None:
        if refs.indicator is None:
            raise NotFound("indicator_not_found", "测评指标不存在", "indicator not found",
                           indicator_id=str(cmd.indicator_id))
        if refs.indicator.campaign_id != cmd.campaign_id:
            raise DomainError("wrong_campaign", "测评指标不属于该创建活动", "indicator belongs to another campaign",
                              indicator_id=str(cmd.indicator_id))
    if cmd.lead_unit_id is not None:
        _check_unit(refs.units, cmd.lead_unit_id, cmd.campaign_id, "牵头单位")
    if len(set(cmd.co_unit_ids)) != len(cmd.co_unit_ids) or cmd.lead_unit_id in cmd.co_unit_ids:
        raise DomainError("co_units_repeated", "配合单位重复或与牵头单位相同", "co-units repeat or include the lead unit")
    for unit_id in cmd.co_unit_ids:
        _check_unit(refs.units, unit_id, cmd.campaign_id, "配合单位")
    if cmd.assign and cmd.lead_unit_id is None:
        raise DomainError("lead_unit_required", "交办任务须指定牵头单位", "a task is handed to its lead unit: name one")


def define_task(state: Task | None, cmd: DefineTask, ctx: CommandContext, refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    if state is not None:
        raise Conflict("task_exists", "任务已存在", "task already exists", task_id=str(cmd.task_id))
    _check_definition(cmd, refs)
    fields = cmd.model_dump(exclude={"command_id", "occurred_at", "assign"})
    defined = TaskDefined(meta=ctx.meta, **fields)
    events: Events = [defined, *_responsibilities(cmd, ctx)]
    if cmd.assign:
        task = Task(**defined.apply(None))
        events += _assigned(task, ctx, refs)
    return events


def _responsibilities(cmd: DefineTask, ctx: CommandContext) -> Events:
    """The lead (牵头) and co-units (配合) as the task's responsibility entries, from now."""
    ref_id = responsibility_id(cmd.campaign_id, "task", cmd.task_id)
    parties: list[tuple[UUID, Role]] = [(cmd.lead_unit_id, "lead")] if cmd.lead_unit_id else []
    parties += [(u, "co") for u in cmd.co_unit_ids]
    return [ResponsibilityAssigned(meta=ctx.meta, scope_ref_id=ref_id, campaign_id=cmd.campaign_id,
                                   assignment_id=new_assignment_id(ref_id, f"{cmd.command_id}:{role}:{unit}"),
                                   scope_kind="task", scope_id=cmd.task_id, party_kind="unit", party_id=unit,
                                   role=role, effective_from=ctx.now)
            for unit, role in parties]


# --- 交办 and 签收 --------------------------------------------------------------------------------------


def _assigned(task: Task, ctx: CommandContext, refs: TaskRefs) -> Events:
    assert task.lead_unit_id is not None
    unit = refs.units.get(task.lead_unit_id)
    deadline = task_deadline(task.due_on, refs.calendar)
    meta = meta_for(ctx, task)
    assigned = TaskAssigned(meta=meta, task_id=task.task_id, unit_id=task.lead_unit_id, due_on=task.due_on,
                            deadline=deadline)
    return [assigned, assignment_notice(task, meta, refs, unit.name if unit else None)]


def assignment_notice(task: Task, meta: Meta, refs: TaskRefs, unit_name: str | None) -> NoticeIssued:
    """The 交办单 of a task: to its lead unit, naming the deadline and the cadence, due to be signed in 24 working hours."""
    assert task.lead_unit_id is not None
    ack_due = refs.calendar.add_working_hours(meta.recorded_at, refs.ack_working_hours)
    text = (f"【交办单】{unit_name or '牵头单位'}：现将任务“{task.name[:60]}”交由你单位牵头办理，完成时限{due_on_text(task.due_on)}，"
            f"报送要求：{task.cadence.label_zh}。请于{format_zh(ack_due)}前签收本交办单。")
    return build_notice(meta, refs.calendar, notice_id=assignment_notice_id(task.task_id, task.lead_unit_id),
                        campaign_id=task.campaign_id, notice_kind="assignment", subject_kind="task",
                        subject_id=task.task_id, text_zh=text, fields={}, ack_working_hours=refs.ack_working_hours,
                        recipients=(Recipient(party_kind="unit", party_id=task.lead_unit_id, name=unit_name),))


def assign_task(state: Task | None, cmd: AssignTask, ctx: CommandContext, refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    task = ensure_exists(state, cmd.task_id)
    ensure_state(task, TaskState.DEFINED)
    if task.lead_unit_id is None:
        raise DomainError("lead_unit_required", "交办任务须指定牵头单位", "a task is handed to its lead unit: name one")
    _check_unit(refs.units, task.lead_unit_id, task.campaign_id, "牵头单位")
    return _assigned(task, ctx, refs)


def acknowledge_task(state: Task | None, cmd: AcknowledgeTask, ctx: CommandContext, refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, UNIT_ROLES)
    task = ensure_exists(state, cmd.task_id)
    unit = ensure_lead_unit(task, refs.actor_unit_ids)
    ensure_state(task, TaskState.ASSIGNED)
    meta = meta_for(ctx, task)
    events: Events = [TaskAcknowledged(meta=meta, task_id=task.task_id, unit_id=unit, note=cmd.note)]
    notice = refs.open_notice
    if notice is not None and not any(a.by_unit_id == unit for a in notice.acks):
        events.append(NoticeAcknowledged(meta=meta, notice_id=notice.notice_id, by_person_id=ctx.actor.person_id,
                                         by_unit_id=unit))
    return events


# --- 进度报送 ---------------------------------------------------------------------------------------------


def report_task_progress(state: Task | None, cmd: ReportTaskProgress, ctx: CommandContext, refs: TaskRefs) -> Events:
    """A report answers the period it names, or `report_period`'s; each period is reported once."""
    ensure_role(ctx.actor, UNIT_ROLES)
    task = ensure_exists(state, cmd.task_id)
    unit = ensure_lead_unit(task, refs.actor_unit_ids)
    ensure_state(task, *_IN_PROGRESS)
    day = cmd.due_on if cmd.due_on is not None else report_period(task, refs.calendar, ctx.now)
    if cmd.due_on is not None:
        ensure_day(may_report_for(task, cmd.due_on, refs.calendar, ctx.now), "not_a_report_day",
                   "该日期不是本任务应报送的日期（或尚未到报送期）", "not a report day of this task (or not yet open)",
                   cmd.due_on)
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    if day is not None and task.report_for(day) is not None:
        raise Conflict("report_exists", "该期进度已报送", "this period was already reported", due_on=day.isoformat())
    on_time = is_on_time(ctx.now, day, refs.calendar) if day is not None else None
    return [TaskProgressReported(meta=meta_for(ctx, task), task_id=task.task_id, unit_id=unit, due_on=day,
                                 text=cmd.text, percent=cmd.percent, evidence=cmd.evidence, on_time=on_time)]


def record_missed_report(state: Task | None, cmd: RecordMissedReport, ctx: CommandContext, refs: TaskRefs) -> Events:
    """The escalator (or HQ) records a missed report once; it is a work item overdue from the next working instant."""
    ensure_role(ctx.actor, STEP_ROLES)
    task = ensure_exists(state, cmd.task_id)
    if cmd.due_on in task.missed:
        raise Conflict("report_missed_already", "该期未报送已记录", "this missed report is already recorded",
                       due_on=cmd.due_on.isoformat())
    ensure_day(is_missed(task, cmd.due_on, refs.calendar, ctx.now), "report_not_missed",
               "该期进度已报送或尚未到期", "this report was filed or is not yet due", cmd.due_on)
    return [TaskReportMissed(meta=meta_for(ctx, task), task_id=task.task_id, unit_id=task.lead_unit_id,
                             due_on=cmd.due_on, overdue_from=overdue_at(cmd.due_on, refs.calendar))]


# --- 申报完成, 验收, 退回 -----------------------------------------------------------------------------------


def claim_task_completion(state: Task | None, cmd: ClaimTaskCompletion, ctx: CommandContext,
                          refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, UNIT_ROLES)
    task = ensure_exists(state, cmd.task_id)
    unit = ensure_lead_unit(task, refs.actor_unit_ids)
    ensure_state(task, *_IN_PROGRESS)
    ensure_evidence_uploaded(cmd.evidence, refs.known_evidence)
    return [TaskCompletionClaimed(meta=meta_for(ctx, task), task_id=task.task_id, unit_id=unit, text=cmd.text,
                                  evidence=cmd.evidence)]


def accept_task_completion(state: Task | None, cmd: AcceptTaskCompletion, ctx: CommandContext,
                           refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    task = ensure_exists(state, cmd.task_id)
    ensure_state(task, TaskState.COMPLETION_CLAIMED)
    return [TaskCompletionAccepted(meta=meta_for(ctx, task), task_id=task.task_id, note=cmd.note)]


def return_task_completion(state: Task | None, cmd: ReturnTaskCompletion, ctx: CommandContext,
                           refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    task = ensure_exists(state, cmd.task_id)
    ensure_state(task, TaskState.COMPLETION_CLAIMED)
    return [TaskCompletionReturned(meta=meta_for(ctx, task), task_id=task.task_id, reason=cmd.reason)]


# --- 延期 ------------------------------------------------------------------------------------------------


def request_task_extension(state: Task | None, cmd: RequestTaskExtension, ctx: CommandContext,
                           refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, UNIT_ROLES)
    task = ensure_exists(state, cmd.task_id)
    unit = ensure_lead_unit(task, refs.actor_unit_ids)
    ensure_state(task, *_IN_PROGRESS)
    if task.due_on is None:
        raise DomainError("no_deadline", "长期任务无完成时限，无需延期", "the task has no deadline to extend")
    if not is_before_deadline(task, ctx.now):
        raise DomainError("deadline_passed", "已超过完成时限，不能申请延期", "extensions are asked for before the deadline")
    if task.pending_extension is not None:
        raise Conflict("extension_pending", "已有待审批的延期申请", "an extension request is already pending")
    _later(cmd.to_due_on, task.due_on)
    return [TaskExtensionRequested(meta=meta_for(ctx, task), task_id=task.task_id, unit_id=unit,
                                   to_due_on=cmd.to_due_on, reason=cmd.reason)]


def _later(to: date, than: date | None) -> None:
    if than is not None and to <= than:
        raise DomainError("extension_not_later", "延期后的完成时限须晚于原时限", "the new due day must be later",
                          to_due_on=to.isoformat(), due_on=than.isoformat())


def approve_task_extension(state: Task | None, cmd: ApproveTaskExtension, ctx: CommandContext,
                           refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    task = ensure_exists(state, cmd.task_id)
    pending = task.pending_extension
    if pending is None:
        raise Conflict("no_pending_extension", "没有待审批的延期申请", "no extension request is pending")
    to = cmd.to_due_on or pending.to_due_on
    _later(to, task.due_on)
    deadline = task_deadline(to, refs.calendar)
    assert deadline is not None
    return [TaskExtensionApproved(meta=meta_for(ctx, task), task_id=task.task_id, previous_due_on=task.due_on,
                                  new_due_on=to, new_deadline=deadline, note=cmd.note)]


def reject_task_extension(state: Task | None, cmd: RejectTaskExtension, ctx: CommandContext,
                          refs: TaskRefs) -> Events:
    ensure_role(ctx.actor, HQ_ROLES)
    task = ensure_exists(state, cmd.task_id)
    if task.pending_extension is None:
        raise Conflict("no_pending_extension", "没有待审批的延期申请", "no extension request is pending")
    return [TaskExtensionRejected(meta=meta_for(ctx, task), task_id=task.task_id, reason=cmd.reason)]
