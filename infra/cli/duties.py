"""`dudao duties …`: liaison duties (挂钩联系履职) from the command line — compliance, a leader's view, the trail.

`dudao duties list CAMPAIGN` prints per leader × linked place × period what was due and done and the verdict
(`--person`, `--place`, `--from`/`--to`, `--status`, `--as-of`; `--format table|json|csv`);
`dudao duties leader PERSON` a leader's own view; `dudao duties trail PERSON` their duty trail (履职轨迹) as a
table, JSON or CSV (UTF-8 with BOM); `dudao duties leaders CAMPAIGN` who is linked to what at an instant.
The same queries as the HTTP routes, on the campaign calendar, from what was recorded by `--as-of`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import typer
from psycopg.rows import dict_row

from domain import liaison as li
from domain.kernel.calendar import CHINA_TZ
from domain.kernel.timefmt import format_local
from domain.structure.person import Person
from infra.bootstrap import System, bootstrap_from_settings
from infra.cli import load_settings
from infra.commands.escalation import calendar_for
from infra.commands.service import StoreReader
from projections import escalation_lists as el
from projections import liaison_duties as ld

duties_app = typer.Typer(no_args_is_help=True, help="挂钩联系履职 (liaison duties): compliance, a leader's view, the trail.")

T = TypeVar("T")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@contextmanager
def _system() -> Iterator[System]:
    system = bootstrap_from_settings(load_settings(configure_logs=True))
    try:
        yield system
    finally:
        system.close()


def _read(system: System, fn: Callable[[Any], T]) -> T:
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        return fn(conn)


def _at(system: System, as_of: datetime | None) -> datetime:
    if as_of is None:
        return system.clock()
    return as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=CHINA_TZ)


def _campaign_of_person(system: System, person_id: UUID) -> UUID:
    person = StoreReader(system.app).get("person", person_id, Person)
    if person is None:
        typer.echo(json.dumps({"code": "person_not_found", "message_zh": "人员不存在", "message_en": "person not found"},
                              ensure_ascii=False), err=True)
        raise typer.Exit(1)
    return person.campaign_id


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).isoformat()
    if isinstance(value, (date, UUID)):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _write(text: str | bytes, output: Path | None) -> None:
    if output is None:
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
            sys.stdout.flush()
        else:
            typer.echo(text)
        return
    output.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    typer.echo(f"→ {output}", err=True)


def _csv(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


COMPLIANCE_COLUMNS = ("领导", "班子", "职务", "挂钩对象", "周期", "应督查", "已督查", "按时", "状态", "规则版本", "最近督查",
                      "距今天数", "发现问题")


def _compliance_cells(r: dict[str, Any]) -> list[str]:
    return [r["leader_name"] or "", r["body_zh"], r["rank"], r["target_name"] or "", r["period_zh"], str(r["due"]),
            str(r["done"]), str(r["done_on_time"]), r["status_zh"], str(r["policy_version"]),
            format_local(r["last_visit_at"], empty=""), "" if r["days_since_last_visit"] is None
            else str(r["days_since_last_visit"]), str(len(r["problems"]))]


@duties_app.command("list")
def list_duties(campaign_id: UUID = typer.Argument(..., help="the campaign (创建活动)"),
                person: UUID = typer.Option(None, "--person", help="one leader"),
                place: UUID = typer.Option(None, "--place", help="one linked place"),
                period_from: datetime = typer.Option(None, "--from", formats=["%Y-%m-%d"], help="first day"),
                period_to: datetime = typer.Option(None, "--to", formats=["%Y-%m-%d"], help="last day"),
                status: str = typer.Option(None, "--status", help="met|met_late|unmet|pending|exempt|not_due"),
                as_of: datetime = typer.Option(None, "--as-of", help="judge as of this instant (default: now)"),
                fmt: Format = typer.Option(Format.table, "--format"),
                output: Path = typer.Option(None, "--output", help="write to this file")) -> None:
    """Compliance per leader × linked place × period (挂钩联系履职情况)."""
    if status is not None and status not in li.STATUS_NAMES_ZH:
        raise typer.BadParameter(f"unknown status {status}; one of {', '.join(li.STATUS_NAMES_ZH)}")
    first = period_from.date() if period_from else None
    last = period_to.date() if period_to else None
    with _system() as system:
        at = _at(system, as_of)
        calendar = calendar_for(StoreReader(system.app), campaign_id)
        rows = _read(system, lambda conn: ld.compliance(conn, campaign_id, calendar, at, person_id=person,
                                                        place_id=place, first=first, last=last, status=status))
    if fmt is Format.json:
        _write(_json({"campaign_id": campaign_id, "as_of": at, "summary": ld.summary(rows), "rows": rows}), output)
    elif fmt is Format.csv:
        _write(_csv(COMPLIANCE_COLUMNS, [_compliance_cells(r) for r in rows]), output)
    else:
        lines = [" | ".join(COMPLIANCE_COLUMNS), *(" | ".join(_compliance_cells(r)) for r in rows)]
        s = ld.summary(rows)
        lines.append(f"共 {s['rows']} 行：" + "，".join(f"{li.STATUS_NAMES_ZH[k]} {v}" for k, v in s["by_status"].items() if v))
        _write("\n".join(lines), output)


@duties_app.command("leader")
def leader(person_id: UUID = typer.Argument(..., help="the leader (挂钩领导)"),
           as_of: datetime = typer.Option(None, "--as-of", help="as of this instant (default: now)"),
           as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """A leader's own view: linked places, this period's status, what is due next, open problems and escalations."""
    with _system() as system:
        campaign_id = _campaign_of_person(system, person_id)
        at = _at(system, as_of)
        calendar = calendar_for(StoreReader(system.app), campaign_id)
        view, escalations = _read(system, lambda conn: (
            ld.leader_view(conn, campaign_id, person_id, calendar, at),
            el.open_escalations(conn, campaign_id, leader_id=person_id, at=at)))
    if view is None:
        typer.echo(json.dumps({"code": "leader_not_found", "message_zh": "该人员不是挂钩领导",
                               "message_en": "the person is not a liaison leader"}, ensure_ascii=False), err=True)
        raise typer.Exit(1)
    view = {**view, "as_of": at, "escalations": [{k: r[k] for k in ("item_kind", "item_id", "summary", "level",
                                                                      "place_name", "deadline")} for r in escalations]}
    if as_json:
        typer.echo(_json(view))
        return
    typer.echo(f"{view['name']}（{view['body_zh']}，{view['rank']}）  截至 {format_local(at)}")
    for link in view["links"]:
        this, nxt = link["this_period"], link["due_next"]
        state = f"{this['period_zh']} {this['status_zh']}（应{this['due']}次，已{this['done']}次）" if this else "—"
        owed = f"；尚需督查{nxt['visits']}次，{format_local(nxt['by'])}前" if nxt and nxt["visits"] else ""
        typer.echo(f"  挂钩 {link['target_name']}：{state}{owed}；最近督查 {format_local(link['last_visit_at'])}")
    typer.echo(f"  挂钩点位未办结问题 {len(view['open_problems'])} 个；督办事项 {len(view['escalations'])} 项")
    for e in view["escalations"]:
        typer.echo(f"    [{e['level']}级] {e['summary']}")


TRAIL_TABLE = ("时间", "类型", "摘要", "操作人", "理由")


@duties_app.command("trail")
def trail(person_id: UUID = typer.Argument(..., help="the leader (挂钩领导)"),
          as_of: datetime = typer.Option(None, "--as-of", help="what was recorded by this instant (default: now)"),
          fmt: Format = typer.Option(Format.table, "--format"),
          output: Path = typer.Option(None, "--output", help="write to this file")) -> None:
    """A leader's duty trail (履职轨迹): links, visits, verdicts with their policy version, exemptions, reminders,
    escalations — actor, times, reason and correlation/causation ids, in order."""
    with _system() as system:
        campaign_id = _campaign_of_person(system, person_id)
        at = _at(system, as_of)
        calendar = calendar_for(StoreReader(system.app), campaign_id)
        entries = _read(system, lambda conn: ld.trail(conn, campaign_id, person_id, calendar, at))
    if fmt is Format.json:
        _write(_json({"person_id": person_id, "as_of": at,
                      "entries": [{k: v for k, v in e.items() if k != "order"} for e in entries]}), output)
    elif fmt is Format.csv:
        _write(_csv(ld.TRAIL_CSV_COLUMNS, ld.trail_csv_rows(entries)), output)
    else:
        lines = [" | ".join(TRAIL_TABLE)]
        lines += [" | ".join((format_local(e["at"]), e["entry_kind_zh"], e["summary_zh"],
                              e["actor"].get("name") or e["actor"].get("role") or "", e["reason"] or ""))
                  for e in entries]
        _write("\n".join(lines), output)


@duties_app.command("leaders")
def leaders(campaign_id: UUID = typer.Argument(...),
            as_of: datetime = typer.Option(None, "--as-of", help="as of this instant (default: now)")) -> None:
    """Who is linked to which place or unit (挂钩领导) at an instant."""
    with _system() as system:
        at = _at(system, as_of)
        rows = _read(system, lambda conn: ld.linked_in_force(conn, campaign_id, at))
    for r in rows:
        typer.echo(f"{r['target_name']} ← {r['leader_name']}（{li.BODY_NAMES_ZH.get(r['body'], r['body'])}，"
                   f"{r['rank']}） 自 {format_local(r['valid_from'])}")


def register(app: typer.Typer) -> None:
    app.add_typer(duties_app, name="duties")
