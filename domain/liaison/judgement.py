"""Judging a liaison duty (履职判定): per link and period, what was due, what was done, and the verdict.

The duty of a link in a period (应履职次数) is the policy's `visits_per_place`, scaled by the share
of the period the link was held: time outside the link's validity and (when the policy pro-rates
exemptions) exempted days do not count, and the share is measured against the whole calendar
period. Pro-rating rounds half up, so with the default one visit a month a leader who held the
link for at least half the month owes the visit and one who held it for less owes nothing: in a
handover mid-month exactly one of the two owes it — the one who held the link longer (at exactly
half, both). With `partial_period = "full"` any part of a period owes the whole duty; with
`exemption_effect = "waive"` an exemption touching the period waives it.

A visit counts (计入) for the period in which it *occurred*, while the link was held, when the
leader was its lead (first participant) or a named participant (per policy), at the linked place
or — when the policy says so — a place inside it; for a link to a unit, at the places that unit
leads. Uploads recorded by the judgement instant (period end + grace) count on time; later ones
still count, as late.

Verdicts (status): `met` (履职), `met_late` (补录后履职: met only with visits recorded after the
grace), `unmet` (未履职), `pending` (周期未判定: not yet judged and not yet met), `exempt` (免除:
exemptions brought the duty to zero), `not_due` (无应履职: the link covered too little of the period).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime

from domain.kernel.base import Frozen, derived_id
from domain.kernel.calendar import WorkCalendar
from domain.liaison.links import Exemption, Link, TargetKind
from domain.liaison.periods import Period, judged_at, periods_between, remind_at
from domain.liaison.policy import DutyPolicy, PolicyTimeline

Status = Literal["met", "met_late", "unmet", "pending", "exempt", "not_due"]
STATUS_NAMES_ZH: dict[str, str] = {
    "met": "已履职", "met_late": "补录后履职", "unmet": "未履职", "pending": "待判定", "exempt": "免除",
    "not_due": "无应履职",
}


def duty_id_for(link_id: UUID, period_start: date) -> UUID:
    """The id of one link's duty in the period starting on `period_start` (its `liaison_duty` aggregate)."""
    return derived_id("liaison_duty", link_id, period_start.isoformat())


class VisitFact(Frozen):
    """A supervision visit as the duty rules see it: who, where, when it happened and when it was recorded."""

    visit_id: UUID
    place_id: UUID
    participants: tuple[UUID, ...]
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    logged_by: UUID | None = None
    problem_ids: tuple[UUID, ...] = ()


class LinkPlaces(Frozen):
    """Where visits count for a link: the linked place(s) themselves, and the places inside them."""

    exact: frozenset[UUID]
    inside: frozenset[UUID] = frozenset()

    def counted(self, policy: DutyPolicy) -> frozenset[UUID]:
        return self.exact | self.inside if policy.count_places_inside else self.exact


class CountedVisit(Frozen):
    visit_id: UUID
    place_id: UUID
    occurred_at: datetime
    recorded_at: datetime
    logged_by: UUID | None = None
    lead: bool
    late: bool
    problem_ids: tuple[UUID, ...] = ()


class Due(Frozen):
    """The duty of one link in one period: visits owed, the share held, the exempted days and their ids."""

    due: int
    share: float
    exempt_days: float = 0.0
    exemption_ids: tuple[UUID, ...] = ()
    exempted: bool = False


class Verdict(Frozen):
    """One leader × link × period: due, done, the visits, the verdict at `as_of`, and the policy that judged it."""

    duty_id: UUID
    person_id: UUID
    link_id: UUID
    target_kind: TargetKind
    target_id: UUID
    period: Period
    policy_version: int
    policy_effective_from: datetime
    due: int
    share: float
    exempt_days: float
    exemption_ids: tuple[UUID, ...]
    done: int
    done_on_time: int
    visits: tuple[CountedVisit, ...]
    remind_at: datetime | None
    judged_at: datetime
    status: Status
    as_of: datetime


# --- the duty -----------------------------------------------------------------------------------


def held_span(period: Period, link: Link, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """The part of the period the link was valid, or None when it was not valid in it at all."""
    start = max(period.starts_at(tz), link.valid_from)
    end = period.ends_at(tz) if link.valid_to is None else min(period.ends_at(tz), link.valid_to)
    return (start, end) if start < end else None


def exempted_spans(exemptions: Iterable[Exemption], start: datetime, end: datetime,
                   tz: tzinfo) -> list[tuple[datetime, datetime, UUID]]:
    """The (non-revoked) exemptions' days clipped to [start, end), with their ids."""
    out = []
    for x in exemptions:
        if x.revoked:
            continue
        lo = max(start, datetime.combine(x.starts_on, time(0), tz))
        hi = min(end, datetime.combine(x.ends_on + timedelta(days=1), time(0), tz))
        if lo < hi:
            out.append((lo, hi, x.exemption_id))
    return out


def _union_length(spans: Sequence[tuple[datetime, datetime, UUID]]) -> timedelta:
    total, cursor = timedelta(0), None
    for lo, hi, _ in sorted(spans):
        if cursor is not None and lo < cursor:
            lo = cursor
        if lo < hi:
            total += hi - lo
            cursor = hi
    return total


def round_half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


def duty_in_period(policy: DutyPolicy, period: Period, link: Link, exemptions: Iterable[Exemption],
                   tz: tzinfo) -> Due:
    """How many visits the link owes in the period under `policy` (see the module docstring)."""
    held = held_span(period, link, tz)
    if held is None:
        return Due(due=0, share=0.0)
    spans = exempted_spans(exemptions, *held, tz)
    exempt = _union_length(spans)
    ids = tuple(dict.fromkeys(i for _, _, i in spans))
    nominal = period.ends_at(tz) - period.nominal_starts_at(tz)
    time_held = held[1] - held[0]
    share = Fraction(int(time_held.total_seconds()), int(nominal.total_seconds()))
    if policy.exemption_effect == "waive" and spans:
        return Due(due=0, share=float(share), exempt_days=exempt / timedelta(days=1), exemption_ids=ids,
                   exempted=_owes(policy, share))
    net = Fraction(int((time_held - exempt).total_seconds()), int(nominal.total_seconds()))
    due = _owed(policy, net)
    return Due(due=due, share=float(net), exempt_days=exempt / timedelta(days=1), exemption_ids=ids,
               exempted=due == 0 and bool(spans) and _owes(policy, share))


def _owed(policy: DutyPolicy, share: Fraction) -> int:
    if share <= 0:
        return 0
    if policy.partial_period == "full":
        return policy.visits_per_place
    return round_half_up(policy.visits_per_place * share)


def _owes(policy: DutyPolicy, share: Fraction) -> bool:
    return _owed(policy, share) > 0


# --- counting visits ----------------------------------------------------------------------------


def is_leader_on_visit(visit: VisitFact, person_id: UUID, policy: DutyPolicy) -> bool:
    """The leader led the visit (first participant) or, when the policy allows, was a named participant."""
    if visit.participants and visit.participants[0] == person_id:
        return True
    return policy.counting == "lead_or_participant" and person_id in visit.participants


def is_counted_visit(visit: VisitFact, person_id: UUID, places: LinkPlaces, policy: DutyPolicy,
                     span: tuple[datetime, datetime], known_at: datetime) -> bool:
    """The visit counts for this link and period: the leader on it, at a counted place, inside the span, known."""
    return (is_leader_on_visit(visit, person_id, policy) and visit.place_id in places.counted(policy)
            and span[0] <= visit.occurred_at < span[1] and visit.recorded_at <= known_at)


# --- the verdict --------------------------------------------------------------------------------


def is_pending(v: Verdict) -> bool:
    """Not yet judged (the grace has not run out) and not yet met."""
    return v.status == "pending"


def is_unmet(v: Verdict) -> bool:
    return v.status == "unmet"


def is_met_late(v: Verdict) -> bool:
    return v.status == "met_late"


def needs_reminder(v: Verdict, now: datetime, tz: tzinfo) -> bool:
    """The reminder time has come, the period is still running, and what is due is not yet recorded."""
    return (v.status == "pending" and v.remind_at is not None and v.remind_at <= now < v.period.ends_at(tz)
            and v.done < v.due)


def is_judged(v: Verdict) -> bool:
    """The grace ran out by the verdict's `as_of`."""
    return v.as_of >= v.judged_at


def _status(due: Due, done: int, on_time: int, judged: datetime, now: datetime) -> Status:
    if due.due == 0:
        return "exempt" if due.exempted else "not_due"
    if on_time >= due.due:
        return "met"
    if now < judged:
        return "pending"
    return "met_late" if done >= due.due else "unmet"


def judge_period(*, person_id: UUID, link: Link, period: Period, policy: DutyPolicy, places: LinkPlaces,
                 exemptions: Sequence[Exemption], visits: Sequence[VisitFact], calendar: WorkCalendar,
                 now: datetime) -> Verdict:
    """The verdict on one link's duty in one period, as known at `now` (visits recorded after it are unknown)."""
    tz = calendar.tz
    due = duty_in_period(policy, period, link, exemptions, tz)
    judged = judged_at(period, policy.grace_working_days, calendar)
    span = held_span(period, link, tz) or (period.starts_at(tz), period.starts_at(tz))
    counted = [v for v in visits if is_counted_visit(v, person_id, places, policy, span, now)]
    shown = tuple(CountedVisit(visit_id=v.visit_id, place_id=v.place_id, occurred_at=v.occurred_at,
                               recorded_at=v.recorded_at, logged_by=v.logged_by,
                               lead=bool(v.participants) and v.participants[0] == person_id,
                               late=v.recorded_at > judged, problem_ids=v.problem_ids)
                  for v in sorted(counted, key=lambda v: (v.occurred_at, str(v.visit_id))))
    on_time = sum(not v.late for v in shown)
    return Verdict(
        duty_id=duty_id_for(link.link_id, period.start), person_id=person_id, link_id=link.link_id,
        target_kind=link.target_kind, target_id=link.target_id, period=period, policy_version=policy.version,
        policy_effective_from=policy.effective_from, due=due.due, share=due.share, exempt_days=due.exempt_days,
        exemption_ids=due.exemption_ids, done=len(shown), done_on_time=on_time,
        visits=shown, remind_at=remind_at(period, policy.remind_working_days, calendar), judged_at=judged,
        status=_status(due, len(shown), on_time, judged, now), as_of=now)


def periods_of_link(link: Link, timeline: PolicyTimeline, now: datetime, first: date | None = None,
                    last: date | None = None) -> list[Period]:
    """The duty periods the link was valid in, begun by `now`, within the local days [first, last]."""
    tz = timeline.tz
    start_day = link.valid_from.astimezone(tz).date()
    end = now if link.valid_to is None else min(now, link.valid_to - timedelta(microseconds=1))
    stop_day = end.astimezone(tz).date()
    lo, hi = max(start_day, first or start_day), min(stop_day, last or stop_day)
    if lo > hi:
        return []
    return [p for p in periods_between(timeline.stretches, lo, hi) if p.starts_at(tz) <= now]


def judge_link(*, person_id: UUID, link: Link, timeline: PolicyTimeline, places: LinkPlaces,
               exemptions: Sequence[Exemption], visits: Sequence[VisitFact], calendar: WorkCalendar, now: datetime,
               first: date | None = None, last: date | None = None) -> list[Verdict]:
    """Every period's verdict for one link, oldest first (the visits may be any of the leader's)."""
    relevant = sorted((v for v in visits if v.place_id in places.exact | places.inside), key=lambda v: v.occurred_at)
    times = [v.occurred_at for v in relevant]
    out = []
    for period in periods_of_link(link, timeline, now, first, last):
        policy = timeline.judging(period.start)
        lo = bisect_left(times, period.starts_at(calendar.tz))
        hi = bisect_left(times, period.ends_at(calendar.tz))
        out.append(judge_period(person_id=person_id, link=link, period=period, policy=policy, places=places,
                                exemptions=exemptions, visits=relevant[lo:hi], calendar=calendar, now=now))
    return out


def last_visit(verdicts: Iterable[Verdict]) -> CountedVisit | None:
    """The latest counted visit among the verdicts (by when it occurred)."""
    found = [v for verdict in verdicts for v in verdict.visits]
    return max(found, key=lambda v: v.occurred_at) if found else None
