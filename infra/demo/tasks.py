"""`dudao demo`, the 任务分解表: 公共设施指挥部's 44 small indicators of the 省级生态园林城市 standard, imported and
reported on through January 2022.

The source (简报 第3期) says 公共设施指挥部 "细化分解了44个小指标" with responsible units and deadlines; it
names none of them. `infra/data/gaoan-2021-tasks.csv` is that table as an office would keep it: the 44
indicators (taken from the provincial 生态园林城市 standard's usual headings, grouped 3.1–3.6 under 3
省级生态园林城市), each with one task, a lead department of the demo's command structure, 公共设施指挥部 as
co-unit, a deadline and a cadence (mostly 每周五报送; 一日一汇报 for the daily upkeep, due by 03-31, 每月25日报送 for the
slow ones). Lead units, deadlines and cadences are invented for the demo (the demo's departments are).

January, through the escalator run's daily hook: HQ imports the file on the first working day (01-04,
after 元旦) as the 总指挥部办公室 officer; the units sign (签收) the next day — two of them only on 01-10,
late; each lead unit reports on each due day, except the planned misses: 林业局 and 水利局 skip Friday
01-14 (林业局 files it late on 01-17, 水利局 never), 统计局 skips 01-21, and 城管局's daily reports skip
01-12 and 01-13. The escalator records every miss at the first tick after its day and climbs it (催办 on the
next working day). Two tasks are claimed done and accepted; one claim is returned and accepted on the second
try. Command ids derive from keys, so a second run writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain import tasks as tk
from domain.kernel.base import derived_id
from infra.calendars import official_calendar
from infra.demo.first_batch import Batch, photo
from infra.demo.structure import DemoLoader
from infra.imports.tasks import import_tasks, normal_name, parse_day
from infra.imports.tables import read_table

TABLE = "data/gaoan-2021-tasks.csv"
IMPORT_DAY, SIGN_DAY, LATE_SIGN_DAY = date(2022, 1, 4), date(2022, 1, 5), date(2022, 1, 10)
LATE_SIGNERS = frozenset({"统计局", "团市委"})
MISSED = {("林业局", date(2022, 1, 14)), ("水利局", date(2022, 1, 14)), ("统计局", date(2022, 1, 21)),
          ("城管局", date(2022, 1, 12)), ("城管局", date(2022, 1, 13))}
LATE = {("林业局", date(2022, 1, 14)): date(2022, 1, 17)}  # the missed report filed late, on this day
# What happens to a task's completion, by indicator code: (day, action), in order.
COMPLETIONS: dict[str, tuple[tuple[date, str], ...]] = {
    "3.3.6": ((date(2022, 1, 20), "claim"), (date(2022, 1, 21), "accept")),
    "3.6.4": ((date(2022, 1, 24), "claim"), (date(2022, 1, 25), "accept")),
    "3.5.7": ((date(2022, 1, 18), "claim"), (date(2022, 1, 19), "return"), (date(2022, 1, 24), "claim"),
              (date(2022, 1, 27), "accept")),
}


@dataclass(frozen=True)
class Row:
    """One task of the table as the demo needs it: its id, code, lead unit and cadence."""

    task_id: UUID
    code: str
    lead: str
    cadence: tk.Cadence


@dataclass
class Decomposition:
    """The 任务分解表 in the demo: imported on `IMPORT_DAY`, then signed and reported on day by day (`on_day`)."""

    loader: DemoLoader
    data: dict[str, Any]
    catch_up: Callable[[], None] | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.batch = Batch(self.loader, self.data)
        self.raw = resources.files("infra").joinpath(TABLE).read_bytes()
        self.rows = table_rows(self.raw, self.loader.campaign_id)

    def on_day(self, day: date) -> None:
        """This working day's part: the import, 签收, the day's reports (and late ones), claims and acceptances."""
        if day == IMPORT_DAY:
            self.import_table()
        if day < IMPORT_DAY or not self.report.get("imported", True):
            return
        for row in self.rows:
            self.act(row, day)

    def import_table(self) -> None:
        if self.catch_up is not None:
            self.catch_up()  # units and indicators are matched on the read models
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            result = import_tasks(self.loader.service, conn, self.loader.campaign_id, self.raw, "高安市生态园林城市任务分解表.csv",
                                  self.batch.hq)
        self.report = {"imported": True, **{k: v for k, v in result.as_dict().items() if k not in ("results",)}}

    @property
    def database_url(self) -> str:
        from infra.demo.escalation import database_url_of  # the DSN of the loader's store

        return database_url_of(self.loader)

    def act(self, row: Row, day: date) -> None:
        officer, key = self.batch.officer(row.lead), f"task:{row.code}"
        signs_on = LATE_SIGN_DAY if row.lead in LATE_SIGNERS else SIGN_DAY
        if day == signs_on:
            self.batch.send(officer, f"{key}:ack", tk.AcknowledgeTask, task_id=row.task_id)
        if day < signs_on:
            return
        if reporting(row, day):
            self.reports(row, day, officer, key)
        self.complete(row, day, officer, key)

    def reports(self, row: Row, day: date, officer: Any, key: str) -> None:
        """The report due today (unless a planned miss), and any missed one filed late today."""
        if day in tk.due_days(row.cadence, official_calendar(), day, day) and (row.lead, day) not in MISSED:
            self.batch.send(officer, f"{key}:report:{day}", tk.ReportTaskProgress, task_id=row.task_id, due_on=day,
                            text=f"{day:%m月%d日}进展：按计划推进，本期完成对标整改事项", percent=progress(row, day),
                            evidence=(photo(f"{key}:{day}"),))
        for (lead, missed), late in LATE.items():
            if lead == row.lead and late == day and missed in tk.due_days(row.cadence, official_calendar(), missed, missed):
                self.batch.send(officer, f"{key}:report:{missed}:late", tk.ReportTaskProgress, task_id=row.task_id,
                                due_on=missed, text=f"补报{missed:%m月%d日}进展", percent=progress(row, missed),
                                evidence=(photo(f"{key}:{missed}:late"),))

    def complete(self, row: Row, day: date, officer: Any, key: str) -> None:
        """The day's completion step of `COMPLETIONS` for this task, if any (after the day's report)."""
        for when, action in COMPLETIONS.get(row.code, ()):
            if when != day:
                continue
            if action == "claim":
                self.batch.send(officer, f"{key}:claim:{day}", tk.ClaimTaskCompletion, task_id=row.task_id,
                                text="已完成对标整改，申请验收", evidence=(photo(f"{key}:done:{day}"),))
            elif action == "return":
                self.batch.send(self.batch.hq, f"{key}:return:{day}", tk.ReturnTaskCompletion, task_id=row.task_id,
                                reason="佐证材料不全，请补充设施维修前后对比照片")
            else:
                self.batch.send(self.batch.hq, f"{key}:accept:{day}", tk.AcceptTaskCompletion, task_id=row.task_id,
                                note="经现场核查，验收通过")

    def summary(self) -> dict[str, Any]:
        """What the table made: the import's counts, reports filed and missed, tasks done, escalation steps on misses."""
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            campaign = self.loader.campaign_id
            (counts,) = conn.execute(
                "SELECT count(*) AS tasks, coalesce(sum(report_count), 0) AS reports, coalesce(sum(missed_count), 0)"
                " AS missed, count(*) FILTER (WHERE state = 'completed') AS completed FROM task_rows"
                " WHERE campaign_id = %s", (campaign,)).fetchall()
            (steps,) = conn.execute("SELECT count(*) AS n FROM escalation_steps WHERE campaign_id = %s"
                                    " AND item_kind IN ('task', 'task_report')", (campaign,)).fetchall()
        return {"import": {k: self.report.get(k) for k in ("rows", "created", "unchanged", "indicators_created",
                                                            "error_rows", "rows_per_second")},
                "tasks": counts["tasks"], "reports_filed": counts["reports"], "reports_missed": counts["missed"],
                "completed": counts["completed"], "escalation_steps_on_tasks": steps["n"]}


def table_rows(raw: bytes, campaign_id: UUID) -> list[Row]:
    """The task rows of the demo's table, with the ids the import gives them (row key: indicator code + task)."""
    table = read_table(raw, TABLE)
    head = {h: i for i, h in enumerate(table.header)}
    out = []
    for _, cells in table.rows:
        code, task, lead, cadence = (cells[head[c]] for c in ("指标编号", "任务", "牵头单位", "报送频次"))
        if not task:
            continue
        parsed = tk.parse_cadence(str(cadence))
        assert parsed is not None and not isinstance(parse_day(cells[head["完成时限"]]), str)
        out.append(Row(task_id=derived_id("task", campaign_id, "import", f"{code}|{normal_name(str(task))}"),
                       code=str(code), lead=str(lead), cadence=parsed))
    return out


def reporting(row: Row, day: date) -> bool:
    """The task reports on `day`: no completion claim stands from before that day (none, or the last one returned)."""
    before = [action for when, action in COMPLETIONS.get(row.code, ()) if when < day]
    return not before or before[-1] == "return"


def progress(row: Row, day: date) -> int:
    """A plausible percent done by `day` (the demo's units advance about 3 % a working week)."""
    return min(95, 10 + 3 * ((day - IMPORT_DAY).days // 7 + 1) + int(row.code.split(".")[-1]))
