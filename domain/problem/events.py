"""Problem (问题) events: the facts of a problem's life, how each folds, and how each reads.

Lifecycle: reported (已上报) → assigned (交办) → acknowledged (签收) → rectification_submitted
(整改反馈) → verified (复查通过) → closed (销号); a failed verification sends it to rework (返工)
and back to rectification. withdrawn (作废) and merged (合并) end it early. Being parked (挂账/缓办)
is orthogonal to the state: the clock pauses until the problem resumes. Events carry every
computed fact (deadline, limit, paused hours) so folding them needs no calendar.

Each event states, beside its fields, `apply` (the fields of the `Problem` it changes; `state.evolve`
folds by it) and `summary_zh` (its line in the problem's timeline, 整改台账). Each command states, beside
its fields, `roles`, `reads` and `references` (`commands.ProblemCommand`) and sits just above its decision,
marked `@decides(TheCommand)`: infra/commands/problem.py registers every handler from these, so there is
no table to extend. Adding an event:
- here: the event with its `apply` and `summary_zh`;
- `decisions` (main line) or `detours` (side paths): the decision that emits it, and for a new command
  the command class with its `roles`, `reads` and `references` just above its `@decides` decision;
- `__init__`: the new names in the public API;
- tests: the decision's in tests/unit, and a new command's row in the authorization matrix
  (tests/integration/test_authorization_matrix.py: written out by hand, so it can disagree with `roles`);
- a projection only if it needs more than the fold and the timeline line (the ledger and the work
  items read every problem event already);
- then `dudao schema export contract` (generated); tests/unit/test_event_checklist.py names what is missing.
Hand-edited files: a new fact from an existing decision, 4 (here, the decision's module, `__init__`, the
unit tests); one that comes with a new command, 5 (the same plus its authorization-matrix row); a read
model that needs more than the timeline line adds its projection module.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import DomainEvent, Frozen, UnhandledEvent
from domain.kernel.scalars import Count
from domain.kernel.text import Text, single_line
from domain.kernel.timefmt import format_local  # timeline times: China time to the minute, — when unset
from domain.policy.campaign import TimeLimit
from domain.kernel.taxonomy import CategoryCode, Severity

if TYPE_CHECKING:
    from domain.problem.state import Problem

KIND = "problem"
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
# What a photo may be (证据照片类型): the upload store recognises these by their first bytes.
EVIDENCE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

Source = Literal["visit", "hotline", "assessment", "leader"]
RoutingSource = Literal["matrix", "category_routing", "hq_override"]
TransferMode = Literal["approved_request", "hq_direct", "automatic"]


class EvidenceRef(Frozen):
    """A photo stored content-addressed (证据照片): its SHA-256, media type and size in bytes."""

    sha256: Annotated[str, single_line(min_length=None, pattern=r"^[0-9a-f]{64}$")]
    media_type: Annotated[str, single_line(min_length=None, pattern=r"^image/[a-z0-9][a-z0-9.+-]{0,63}$")]
    size: Count = Field(ge=1, le=MAX_EVIDENCE_BYTES)


Evidence = Annotated[tuple[EvidenceRef, ...], Field(max_length=30)]


class ProblemState(StrEnum):
    REPORTED = "reported"  # 已上报
    ASSIGNED = "assigned"  # 已交办
    ACKNOWLEDGED = "acknowledged"  # 已签收, rectifying
    RECTIFICATION_SUBMITTED = "rectification_submitted"  # 已反馈, awaiting 复查
    REWORK = "rework"  # 返工
    VERIFIED = "verified"  # 复查通过
    CLOSED = "closed"  # 已销号
    WITHDRAWN = "withdrawn"  # 已作废
    MERGED = "merged"  # 已合并


TERMINAL = frozenset({ProblemState.CLOSED, ProblemState.WITHDRAWN, ProblemState.MERGED})
# States in which the unit owes rectification work and its clock runs.
OWED = frozenset({ProblemState.ASSIGNED, ProblemState.ACKNOWLEDGED, ProblemState.REWORK})

SOURCE_ZH = {"visit": "督导发现", "hotline": "热线", "assessment": "测评", "leader": "领导交办"}


class PendingExtension(Frozen):
    """An extension request (延期申请) awaiting HQ's decision."""

    working_days: int
    reason: str
    requested_at: datetime


class PendingTransfer(Frozen):
    """A transfer request (申请转办) awaiting HQ's decision."""

    unit_id: UUID
    reason: str
    suggested_unit_id: UUID | None
    requested_at: datetime


# The fields of a Problem that one event changes.
Update = dict[str, Any]


class LateEntry(Frozen):
    """补录: the step was done on paper at `meta.occurred_at` and entered at `meta.recorded_at` by HQ, for `reason`.

    A step entered late counts from its real time: the deadline of a 交办, the signing time of a 签收, the time
    of a 复查. Both times stay in the envelope, so the knowledge view can tell what HQ knew when.
    """

    reason: Text


def step_time(event: DomainEvent, late_entry: LateEntry | None) -> datetime:
    """When a 交办/签收/复查 took place: its real time when entered late (补录), else when it was recorded."""
    return event.meta.occurred_at if late_entry is not None else event.meta.recorded_at


def late_note(late_entry: LateEntry | None) -> str:
    return f"（补录：{late_entry.reason}）" if late_entry is not None else ""


class ProblemEvent(DomainEvent):
    """What every problem event has: the problem's id, how it folds and how it reads (not itself an event)."""

    abstract: ClassVar[bool] = True
    kind = KIND
    id_field = "problem_id"
    problem_id: UUID

    def apply(self, s: Problem) -> Update:
        """The fields of `s` this event changes, stamped with its recording time (every event defines it)."""
        raise UnhandledEvent(KIND, self)

    def summary_zh(self) -> str:
        """The event's line in the problem's timeline (every concrete event defines it)."""
        raise NotImplementedError(f"{type(self).__name__} has no timeline summary")


class ProblemReported(ProblemEvent):
    """A problem was reported (问题上报), possibly flagged as a likely duplicate or a relapse (反弹)."""

    campaign_id: UUID
    category: CategoryCode
    severity: Severity
    place_id: UUID
    description: Text
    evidence: Evidence = ()
    source: Source
    visit_id: UUID | None = None
    likely_duplicate_of: tuple[UUID, ...] = ()
    relapse_of: UUID | None = None

    def apply(self, s: Problem | None) -> Update:
        """Every field of the new problem (a report starts the fold; `s` is None)."""
        fields = self.model_dump(exclude={"meta", "problem_id"})
        return {"problem_id": self.problem_id, "found_at": self.meta.occurred_at, "reported_at": self.meta.recorded_at,
                "reported_by": self.meta.actor.person_id, **fields}

    def summary_zh(self) -> str:
        flags = ("，疑似重复" if self.likely_duplicate_of else "") + ("，反弹" if self.relapse_of else "")
        return f"问题上报（{SOURCE_ZH.get(self.source, self.source)}）{flags}"


class ProblemAssigned(ProblemEvent):
    """The problem was handed to a unit (交办) with a deadline from the policy in force."""

    unit_id: UUID
    routing: RoutingSource
    reason: str | None = None
    deadline: AwareDatetime
    limit: TimeLimit
    limit_hours: float
    policy_effective_from: AwareDatetime
    late_entry: LateEntry | None = None  # 补录: the deadline counts from meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.ASSIGNED, "unit_id": self.unit_id, "routing": self.routing,
                "assigned_at": step_time(self, self.late_entry), "deadline": self.deadline,
                "limit_hours": self.limit_hours}

    def summary_zh(self) -> str:
        override = f"（总指挥部指定：{self.reason}）" if self.routing == "hq_override" else ""
        return f"交办，整改期限 {format_local(self.deadline)}{override}{late_note(self.late_entry)}"


class ProblemAcknowledged(ProblemEvent):
    """The responsible unit acknowledged receipt (签收)."""

    unit_id: UUID
    note: str | None = None
    late_entry: LateEntry | None = None  # 补录 by HQ: signed at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.ACKNOWLEDGED, "acknowledged_at": step_time(self, self.late_entry)}

    def summary_zh(self) -> str:
        return f"签收{late_note(self.late_entry)}"


class RectificationSubmitted(ProblemEvent):
    """The unit reported its rectification with evidence (整改反馈)."""

    unit_id: UUID
    evidence: Evidence
    note: str | None = None

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.RECTIFICATION_SUBMITTED, "submission_count": s.submission_count + 1,
                "last_submitted_at": self.meta.recorded_at, "last_submitted_by": self.meta.actor.person_id,
                "submitted_evidence": self.evidence, "verification_passed": None}

    def summary_zh(self) -> str:
        return f"整改反馈（{len(self.evidence)} 张照片）"


class RectificationVerified(ProblemEvent):
    """Re-inspection passed (复查通过)."""

    evidence: Evidence = ()
    note: str | None = None
    late_entry: LateEntry | None = None  # 补录 by HQ: re-inspected at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.VERIFIED, "verification_passed": True,
                "verified_at": step_time(self, self.late_entry)}

    def summary_zh(self) -> str:
        return f"复查通过{late_note(self.late_entry)}"


class RectificationRejected(ProblemEvent):
    """Re-inspection failed: the unit must rework (复查不通过, 返工)."""

    reason: Text
    evidence: Evidence = ()
    late_entry: LateEntry | None = None  # 补录 by HQ: re-inspected at meta.occurred_at

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.REWORK, "verification_passed": False,
                "verified_at": step_time(self, self.late_entry), "rework_count": s.rework_count + 1}

    def summary_zh(self) -> str:
        return f"复查不通过，返工：{self.reason}{late_note(self.late_entry)}"


class ProblemClosed(ProblemEvent):
    """The problem was closed (销号)."""

    note: str | None = None

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.CLOSED, "closed_at": self.meta.recorded_at, "pending_extension": None,
                "pending_transfer": None, "coordination_pending": False}

    def summary_zh(self) -> str:
        return "销号"


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


class TransferRejected(ProblemEvent):
    """HQ rejected the transfer request (驳回转办)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"pending_transfer": None}

    def summary_zh(self) -> str:
        return f"驳回转办：{self.reason}"


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


class CoordinationRequested(ProblemEvent):
    """The unit asked HQ to coordinate other departments (需协调)."""

    unit_id: UUID
    reason: Text
    unit_ids: tuple[UUID, ...] = ()

    def apply(self, s: Problem) -> Update:
        return {"coordination_pending": True}

    def summary_zh(self) -> str:
        return f"申请协调：{self.reason}"


class CoordinationResolved(ProblemEvent):
    """HQ answered the coordination request (协调完成)."""

    note: Text

    def apply(self, s: Problem) -> Update:
        return {"coordination_pending": False}

    def summary_zh(self) -> str:
        return f"协调完成：{self.note}"


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


class ExtensionRejected(ProblemEvent):
    """HQ rejected the extension (驳回延期)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"pending_extension": None}

    def summary_zh(self) -> str:
        return f"驳回延期：{self.reason}"


class ProblemParked(ProblemEvent):
    """HQ parked the problem (挂账/缓办): its clock pauses."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"parked_since": self.meta.recorded_at}

    def summary_zh(self) -> str:
        return f"挂账：{self.reason}"


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


class ProblemWithdrawn(ProblemEvent):
    """HQ withdrew the problem as invalid (作废)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"state": ProblemState.WITHDRAWN, "ended_at": self.meta.recorded_at}

    def summary_zh(self) -> str:
        return f"作废：{self.reason}"


class DuplicateFlagDismissed(ProblemEvent):
    """HQ judged the likely duplicate a distinct problem (非重复)."""

    reason: Text

    def apply(self, s: Problem) -> Update:
        return {"likely_duplicate_of": ()}

    def summary_zh(self) -> str:
        return f"判定非重复：{self.reason}"


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


class RelapseRecorded(ProblemEvent):
    """This closed problem came back (反弹): a new problem was found at its place and category."""

    relapse_problem_id: UUID

    def apply(self, s: Problem) -> Update:
        return {"relapses": (*s.relapses, self.relapse_problem_id)}

    def summary_zh(self) -> str:
        return "发现反弹"
