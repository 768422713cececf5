"""`python -m tests.bench_liaison`: liaison duty compliance query time for 100 leaders × 3 links × 12 months.

A campaign with 100 leaders (挂钩领导), each linked to a street (with a grid inside it) and two roads from
1 January 2022, about one visit per link and month (some to the grid, some uploaded after the grace, some
months skipped), and one exemption per tenth leader. The events are saved in bulk and projected by the real
projector, so the figures are the read side's own work: loading the facts known at T and judging 3,600
leader × place × month verdicts with the domain's rules. Printed: the campaign-wide query (cold and warm),
one leader, one place, an as-of query, the escalator's liaison round, and the projection rebuild.
Not a test: nothing asserts a speed.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import psycopg
import structlog
from psycopg.rows import dict_row

from domain import liaison as li
from domain import visit as vi
from domain.kernel.base import Actor, DomainEvent, Meta, derived_id
from domain.kernel.calendar import CHINA_TZ
from domain.structure.campaign import CampaignStarted
from domain.structure.person import PersonRegistered
from domain.structure.place import PlaceRegistered
from infra.bootstrap import System, bootstrap
from infra.calendars import official_calendar
from infra.clock import SimulatedClock
from infra.escalator.liaison import duty_commands
from infra.runtime.embedded import start_postgres
from infra.store.event_store import StoredDomainEvent
from projections import liaison_duties as ld

LEADERS, LINKS_PER_LEADER, MONTHS = 100, 3, 12
START = datetime(2022, 1, 1, tzinfo=CHINA_TZ)
NOW = datetime(2023, 1, 20, 10, 0, tzinfo=CHINA_TZ)  # December 2022 judged
HQ = Actor(person_id=uuid4(), role="hq_office", name="基准")


def meta(at: datetime, campaign_id: UUID, recorded: datetime | None = None) -> Meta:
    return Meta(actor=HQ, occurred_at=at, recorded_at=recorded or at, correlation_id=uuid4(), command_id=str(uuid4()),
                campaign_id=campaign_id)


def events(campaign_id: UUID) -> list[StoredDomainEvent]:
    """The whole campaign as stored events, each aggregate's versions in order."""
    setup = START - timedelta(days=2)
    m = meta(setup, campaign_id)
    out: list[StoredDomainEvent] = [StoredDomainEvent(campaign_id, 1, CampaignStarted(
        meta=m, campaign_id=campaign_id, name="基准创建活动", jurisdiction="基准市", launched_on=date(2022, 1, 1)))]
    for i in range(LEADERS):
        person = derived_id("bench", "leader", i)
        out.append(StoredDomainEvent(person, 1, PersonRegistered(meta=m, person_id=person, campaign_id=campaign_id,
                                                                 name=f"领导{i:03d}")))
        record = li.liaison_id_for(person)
        own: list[DomainEvent] = []
        add = own.append
        add(li.LeaderDesignated(meta=m, liaison_id=record, campaign_id=campaign_id, person_id=person,
                                body=("party_committee", "people_congress", "government", "cppcc")[i % 4], rank="副职"))
        for k in range(LINKS_PER_LEADER):
            place = derived_id("bench", "place", i, k)
            kind: Literal["street", "road"] = "street" if k == 0 else "road"
            out.append(StoredDomainEvent(place, 1, PlaceRegistered(meta=m, place_id=place, campaign_id=campaign_id,
                                                                   name=f"点位{i:03d}-{k}", place_kind=kind,
                                                                   parent_id=None)))
            if k == 0:
                grid = derived_id("bench", "grid", i)
                out.append(StoredDomainEvent(grid, 1, PlaceRegistered(meta=m, place_id=grid, campaign_id=campaign_id,
                                                                      name=f"网格{i:03d}", place_kind="grid",
                                                                      parent_id=place)))
            add(li.LiaisonLinked(meta=m, liaison_id=record, campaign_id=campaign_id, person_id=person,
                                 link_id=derived_id("bench", "link", i, k), target_kind="place", target_id=place,
                                 valid_from=START, reason="基准挂钩"))
        if i % 10 == 0:
            add(li.DutyExemptionGranted(meta=m, liaison_id=record, campaign_id=campaign_id, person_id=person,
                                        exemption_id=uuid4(), exemption_kind="business_trip",
                                        starts_on=date(2022, 3, 1), ends_on=date(2022, 3, 31), reason="公出"))
        out += [StoredDomainEvent(record, v, e) for v, e in enumerate(own, start=1)]
        out += visits(campaign_id, i, person)
    return out


def visits(campaign_id: UUID, i: int, person: UUID) -> list[StoredDomainEvent]:
    out = []
    for month in range(1, MONTHS + 1):
        for k in range(LINKS_PER_LEADER):
            if (i + month + k) % 7 == 0:
                continue  # a month skipped: unmet
            place = derived_id("bench", "grid", i) if k == 0 and month % 2 else derived_id("bench", "place", i, k)
            occurred = datetime(2022, month, 5 + (i + k) % 20, 10, 0, tzinfo=CHINA_TZ)
            late = (i + month) % 13 == 0
            recorded = occurred + timedelta(days=40 if late else 1)
            visit_id = uuid4()
            out.append(StoredDomainEvent(visit_id, 1, vi.VisitLogged(
                meta=meta(occurred, campaign_id, recorded), visit_id=visit_id, campaign_id=campaign_id,
                place_id=place, visit_type="supervision", participants=(person,))))
    return out


def timed(label: str, fn: Callable[[], Any], repeat: int = 5) -> Any:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    size = len(result) if isinstance(result, (list, tuple)) else result
    print(f"{label:<52} median {statistics.median(runs) * 1000:>8,.0f} ms   "
          f"min {min(runs) * 1000:>7,.0f} ms   rows {size}")
    return result


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        server = start_postgres(Path(tmp) / "pg")
        try:
            run(bootstrap(server.uri, clock=SimulatedClock(NOW)))
        finally:
            server.stop()


def run(system: System) -> None:
    campaign = uuid4()
    stored = events(campaign)
    started = time.perf_counter()
    for chunk in range(0, len(stored), 500):
        system.app.save(*stored[chunk:chunk + 500])
    system.projector.catch_up()
    print(f"{LEADERS} leaders × {LINKS_PER_LEADER} links × {MONTHS} months: {len(stored):,} events stored and "
          f"projected in {time.perf_counter() - started:.1f} s")
    calendar = official_calendar()
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        leader, place = derived_id("bench", "leader", 7), derived_id("bench", "place", 7, 1)
        rows = timed("compliance, whole campaign, 12 months (cold)",
                     lambda: ld.compliance(conn, campaign, calendar, NOW, last=date(2022, 12, 31)), repeat=1)
        timed("compliance, whole campaign, 12 months (warm)",
              lambda: ld.compliance(conn, campaign, calendar, NOW, last=date(2022, 12, 31)))
        timed("compliance, one leader", lambda: ld.compliance(conn, campaign, calendar, NOW, person_id=leader))
        timed("compliance, one place", lambda: ld.compliance(conn, campaign, calendar, NOW, place_id=place))
        timed("compliance, whole campaign as of 2022-07-01",
              lambda: ld.compliance(conn, campaign, calendar, datetime(2022, 7, 1, tzinfo=CHINA_TZ)))
        timed("verdicts only (judge), whole campaign", lambda: ld.judge(conn, campaign, calendar, NOW).verdicts)
        timed("escalator liaison round: what to issue", lambda: duty_commands(conn, campaign, calendar, NOW))
        timed("a leader's duty trail", lambda: ld.trail(conn, campaign, leader, calendar, NOW))
        print("verdicts by status:", ld.summary(rows)["by_status"])
    projection = next(p for p in system.projector.projections if p.name == ld.LiaisonDutiesProjection.name)
    started = time.perf_counter()
    system.projector.rebuild(projection)
    print(f"rebuild of the liaison_duties projection: {time.perf_counter() - started:.1f} s")
    system.close()


if __name__ == "__main__":
    main()
