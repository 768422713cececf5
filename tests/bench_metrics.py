"""`python -m tests.bench_metrics`: the evaluation metrics' query time for one campaign-month of 100k problems, and
the import rate of a 2,000-row 任务分解表.

The structure (32 units under 11 sub-commands, 32 grids of 10 sites) is built through the command service. The
100k problems of January 2022 (and 20k of December, so the month's query must skip them) are *not* issued as
commands: at this machine's ~50 commands/s that would take well over an hour. Their read-model rows are
written directly with COPY — the metric versions (1 to 4 per problem: assigned, submitted, reworked, closed,
extended, parked, relapses among them) and the 交办单 signing rows — exactly as the metrics projection writes
them; the projection's position is then set to the log head. The import is measured through the command
service, row by row, as `dudao import tasks` runs it. Not a test: nothing asserts a speed.
"""

from __future__ import annotations

import io
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import structlog
from openpyxl import Workbook
from psycopg.rows import dict_row

import domain.problem  # noqa: F401  # first: the domain's own import order (see the module docstring of domain.problem)
from domain.kernel.base import Actor
from domain.kernel.calendar import CHINA_TZ
from domain.structure.campaign import StartCampaign
from domain.structure.place import RegisterPlace
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System, bootstrap
from infra.calendars import official_calendar
from infra.evaluation import bulletin_rankings
from infra.imports.tasks import import_tasks
from infra.runtime.embedded import start_postgres
from projections import metrics as mt

ADMIN = Actor(person_id=uuid4(), role="admin", name="bench")
JANUARY, DECEMBER = 100_000, 20_000
CAL = official_calendar()


def structure(system: System) -> tuple[UUID, list[UUID], list[UUID]]:
    """A campaign with 11 sub-commands, 32 departments under them, 32 grids of 10 sites each; (campaign, units, sites)."""
    cid, hq = uuid4(), uuid4()
    send = system.service.handle
    send(StartCampaign(command_id=str(uuid4()), campaign_id=cid, name="基准测试", jurisdiction="测试市",
                       launched_on=date(2021, 12, 3)), ADMIN)
    send(RegisterUnit(command_id=str(uuid4()), unit_id=hq, campaign_id=cid, name="总指挥部", unit_kind="hq"), ADMIN)
    subs = [uuid4() for _ in range(11)]
    for i, s in enumerate(subs):
        send(RegisterUnit(command_id=str(uuid4()), unit_id=s, campaign_id=cid, name=f"分指挥部{i + 1}",
                          unit_kind="sub_command", parent_id=hq), ADMIN)
    units, sites = [uuid4() for _ in range(32)], []
    for i, u in enumerate(units):
        send(RegisterUnit(command_id=str(uuid4()), unit_id=u, campaign_id=cid, name=f"单位{i + 1:02d}",
                          unit_kind="department", parent_id=subs[i % 11]), ADMIN)
        grid = uuid4()
        send(RegisterPlace(command_id=str(uuid4()), place_id=grid, campaign_id=cid, name=f"第{i + 1}网格",
                           place_kind="grid", number=i + 1), ADMIN)
        for j in range(10):
            site = uuid4()
            send(RegisterPlace(command_id=str(uuid4()), place_id=site, campaign_id=cid, name=f"第{i + 1}网格点位{j + 1}",
                               place_kind="site", parent_id=grid), ADMIN)
            sites.append(site)
    system.projector.catch_up()
    return cid, units, sites


def problem_rows(cid: UUID, units: list[UUID], sites: list[UUID], n: int, month_start: datetime,
                 rng: random.Random) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The metric versions and 交办单 rows of `n` problems assigned within the month from `month_start`."""
    versions: list[tuple[Any, ...]] = []
    acks: list[tuple[Any, ...]] = []
    closed: list[tuple[UUID, UUID, UUID, datetime]] = []
    for _ in range(n):
        pid, k = uuid4(), rng.randrange(32)
        unit, site = units[k], sites[k * 10 + rng.randrange(10)]
        assigned = CAL.add_working_hours(month_start + timedelta(hours=rng.randrange(24 * 25)), 0)
        deadline = CAL.add_working_days(assigned, 3)
        fate = rng.random()
        relapse_of = closed[rng.randrange(len(closed))][0] if closed and rng.random() < 0.03 else None
        history: list[tuple[datetime, str, datetime, datetime | None, datetime | None, int, int, bool]] = [
            (assigned, "assigned", deadline, None, None, 0, 0, False)]
        if fate < 0.7:  # rectified; closed on time (most) or late
            submitted = CAL.add_working_hours(assigned, rng.uniform(4, 30 if fate < 0.6 else 40))
            if fate < 0.06:  # reworked once first
                history.append((submitted, "rework", deadline, submitted, None, 1, 0, False))
                submitted = CAL.add_working_hours(submitted, 8)
            rework = 1 if fate < 0.06 else 0
            history.append((submitted, "rectification_submitted", deadline, submitted, None, rework, 0, False))
            done = CAL.add_working_hours(submitted, 6)
            history.append((done, "closed", deadline, submitted, done, rework, 0, False))
            closed.append((pid, unit, site, done))
        elif fate < 0.75:  # extended, then open
            history.append((assigned + timedelta(hours=20), "acknowledged", CAL.add_working_days(deadline, 5), None, None,
                            0, 1, False))
        elif fate < 0.77:  # parked
            history.append((assigned + timedelta(hours=5), "assigned", deadline, None, None, 0, 0, True))
        for seq, (start, state, dl, sub, closed_at, rework, ext, parked) in enumerate(history, 1):
            end = history[seq][0] if seq < len(history) else None
            versions.append((pid, seq, cid, start, end, site, unit, state, assigned, assigned, dl, sub, closed_at, rework,
                             ext, parked, relapse_of, "[]"))
        ack_due = CAL.add_working_hours(assigned, 24)
        signed = CAL.add_working_hours(assigned, rng.uniform(1, 30)) if rng.random() < 0.95 else None
        acks.append((uuid4(), cid, "problem", pid, unit, assigned, ack_due, signed))
    return versions, acks


def load(system: System, versions: list[tuple[Any, ...]], acks: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(system.database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY metric_problem_versions (problem_id, seq, campaign_id, valid_from, valid_to, place_id, unit_id,"
                      " state, reported_at, assigned_at, deadline, last_submitted_at, closed_at, rework_count,"
                      " extension_count, parked, relapse_of, pauses) FROM STDIN") as copy:
            for row in versions:
                copy.write_row(row)
        with cur.copy("COPY metric_acks (notice_id, campaign_id, subject_kind, subject_id, unit_id, issued_at, ack_due_at,"
                      " acknowledged_at) FROM STDIN") as copy:
            for row in acks:
                copy.write_row(row)
        cur.execute("UPDATE dudao_projection_positions SET position = %s WHERE name = 'metrics'",
                    (system.projector.head(),))
        cur.execute("ANALYZE metric_problem_versions")
        cur.execute("ANALYZE metric_acks")


def timed(fn: Callable[[], Any], runs: int = 3) -> tuple[float, float, Any]:
    """(first run s, median of the next `runs` s, the result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times), result


def import_rate(system: System, cid: UUID) -> tuple[float, float]:
    book = Workbook()
    sheet = book.active
    sheet.append(["指标编号", "指标名称", "任务", "牵头单位", "配合单位", "完成时限", "报送频次"])
    for i in range(2000):
        sheet.append([f"{i % 9 + 1}.{i % 7 + 1}", f"指标{i % 9 + 1}.{i % 7 + 1}", f"任务{i:04d}", f"单位{i % 32 + 1:02d}",
                      f"单位{(i + 1) % 32 + 1:02d}", "2022-06-30", ("一日一汇报", "每周五报送", "每月报送")[i % 3]])
    out = io.BytesIO()
    book.save(out)
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        report = import_tasks(system.service, conn, cid, out.getvalue(), "2000.xlsx", ADMIN)
        elapsed = time.perf_counter() - started
    assert report.count("created") == 2000, report.as_dict()["errors"][:3]
    return elapsed, 2000 / elapsed


def main() -> None:
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rng = random.Random(13)
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        try:
            system = bootstrap(pg.uri, pool_size=10)
            cid, units, sites = structure(system)
            dec_v, dec_a = problem_rows(cid, units, sites, DECEMBER, datetime(2021, 12, 1, tzinfo=CHINA_TZ), rng)
            jan_v, jan_a = problem_rows(cid, units, sites, JANUARY, datetime(2022, 1, 1, tzinfo=CHINA_TZ), rng)
            load(system, dec_v + jan_v, dec_a + jan_a)
            print(f"metric rows: {len(dec_v) + len(jan_v)} versions of {DECEMBER + JANUARY} problems, "
                  f"{len(dec_a) + len(jan_a)} 交办单 (written directly, see the module docstring)")
            as_of = datetime(2022, 2, 10, tzinfo=CHINA_TZ)
            w = mt.window(cid, mt.evaluation_period("month", date(2022, 1, 15)), as_of, CAL.tz)
            with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
                views: tuple[mt.By, ...] = ("unit", "grid", "sub_command", "campaign")
                for by in views:
                    first, median, body = timed(partial(mt.evaluate, conn, w, by, CAL))
                    print(f"metrics, January by {by:<11}: first {first * 1000:7.0f} ms, then {median * 1000:7.0f} ms"
                          f" ({len(body['rows'])} groups)")
                totals = body["totals"]["figures"]
                print("January, whole campaign: " + json.dumps(
                    {k: (v["value"], v["numerator"], v["denominator"]) for k, v in totals.items()}, ensure_ascii=False))
                week = mt.window(cid, mt.evaluation_period("week", date(2022, 1, 12)), as_of, CAL.tz)
                first, median, _ = timed(lambda: mt.rank(mt.evaluate(conn, week, "unit", CAL)["rows"]))
                print(f"weekly ranking by unit    : first {first * 1000:7.0f} ms, then {median * 1000:7.0f} ms")
                first, median, _ = timed(lambda: bulletin_rankings(system.app, conn, cid, date(2022, 1, 10),
                                                                   date(2022, 1, 16), as_of))
                print(f"bulletin draft rankings   : first {first * 1000:7.0f} ms, then {median * 1000:7.0f} ms")
            elapsed, rate = import_rate(system, cid)
            print(f"import of a 2,000-row 任务分解表: {elapsed:.1f} s = {rate:.1f} rows/s (through the command service)")
            system.close()
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
