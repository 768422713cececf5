"""CLI commands for the whole system: `dudao run` (what `make run` starts) and `dudao demo`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import typer

from infra.cli import load_settings

if TYPE_CHECKING:
    from infra.bootstrap import System
    from infra.settings import Settings


def run_command(drill_clock: str = typer.Option(
        None, "--drill-clock", metavar="START",
        help="演练模式: every process reads one shared clock kept in PostgreSQL, starting at START (ISO 8601 with "
             "offset) and moved by POST /drill/clock; only on an empty event store (or one started so)."),
        demo_drill: bool = typer.Option(
        False, "--demo-drill",
        help="演练模式 from the 高安 demo's launch (what `make run` starts): `dudao demo` then plays its 2021–22 story "
             "on the clock the live escalator reads, instead of the escalator judging it against today's date."),
) -> None:
    """Start the embedded servers (unless configured elsewhere) and every process; Ctrl-C stops all / 启动整个系统."""
    from dataclasses import replace

    from infra.runtime.run import run
    from infra.settings import drill_start

    settings = load_settings(configure_logs=True)
    if demo_drill and not drill_clock:
        from infra.demo.structure import demo_clock, scenario

        settings = replace(settings, drill_clock=demo_clock(scenario())())
    elif drill_clock:
        try:
            settings = replace(settings, drill_clock=drill_start(drill_clock))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--drill-clock") from exc
    raise typer.Exit(run(settings))


def load_demo(system: System, settings: Settings) -> dict[str, Any]:
    """What `dudao demo` does, minus the printing: load the scenario, catch the read models up, issue an admin
    token, and end with the dossier (问责卷宗) of the demo's first 问责 case, written under `<var>/dossiers`."""
    from infra.cli.audit import demo_dossier
    from infra.clock import DeploymentClock
    from infra.demo.structure import run_demo
    from infra.http.auth import create_token

    clock = system.clock  # 演练: on a live drill deployment the demo moves its shared clock, not one of its own
    live = clock if isinstance(clock, DeploymentClock) and clock.drill else None
    summary = run_demo(system.app, catch_up=system.projector.catch_up, live=live)
    system.projector.catch_up()
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        summary["token"] = create_token(conn, role="admin", name="演示数据")
    dossier = demo_dossier(system, settings, UUID(summary["campaign_id"]))
    summary["dossier"] = str(dossier) if dossier else None
    return summary


NOT_A_DRILL = (
    "此部署不是演练模式：演示数据发生在2021–22年，实时督办引擎按今天的日期判定，每个问题都会逾期多年、逐级升级。"
    "请用 make run（dudao run --demo-drill）启动演练部署后再载入；确需载入请加 --wall-clock。\n"
    "This deployment is not a drill: the demo's story is dated 2021-22 and a live escalator would judge it against "
    "today, every problem years overdue and climbing the whole ladder. Start a drill (make run, i.e. dudao run "
    "--demo-drill) and load it there, or pass --wall-clock to load it anyway.")


def demo_command(
        as_json: bool = typer.Option(False, "--json", help="print what was created as JSON"),
        wall_clock: bool = typer.Option(
            False, "--wall-clock",
            help="load it into a deployment on the wall clock anyway (its escalator judges the demo against today)"),
) -> None:
    """Load the 高安 2021 scenario through the real command path (re-running is harmless) / 载入高安演示数据.

    Only into a drill deployment (演练模式), unless `--wall-clock`: on the wall clock the live escalator would take
    every step of the ladder for every one of the demo's problems at once, years late."""
    from infra.bootstrap import bootstrap_from_settings
    from infra.clock import DeploymentClock

    settings = load_settings(configure_logs=True)
    system = bootstrap_from_settings(settings)
    try:
        clock = system.clock
        if not wall_clock and not (isinstance(clock, DeploymentClock) and clock.drill):
            typer.echo(NOT_A_DRILL, err=True)
            raise typer.Exit(2)
        summary = load_demo(system, settings)
    finally:
        system.close()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    typer.echo(f"高安演示数据已载入: campaign_id={summary['campaign_id']}")
    typer.echo(f"  指令 {summary['commands']} 条, 新写入事件 {summary['events_written']} 条 (重复运行不会重复写入)")
    typer.echo(f"  网格 {summary['grids']} 个, 牵头单位: 来源列明 {summary['lead_units_named_by_source']} 个, "
               f"演示虚构 {summary['lead_units_invented']} 个")
    if tasks := summary.get("tasks"):
        typer.echo(f"  任务分解表: 任务 {tasks['tasks']} 项, 1月报送 {tasks['reports_filed']} 期, 未按时报送 "
                   f"{tasks['reports_missed']} 期 (督办引擎记录并催办), 办结 {tasks['completed']} 项")
    typer.echo(f"  管理员令牌 token: {summary['token']}")
    if summary.get("dossier"):
        typer.echo(f"  问责卷宗 (dossier): {summary['dossier']}")


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
    app.command("demo")(demo_command)
