"""Evaluation metrics (考评指标) against the real PostgreSQL: a fixture across December–January and 元旦 where every
figure below was computed by hand, the same figures as of a past instant, per grid and sub-command, and a rebuild.

The fixture (3 working days to rectify; a 交办单 is due to be signed within 24 working hours; times Beijing):

    P1 s1 unit_a  交办 12-27 10:00 → due 12-30 10:00; 签收 11:00; 反馈 12-29 10:00; 复查 15:00; 销号 12-30 09:00
                  (23 working hours: 7 + 8 + 8)
    P2 s2 unit_a  交办 12-28 10:00 → due 12-31 10:00; 签收 12-31 11:00 (late: due 12-31 10:00); 反馈 01-04 10:00;
                  复查不通过 14:00; 反馈 01-05 10:00; 复查 14:00; 销号 15:00 (45 h: 7 + 8 + 8 + 8, 元旦, 8 + 6)
    P3 s3 unit_b  交办 12-29 10:00 → due 01-04 10:00 (元旦 skipped); 签收 12:00; 延期 2 working days approved 12-30
                  → due 01-06 10:00; 反馈 01-05 10:00; 复查 14:00; 销号 01-06 09:00 (39 h: 7 + 8 + 8 + 8 + 8)
    P4 s3 unit_b  交办 12-30 10:00 → due 01-05 10:00; never signed, never rectified
    P5 s2 unit_a  交办 01-04 10:00 → due 01-07 10:00; 签收 11:00; 挂账 01-05 10:00; resumed 01-07 10:00 (16 working
                  hours parked → due 01-11 10:00); 反馈 01-10 10:00; 复查 14:00; 销号 15:00 (37 − 16 = 21 h)
    P6 s1 unit_a  reported 01-10 09:30 at P1's place and category: a relapse (反弹) of P1; 交办 10:00 → due 01-13
                  10:00; never signed
    T  unit_a     每周五报送, 交办 12-27 10:00, 签收 12:00; reports for 12-31 (on time), 01-14 (filed 01-17, late),
                  01-21 and 01-28 (on time); 01-07 never reported
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from domain import problem as pr
from domain import tasks as tk
from domain.structure.unit import MoveUnit, RegisterUnit
from infra.bootstrap import System, bootstrap
from infra.calendars import official_calendar
from infra.clock import SimulatedClock
from infra.commands.service import CommandResult
from infra.evaluation import bulletin_rankings
from infra.http import create_app
from infra.http.auth import create_token
from projections import metrics as mt
from tests.support.escalation_kit import at
from tests.support.problem_world import ADMIN, World, build_world, photo

pytestmark = pytest.mark.integration

CAL = official_calendar()
DECEMBER = mt.evaluation_period("month", date(2021, 12, 15))
JANUARY = mt.evaluation_period("month", date(2022, 1, 15))
FIGURES = ("closure_rate", "on_time_closure_rate", "rework_rate", "extension_rate", "overdue_open_rate",
           "relapse_rate", "ack_timeliness", "mean_hours_to_close", "report_timeliness")


@pytest.fixture
def system(database_url: str, clock: SimulatedClock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def build(system: System, clock: SimulatedClock) -> World:
    """The fixture of the module docstring, command by command on the simulated clock."""
    w = build_world(system)
    w.send(ADMIN, RegisterUnit, unit_id=w["sc"], campaign_id=w.campaign_id, name="市容秩序指挥部",
           unit_kind="sub_command", parent_id=w["hq_unit"])
    w.send(ADMIN, MoveUnit, unit_id=w["unit_a"], parent_id=w["sc"], reason="划归市容秩序指挥部")
    w.catch_up()
    p = {k: w[k] for k in ("P1", "P2", "P3", "P4", "P5", "P6")}
    script: list[tuple[str, str, Callable[[], Any]]] = [
        ("2021-12-27", "10:00", lambda: (report(w, "P1", "s1"), assign(w, "P1"))),
        ("2021-12-27", "10:00", lambda: w.send("hq", tk.DefineTask, task_id=w["T"], campaign_id=w.campaign_id,
                                               name="背街小巷每周巡查", due_on=date(2022, 3, 31),
                                               lead_unit_id=w["unit_a"], cadence=tk.weekly(5), assign=True)),
        ("2021-12-27", "11:00", lambda: w.send("officer_a", pr.AcknowledgeProblem, problem_id=p["P1"])),
        ("2021-12-27", "12:00", lambda: w.send("officer_a", tk.AcknowledgeTask, task_id=w["T"])),
        ("2021-12-28", "10:00", lambda: (report(w, "P2", "s2"), assign(w, "P2"))),
        ("2021-12-29", "10:00", lambda: (submit(w, "P1", "officer_a"), report(w, "P3", "s3"), assign(w, "P3"))),
        ("2021-12-29", "12:00", lambda: w.send("officer_b", pr.AcknowledgeProblem, problem_id=p["P3"])),
        ("2021-12-29", "15:00", lambda: w.send("supervisor", pr.VerifyRectification, problem_id=p["P1"])),
        ("2021-12-30", "09:00", lambda: w.send("hq", pr.CloseProblem, problem_id=p["P1"])),
        ("2021-12-30", "10:00", lambda: (report(w, "P4", "s3", "street_stalls"), assign(w, "P4"),
                                         w.send("officer_b", pr.RequestExtension, problem_id=p["P3"], working_days=2,
                                                reason="需协调供电公司迁移线杆"))),
        ("2021-12-30", "11:00", lambda: w.send("hq", pr.ApproveExtension, problem_id=p["P3"])),
        ("2021-12-31", "11:00", lambda: w.send("officer_a", pr.AcknowledgeProblem, problem_id=p["P2"])),
        ("2021-12-31", "16:00", lambda: w.send("officer_a", tk.ReportTaskProgress, task_id=w["T"], text="已巡查 12 条",
                                               percent=10)),
        ("2022-01-04", "10:00", lambda: (submit(w, "P2", "officer_a"), report(w, "P5", "s2", "clutter"),
                                         assign(w, "P5"))),
        ("2022-01-04", "11:00", lambda: w.send("officer_a", pr.AcknowledgeProblem, problem_id=p["P5"])),
        ("2022-01-04", "14:00", lambda: w.send("supervisor", pr.RejectRectification, problem_id=p["P2"],
                                               reason="墙角仍有垃圾")),
        ("2022-01-05", "10:00", lambda: (submit(w, "P2", "officer_a"), submit(w, "P3", "officer_b"),
                                         w.send("hq", pr.ParkProblem, problem_id=p["P5"], reason="待征迁"))),
        ("2022-01-05", "14:00", lambda: (w.send("supervisor", pr.VerifyRectification, problem_id=p["P2"]),
                                         w.send("supervisor", pr.VerifyRectification, problem_id=p["P3"]))),
        ("2022-01-05", "15:00", lambda: w.send("hq", pr.CloseProblem, problem_id=p["P2"])),
        ("2022-01-06", "09:00", lambda: w.send("hq", pr.CloseProblem, problem_id=p["P3"])),
        ("2022-01-07", "10:00", lambda: w.send("hq", pr.ResumeProblem, problem_id=p["P5"], note="征迁完成")),
        ("2022-01-10", "09:30", lambda: report_after_catching_up(w, "P6", "s1")),
        ("2022-01-10", "10:00", lambda: (assign(w, "P6"), submit(w, "P5", "officer_a"))),
        ("2022-01-10", "14:00", lambda: w.send("supervisor", pr.VerifyRectification, problem_id=p["P5"])),
        ("2022-01-10", "15:00", lambda: w.send("hq", pr.CloseProblem, problem_id=p["P5"])),
        ("2022-01-17", "10:00", lambda: task_report(w, date(2022, 1, 14))),
        ("2022-01-21", "10:00", lambda: task_report(w, date(2022, 1, 21))),
        ("2022-01-28", "10:00", lambda: task_report(w, date(2022, 1, 28))),
    ]
    for day, hhmm, act in script:
        clock.set(at(day, hhmm))
        act()
    clock.set(at("2022-02-10"))
    w.catch_up()
    return w


def report(w: World, key: str, site: str, category: str = "sanitation") -> CommandResult:
    return w.send("supervisor", pr.ReportProblem, problem_id=w[key], campaign_id=w.campaign_id, category=category,
           place_id=w[site], description=f"{key}：路面有垃圾堆积", source="hotline")


def report_after_catching_up(w: World, key: str, site: str) -> CommandResult:
    """The ledger must know P1 was closed for the new report to be linked to it as a relapse (反弹)."""
    w.catch_up()
    return report(w, key, site)


def assign(w: World, key: str) -> CommandResult:
    return w.send("hq", pr.AssignProblem, problem_id=w[key])


def submit(w: World, key: str, officer: str) -> CommandResult:
    return w.send(officer, pr.SubmitRectification, problem_id=w[key], evidence=(photo(f"{key}:{uuid4()}"),))


def task_report(w: World, day: date) -> None:
    w.send("officer_a", tk.ReportTaskProgress, task_id=w["T"], due_on=day, text="按周报送进度", percent=50)


def figures(system: System, w: World, period: mt.EvaluationPeriod, by: mt.By,
            as_of: datetime) -> dict[UUID | None, dict[str, tuple[float, int]]]:
    """(numerator, denominator) of every figure, per group."""
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        body = mt.evaluate(conn, mt.window(w.campaign_id, period, as_of, CAL.tz), by, CAL)
    return {r["key"]: {f: (r["figures"][f]["numerator"], r["figures"][f]["denominator"]) for f in FIGURES}
            for r in body["rows"]}


def expect(*pairs: tuple[float, int]) -> dict[str, tuple[float, int]]:
    return dict(zip(FIGURES, pairs, strict=True))


A_DEC = expect((1, 2), (1, 2), (0, 2), (0, 2), (1, 2), (0, 1), (2, 3), (23.0, 1), (1, 1))
B_DEC = expect((0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (1, 1), (0, 0), (0, 0))
A_JAN = expect((1, 2), (1, 2), (0, 2), (0, 2), (1, 2), (1, 2), (1, 2), (66.0, 2), (2, 4))
B_JAN = expect((1, 2), (1, 2), (0, 2), (1, 2), (1, 2), (0, 1), (0, 0), (39.0, 1), (0, 0))


def test_every_figure_matches_the_hand_computed_fixture_across_the_month_boundary(system: System,
                                                                                   clock: SimulatedClock) -> None:
    """December and January per unit: numerators and denominators exactly as computed in the module docstring."""
    w = build(system, clock)
    assert figures(system, w, DECEMBER, "unit", clock()) == {w["unit_a"]: A_DEC, w["unit_b"]: B_DEC}
    assert figures(system, w, JANUARY, "unit", clock()) == {w["unit_a"]: A_JAN, w["unit_b"]: B_JAN}


def test_grids_sub_commands_and_the_campaign_add_up(system: System, clock: SimulatedClock) -> None:
    """Grid 1 is unit_a's problems without the task (its 交办单 and reports have no place); the sub-command over
    unit_a equals unit_a; the campaign's figures are the sum of both units, and every view's totals are the campaign's."""
    w = build(system, clock)
    grid1 = figures(system, w, DECEMBER, "grid", clock())[w["grid1"]]
    assert grid1 == {**A_DEC, "ack_timeliness": (1, 2), "report_timeliness": (0, 0)}
    assert figures(system, w, JANUARY, "sub_command", clock())[w["sc"]] == A_JAN
    (total,) = figures(system, w, JANUARY, "campaign", clock()).values()
    assert total == expect((2, 4), (2, 4), (0, 4), (1, 4), (2, 4), (1, 3), (1, 2), (105.0, 3), (2, 4))
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        for by in ("unit", "grid", "sub_command", "indicator"):
            body = mt.evaluate(conn, mt.window(w.campaign_id, JANUARY, clock(), CAL.tz), by, CAL)
            figs = body["totals"]["figures"]  # the hand-computed figures (整改率 is checked in test_rates_api)
            assert {f: (figs[f]["numerator"], figs[f]["denominator"]) for f in FIGURES} == total, by


def test_a_past_instant_reads_the_figures_as_they_were_and_a_closed_period_stays_frozen(
        system: System, clock: SimulatedClock) -> None:
    """As of 12-30 12:00 only P1 was due (and closed on time), the 12-31 report not yet due; December read in
    February equals December read at its end (later facts never move a closed period's figures)."""
    w = build(system, clock)
    then = figures(system, w, DECEMBER, "unit", at("2021-12-30", "12:00"))
    assert then[w["unit_a"]] == expect((1, 1), (1, 1), (0, 1), (0, 1), (0, 1), (0, 1), (2, 2), (23.0, 1), (0, 0))
    assert figures(system, w, DECEMBER, "unit", at("2022-01-01", "00:00")) == figures(system, w, DECEMBER, "unit",
                                                                                       clock())


def test_the_metrics_read_model_rebuilds_to_the_same_rows(system: System, clock: SimulatedClock) -> None:
    """Rebuilding the metrics projection from zero gives exactly the rows, hence the figures, it had."""
    w = build(system, clock)
    projection = next(p for p in system.projector.projections if p.name == "metrics")

    def snapshot() -> dict[str, list[Any]]:
        with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in projection.tables}

    before, january = snapshot(), figures(system, w, JANUARY, "unit", clock())
    system.projector.rebuild(projection)
    assert snapshot() == before and figures(system, w, JANUARY, "unit", clock()) == january


def test_the_bulletin_rankings_are_the_metrics_on_time_closure_as_of_any_instant(system: System,
                                                                                clock: SimulatedClock) -> None:
    """The draft's 按期整改率 for 12-27 to 12-31 is 按期结案 ÷ 应结案 of the metrics: unit_a 1/1 as of 12-30 12:00 (only
    P1 due), 1/2 read at any later instant (P2 overdue at the period's end); unit_b had nothing due, so is not ranked."""
    w = build(system, clock)
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        then = bulletin_rankings(system.app, conn, w.campaign_id, date(2021, 12, 27), date(2021, 12, 31),
                                 at("2021-12-30", "12:00"))
        later = bulletin_rankings(system.app, conn, w.campaign_id, date(2021, 12, 27), date(2021, 12, 31), clock())
    assert [(r.unit_id, r.closed_on_time, r.due) for r in then] == [(w["unit_a"], 1, 1)]
    assert [(r.unit_id, r.closed_on_time, r.due, r.on_time_rate) for r in later] == [(w["unit_a"], 1, 2, 0.5)]


def test_grid_progress_gains_the_rates_and_the_metrics_route_answers_the_same(system: System,
                                                                               clock: SimulatedClock) -> None:
    """GET …/grids/progress?period=month&day=2021-12-15 gives grid 1 its December rates (numerator and denominator,
    as computed by hand) beside its counts; GET …/metrics by grid answers the same figures."""
    w = build(system, clock)
    with TestClient(create_app(system)) as client, psycopg.connect(system.database_url) as conn:
        token = create_token(conn, "hq_office", person_id=w["hq"], campaign_id=w.campaign_id)
        headers = {"Authorization": f"Bearer {token}"}
        query = {"period": "month", "day": "2021-12-15"}
        progress = client.get(f"/campaigns/{w.campaign_id}/grids/progress", params=query, headers=headers).json()
        metrics = client.get(f"/campaigns/{w.campaign_id}/metrics", params={**query, "by": "grid"}, headers=headers).json()
    grid1 = next(r for r in progress["rows"] if r["grid_name"] == "grid1")
    pairs = {k: (grid1["rates"][k]["numerator"], grid1["rates"][k]["denominator"]) for k in FIGURES}
    assert pairs == {**A_DEC, "ack_timeliness": (1, 2), "report_timeliness": (0, 0)} and grid1["total"] == 4
    assert next(r for r in metrics["rows"] if r["key"] == str(w["grid1"]))["figures"] == grid1["rates"]
