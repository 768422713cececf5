"""Importing a 任务分解表 through the command path against the real PostgreSQL: a good file, bad rows by number with
nothing of them written, the same file twice, 2,000 rows with progress, Excel's CSV in GBK and UTF-8 with BOM,
a missing column, a dry run, and the CLI with its progress bar and annotated result."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from openpyxl import Workbook, load_workbook
from psycopg.rows import dict_row
from typer.testing import CliRunner

from domain import tasks as tk
from domain.kernel.base import derived_id
from infra.bootstrap import System, bootstrap
from infra.cli.main import app
from infra.clock import SimulatedClock
from infra.imports.tasks import TEMPLATE_HEADER, ImportReport, import_tasks
from projections import tasks as tp
from projections.matrix import responsible_for
from tests.support.escalation_kit import at
from tests.support.problem_world import ADMIN, World, build_world

pytestmark = pytest.mark.integration

HEADER = ("指标编号", "指标名称", "任务", "牵头单位", "配合单位", "完成时限", "报送频次", "工作措施")
GOOD = (
    ("3", "城市管理", None, None, None, None, None, None),
    ("3.2", "市容环境", None, None, None, None, None, None),
    ("3.2.1", "背街小巷环境卫生", "背街小巷垃圾日产日清", "unit_a", "unit_b", "2022-03-31", "每周五报送", "每日巡查"),
    ("3.2.1", "背街小巷环境卫生", "背街小巷乱贴乱画清理", "unit_a", None, "长期", "一日一汇报", None),
    ("3.2.2", "农贸市场", "农贸市场外溢占道整治", "unit_b", "unit_a", "2022/2/28", "每月5日报送", None),
    ("4.1", "公共设施", "破损人行道板修复", "unit_b", None, "2022年4月30日", "每月报送", None),
)


@pytest.fixture
def system(database_url: str, clock: SimulatedClock) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


@pytest.fixture
def world(system: System, clock: SimulatedClock) -> World:
    w = build_world(system)
    clock.set(at("2021-12-27"))
    return w


def xlsx(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for r in rows:
        sheet.append(list(r))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in r] for r in rows])
    return out.getvalue()


def run(w: World, data: bytes, name: str = "任务分解表.xlsx", **kw: Any) -> ImportReport:
    w.catch_up()
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        report = import_tasks(w.system.service, conn, w.campaign_id, data, name, w.actors["hq"], **kw)
    w.catch_up()
    return report


def task_id(w: World, code: str, name: str) -> UUID:
    return derived_id("task", w.campaign_id, "import", f"{code}|{name}")


def tasks_now(w: World) -> list[dict[str, Any]]:
    with psycopg.connect(w.system.database_url, row_factory=dict_row) as conn:
        return tp.list_tasks(conn, w.campaign_id, w.system.clock())


def test_a_good_file_defines_the_indicator_tree_and_hands_each_task_to_its_lead_unit(world: World) -> None:
    """Four tasks created and handed over, five indicators in a tree by code, lead and co-units in the matrix."""
    report = run(world, xlsx(GOOD))
    body = report.as_dict()
    assert (body["created"], body["indicator_rows"], body["indicators_created"], body["errors"]) == (4, 2, 5, [])
    rows = {r["name"]: r for r in tasks_now(world)}
    lane = rows["背街小巷垃圾日产日清"]
    assert lane["state"] == "assigned" and lane["cadence_zh"] == "每周五报送" and str(lane["due_on"]) == "2022-03-31"
    assert rows["背街小巷乱贴乱画清理"]["due_on"] is None and rows["破损人行道板修复"]["cadence_zh"] == "每月月底报送"
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        tree = tp.indicator_tree(conn, world.campaign_id, world.system.clock())
        who = {(r["party_id"], r["role"]) for r in responsible_for(conn, "task", lane["task_id"])}
    assert [(n["code"], n["tasks"]) for n in tree] == [("3", 3), ("4.1", 1)]
    assert [(c["code"], c["tasks"]) for c in tree[0]["children"][0]["children"]] == [("3.2.1", 2), ("3.2.2", 1)]
    assert who == {(world["unit_a"], "lead"), (world["unit_b"], "co")}


def bad_file() -> list[tuple[Any, ...]]:
    """GOOD plus three bad rows, at sheet rows 8, 9 and 10 (header is row 1)."""
    return [*GOOD,
            ("3.2.1", "背街小巷环境卫生", "门前三包落实", "不存在的局", None, "2022-03-31", "每周五报送", None),  # row 8
            ("3.2.1", "背街小巷环境卫生", "路灯修复", "unit_a", None, "2022-02-30", "每周五报送", None),  # row 9
            ("3.2.1", "背街小巷环境卫生", "背街小巷垃圾日产日清", "unit_b", None, "2022-03-31", "每周五报送", None)]  # 10


def test_bad_rows_are_reported_by_row_number_and_nothing_of_them_is_written(world: World) -> None:
    """An unknown unit (row 8), a date that does not exist (row 9) and a duplicate of row 4 (row 10) are refused with
    their reasons; the good rows are imported; none of the bad rows' tasks exists."""
    report = run(world, xlsx(bad_file()))
    errors = [(e.row, e.code, e.column) for e in report.errors]
    assert errors == [(8, "unknown_unit", "牵头单位"), (9, "bad_date", "完成时限"), (10, "duplicate_row", "任务")]
    assert "不存在的局" in report.errors[0].message_zh and "第 4 行" in report.errors[2].message_zh
    assert report.as_dict()["created"] == 4 and len(tasks_now(world)) == 4
    for name in ("门前三包落实", "路灯修复"):
        assert world.system.app.history(task_id(world, "3.2.1", name)) == []
    (lane,) = [r for r in tasks_now(world) if r["name"] == "背街小巷垃圾日产日清"]
    assert lane["lead_unit"]["id"] == world["unit_a"]  # row 4's, not the duplicate's


def test_the_same_file_twice_writes_nothing_new(world: World) -> None:
    """A second import of the same file reports every task unchanged and appends no event."""
    run(world, xlsx(GOOD))
    head = world.log_head()
    report = run(world, xlsx(GOOD))
    assert (report.count("unchanged"), report.count("created"), report.indicators_created) == (4, 0, 0)
    assert world.log_head() == head and len(tasks_now(world)) == 4


def test_a_changed_row_of_an_imported_task_is_refused(world: World) -> None:
    """Importing a known task with another lead unit is a row error (task_changed), not a silent second task."""
    run(world, xlsx(GOOD))
    changed = [r if r[2] != "破损人行道板修复" else (*r[:3], "unit_a", *r[4:]) for r in GOOD]
    report = run(world, xlsx(changed))
    assert [(e.row, e.code) for e in report.errors] == [(7, "task_changed")]


def test_excel_csv_in_gbk_and_in_utf8_with_bom_import_alike(world: World) -> None:
    """The same table saved by Excel as CSV in GBK (中文 Windows) and as CSV UTF-8 (with BOM) reads the same rows."""
    text = csv_text(GOOD)
    gbk = run(world, text.encode("gbk"), "任务分解表.csv", dry_run=True)
    bom = run(world, text.encode("utf-8-sig"), "任务分解表.csv", dry_run=True)
    assert gbk.as_dict()["results"] == bom.as_dict()["results"]
    assert gbk.count("valid") == 4 and not gbk.errors
    report = run(world, text.encode("gbk"), "任务分解表.csv")
    assert report.count("created") == 4 and {r["name"] for r in tasks_now(world)} == {r[2] for r in GOOD if r[2]}


def test_a_missing_column_stops_the_file_and_a_dry_run_writes_nothing(world: World) -> None:
    """No 报送频次 column: one file error naming it at the header row, nothing written; a dry run of a good file
    validates every row and writes nothing either."""
    head = world.log_head()
    report = run(world, xlsx([r[:6] for r in GOOD], HEADER[:6]))
    assert [(e.row, e.code, e.column) for e in report.errors] == [(1, "missing_column", "报送频次")]
    dry = run(world, xlsx(GOOD), dry_run=True)
    assert dry.count("valid") == 4 and world.log_head() == head


def big_file(n: int) -> bytes:
    rows = [(f"{i % 9 + 1}.{i % 7 + 1}", f"指标{i % 9 + 1}.{i % 7 + 1}", f"任务{i:04d}：点位整治",
             "unit_a" if i % 2 else "unit_b", "unit_b" if i % 2 else "unit_a", "2022-06-30",
             ("一日一汇报", "每周五报送", "每月报送")[i % 3], None) for i in range(n)]
    return xlsx(rows)


def test_two_thousand_rows_import_with_progress(world: World) -> None:
    """2,000 rows: progress is reported for every row up to 2000/2000, every task is created; prints the rate
    (checking and writing through the command service; the read models catch up afterwards, not counted)."""
    seen: list[tuple[int, int]] = []
    data = big_file(2000)
    world.catch_up()
    with psycopg.connect(world.system.database_url, row_factory=dict_row) as conn:
        started = time.perf_counter()
        report = import_tasks(world.system.service, conn, world.campaign_id, data, "2000.xlsx", world.actors["hq"],
                              progress=lambda done, total: seen.append((done, total)))
        elapsed = time.perf_counter() - started
    assert report.count("created") == 2000 and not report.errors and report.indicators_created == 63
    assert len(seen) == 2000 and seen[-1] == (2000, 2000) and [d for d, _ in seen] == list(range(1, 2001))
    print(f"\nimport rate: 2000 rows in {elapsed:.1f} s = {2000 / elapsed:.1f} rows/s")


def test_the_cli_imports_with_a_summary_and_writes_the_annotated_result(world: World, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`dudao import tasks FILE` reports the bad rows by number (exit 1), writes the result workbook with the error
    column, and a second run of the good file reports everything unchanged (exit 0); the template has the header."""
    monkeypatch.setenv("DUDAO_DATABASE_URL", world.system.database_url)
    world.catch_up()
    source = tmp_path / "任务分解表.xlsx"
    source.write_bytes(xlsx(bad_file()))
    result = tmp_path / "结果.xlsx"
    runner = CliRunner()
    out = runner.invoke(app, ["import", "tasks", str(source), "--campaign", str(world.campaign_id),
                              "--result", str(result)])
    assert out.exit_code == 1, out.output
    assert "新导入 4" in out.stdout and "第 8 行" in out.output and "第 10 行" in out.output
    sheet = load_workbook(result).worksheets[0]
    lines = list(sheet.iter_rows(values_only=True))
    assert lines[0][-2:] == ("导入结果", "错误说明") and lines[7][-2] == "错误" and "不存在的局" in lines[7][-1]
    source.write_bytes(xlsx(GOOD))
    again = runner.invoke(app, ["import", "tasks", str(source), "--campaign", str(world.campaign_id), "--json"])
    assert again.exit_code == 0, again.output
    assert '"unchanged": 4' in again.stdout
    template = tmp_path / "模板.xlsx"
    assert runner.invoke(app, ["import", "template", str(template)]).exit_code == 0
    assert tuple(next(load_workbook(template).worksheets[0].iter_rows(values_only=True))) == TEMPLATE_HEADER


def test_the_cli_prints_the_tree_the_figures_and_the_ranking(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dudao tasks indicators`, `dudao metrics figures` and `dudao metrics rankings` print what the HTTP routes give:
    December 2021 as of 01-05, with nothing reported, is unit_a 0/5 and unit_b 0/1 in report timeliness."""
    run(world, xlsx(GOOD))  # on the world's simulated clock: handed over on 2021-12-27
    monkeypatch.setenv("DUDAO_DATABASE_URL", world.system.database_url)
    runner, cid = CliRunner(), str(world.campaign_id)
    tree = runner.invoke(app, ["tasks", "indicators", cid, "--format", "json"])
    assert tree.exit_code == 0 and '"code": "3.2.1"' in tree.stdout
    query = ["--period", "month", "--day", "2021-12-27", "--as-of", "2022-01-05T00:00:00+08:00"]
    figures = runner.invoke(app, ["metrics", "figures", cid, "--by", "unit", *query, "--format", "json"])
    assert figures.exit_code == 0, figures.output
    rows = {r["name"]: r["report_timeliness"] for r in json.loads(figures.stdout[figures.stdout.index("["):])}
    assert rows == {"unit_a": "0.0 (0/5)", "unit_b": "0.0 (0/1)"}
    ranking = runner.invoke(app, ["metrics", "rankings", cid, "--metric", "report_timeliness", *query, "--format", "csv"])
    lines = ranking.stdout.lstrip("\ufeff").splitlines()
    assert ranking.exit_code == 0 and lines[0] == "rank,name,value,numerator,denominator"
    assert [line.split(",")[:2] for line in lines[1:]] == [["1", "unit_a"], ["2", "unit_b"]]  # 0 = 0: by name


def test_imported_tasks_run_their_lifecycle(world: World, clock: SimulatedClock) -> None:
    """An imported task is acknowledged, reported on and claimed like any task (the import issued real commands)."""
    run(world, xlsx(GOOD))
    lane = task_id(world, "3.2.1", "背街小巷垃圾日产日清")
    world.send("officer_a", tk.AcknowledgeTask, task_id=lane)
    world.send("officer_a", tk.ReportTaskProgress, task_id=lane, text="已完成摸排", percent=20)
    state = world.system.service.app.history(lane)
    assert [type(s.event).__name__ for s in state][-2:] == ["TaskAcknowledged", "TaskProgressReported"]
    assert state[0].event.meta.actor == world.actors["hq"] and ADMIN != world.actors["hq"]
