"""CLI for the supervision loop: issue any command as a token's actor, export the 整改台账, show a problem.

`dudao command NAME --body JSON --token T` runs any registered command (e.g. `assign_problem`)
through the same service the API uses, as the token's grant: the same role, campaign, reference
and scope checks as over HTTP (`infra.commands.authorization`), and an expired or revoked token is
refused (exit 2); `dudao ledger CAMPAIGN --csv F | --xlsx F` writes the
rectification ledger; `dudao problem ID` prints a problem's timeline.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from uuid import UUID

import psycopg
import typer
from psycopg.rows import dict_row
from pydantic import ValidationError

from infra.cli import load_settings


def command_command(name: str = typer.Argument(..., help="snake_case command name, e.g. assign_problem"),
                    body: str = typer.Option(..., "--body", help="the command as JSON (with command_id)"),
                    token: str = typer.Option(..., "--token", envvar="DUDAO_TOKEN", help="whose act this is")) -> None:
    """Issue one command as the token's actor / 以令牌身份执行一条指令."""
    from domain.kernel.base import DomainError
    from domain.kernel.edge import describe
    from infra.bootstrap import bootstrap_from_settings
    from infra.commands import commands_by_name
    from infra.commands.grants import Unauthenticated, check_token

    settings = load_settings(configure_logs=True)  # logs to stderr, the result alone on stdout
    system = bootstrap_from_settings(settings)
    try:
        handlers = commands_by_name()
        if name not in handlers:
            raise typer.BadParameter(f"unknown command {name}; known: {', '.join(sorted(handlers))}")
        try:
            with psycopg.connect(system.database_url) as conn:
                grant = check_token(conn, token)
        except Unauthenticated as err:
            typer.echo(f"令牌无效 invalid token: {err.message_zh} / {err.message_en} ({err.code})", err=True)
            raise typer.Exit(2) from err
        try:
            command = handlers[name].model_validate_json(body)
        except ValidationError as err:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in err.errors()]
            code, zh, en = describe(errors)  # the same code and messages as the HTTP API's 422
            typer.echo(json.dumps({"code": code, "message_zh": zh, "message_en": en, "details": {"errors": errors}},
                                  ensure_ascii=False), err=True)
            raise typer.Exit(2) from err
        try:
            result = system.service.handle(command, grant)
        except DomainError as err:
            typer.echo(json.dumps({"code": err.code, "message_zh": err.message_zh, "message_en": err.message_en,
                                   "details": err.details}, ensure_ascii=False, default=str), err=True)
            raise typer.Exit(1) from err
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    finally:
        system.close()


def ledger_command(campaign_id: UUID = typer.Argument(...),
                   csv_path: Path = typer.Option(None, "--csv", help="write CSV (UTF-8 with BOM) here"),
                   xlsx_path: Path = typer.Option(None, "--xlsx", help="write XLSX here"),
                   now: datetime = typer.Option(None, "--now", help="judge time used at this instant (default: now)")) -> None:
    """Export the rectification ledger (整改台账) of a campaign."""
    from domain.kernel.base import fold
    from domain.policy.campaign import CampaignPolicy, categories_at, policy_id_for
    from domain.policy.campaign import campaign_calendar
    from infra.bootstrap import bootstrap_from_settings
    from infra.calendars import official_calendar
    from infra.http.exports import ledger_csv, ledger_xlsx
    from projections.ledger import ledger

    system = bootstrap_from_settings(load_settings())
    try:
        at = now or system.clock()
        stored = [s.event for s in system.app.history(policy_id_for(campaign_id))]
        policy = fold("campaign_policy", stored, CampaignPolicy) if stored else None
        calendar = campaign_calendar(official_calendar(), policy, at)
        names = {c.code: c.name_zh for c in categories_at(policy, at)}
        with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            rows = ledger(conn, campaign_id, now=at, calendar=calendar)
        for path, write in ((csv_path, ledger_csv), (xlsx_path, ledger_xlsx)):
            if path is not None:
                path.write_bytes(write(rows, names))
                typer.echo(f"整改台账 {len(rows)} 行 → {path}")
        if csv_path is None and xlsx_path is None:
            typer.echo(f"整改台账 {len(rows)} 行 (use --csv/--xlsx to write a file)")
    finally:
        system.close()


def problem_command(problem_id: UUID = typer.Argument(...)) -> None:
    """Print one problem's timeline (every event, who, when) / 问题全过程."""
    from domain.kernel.timefmt import format_local
    from infra.bootstrap import database_url_from
    from projections.ledger import timeline

    with psycopg.connect(database_url_from(load_settings()), row_factory=dict_row) as conn:
        rows = timeline(conn, problem_id)
    if not rows:
        typer.echo("未找到该问题 problem not found", err=True)
        raise typer.Exit(1)
    for r in rows:
        who = r["actor_name"] or r["actor_role"]
        typer.echo(f"v{r['version']:>3}  {format_local(r['occurred_at'])}  {who:<10}  {r['summary_zh']}")


def register(app: typer.Typer) -> None:
    app.command("command")(command_command)
    app.command("ledger")(ledger_command)
    app.command("problem")(problem_command)
