"""The rectification ledger (整改台账) against real PostgreSQL: rows, lights, timeline, grid counts, rebuild, exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import openpyxl
import psycopg
import pytest
from psycopg.rows import dict_row

from domain import problem as pr
from infra.bootstrap import bootstrap
from infra.calendars import official_calendar
from infra.http.exports import HEADERS, ledger_csv, ledger_xlsx
from projections import ledger as lg
from tests.support.problem_world import World, build_world, photo

pytestmark = pytest.mark.integration
CAL = official_calendar()


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


def report(w: World, place: str, category: str = "sanitation") -> UUID:
    pid = uuid4()
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category=category,
           place_id=w[place], description="绿化带内垃圾", evidence=(photo("b"),), source="assessment")
    return pid


def rows(w: World, **filters: Any) -> list[dict[str, Any]]:
    w.catch_up()
    now = filters.pop("now", w.system.clock())
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        return lg.ledger(conn, w.campaign_id, now=now, calendar=CAL, **filters)


def scenario(w: World) -> dict[str, UUID]:
    """One closed problem in grid 1, one assigned in grid 1, one only reported in grid 2."""
    closed, open_, new = report(w, "s1"), report(w, "s2", "clutter"), report(w, "s3", "illegal_ads")
    for pid in (closed, open_):
        w.send("hq", pr.AssignProblem, problem_id=pid)
    w.send("officer_a", pr.AcknowledgeProblem, problem_id=closed)
    w.send("officer_a", pr.SubmitRectification, problem_id=closed, evidence=(photo("a"),))
    w.send("supervisor", pr.VerifyRectification, problem_id=closed)
    w.send("hq", pr.CloseProblem, problem_id=closed)
    return {"closed": closed, "open": open_, "new": new}


def test_each_problem_has_one_ledger_row_with_its_grid_place_unit_and_counts(world: World) -> None:
    """Rows carry the grid resolved up the place tree, the place and unit names, state and counts."""
    ids = scenario(world)
    by_id = {r["problem_id"]: r for r in rows(world)}
    assert set(by_id) == set(ids.values())
    closed = by_id[ids["closed"]]
    assert (closed["grid_name"], closed["place_name"], closed["unit_name"], closed["state"]) == (
        "grid1", "s1", "unit_a", "closed")
    assert closed["closed_at"] is not None and closed["submitted_at"] is not None and closed["version"] == 6
    assert by_id[ids["new"]]["grid_id"] == world["grid2"] and by_id[ids["new"]]["light"] is None


def test_ledger_filters_by_unit_grid_and_state(world: World) -> None:
    """unit_id, grid_id and state each narrow the ledger to the matching rows."""
    ids = scenario(world)
    assert {r["problem_id"] for r in rows(world, grid_id=world["grid2"])} == {ids["new"]}
    assert {r["problem_id"] for r in rows(world, unit_id=world["unit_a"])} == {ids["closed"], ids["open"]}
    assert {r["problem_id"] for r in rows(world, state="assigned")} == {ids["open"]}


def test_the_light_is_green_under_80_percent_yellow_to_100_and_red_past_the_deadline(world: World) -> None:
    """Working time used against the 3-working-day limit: 50 % green, 83 % yellow, past the deadline red."""
    pid = report(world, "s1")
    world.send("hq", pr.AssignProblem, problem_id=pid)
    assigned = world.system.clock()
    lights = {}
    for hours in (12, 20, 25):
        row = rows(world, now=CAL.add_working_hours(assigned, hours))[0]
        lights[hours] = (row["light"], row["overdue"], round(row["time_used"], 2))
    assert lights == {12: ("green", False, 0.5), 20: ("yellow", False, 0.83), 25: ("red", True, 1.04)}


def test_the_timeline_lists_every_event_of_a_problem_with_who_and_when(world: World) -> None:
    """Six events from report to closure, in order, each with a Chinese summary and the actor's name."""
    ids = scenario(world)
    world.catch_up()
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        events = lg.timeline(conn, ids["closed"])
    assert [e["event_type"] for e in events] == [
        "ProblemReported", "ProblemAssigned", "ProblemAcknowledged", "RectificationSubmitted",
        "RectificationVerified", "ProblemClosed"]
    assert events[0]["actor_name"] == "supervisor" and events[-1]["summary_zh"] == "销号"
    assert events[1]["summary_zh"].startswith("交办，整改期限 2021-12-17")


def test_grid_counts_report_total_rectified_and_open_per_grid(world: World) -> None:
    """Grid 1 has two problems, one rectified; grid 2 has one open."""
    scenario(world)
    world.catch_up()
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        counts = {r["grid_name"]: (r["total"], r["rectified"], r["open"]) for r in lg.grid_counts(conn, world.campaign_id)}
    assert counts == {"grid1": (2, 1, 1), "grid2": (1, 0, 1)}


def snapshot(w: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        problems = conn.execute("SELECT * FROM ledger_problems ORDER BY problem_id").fetchall()
        timeline = conn.execute("SELECT * FROM ledger_timeline ORDER BY problem_id, version").fetchall()
    return problems, timeline


def test_rebuilding_the_ledger_from_zero_gives_the_same_tables(world: World) -> None:
    """Truncate and replay the whole log: every row of both tables comes back identical."""
    scenario(world)
    world.send("supervisor", pr.ReportProblem, problem_id=uuid4(), campaign_id=world.campaign_id, category="sanitation",
               place_id=world["s1"], description="再次发现", source="hotline")
    world.catch_up()
    before = snapshot(world)
    ledger = next(p for p in world.system.projector.projections if p.name == "ledger")
    world.system.projector.rebuild(ledger)
    assert snapshot(world) == before and len(before[0]) == 4


def test_the_csv_export_has_a_bom_and_reads_back_with_chinese_headers(world: World) -> None:
    """UTF-8 with BOM (for Excel); parsed back with the csv module, the header and values are the ledger's."""
    ids = scenario(world)
    data = ledger_csv(rows(world, now=world.system.clock() + timedelta(days=10)))
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == list(HEADERS) and len(lines) == 4
    by_id = {line[0]: dict(zip(lines[0], line, strict=True)) for line in lines[1:]}
    assert by_id[str(ids["closed"])]["状态"] == "已销号" and by_id[str(ids["closed"])]["类别"] == "环境卫生"
    assert by_id[str(ids["open"])]["三色"] == "红" and by_id[str(ids["open"])]["是否超期"] == "是"
    assert by_id[str(ids["open"])]["网格"] == "grid1" and by_id[str(ids["open"])]["交办时间"] == "2021-12-14 09:00"


def test_the_xlsx_export_opens_with_openpyxl_and_holds_the_same_table(world: World) -> None:
    """The workbook's sheet has the zh-CN header row and one row per problem, matching the CSV."""
    scenario(world)
    ledger_rows = rows(world)
    book = openpyxl.load_workbook(io.BytesIO(ledger_xlsx(ledger_rows)))
    sheet = book.active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert sheet.title == "整改台账" and tuple(values[0]) == HEADERS and len(values) == 4
    as_csv = list(csv.reader(io.StringIO(ledger_csv(ledger_rows).decode("utf-8-sig"))))
    assert [[cell(v, c) for v, c in zip(row, line, strict=True)] for row, line in zip(values, as_csv, strict=True)] == as_csv


def cell(value: Any, text: str) -> str:
    """An XLSX cell as the CSV writes it: numbers compared by value, blanks as empty text."""
    if isinstance(value, (int, float)):
        return text if float(text) == value else str(value)
    return "" if value is None else str(value)


def test_a_control_character_stored_before_the_edge_refused_it_shows_as_a_replacement_in_the_xlsx(world: World) -> None:
    """A description holding NUL and ESC (as events stored before the edge checks may) exports as U+FFFD in the
    workbook instead of failing the whole export."""
    scenario(world)
    ledger_rows = [dict(r) for r in rows(world)]
    ledger_rows[0]["description"] = "垃圾\x00堆放\x1b"
    sheet = openpyxl.load_workbook(io.BytesIO(ledger_xlsx(ledger_rows))).active
    column = list(HEADERS).index("问题描述")
    assert [r[column] for r in sheet.iter_rows(min_row=2, values_only=True)][0] == "垃圾\ufffd堆放\ufffd"
