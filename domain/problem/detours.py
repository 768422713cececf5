"""Problem detours (问题办理的分支): 转办, 需协调, 延期, 挂账/恢复, 作废, 疑似重复 and 合并.

The side paths off the main line of `domain.problem`, with the same shape: each event beside the
decision that emits it, each command just above its `@decides` decision, guards from `rules`, then
events. A deadline moves only here, by an approved extension or by resuming a parked problem; a
transfer keeps it.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import CommandContext, Conflict, DomainError, DomainEvent, NotFound
from domain.kernel.roles import HQ_ROLES, SYSTEM_ROLES, UNIT_ROLES
from domain.kernel.scalars import Count
from domain.kernel.text import Note, Text
from domain.kernel.timefmt import format_local  # timeline times: China time to the minute, — when unset
from domain.policy.campaign import campaign_calendar
from domain.problem.commands import ACTOR_UNITS, CLOCK, ProblemCommand, ProblemRefs, decides
from domain.problem.events import (
    OWED, EvidenceRef, PendingExtension, PendingTransfer, ProblemEvent, ProblemState, TransferMode, Update,
)
from domain.problem.rules import (
    ensure_assigned_unit, ensure_state, guard_open, is_before_deadline, is_terminal, meta_for,
)
from domain.problem.state import Problem

Events = list[DomainEvent]


class ProblemTransferred(ProblemEvent):
    """The problem moved to another unit (转办); its deadline stays."""

    from_unit_id: UUID
    to_unit_id: UUID
    reason: Text
    mode: TransferMode

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.ASSIGNED, "unit_id": self.to_unit_id, "transfer_count": s.transfer_count + 1,
                "pending_transfer": None, "pending_extension": None, "acknowledged_at": None}

    def summary_zh(self) -> str:
        return f"转办：{self.reason}"


def _nothing_pending(what: str, zh: str, problem: Problem) -> Conflict:
    return Conflict(f"no_pending_{what}", f"没有待审批的{zh}", f"no pending {what} request",
                    problem_id=str(problem.problem_id))


def _ensure_other_unit(problem: Problem, unit_id: UUID, refs: ProblemRefs, named: bool = True) -> None:
    if unit_id == problem.unit_id:
        raise DomainError("same_unit", "不能转办给原责任单位", "cannot transfer to the same unit", unit_id=str(unit_id))
    if named and not refs.named_unit_exists:
        raise NotFound("unit_not_found", "单位不存在", "unit not found", unit_id=str(unit_id))


def _transferred(p: Problem, ctx: CommandContext, to: UUID, reason: str, mode: TransferMode) -> Events:
    assert p.unit_id is not None
    return [ProblemTransferred(meta=meta_for(ctx, p), problem_id=p.problem_id, from_unit_id=p.unit_id, to_unit_id=to,
                               reason=reason, mode=mode)]


# --- 转办 -----------------------------------------------------------------------------------------


class TransferRequested(ProblemEvent):
    """The unit asked HQ to transfer the problem elsewhere (申请转办)."""

    unit_id: UUID
    reason: Text
    suggested_unit_id: UUID | None = None

    def apply(self, s: Problem) -> Update:
        pending = PendingTransfer(unit_id=self.unit_id, reason=self.reason, suggested_unit_id=self.suggested_unit_id,
                                  requested_at=self.meta.recorded_at)
        return {"pending_transfer": pending}

    def summary_zh(self) -> str:
        return f"申请转办：{self.reason}"


class RequestTransfer(ProblemCommand):
    """Ask HQ to hand the problem to another unit (申请转办)."""

    roles = UNIT_ROLES
    reads = ACTOR_UNITS | {"named_unit_exists"}
    references = {"suggested_unit_id": "unit"}

    reason: Text
    suggested_unit_id: UUID | None = None


@decides(RequestTransfer)
def request_transfer(state: Problem | None, cmd: RequestTransfer, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, UNIT_ROLES)
    ensure_state(p, OWED, "request a transfer of")
    unit_id = ensure_assigned_unit(p, refs.actor_unit_ids)
    if p.pending_transfer is not None:
        raise Conflict("transfer_pending", "已有待审批的转办申请", "a transfer request is already pending")
    if cmd.suggested_unit_id is not None:
        _ensure_other_unit(p, cmd.suggested_unit_id, refs)
    return [TransferRequested(meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id, reason=cmd.reason,
                              suggested_unit_id=cmd.suggested_unit_id)]


class ApproveTransfer(ProblemCommand):
    """Approve the transfer request, to the suggested unit unless another is named (批准转办)."""

    roles = HQ_ROLES
    reads = frozenset({"named_unit_exists"})
    references = {"to_unit_id": "unit"}

    to_unit_id: UUID | None = None
    note: Note | None = None


@decides(ApproveTransfer)
def approve_transfer(state: Problem | None, cmd: ApproveTransfer, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES)
    if p.pending_transfer is None:
        raise _nothing_pending("transfer", "转办申请", p)
    ensure_state(p, OWED, "transfer")
    to = cmd.to_unit_id or p.pending_transfer.suggested_unit_id
    if to is None:
        raise DomainError("transfer_target_required", "请指定转办的目标单位", "name the unit to transfer to")
    _ensure_other_unit(p, to, refs, named=cmd.to_unit_id is not None)
    return _transferred(p, ctx, to, p.pending_transfer.reason, "approved_request")


class TransferRejected(ProblemEvent):
    """HQ rejected the transfer request (驳回转办)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"pending_transfer": None}

    def summary_zh(self) -> str:
        return f"驳回转办：{self.reason}"


class RejectTransfer(ProblemCommand):
    """Reject the transfer request (驳回转办)."""

    roles = HQ_ROLES
    reads = frozenset()

    reason: Text


@decides(RejectTransfer)
def reject_transfer(state: Problem | None, cmd: RejectTransfer, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    if p.pending_transfer is None:
        raise _nothing_pending("transfer", "转办申请", p)
    return [TransferRejected(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason)]


class TransferProblem(ProblemCommand):
    """HQ (or the system, when routing was wrong) moves the problem to another unit (直接转办)."""

    roles = HQ_ROLES | SYSTEM_ROLES
    reads = frozenset({"named_unit_exists"})
    references = {"to_unit_id": "unit"}

    to_unit_id: UUID
    reason: Text


@decides(TransferProblem)
def transfer_problem(state: Problem | None, cmd: TransferProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    """HQ transfers directly; the system does so automatically when the routing was wrong."""
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES | SYSTEM_ROLES)
    ensure_state(p, OWED, "transfer")
    _ensure_other_unit(p, cmd.to_unit_id, refs)
    mode: TransferMode = "automatic" if ctx.actor.role in SYSTEM_ROLES else "hq_direct"
    return _transferred(p, ctx, cmd.to_unit_id, cmd.reason, mode)


# --- 需协调 ---------------------------------------------------------------------------------------


class CoordinationRequested(ProblemEvent):
    """The unit asked HQ to coordinate other departments (需协调)."""

    unit_id: UUID
    reason: Text
    unit_ids: tuple[UUID, ...] = ()

    def apply(self, s: Problem) -> Update:
        return {"coordination_pending": True}

    def summary_zh(self) -> str:
        return f"申请协调：{self.reason}"


class RequestCoordination(ProblemCommand):
    """Ask HQ to coordinate other departments (需协调)."""

    roles = UNIT_ROLES
    reads = ACTOR_UNITS
    references = {"unit_ids": "unit"}

    reason: Text
    unit_ids: tuple[UUID, ...] = Field(default=(), max_length=20)


@decides(RequestCoordination)
def request_coordination(state: Problem | None, cmd: RequestCoordination, ctx: CommandContext,
                         refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, UNIT_ROLES)
    ensure_state(p, OWED, "request coordination for")
    unit_id = ensure_assigned_unit(p, refs.actor_unit_ids)
    if p.coordination_pending:
        raise Conflict("coordination_pending", "已有待处理的协调申请", "a coordination request is already pending")
    return [CoordinationRequested(meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id, reason=cmd.reason,
                                  unit_ids=cmd.unit_ids)]


class CoordinationResolved(ProblemEvent):
    """HQ answered the coordination request (协调完成)."""

    note: Text

    def apply(self, s: Problem) -> Update:
        return {"coordination_pending": False}

    def summary_zh(self) -> str:
        return f"协调完成：{self.note}"


class ResolveCoordination(ProblemCommand):
    """Answer the coordination request (协调完成)."""

    roles = HQ_ROLES
    reads = frozenset()

    note: Text


@decides(ResolveCoordination)
def resolve_coordination(state: Problem | None, cmd: ResolveCoordination, ctx: CommandContext,
                         refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    if not p.coordination_pending:
        raise _nothing_pending("coordination", "协调申请", p)
    return [CoordinationResolved(meta=meta_for(ctx, p), problem_id=p.problem_id, note=cmd.note)]


# --- 延期 -----------------------------------------------------------------------------------------


class ExtensionRequested(ProblemEvent):
    """The unit applied for more time before its deadline (延期申请)."""

    unit_id: UUID
    working_days: int
    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"pending_extension": PendingExtension(working_days=self.working_days, reason=self.reason,
                                                      requested_at=self.meta.recorded_at)}

    def summary_zh(self) -> str:
        return f"申请延期 {self.working_days} 个工作日：{self.reason}"


class RequestExtension(ProblemCommand):
    """Apply for more working days, before the deadline (延期申请)."""

    roles = UNIT_ROLES
    reads = ACTOR_UNITS

    working_days: Count = Field(ge=1, le=60)
    reason: Text


@decides(RequestExtension)
def request_extension(state: Problem | None, cmd: RequestExtension, ctx: CommandContext,
                      refs: ProblemRefs) -> Events:
    """延期申请: only before the deadline, one at a time."""
    p = guard_open(state, cmd.problem_id, ctx, UNIT_ROLES)
    ensure_state(p, OWED, "request an extension for")
    unit_id = ensure_assigned_unit(p, refs.actor_unit_ids)
    if p.pending_extension is not None:
        raise Conflict("extension_pending", "已有待审批的延期申请", "an extension request is already pending")
    if not is_before_deadline(p, ctx.now):
        raise DomainError("deadline_passed", "已超过整改期限，不能申请延期", "extensions must be requested before the deadline",
                          deadline=p.deadline.isoformat() if p.deadline else None)
    return [ExtensionRequested(meta=meta_for(ctx, p), problem_id=p.problem_id, unit_id=unit_id,
                               working_days=cmd.working_days, reason=cmd.reason)]


class ExtensionApproved(ProblemEvent):
    """HQ approved an extension (批准延期): the deadline moves."""

    working_days: int
    previous_deadline: AwareDatetime
    new_deadline: AwareDatetime
    added_hours: float
    note: str | None = None

    def apply(self, s: Problem) -> Update:
        return {"deadline": self.new_deadline, "limit_hours": s.limit_hours + self.added_hours,
                "extension_count": s.extension_count + 1, "pending_extension": None}

    def summary_zh(self) -> str:
        return f"批准延期 {self.working_days} 个工作日，新期限 {format_local(self.new_deadline)}"


class ApproveExtension(ProblemCommand):
    """Approve the extension, for the requested days unless others are given (批准延期)."""

    roles = HQ_ROLES
    reads = CLOCK

    working_days: Count | None = Field(default=None, ge=1, le=60)
    note: Note | None = None


@decides(ApproveExtension)
def approve_extension(state: Problem | None, cmd: ApproveExtension, ctx: CommandContext,
                      refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES)
    if p.pending_extension is None:
        raise _nothing_pending("extension", "延期申请", p)
    ensure_state(p, OWED, "extend")
    assert p.deadline is not None
    days = cmd.working_days or p.pending_extension.working_days
    calendar = campaign_calendar(refs.calendar, refs.policy, ctx.now)
    new_deadline = calendar.add_working_days(p.deadline, days)
    return [ExtensionApproved(meta=meta_for(ctx, p), problem_id=p.problem_id, working_days=days,
                              previous_deadline=p.deadline, new_deadline=new_deadline, note=cmd.note,
                              added_hours=calendar.working_hours_between(p.deadline, new_deadline))]


class ExtensionRejected(ProblemEvent):
    """HQ rejected the extension (驳回延期)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"pending_extension": None}

    def summary_zh(self) -> str:
        return f"驳回延期：{self.reason}"


class RejectExtension(ProblemCommand):
    """Reject the extension request (驳回延期)."""

    roles = HQ_ROLES
    reads = frozenset()

    reason: Text


@decides(RejectExtension)
def reject_extension(state: Problem | None, cmd: RejectExtension, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    if p.pending_extension is None:
        raise _nothing_pending("extension", "延期申请", p)
    return [ExtensionRejected(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason)]


# --- 挂账/恢复, 作废 ---------------------------------------------------------------------------------


class ProblemParked(ProblemEvent):
    """HQ parked the problem (挂账/缓办): its clock pauses."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"parked_since": self.meta.recorded_at}

    def summary_zh(self) -> str:
        return f"挂账：{self.reason}"


class ParkProblem(ProblemCommand):
    """Park the problem (挂账/缓办): its clock pauses."""

    roles = HQ_ROLES
    reads = frozenset()

    reason: Text


@decides(ParkProblem)
def park_problem(state: Problem | None, cmd: ParkProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES)
    ensure_state(p, OWED, "park")
    return [ProblemParked(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason)]


class ProblemResumed(ProblemEvent):
    """HQ resumed a parked problem: the deadline moves by the working hours it was parked."""

    paused_hours: float
    previous_deadline: AwareDatetime | None = None
    new_deadline: AwareDatetime | None = None
    note: str | None = None

    def apply(self, s: Problem) -> Update:
        assert s.parked_since is not None
        return {"parked_since": None, "pauses": (*s.pauses, (s.parked_since, self.meta.recorded_at)),
                "deadline": self.new_deadline if self.new_deadline is not None else s.deadline}

    def summary_zh(self) -> str:
        return f"恢复办理（暂停 {self.paused_hours:.1f} 工作时）"


class ResumeProblem(ProblemCommand):
    """Resume a parked problem (恢复办理): its deadline moves by the working hours it was parked."""

    roles = HQ_ROLES
    reads = CLOCK

    note: Note | None = None


@decides(ResumeProblem)
def resume_problem(state: Problem | None, cmd: ResumeProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    """Resume: the deadline moves on by the working hours the problem was parked."""
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    if p.parked_since is None:
        raise Conflict("problem_not_parked", "问题未挂账", "the problem is not parked", problem_id=str(p.problem_id))
    calendar = campaign_calendar(refs.calendar, refs.policy, ctx.now)
    paused = calendar.working_hours_between(p.parked_since, ctx.now)
    new_deadline = p.deadline
    if p.deadline is not None and paused > 0:
        new_deadline = calendar.add_working_hours(p.deadline, paused)
    return [ProblemResumed(meta=meta_for(ctx, p), problem_id=p.problem_id, paused_hours=paused, note=cmd.note,
                           previous_deadline=p.deadline, new_deadline=new_deadline)]


class ProblemWithdrawn(ProblemEvent):
    """HQ withdrew the problem as invalid (作废)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.WITHDRAWN, "ended_at": self.meta.recorded_at}

    def summary_zh(self) -> str:
        return f"作废：{self.reason}"


class WithdrawProblem(ProblemCommand):
    """Withdraw the problem as invalid (作废)."""

    roles = HQ_ROLES
    reads = frozenset()

    reason: Text


@decides(WithdrawProblem)
def withdraw_problem(state: Problem | None, cmd: WithdrawProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    return [ProblemWithdrawn(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason)]


# --- 疑似重复, 合并 ----------------------------------------------------------------------------------


class DuplicateFlagDismissed(ProblemEvent):
    """HQ judged the likely duplicate a distinct problem (非重复)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"likely_duplicate_of": ()}

    def summary_zh(self) -> str:
        return f"判定非重复：{self.reason}"


class DismissDuplicateFlag(ProblemCommand):
    """Judge a likely duplicate to be a distinct problem (非重复)."""

    roles = HQ_ROLES
    reads = frozenset()

    reason: Text


@decides(DismissDuplicateFlag)
def dismiss_duplicate_flag(state: Problem | None, cmd: DismissDuplicateFlag, ctx: CommandContext,
                           refs: ProblemRefs) -> Events:
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    if not p.likely_duplicate_of:
        raise Conflict("not_flagged_duplicate", "该问题未被标记为疑似重复", "the problem is not flagged as a duplicate")
    return [DuplicateFlagDismissed(meta=meta_for(ctx, p), problem_id=p.problem_id, reason=cmd.reason)]


class ProblemMerged(ProblemEvent):
    """HQ merged this duplicate into another problem (合并)."""

    into_problem_id: UUID
    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.MERGED, "ended_at": self.meta.recorded_at, "merged_into": self.into_problem_id}

    def summary_zh(self) -> str:
        return f"合并到其他问题：{self.reason}"


class DuplicateAbsorbed(ProblemEvent):
    """A duplicate was merged into this problem; its evidence joins this one's."""

    duplicate_problem_id: UUID
    evidence: tuple[EvidenceRef, ...] = ()

    def apply(self, s: Problem) -> Update:
        return {"absorbed": (*s.absorbed, self.duplicate_problem_id), "evidence": (*s.evidence, *self.evidence)}

    def summary_zh(self) -> str:
        return "并入一条重复问题"


class MergeProblem(ProblemCommand):
    """Merge this duplicate into another open problem (合并)."""

    roles = HQ_ROLES
    reads = frozenset({"merge_target"})
    references = {"into_problem_id": "problem"}

    into_problem_id: UUID
    reason: Text


@decides(MergeProblem)
def merge_problem(state: Problem | None, cmd: MergeProblem, ctx: CommandContext, refs: ProblemRefs) -> Events:
    """合并: the duplicate ends as merged; the target records it and gains its evidence."""
    p = guard_open(state, cmd.problem_id, ctx, HQ_ROLES, parked_ok=True)
    target = refs.merge_target
    if cmd.into_problem_id == p.problem_id:
        raise DomainError("merge_into_self", "不能合并到自身", "cannot merge a problem into itself")
    if target is None or target.problem_id != cmd.into_problem_id:
        raise NotFound("problem_not_found", "合并目标问题不存在", "merge target not found",
                       problem_id=str(cmd.into_problem_id))
    if is_terminal(target):
        raise Conflict("merge_target_ended", "合并目标已销号、作废或合并", "the merge target is no longer open",
                       state=target.state.value)
    if target.campaign_id != p.campaign_id:
        raise DomainError("merge_across_campaigns", "不能跨创建活动合并", "cannot merge across campaigns")
    return [
        ProblemMerged(meta=meta_for(ctx, p), problem_id=p.problem_id, into_problem_id=target.problem_id,
                      reason=cmd.reason),
        DuplicateAbsorbed(meta=meta_for(ctx, p), problem_id=target.problem_id, duplicate_problem_id=p.problem_id,
                          evidence=p.evidence),
    ]
