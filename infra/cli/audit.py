"""Audit commands (问责审计): `dudao chain`, `dudao verify`, `dudao trail`, `dudao asof`, `dudao knowledge`,
`dudao replay escalations` and `dudao dossier`.

`register(app)` adds them. `chain` is the chain process (`dudao run` supervises one); `verify` recomputes the
chain with a progress bar and exits 0 (`intact to position N`) or 3 (the first position where stored history
disagrees with the chain or a published digest, and the entity it belongs to). The read commands bring the
trail projection up to the log head first, so a trail is complete when printed.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

import psycopg
import typer
from kafka.errors import KafkaError
from psycopg.rows import dict_row
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from domain.kernel.base import DomainError
from infra.audit import asof, digests, queries as aq
from infra.audit.history import events_table
from infra.audit.process import ChainProcess
from infra.bootstrap import System, bootstrap_from_settings
from infra.cli import load_settings
from infra.settings import Settings

console = Console(stderr=True)
replay_app = typer.Typer(no_args_is_help=True, help="Replay history against policy (复盘).")
EXIT_TAMPERED = 3


def signing_key(settings: Settings) -> digests.SigningKey:
    return digests.load_key(settings.audit_key, settings.audit_key_id, settings.var_dir)


def checking_keys(settings: Settings) -> digests.Keyring:
    """The signing key and the retired ones: what digests' signatures are checked with."""
    return digests.load_keyring(settings.audit_key, settings.audit_key_id, settings.audit_retired_keys,
                                settings.var_dir)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise typer.BadParameter(f"{value!r}: give an offset, e.g. 2021-12-20T09:00+08:00")
    return at


def audit_system(settings: Settings) -> System:
    system = bootstrap_from_settings(settings)
    trail = system.projector.projection("trail")
    head = system.projector.head()
    while system.projector.run_once(trail, head):
        pass
    return system


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def chain_command(once: bool = typer.Option(False, "--once", help="Chain what is stored, sign a digest, send it, exit."),
                  poll: float = typer.Option(5.0, "--poll", min=0.05, help="Seconds between rounds when caught up, at "
                                                                            "most: a commit starts the next round at once.")) -> None:
    """Run the chain process: hash every stored event onto the chain, sign and publish digests (哈希链)."""
    settings = load_settings(configure_logs=True)
    system = bootstrap_from_settings(settings)
    process = ChainProcess(system.database_url, events_table(system.app), signing_key(settings), system.clock,
                           bootstrap=settings.kafka_bootstrap, topic=digests.topic_name(settings.topic_prefix),
                           digest_seconds=settings.audit_digest_seconds, poll=poll, channel=system.app.store.channel_name)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        process.stop()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if once:
            chained = process.round(force_digest=True)
            typer.echo(f"chained {chained} events")
        else:
            process.run_forever()
    except KeyboardInterrupt:
        process.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
        system.close()


def verify_command(
    kafka: bool = typer.Option(True, "--kafka/--no-kafka", help="Also check the digests held on the Kafka topic."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Recompute the hash chain; exit 0 when intact, 3 at the first position where history disagrees (校验)."""
    settings = load_settings()
    system = bootstrap_from_settings(settings)
    key = checking_keys(settings)
    extra: list[digests.Digest] = []
    if kafka and settings.kafka_bootstrap:
        try:
            extra = digests.read_topic(settings.kafka_bootstrap, digests.topic_name(settings.topic_prefix))
        except KafkaError as exc:
            console.print(f"[yellow]Kafka digests not read ({exc}); checking the table's only[/yellow]")
    try:
        with Progress(TextColumn("校验哈希链"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("verify", total=None)
            report = aq.verify(system.app, system.database_url, key, extra=extra,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        system.close()
    if as_json:
        print_json(report.as_json())
    elif report.intact:
        typer.echo(f"intact to position {report.checked_to} ({report.events} events, {report.digests_checked} digests, "
                   f"{report.events / max(report.seconds, 1e-9):,.0f} events/s; {report.unchained} not yet chained)")
    else:
        first = report.first
        assert first is not None
        typer.echo(f"history disagrees at position {first.position}: {first.what} — {first.detail}")
        if first.aggregate_id:
            typer.echo(f"  belongs to {first.kind or 'aggregate'} {first.aggregate_id} (version {first.version})")
        if len(report.findings) > 1:
            typer.echo(f"  {len(report.findings)} findings in all (use --json to list them)")
    raise typer.Exit(0 if report.intact else EXIT_TAMPERED)


def trail_command(kind: str = typer.Argument(..., help="problems, visits, tasks, units, persons, places, notices, "
                                                        "bulletins, summons, accountability_cases, policies …"),
                  entity_id: UUID = typer.Argument(...),
                  since: str = typer.Option(None, "--from", help="ISO-8601 instant with offset."),
                  until: str = typer.Option(None, "--to", help="ISO-8601 instant with offset."),
                  by: str = typer.Option("recorded", "--by", help="recorded or occurred (which time --from/--to filter)."),
                  limit: int = typer.Option(500, "--limit", min=1), offset: int = typer.Option(0, "--offset", min=0),
                  fmt: str = typer.Option("table", "--format", help="table, json or csv")) -> None:
    """The trail (履历) of an entity: every event touching it, with actor, times, reason and causation chain."""
    settings = load_settings()
    system = audit_system(settings)
    try:
        aq.existing(system.app, aq.kinds_for(kind), entity_id)
        with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            body = aq.trail(conn, entity_id, since=parse_time(since), until=parse_time(until), by=by, limit=limit,
                            offset=offset)
    except DomainError as err:
        raise typer.BadParameter(err.message_en) from err
    finally:
        system.close()
    if fmt == "json":
        print_json(body)
    elif fmt == "csv":
        from infra.http.routes_audit import trail_csv

        sys.stdout.write(trail_csv(body["rows"]).lstrip("\ufeff"))
    else:
        table = Table(title=f"履历 {entity_id}（{len(body['rows'])}/{body['total']}）")
        for column in ("位置", "事件", "操作人", "发生", "记录", "理由", "起因链"):
            table.add_column(column)
        for r in body["rows"]:
            actor = r["actor"] or {}
            causes = " ← ".join(asof.event_type_name(c["type"]) for c in r["causation_chain"]) or "—"
            table.add_row(str(r["notification_id"]), asof.event_type_name(r["event_type"]),
                          f"{actor.get('name') or ''}({actor.get('role')})", str(r["occurred_at"])[:16],
                          str(r["recorded_at"])[:16], r["reason"] or "", f"{causes} / {r['root_command_id']}")
        Console().print(table)


def asof_command(kind: str = typer.Argument(...), entity_id: UUID = typer.Argument(...),
                 at: str = typer.Option(..., "--at", help="ISO-8601 instant with offset."),
                 basis: str = typer.Option("recorded", "--basis", help="recorded (known then) or occurred (happened by then)")
                 ) -> None:
    """An entity as of T, folded from the store, with the names then in force (截至某时的状态)."""
    settings = load_settings()
    system = bootstrap_from_settings(settings)
    try:
        at_ = parse_time(at)
        assert at_ is not None
        print_json(aq.as_of(system.app, aq.kinds_for(kind), entity_id, at_, basis))
    except DomainError as err:
        raise typer.BadParameter(err.message_en) from err
    finally:
        system.close()


def knowledge_command(kind: str = typer.Argument(...), entity_id: UUID = typer.Argument(...),
                      at: str = typer.Option(..., "--at", help="ISO-8601 instant with offset.")) -> None:
    """What HQ could see at T next to what had happened by T (知情视图)."""
    settings = load_settings()
    system = audit_system(settings)
    try:
        at_ = parse_time(at)
        assert at_ is not None
        with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            print_json(asof.knowledge(system.app, conn, aq.kinds_for(kind), entity_id, at_))
    except DomainError as err:
        raise typer.BadParameter(err.message_en) from err
    finally:
        system.close()


@replay_app.command("escalations")
def replay_escalations(case: UUID = typer.Option(None, "--case", help="an accountability case (问责案件)"),
                       item: UUID = typer.Option(None, "--item", help="a work item (problem, notice …)"),
                       campaign: UUID = typer.Option(None, "--campaign", help="a campaign, with --from/--to"),
                       since: str = typer.Option(None, "--from"), until: str = typer.Option(None, "--to"),
                       grace_minutes: int = typer.Option(60, "--grace-minutes", min=0,
                                                         help="how late a step may be taken before it counts as missing"),
                       as_json: bool = typer.Option(False, "--json")) -> None:
    """Re-run the escalation policy over the stored history, step by step; exit 3 where it differs (督办复盘)."""
    settings = load_settings()
    system = audit_system(settings)
    try:
        end = parse_time(until) or system.clock()
        with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
            result = aq.replay_scope(system.app, conn, case=case, item=item, campaign=campaign, since=parse_time(since),
                                     until=end, grace=timedelta(minutes=grace_minutes))
    except DomainError as err:
        raise typer.BadParameter(err.message_en) from err
    finally:
        system.close()
    if as_json:
        print_json(result.as_json())
    else:
        for item_replay in result.items:
            typer.echo(f"{item_replay.item_kind} {item_replay.item_id}: {'agrees' if item_replay.agrees else 'DIFFERS'}")
            for s in item_replay.steps:
                typer.echo(f"  {s.step_name:<24} {s.verdict:<15} {s.taken_at or '—'}  {s.detail}")
        typer.echo("every step followed from the policy in force" if result.agrees else "some steps differ from policy")
    raise typer.Exit(0 if result.agrees else EXIT_TAMPERED)


def dossier_command(case: UUID = typer.Argument(..., help="the accountability case (问责案件) id"),
                    out: Path = typer.Option(None, "--out", help="Default: <var>/dossiers/dossier-<case>.html")) -> None:
    """Write the case's dossier (问责卷宗): zh-CN HTML for printing on A4."""
    settings = load_settings()
    system = audit_system(settings)
    try:
        path = write_dossier(system, case, checking_keys(settings),
                             out or settings.var_dir / "dossiers" / f"dossier-{case}.html")
    except DomainError as err:
        raise typer.BadParameter(err.message_en) from err
    finally:
        system.close()
    typer.echo(str(path))


def write_dossier(system: System, case: UUID, keys: digests.Keyring, path: Path, now: datetime | None = None) -> Path:
    """Render the dossier of `case` to `path` (the chain brought up to date and a digest signed first).

    `now`: the instant the replay runs to (default the clock's now; the demo passes the end of its month).
    """
    process = ChainProcess(system.database_url, events_table(system.app), keys.current, system.clock)
    process.round(force_digest=True)
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        html = aq.dossier_html(system.app, system.database_url, conn, case, now or system.clock(), keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def register(app: typer.Typer) -> None:
    app.command("chain")(chain_command)
    app.command("verify")(verify_command)
    app.command("trail")(trail_command)
    app.command("asof")(asof_command)
    app.command("knowledge")(knowledge_command)
    app.command("dossier")(dossier_command)
    app.add_typer(replay_app, name="replay")


def demo_dossier(system: System, settings: Settings, campaign_id: UUID) -> Path | None:
    """The dossier of the demo's first 问责 case (replayed to the last recorded event), or None when it has none."""
    trail = system.projector.projection("trail")
    while system.projector.run_once(trail):
        pass
    with psycopg.connect(system.database_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT aggregate_id FROM audit_events WHERE kind = 'accountability_case' AND campaign_id = %s"
                           " ORDER BY notification_id LIMIT 1", (campaign_id,)).fetchone()
        last = conn.execute("SELECT max(recorded_at) AS at FROM audit_events WHERE campaign_id = %s",
                            (campaign_id,)).fetchone()
    if row is None:
        return None
    case = row["aggregate_id"]
    return write_dossier(system, case, checking_keys(settings), settings.var_dir / "dossiers" / f"dossier-{case}.html",
                         now=last["at"] if last else None)
