"""Problem (问题) events: what every event of a problem shares, and the report that starts one.

Lifecycle: reported (已上报) → assigned (交办) → acknowledged (签收) → rectification_submitted
(整改反馈) → verified (复查通过) → closed (销号); a failed verification sends it to rework (返工)
and back to rectification. withdrawn (作废) and merged (合并) end it early. Being parked (挂账/缓办)
is orthogonal to the state: the clock pauses until the problem resumes. Events carry every
computed fact (deadline, limit, paused hours) so folding them needs no calendar.

Here: the base `ProblemEvent`, the `Update` an event's `apply` returns, and what events share
(`EvidenceRef`, `ProblemState`, `PendingExtension`/`PendingTransfer`, `LateEntry`). `ProblemReported`
stays here because the fold (`state.evolve`) starts a problem from it. Every other event lives
beside the decision that emits it, in `decisions` (main line) or `detours` (side paths), stating
beside its fields `apply` (the fields of the `Problem` it changes; `state.evolve` folds by it) and
`summary_zh` (its line in the problem's timeline, 整改台账). Each command states, beside its fields,
`roles`, `reads` and `references` (`commands.ProblemCommand`) and sits just above its decision,
marked `@decides(TheCommand)`: infra/commands/problem.py registers every handler from these, so there
is no table to extend. Adding an event:
- `decisions` or `detours`: the event with its `apply` and `summary_zh`, the decision that emits it,
  and for a new command the command class with its `roles`, `reads` and `references` just above its
  `@decides` decision — one module;
- `__init__`: the new names in the public API (the rest of the system imports events from
  `domain.problem`, not from the module that defines them);
- tests: the decision's in tests/unit, and a new command's row in the authorization matrix
  (tests/integration/test_authorization_matrix.py: written out by hand, so it can disagree with `roles`);
- a projection only if it needs more than the fold and the timeline line (the ledger and the work
  items read every problem event already);
- then `dudao schema export contract` (generated); tests/unit/test_event_checklist.py names what is missing.
Hand-edited files: a new fact from an existing decision, 3 (the decision's module, `__init__`, the unit
tests); one that comes with a new command, 4 (the same plus its authorization-matrix row); a read model
that needs more than the timeline line adds its projection module.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from domain.kernel.base import DomainEvent, Frozen, UnhandledEvent
from domain.kernel.scalars import Count
from domain.kernel.text import Text, single_line
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
