"""Tasks (任务分解) against the real PostgreSQL: the lifecycle through the command service, the read model, the
matrix, missed reports climbing the ladder on the calendar, the indicator tree as of a past date, rebuilds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from domain import tasks as tk
from domain.escalation.notice import NoticeIssued
from domain.kernel.base import event_uuid
from domain.structure.indicator import DefineIndicator
from infra.bootstrap import System, bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from projections import tasks as tp
from projections.matrix import responsible_for
from tests.support.escalation_kit import at, escalation_world, events_of, run_hourly, steps_taken
from tests.support.problem_world import World, photo

pytestmark = pytest.mark.integration


@pytest.fixture
def system(database_url: str, clock: SimulatedClock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def conn_of(system: System) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(system.database_url, row_factory=dict_row)


def indicators(w: World) -> None:
    """3 测评指标 → 3.2 → 3.2.1, defined by HQ."""
    for key, code, name, parent in (("i3", "3", "城市管理", None), ("i32", "3.2", "市容环境", "i3"),
                                    ("i321", "3.2.1", "背街小巷", "i32")):
        w.send("hq", DefineIndicator, indicator_id=w[key], campaign_id=w.campaign_id, code=code, name=name,
               parent_id=w[parent] if parent else None)


def weekly_task(w: World, key: str, indicator: str = "i321", unit: str = "unit_a") -> UUID:
    w.send("hq", tk.DefineTask, task_id=w[key], campaign_id=w.campaign_id, indicator_id=w[indicator],
           name=f"{key}：背街小巷环境整治", due_on=date(2022, 3, 31), lead_unit_id=w[unit],
           co_unit_ids=(w["unit_b" if unit == "unit_a" else "unit_a"],),
           measures="每周巡查、每日保洁", cadence=tk.weekly(5), assign=True)
    return w[key]


def test_a_task_is_defined_handed_over_and_listed_with_its_responsibilities(system: System,
                                                                             clock: SimulatedClock) -> None:
    """DefineTask with assign: the task row, its lead and co-units in the matrix, its 交办单 and its work item."""
    w = escalation_world(system)
    indicators(w)
    clock.set(at("2021-12-27"))
    task = weekly_task(w, "t1")
    w.catch_up()
    with conn_of(system) as conn:
        (row,) = tp.list_tasks(conn, w.campaign_id, clock())
        who = {(r["party_id"], r["role"]) for r in responsible_for(conn, "task", task)}
        item = conn.execute("SELECT deadline, closed FROM work_items WHERE item_kind = 'task' AND item_id = %s",
                            (task,)).fetchone()
        notice = conn.execute("SELECT notice_kind, subject_kind FROM notices WHERE subject_id = %s", (task,)).fetchone()
    assert row["state"] == "assigned" and row["lead_unit"]["id"] == w["unit_a"] and row["cadence_zh"] == "每周五报送"
    assert who == {(w["unit_a"], "lead"), (w["unit_b"], "co")}
    assert item == {"deadline": at("2022-04-01", "09:00"), "closed": False}
    assert notice == {"notice_kind": "assignment", "subject_kind": "task"}


def test_a_missed_weekly_report_is_urged_on_the_next_working_day(system: System, clock: SimulatedClock) -> None:
    """每周五报送: Friday 2021-12-31 goes unreported; the miss is recorded at midnight, caused by the task's 交办, and
    with 元旦 (01-01 to 01-03) off the 催办 comes at 09:00 on Tuesday 01-04 — not before — addressed to the lead unit
    and its head."""
    w = escalation_world(system)
    indicators(w)
    clock.set(at("2021-12-27"))
    task = weekly_task(w, "t1")
    w.send("officer_a", tk.AcknowledgeTask, task_id=task)
    escalator = Escalator.for_system(system)
    clock.set(at("2021-12-27", "11:00"))
    run_hourly(escalator, clock, until=at("2022-01-04", "11:00"))
    (missed,) = list(events_of(system, tk.TaskReportMissed))
    item = tk.report_item_id(task, missed.due_on)
    urges = [s for s in steps_taken(system, item) if s.step_name == "urge"]
    assert missed.due_on == date(2021, 12, 31) and missed.meta.recorded_at == at("2022-01-01", "00:00")
    assert missed.overdue_from == at("2022-01-04", "09:00")
    assigned = next(e for e in system.app.history(task) if isinstance(e.event, tk.TaskAssigned))
    assert missed.meta.causation_id == event_uuid(task, assigned.originator_version)  # the 交办 that started reporting
    assert [s.meta.recorded_at for s in urges] == [at("2022-01-04", "09:00")]
    assert [s.step_name for s in steps_taken(system, item)] == ["urge"]
    notice = next(n for n in events_of(system, NoticeIssued) if n.escalation_step_id == urges[0].step_id)
    assert {r.party_id for r in notice.recipients} == {w["unit_a"], w["head_a"]}


def test_a_late_report_closes_the_missed_report_and_its_urge_notice(system: System, clock: SimulatedClock) -> None:
    """After the 催办 the unit reports late: the missed report's work item and the 催办单 about it close."""
    w = escalation_world(system)
    indicators(w)
    clock.set(at("2021-12-27"))
    task = weekly_task(w, "t1")
    escalator = Escalator.for_system(system)
    run_hourly(escalator, clock, until=at("2022-01-04", "10:00"))
    w.send("officer_a", tk.ReportTaskProgress, task_id=task, text="补报：已清理 12 条小巷", percent=30,
           evidence=(photo("lane"),))
    w.catch_up()
    item = tk.report_item_id(task, date(2021, 12, 31))
    with conn_of(system) as conn:
        rows = conn.execute("SELECT item_kind, closed, state FROM work_items WHERE item_id = %s OR parent_id = %s"
                            " ORDER BY item_kind", (item, item)).fetchall()
        reports = tp.reports_of(conn, task)
    assert rows and all(r["closed"] for r in rows) and {r["item_kind"] for r in rows} == {"notice", "task_report"}
    assert [(r["kind"], r["due_on"], r.get("on_time")) for r in reports] == [
        ("report", date(2021, 12, 31), False), ("missed", date(2021, 12, 31), None)]


def test_the_indicator_tree_rolls_up_its_tasks_as_of_any_instant(system: System, clock: SimulatedClock) -> None:
    """Each node counts its subtree's tasks; as of a past instant, tasks defined later and later states are absent."""
    w = escalation_world(system)
    indicators(w)
    clock.set(at("2021-12-27"))
    weekly_task(w, "t1")
    clock.set(at("2021-12-28"))
    w.send("hq", DefineIndicator, indicator_id=w["i322"], campaign_id=w.campaign_id, code="3.2.2", name="农贸市场",
           parent_id=w["i32"])
    t2 = weekly_task(w, "t2", indicator="i322", unit="unit_b")
    clock.set(at("2021-12-29"))
    w.send("officer_b", tk.ClaimTaskCompletion, task_id=t2, text="农贸市场外溢占道已清理", evidence=(photo("market"),))
    w.send("hq", tk.AcceptTaskCompletion, task_id=t2)
    w.catch_up()
    with conn_of(system) as conn:
        now_tree = tp.indicator_tree(conn, w.campaign_id, clock())
        then_tree = tp.indicator_tree(conn, w.campaign_id, at("2021-12-27", "12:00"), as_of=at("2021-12-27", "12:00"))
    (root,) = now_tree
    assert (root["code"], root["tasks"], root["completed"]) == ("3", 2, 1)
    (mid,) = root["children"]
    assert [(c["code"], c["tasks"], c["completed"]) for c in mid["children"]] == [("3.2.1", 1, 0), ("3.2.2", 1, 1)]
    (then_root,) = then_tree
    assert (then_root["tasks"], then_root["completed"]) == (1, 0)
    assert [c["code"] for c in then_root["children"][0]["children"]] == ["3.2.1"]


def test_the_tasks_read_model_rebuilds_to_the_same_rows(system: System, clock: SimulatedClock) -> None:
    """Rebuilding the tasks projection from zero gives exactly the rows it had."""
    w = escalation_world(system)
    indicators(w)
    clock.set(at("2021-12-27"))
    task = weekly_task(w, "t1")
    w.send("officer_a", tk.AcknowledgeTask, task_id=task)
    clock.set(at("2021-12-30"))
    w.send("officer_a", tk.ReportTaskProgress, task_id=task, text="进展顺利", percent=40)
    w.catch_up()
    projection = next(p for p in system.projector.projections if p.name == "tasks")

    def snapshot() -> dict[str, list[Any]]:
        with conn_of(system) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in projection.tables}

    before = snapshot()
    system.projector.rebuild(projection)
    assert snapshot() == before and before["task_reports"]
