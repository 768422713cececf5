"""Campaign policy (创建活动政策): versioned data that rules read, so replay judges by the policy then.

One `campaign_policy` aggregate per campaign (id `policy_id_for(campaign_id)`) holds seven
independently versioned policies: deadlines (整改时限) per category × severity, the relapse
window (反弹期), category routing (分类派遣: category → department), the taxonomy (问题分类),
local calendar days (本地节假日/调休), the late-entry window (补录时限: how far back HQ may record a
交办/签收/复查 with its real time) and automatic assignment (自动交办: a report whose routing is
unambiguous is handed to its unit in the same write). Each version has an `effective_from`; a new version may not
take effect before the previous one of its kind. `*_at(policy, at)` returns what was in force at
`at`, falling back to the product defaults. What every policy decision reads (`PolicyRefs`) is
also stated here; the commands are in `domain.policy.commands`, who may issue them in `domain.kernel.roles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import ClassVar, Literal, Protocol, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, Field

from domain.kernel.base import DomainEvent, Frozen, UnhandledEvent, derived_id, evolver
from domain.kernel.calendar import WorkCalendar
from domain.kernel.scalars import Count
from domain.kernel.taxonomy import DEFAULT_CATEGORIES, Category, CategoryCode, Severity

KIND = "campaign_policy"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class PolicyRefs(Frozen):
    """Gathered for every policy command: does the campaign exist; which routed-to units exist."""

    campaign_exists: bool = True
    known_unit_ids: frozenset[UUID] = frozenset()


def policy_id_for(campaign_id: UUID) -> UUID:
    """The id of a campaign's policy aggregate."""
    return derived_id("policy", campaign_id)


class TimeLimit(Frozen):
    """A time limit (时限) in working days or working hours on the campaign calendar."""

    amount: Count = Field(ge=1, le=2000)
    unit: Literal["working_days", "working_hours"] = "working_days"

    def due(self, calendar: WorkCalendar, start: datetime) -> datetime:
        """The instant this limit runs out when counted from `start`."""
        if self.unit == "working_days":
            return calendar.add_working_days(start, self.amount)
        return calendar.add_working_hours(start, self.amount)


class DeadlineLimit(Frozen):
    """A limit for one category and/or severity; None matches any."""

    category: CategoryCode | None = None
    severity: Severity | None = None
    limit: TimeLimit


class DeadlinePolicy(Frozen):
    """整改时限: the most specific matching limit applies (category+severity, category, severity, default)."""

    effective_from: AwareDatetime
    limits: tuple[DeadlineLimit, ...] = Field(default=(), max_length=500)
    default: TimeLimit

    def limit_for(self, category: str, severity: Severity) -> TimeLimit:
        for key in ((category, severity), (category, None), (None, severity)):
            for rule in self.limits:
                if (rule.category, rule.severity) == key:
                    return rule.limit
        return self.default


class RelapseWindow(Frozen):
    """反弹期: a problem found again within `days` calendar days of the original's closure is a relapse."""

    effective_from: AwareDatetime
    days: int = Field(ge=1, le=3650)

    @property
    def length(self) -> timedelta:
        return timedelta(days=self.days)


class CategoryRoute(Frozen):
    category: CategoryCode
    unit_id: UUID


class CategoryRouting(Frozen):
    """分类派遣: categories handled by a department regardless of place (e.g. 违规乱建 → 城管局)."""

    effective_from: AwareDatetime
    routes: tuple[CategoryRoute, ...] = Field(default=(), max_length=500)

    def unit_for(self, category: str) -> UUID | None:
        return next((r.unit_id for r in self.routes if r.category == category), None)


class Taxonomy(Frozen):
    """The campaign's problem categories (问题分类)."""

    effective_from: AwareDatetime
    categories: tuple[Category, ...] = Field(min_length=1, max_length=200)


class CalendarDays(Frozen):
    """Local calendar days (本地放假/调休上班) added on top of the national calendar."""

    effective_from: AwareDatetime
    days_off: tuple[date, ...] = Field(default=(), max_length=400)
    make_up_workdays: tuple[date, ...] = Field(default=(), max_length=400)


class LateEntryWindow(Frozen):
    """补录时限: HQ may record a 交办/签收/复查 with its real time up to `days` calendar days before now."""

    effective_from: AwareDatetime
    days: int = Field(ge=0, le=365)

    @property
    def length(self) -> timedelta:
        return timedelta(days=self.days)


class AutoAssignment(Frozen):
    """自动交办: when on, a reported problem whose routing is unambiguous (a category route, or one lead unit of its
    place in the matrix) is handed to that unit in the same write as the report, with its 交办单."""

    effective_from: AwareDatetime
    enabled: bool = False


DEFAULT_DEADLINE_POLICY = DeadlinePolicy(
    effective_from=_EPOCH,
    limits=(
        DeadlineLimit(severity=Severity.SERIOUS, limit=TimeLimit(amount=1)),
        DeadlineLimit(severity=Severity.NORMAL, limit=TimeLimit(amount=3)),
        DeadlineLimit(severity=Severity.MINOR, limit=TimeLimit(amount=5)),
    ),
    default=TimeLimit(amount=3),
)
DEFAULT_RELAPSE_WINDOW = RelapseWindow(effective_from=_EPOCH, days=90)
DEFAULT_ROUTING = CategoryRouting(effective_from=_EPOCH)
DEFAULT_TAXONOMY = Taxonomy(effective_from=_EPOCH, categories=DEFAULT_CATEGORIES)
DEFAULT_CALENDAR_DAYS = CalendarDays(effective_from=_EPOCH)
DEFAULT_LATE_ENTRY_WINDOW = LateEntryWindow(effective_from=_EPOCH, days=30)
DEFAULT_AUTO_ASSIGNMENT = AutoAssignment(effective_from=_EPOCH, enabled=False)


class _Versioned(Protocol):
    @property
    def effective_from(self) -> datetime: ...


V = TypeVar("V", bound=_Versioned)


def in_force(history: Sequence[V], at: datetime, default: V) -> V:
    """The version in force at `at`: the last recorded one whose effective_from <= at."""
    found = default
    for version in history:
        if version.effective_from <= at:
            found = version
    return found


def policy_in_force(history: Sequence[DeadlinePolicy], at: datetime) -> DeadlinePolicy:
    """The deadline policy in force at `at` (the product default before any was set)."""
    return in_force(history, at, DEFAULT_DEADLINE_POLICY)


def deadline_for(policy: DeadlinePolicy, calendar: WorkCalendar, category: str, severity: Severity,
                 assigned_at: datetime) -> datetime:
    """整改期限: the deadline of a problem assigned at `assigned_at` under `policy` on `calendar`."""
    return policy.limit_for(category, severity).due(calendar, assigned_at)


# --- events -------------------------------------------------------------------------------------


class PolicyEvent(DomainEvent):
    abstract: ClassVar[bool] = True  # a base, not a stored event type
    kind = KIND
    id_field = "policy_id"
    policy_id: UUID
    campaign_id: UUID
    effective_from: AwareDatetime


class DeadlinePolicySet(PolicyEvent):
    """HQ set the rectification time limits (整改时限) from `effective_from`."""

    limits: tuple[DeadlineLimit, ...] = ()
    default: TimeLimit


class RelapseWindowSet(PolicyEvent):
    """HQ set the relapse window (反弹期)."""

    days: int


class CategoryRoutingSet(PolicyEvent):
    """HQ set which department handles which category (分类派遣)."""

    routes: tuple[CategoryRoute, ...] = ()


class CategoriesConfigured(PolicyEvent):
    """HQ configured the campaign's problem categories (问题分类)."""

    categories: tuple[Category, ...]


class CalendarDaysSet(PolicyEvent):
    """HQ set the campaign's local days off and make-up working days (本地工作日历)."""

    days_off: tuple[date, ...] = ()
    make_up_workdays: tuple[date, ...] = ()


class LateEntryWindowSet(PolicyEvent):
    """HQ set how far back a 交办/签收/复查 may be recorded with its real time (设定补录时限)."""

    days: int


class AutoAssignmentSet(PolicyEvent):
    """HQ turned automatic assignment (自动交办) of unambiguously routed reports on or off."""

    enabled: bool


# Event type → (state attribute holding its versions, version model).
VERSIONS: dict[type[PolicyEvent], tuple[str, type[Frozen]]] = {
    DeadlinePolicySet: ("deadlines", DeadlinePolicy),
    RelapseWindowSet: ("relapse_windows", RelapseWindow),
    CategoryRoutingSet: ("routings", CategoryRouting),
    CategoriesConfigured: ("taxonomies", Taxonomy),
    CalendarDaysSet: ("calendars", CalendarDays),
    LateEntryWindowSet: ("late_entry_windows", LateEntryWindow),
    AutoAssignmentSet: ("auto_assignments", AutoAssignment),
}


class CampaignPolicy(Frozen):
    """Every version of every policy of one campaign, in recording order."""

    policy_id: UUID
    campaign_id: UUID
    deadlines: tuple[DeadlinePolicy, ...] = ()
    relapse_windows: tuple[RelapseWindow, ...] = ()
    routings: tuple[CategoryRouting, ...] = ()
    taxonomies: tuple[Taxonomy, ...] = ()
    calendars: tuple[CalendarDays, ...] = ()
    late_entry_windows: tuple[LateEntryWindow, ...] = ()
    auto_assignments: tuple[AutoAssignment, ...] = ()


@evolver(KIND)
def evolve(state: CampaignPolicy | None, event: DomainEvent) -> CampaignPolicy:
    if not isinstance(event, PolicyEvent) or type(event) not in VERSIONS:
        raise UnhandledEvent(KIND, event)
    if state is None:
        state = CampaignPolicy(policy_id=event.policy_id, campaign_id=event.campaign_id)
    attr, model = VERSIONS[type(event)]
    version = model(**event.model_dump(exclude={"meta", "policy_id", "campaign_id"}))
    return state.model_copy(update={attr: (*getattr(state, attr), version)})


# --- lookups by time ----------------------------------------------------------------------------


def deadline_policy_at(policy: CampaignPolicy | None, at: datetime) -> DeadlinePolicy:
    return policy_in_force(policy.deadlines if policy else (), at)


def relapse_window_at(policy: CampaignPolicy | None, at: datetime) -> RelapseWindow:
    return in_force(policy.relapse_windows if policy else (), at, DEFAULT_RELAPSE_WINDOW)


def routing_at(policy: CampaignPolicy | None, at: datetime) -> CategoryRouting:
    return in_force(policy.routings if policy else (), at, DEFAULT_ROUTING)


def categories_at(policy: CampaignPolicy | None, at: datetime) -> tuple[Category, ...]:
    return in_force(policy.taxonomies if policy else (), at, DEFAULT_TAXONOMY).categories


def late_entry_window_at(policy: CampaignPolicy | None, at: datetime) -> LateEntryWindow:
    return in_force(policy.late_entry_windows if policy else (), at, DEFAULT_LATE_ENTRY_WINDOW)


def auto_assignment_at(policy: CampaignPolicy | None, at: datetime) -> AutoAssignment:
    return in_force(policy.auto_assignments if policy else (), at, DEFAULT_AUTO_ASSIGNMENT)


def campaign_calendar(national: WorkCalendar, policy: CampaignPolicy | None, at: datetime) -> WorkCalendar:
    """The national calendar with the campaign's local days in force at `at`."""
    days = in_force(policy.calendars if policy else (), at, DEFAULT_CALENDAR_DAYS)
    return national.with_local_days(days.days_off, days.make_up_workdays)

