"""`dudao import tasks FILE`, `dudao tasks …` and `dudao metrics …`: the 任务分解表, tasks, indicators, evaluation
figures and rankings from the command line.

`dudao import tasks FILE --campaign ID` imports a 任务分解表 (XLSX or CSV) through the command service as the
`--token`'s actor (without one: an admin acting as the OS user), with a progress bar and a summary;
`--dry-run` only checks; `--result OUT.xlsx` writes the rows annotated with their result and errors.
`dudao import template OUT.xlsx` writes the template. `dudao tasks list|indicators CAMPAIGN` and
`dudao metrics figures|rankings CAMPAIGN` print what the HTTP routes return (`--format table|json|csv`).
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.kernel.base import Actor
from infra.bootstrap import System, bootstrap_from_settings
from infra.cli import load_settings

import_app = typer.Typer(no_args_is_help=True, help="导入 (imports): a 任务分解表 from XLSX or CSV, and its template.")
tasks_app = typer.Typer(no_args_is_help=True, help="任务分解 (tasks): the task list and the indicator tree.")
metrics_app = typer.Typer(no_args_is_help=True, help="考评指标 (evaluation figures) and 排名 (rankings).")
console = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@contextmanager
def opened() -> Iterator[System]:
    system = bootstrap_from_settings(load_settings(configure_logs=True))
    try:
        yield system
    finally:
        system.close()


def cli_actor(system: System, token: str | None) -> Any:
    """The token's grant, or (no token) an admin acting as the OS user, as `dudao demo` acts."""
    if token is None:
        return Actor(role="admin", name=f"命令行导入（{getpass.getuser()}）")
    from infra.commands.grants import grant_for_token

    with psycopg.connect(system.database_url) as conn:
        grant = grant_for_token(conn, token)
    if grant is None:
        typer.echo("令牌无效 invalid token", err=True)
        raise typer.Exit(2)
    return grant


@import_app.command("tasks")
def import_tasks_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="任务分解表 (.xlsx or .csv)"),
    campaign: UUID = typer.Option(..., "--campaign", help="the campaign (创建活动) the tasks belong to"),
    token: str = typer.Option(None, "--token", envvar="DUDAO_TOKEN", help="whose act this is (default: admin)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check every row, write nothing"),
    result: Path = typer.Option(None, "--result", help="write the rows with their result and errors (XLSX)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import a 任务分解表 through the command service / 导入任务分解表 (重复导入不会重复写入)."""
    from infra.imports.tasks import annotated_xlsx, import_tasks

    with opened() as system:
        system.projector.catch_up()  # units and indicators are matched by name and code on the read models
        actor = cli_actor(system, token)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as bar, psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            job = bar.add_task("导入任务 importing", total=None)
            report = import_tasks(system.service, conn, campaign, file.read_bytes(), file.name, actor,
                                  dry_run=dry_run, progress=lambda done, total: bar.update(job, completed=done,
                                                                                         total=total))
        system.projector.catch_up()
    if result is not None:
        result.write_bytes(annotated_xlsx(report))
    body = report.as_dict()
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))
    else:
        print_summary(body)
    if body["errors"]:
        raise typer.Exit(1)


def print_summary(body: dict[str, Any]) -> None:
    mode = "试运行（未写入）dry run" if body["dry_run"] else "导入完成 imported"
    typer.echo(f"{mode}: {body['file']} — 数据行 {body['rows']}, 新导入 {body['created']}, 未变化 {body['unchanged']}, "
               f"校验通过 {body['valid']}, 指标行 {body['indicator_rows']}, 新建指标 {body['indicators_created']}, "
               f"错误行 {body['error_rows']}; {body['seconds']} s ({body['rows_per_second'] or 0} 行/秒 rows/s)")
    for e in body["errors"]:
        column = f"[{e['column']}] " if e["column"] else ""
        typer.echo(f"  第 {e['row']} 行 row {e['row']}: {column}{e['message_zh']}", err=True)


@import_app.command("template")
def import_template_command(out: Path = typer.Argument(..., help="where to write the template (.xlsx)")) -> None:
    """Write the 任务分解表 template / 导出任务分解表模板."""
    from infra.imports.tasks import template_xlsx

    out.write_bytes(template_xlsx())
    typer.echo(f"模板已写入 template written: {out}")


# --- queries --------------------------------------------------------------------------------------------


def emit(rows: list[dict[str, Any]], fmt: Format, columns: list[str]) -> None:
    if fmt == Format.json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if fmt == Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([[_cell(r.get(c)) for c in columns] for r in rows])
        sys.stdout.buffer.write(out.getvalue().encode("utf-8-sig"))
        return
    for r in rows:
        typer.echo("  ".join(f"{c}={_cell(r.get(c))}" for c in columns))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


@tasks_app.command("list")
def tasks_list(campaign: UUID = typer.Argument(...),
               as_of: datetime = typer.Option(None, "--as-of", help="as recorded by this instant (default: now)"),
               fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The campaign's tasks: lead unit, state, percent, reports and misses / 任务清单."""
    from projections import tasks as tp

    with opened() as system, psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        at = as_of or system.clock()
        rows = tp.list_tasks(conn, campaign, at, as_of=as_of)
    flat = [{**r, "lead_unit": (r["lead_unit"] or {}).get("name")} for r in rows]
    emit(flat, fmt, ["row_key", "name", "lead_unit", "state_zh", "due_on", "cadence_zh", "percent", "reports",
                     "missed_reports", "overdue"])


@tasks_app.command("indicators")
def tasks_indicators(campaign: UUID = typer.Argument(...),
                     as_of: datetime = typer.Option(None, "--as-of"),
                     fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The indicator tree with each node's roll-up of its tasks / 指标体系及任务汇总."""
    from projections import tasks as tp

    with opened() as system, psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        tree = tp.indicator_tree(conn, campaign, as_of or system.clock(), as_of=as_of)
    flat: list[dict[str, Any]] = []

    def walk(nodes: list[dict[str, Any]], depth: int) -> None:
        for n in nodes:
            flat.append({**{k: v for k, v in n.items() if k != "children"}, "depth": depth})
            walk(n["children"], depth + 1)

    walk(tree, 0)
    emit(flat, fmt, ["depth", "code", "name", "tasks", "completed", "overdue", "mean_percent", "missed_reports"])


@metrics_app.command("figures")
def metrics_figures(campaign: UUID = typer.Argument(...),
                    by: str = typer.Option("unit", "--by", help="unit, grid, sub_command, indicator or campaign"),
                    period: str = typer.Option("month", "--period", help="week, month, two_month, custom or all"),
                    day: date = typer.Option(None, "--day", help="a day in the period (default: as of)"),
                    start: date = typer.Option(None, "--start"), end: date = typer.Option(None, "--end"),
                    as_of: datetime = typer.Option(None, "--as-of"),
                    fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The evaluation figures per group, each as value (numerator/denominator) / 考评指标."""
    from infra.evaluation import evaluation_body

    with opened() as system, psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        body = evaluation_body(system, conn, campaign, by, period, day, start, end, as_of)
    keys = list(body["formulas"])
    rows = [{"name": r["name"], **{k: _shown(r["figures"][k]) for k in keys}} for r in body["rows"]]
    typer.echo(f"{body['period']['label_zh']}（判定时点 {body['judged_at']}）", err=True)
    emit(rows, fmt, ["name", *keys])


@metrics_app.command("rankings")
def metrics_rankings(campaign: UUID = typer.Argument(...),
                     by: str = typer.Option("unit", "--by"),
                     metric: str = typer.Option("on_time_closure_rate", "--metric"),
                     period: str = typer.Option("week", "--period"), day: date = typer.Option(None, "--day"),
                     start: date = typer.Option(None, "--start"), end: date = typer.Option(None, "--end"),
                     as_of: datetime = typer.Option(None, "--as-of"),
                     fmt: Format = typer.Option(Format.table, "--format")) -> None:
    """The ranking of the period by one figure (default 按期结案率), ties by name then id / 排名."""
    from infra.evaluation import ranking_body

    with opened() as system, psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        body = ranking_body(system, conn, campaign, by, metric, period, day, start, end, as_of)
    emit(body["rows"], fmt, ["rank", "name", "value", "numerator", "denominator"])


def _shown(f: dict[str, Any]) -> str:
    return "—" if f["value"] is None else f"{f['value']} ({f['numerator']}/{f['denominator']})"


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(metrics_app, name="metrics")
