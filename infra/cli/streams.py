"""CLI commands for the event streams: `dudao relay`, `dudao status [--json]`, `dudao deadletters [--all] [--json]`,
`dudao schema export|check DIR`.

`infra.cli.main` calls `register(app)` to add them to the main typer application.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from infra.cli import load_settings

DEFAULT_CONTRACT_DIR = Path("contract")


def relay_command() -> None:
    """Publish every stored event to Kafka exactly once (one active relay; others stand by) / 事件转发到 Kafka."""
    from infra.streams.relay import main

    main(load_settings())


def status_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Show the log head, relay lag, projection lag and consumer-group lag / 显示各环节滞后情况."""
    from infra.bootstrap import database_url_from
    from infra.streams.status import status

    settings = load_settings()
    report = status(database_url_from(settings), settings.kafka_servers, prefix=settings.topic_prefix)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    typer.echo(f"事件日志 log head        {report['log_head']}")
    typer.echo(f"转发位置 relay position  {report['relay_position']}  (lag {report['relay_lag_events']} events, "
               f"{report['relay_lag_seconds']} s)")
    for name, p in report["projections"].items():
        typer.echo(f"投影 projection {name:<24} position {p['position']}  lag {p['lag']}")
    for group, g in report["consumer_groups"].items():
        typer.echo(f"消费组 consumer group {group:<20} lag {g['lag']}")
    for topic, t in report.get("topics", {}).items():
        typer.echo(f"主题 topic {topic:<30} partitions {t['partitions']}")
    for kind, readers in report["dead_letters"].items():
        for reader, found in readers.items():
            if found["open"]:
                typer.echo(f"死信 dead letters {kind} {reader}: {found['open']} open, oldest "
                           f"{found['oldest_age_seconds']:.0f} s at {found['oldest_position']}"
                           " (dudao deadletters; retry or skip it)", err=True)
    if "kafka_error" in report:
        typer.echo(f"Kafka 不可用 unavailable: {report['kafka_error']}", err=True)


def deadletters_command(
    everything: bool = typer.Option(False, "--all", help="also the retried and skipped ones"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the events a projection or consumer could not apply (死信), oldest first, with how to act on each."""
    import psycopg

    from infra.bootstrap import database_url_from
    from projections.dead_letters import listing

    with psycopg.connect(database_url_from(load_settings())) as conn:
        found = listing(conn, state=None if everything else "open")
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2, default=str))
        return
    for d in found:
        where = f"{d['topic']}:{d['partition']}:{d['position']}" if d["reader_kind"] == "consumer" else d["position"]
        typer.echo(f"{d['state']:<8} {d['reader_kind']} {d['reader']} {where}  {d['event_type']} {d['event_id']}"
                   f"  {d['error_class']}: {d['error_message'][:200]}  (attempts {d['attempts']},"
                   f" since {d['first_seen']:%Y-%m-%d %H:%M:%S})")
        if d["state"] != "open":
            typer.echo(f"         {d['state']} by {d['resolved_by']} at {d['resolved_at']:%Y-%m-%d %H:%M:%S}: {d['reason']}")
        elif d["reader_kind"] == "projection":
            typer.echo(f"         dudao project retry|skip {d['reader']} {where} --reason ... --by ...")
        else:
            typer.echo(f"         dudao consume retry|skip CONSUMER {where} --group {d['reader']} --reason ... --by ...")
    if not found:
        typer.echo("没有死信 no dead letters")


schema_app = typer.Typer(help="The published contract: AsyncAPI + JSON Schema per event / 对外事件契约", no_args_is_help=True)


@schema_app.command("export")
def schema_export(directory: Path = typer.Argument(DEFAULT_CONTRACT_DIR, help="target directory")) -> None:
    """Write asyncapi.json and one <event>.schema.json per event type into DIRECTORY."""
    from infra.streams.contract import export

    written = export(directory)
    typer.echo(f"已生成 wrote {len(written)} files to {directory}")


@schema_app.command("check")
def schema_check(directory: Path = typer.Argument(DEFAULT_CONTRACT_DIR, help="directory to compare")) -> None:
    """Exit 1 and list the differences when DIRECTORY is not what `schema export` would write."""
    from infra.streams.contract import check

    problems = check(directory)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        typer.echo("契约已过期，请运行 dudao schema export / contract is stale: run `dudao schema export`", err=True)
        raise typer.Exit(1)
    typer.echo("契约是最新的 contract is up to date")


def register(app: typer.Typer) -> None:
    """Add `relay`, `status`, `deadletters` and the `schema` group to the main CLI."""
    app.command("relay")(relay_command)
    app.command("status")(status_command)
    app.command("deadletters")(deadletters_command)
    app.add_typer(schema_app, name="schema")


if __name__ == "__main__":  # usable before infra.cli.main wires it: python -m infra.cli.streams status --json
    standalone = typer.Typer(no_args_is_help=True)
    register(standalone)
    standalone()
