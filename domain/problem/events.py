"""Problem (问题) events: the facts of a problem's life, and the value types they carry.

Lifecycle: reported (已上报) → assigned (交办) → acknowledged (签收) → rectification_submitted
(整改反馈) → verified (复查通过) → closed (销号); a failed verification sends it to rework (返工)
and back to rectification. withdrawn (作废) and merged (合并) end it early. Being parked (挂账/缓办)
is orthogonal to the state: the clock pauses until the problem resumes. Events carry every
computed fact (deadline, limit, paused hours) so folding them (problem_state) needs no calendar.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from domain.kernel.base import DomainEvent, Frozen
from domain.policy.campaign import TimeLimit
from domain.kernel.taxonomy import CategoryCode, Severity

KIND = "problem"
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Source = Literal["visit", "hotline", "assessment", "leader"]
RoutingSource = Literal["matrix", "category_routing", "hq_override"]
TransferMode = Literal["approved_request", "hq_direct", "automatic"]


class EvidenceRef(Frozen):
    """A photo stored content-addressed (证据照片): its SHA-256, media type and size in bytes."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str = Field(pattern=r"^image/[a-z0-9][a-z0-9.+-]{0,63}$")
    size: int = Field(ge=1, le=MAX_EVIDENCE_BYTES)


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


class ProblemEvent(DomainEvent):
    kind = KIND
    id_field = "problem_id"
    problem_id: UUID


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


class ProblemAssigned(ProblemEvent):
    """The problem was handed to a unit (交办) with a deadline from the policy in force."""

    unit_id: UUID
    routing: RoutingSource
    reason: str | None = None
    deadline: AwareDatetime
    limit: TimeLimit
    limit_hours: float
    policy_effective_from: AwareDatetime


class ProblemAcknowledged(ProblemEvent):
    """The responsible unit acknowledged receipt (签收)."""

    unit_id: UUID
    note: str | None = None


class RectificationSubmitted(ProblemEvent):
    """The unit reported its rectification with evidence (整改反馈)."""

    unit_id: UUID
    evidence: Evidence
    note: str | None = None


class RectificationVerified(ProblemEvent):
    """Re-inspection passed (复查通过)."""

    evidence: Evidence = ()
    note: str | None = None


class RectificationRejected(ProblemEvent):
    """Re-inspection failed: the unit must rework (复查不通过, 返工)."""

    reason: Text
    evidence: Evidence = ()


class ProblemClosed(ProblemEvent):
    """The problem was closed (销号)."""

    note: str | None = None


class TransferRequested(ProblemEvent):
    """The unit asked HQ to transfer the problem elsewhere (申请转办)."""

    unit_id: UUID
    reason: Text
    suggested_unit_id: UUID | None = None


class TransferRejected(ProblemEvent):
    """HQ rejected the transfer request (驳回转办)."""

    reason: Text


class ProblemTransferred(ProblemEvent):
    """The problem moved to another unit (转办); its deadline stays."""

    from_unit_id: UUID
    to_unit_id: UUID
    reason: Text
    mode: TransferMode


class CoordinationRequested(ProblemEvent):
    """The unit asked HQ to coordinate other departments (需协调)."""

    unit_id: UUID
    reason: Text
    unit_ids: tuple[UUID, ...] = ()


class CoordinationResolved(ProblemEvent):
    """HQ answered the coordination request (协调完成)."""

    note: Text


class ExtensionRequested(ProblemEvent):
    """The unit applied for more time before its deadline (延期申请)."""

    unit_id: UUID
    working_days: int
    reason: Text


class ExtensionApproved(ProblemEvent):
    """HQ approved an extension (批准延期): the deadline moves."""

    working_days: int
    previous_deadline: AwareDatetime
    new_deadline: AwareDatetime
    added_hours: float
    note: str | None = None


class ExtensionRejected(ProblemEvent):
    """HQ rejected the extension (驳回延期)."""

    reason: Text


class ProblemParked(ProblemEvent):
    """HQ parked the problem (挂账/缓办): its clock pauses."""

    reason: Text


class ProblemResumed(ProblemEvent):
    """HQ resumed a parked problem: the deadline moves by the working hours it was parked."""

    paused_hours: float
    previous_deadline: AwareDatetime | None = None
    new_deadline: AwareDatetime | None = None
    note: str | None = None


class ProblemWithdrawn(ProblemEvent):
    """HQ withdrew the problem as invalid (作废)."""

    reason: Text


class DuplicateFlagDismissed(ProblemEvent):
    """HQ judged the likely duplicate a distinct problem (非重复)."""

    reason: Text


class ProblemMerged(ProblemEvent):
    """HQ merged this duplicate into another problem (合并)."""

    into_problem_id: UUID
    reason: Text


class DuplicateAbsorbed(ProblemEvent):
    """A duplicate was merged into this problem; its evidence joins this one's."""

    duplicate_problem_id: UUID
    evidence: tuple[EvidenceRef, ...] = ()


class RelapseRecorded(ProblemEvent):
    """This closed problem came back (反弹): a new problem was found at its place and category."""

    relapse_problem_id: UUID

