"""The `dudao` command line (typer): serve the API, create tables, run and rebuild projections, retry or skip
a projection's dead letter, issue tokens.

Subcommands defined in other modules (e.g. `demo`, `run`) register on `app` with `@app.command()`
and are imported at the bottom of this module, so `dudao --help` lists them.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.kernel.roles import ROLES
from infra.commands.grants import create_token, ensure_tokens_table, revoke_token
from infra.bootstrap import System, bootstrap, bootstrap_from_settings, database_url_from
from infra.cli import load_settings
from infra.settings import Settings
from projections.base import Projection
from projections.dead_letters import NotWaiting

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(name="dudao", no_args_is_help=True, add_completion=False,
                  help="督导 dudao: 创建活动的任务与督导后端 (task-and-supervision backend).")
project_app = typer.Typer(no_args_is_help=True,
                          help="Projections (读模型): run them, rebuild them, retry or skip a dead letter (死信).")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens (访问令牌) for the HTTP API.")
app.add_typer(project_app, name="project")
app.add_typer(tokens_app, name="tokens")

console = Console(stderr=True)

Role = StrEnum("Role", {r: r for r in ROLES})  # type: ignore[misc]  # functional API: the choices come from domain.kernel.roles


@app.command()
def serve(host: str = typer.Option(None, help="Default: DUDAO_HTTP_HOST or 127.0.0.1."),
          port: int = typer.Option(None, help="Default: DUDAO_HTTP_PORT or 8000."),
          workers: int = typer.Option(1, min=1, help="API processes, each with a socket of its own on the port "
                                                     "(the kernel spreads connections across them).")) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    s = load_settings(configure_logs=True)
    if workers > 1:
        from infra.runtime.serving import serve_workers

        raise typer.Exit(serve_workers("infra.cli.main:api", host or s.http_host, port or s.http_port, workers))
    system = bootstrap_from_settings(s, create_tables=s.create_tables)
    try:
        uvicorn.run(compose_api(system, s), host=host or s.http_host, port=port or s.http_port, access_log=False)
    finally:
        system.close()


def compose_api(system: System, s: Settings) -> FastAPI:
    """The API over `system` as `dudao serve` runs it."""
    from infra.audit.digests import load_keyring
    from infra.http import create_app

    api = create_app(system, kafka_bootstrap=s.kafka_bootstrap, uploads_dir=s.uploads_dir)
    # dossiers check digests' signatures, retired keys included
    api.state.audit_key = load_keyring(s.audit_key, s.audit_key_id, s.audit_retired_keys, s.var_dir)
    return api


def api() -> FastAPI:
    """The factory each worker of `dudao serve --workers N` calls: settings, system and API of its own."""
    s = load_settings(configure_logs=True)
    return compose_api(bootstrap_from_settings(s, create_tables=s.create_tables), s)


@app.command()
def migrate() -> None:
    """Create every table once (event store, command receipts, projections and their positions, tokens) and, when
    DUDAO_KAFKA_BOOTSTRAP names a broker, every `dudao.<kind>` topic with DUDAO_KAFKA_PARTITIONS partitions."""
    settings = load_settings()
    system = bootstrap(database_url_from(settings), create_tables=True)
    try:
        typer.echo(f"event store: {system.app.store.events_table_name} (+ command receipts)")
        for p in system.projector.projections:
            typer.echo(f"projection {p.name}: {', '.join(p.tables)}")
        with psycopg.connect(system.database_url) as conn:
            ensure_tokens_table(conn)
        typer.echo("tokens: dudao_tokens")
    finally:
        system.close()
    if settings.kafka_bootstrap:
        from infra.streams.broker import create_event_topics

        topics = create_event_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.kafka_partitions)
        typer.echo(f"topics ({settings.kafka_partitions} partitions each): {', '.join(topics)}")


def chosen(system: System, name: str | None) -> list[Projection]:
    projections = system.projector.projections
    if name is None:
        return projections
    found = [p for p in projections if p.name == name]
    if not found:
        raise typer.BadParameter(f"unknown projection {name!r}; one of: {', '.join(p.name for p in projections)}")
    return found


@project_app.command("rebuild")
def project_rebuild(name: str = typer.Argument(None, help="One projection (default: all).")) -> None:
    """Rebuild projections from the start of the log, with a progress bar; prints events/s.

    Without a name every projection is rebuilt in one pass over the log (read and decoded once)."""
    s = load_settings(configure_logs=True)
    system = bootstrap_from_settings(s)
    try:
        if name is None:
            rebuild_all(system)
        else:
            for projection in chosen(system, name):
                rebuild_one(system, projection)
    finally:
        system.close()


def rebuilding(system: System, description: str, rebuild: Callable[[Callable[[int, int], None]], int]) -> int:
    """Run `rebuild(progress)` under a progress bar, print how fast it went and return the head it rebuilt to."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=system.projector.head() or 1)
        started = time.perf_counter()
        head = rebuild(lambda done, total: progress.update(task, completed=done, total=total))
        progress.update(task, completed=head or 1)
    elapsed = time.perf_counter() - started
    typer.echo(f"{description}: {head} log events in {elapsed:.2f} s ({head / elapsed if elapsed else 0:,.0f} events/s)")
    return head


def rebuild_all(system: System) -> None:
    projections = system.projector.projections
    head = rebuilding(system, f"all {len(projections)} projections", system.projector.rebuild_all)
    for projection in projections:
        waits_before_dead_letter(system, projection, head)


def rebuild_one(system: System, projection: Projection) -> None:
    head = rebuilding(system, projection.name, lambda progress: system.projector.rebuild(projection, progress))
    waits_before_dead_letter(system, projection, head)


def waits_before_dead_letter(system: System, projection: Projection, head: int) -> None:
    position = system.projector.position(projection)
    if position < head:
        typer.echo(f"{projection.name} 等待死信 waits before a dead letter at {position + 1}: see `dudao deadletters`",
                   err=True)


REASON = typer.Option(..., "--reason", help="Why (recorded with the dead letter).")


def operator() -> str:
    import getpass

    return getpass.getuser()


@project_app.command("retry")
def project_retry(name: str = typer.Argument(..., help="The projection."),
                  position: int = typer.Argument(..., help="The dead letter's notification id."),
                  reason: str = REASON,
                  by: str = typer.Option(None, "--by", help="Who retries (default: the OS user).")) -> None:
    """Apply a projection's dead letter now (after fixing its cause); the projection moves on if it applies."""
    system = bootstrap_from_settings(load_settings())
    try:
        applied = system.projector.retry(name, position, reason=reason, by=by or operator())
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    except NotWaiting as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    finally:
        system.close()
    if not applied:
        typer.echo(f"仍然失败 still failing: see `dudao deadletters` for {name} {position}", err=True)
        raise typer.Exit(1)
    typer.echo(f"已重试 retried: {name} moved past {position}")


@project_app.command("skip")
def project_skip(name: str = typer.Argument(..., help="The projection."),
                 position: int = typer.Argument(..., help="The dead letter's notification id."),
                 reason: str = REASON,
                 by: str = typer.Option(..., "--by", help="Who decides to skip (recorded).")) -> None:
    """Record a projection's dead letter as skipped (who, why) and move the projection past it, in one transaction."""
    system = bootstrap_from_settings(load_settings())
    try:
        system.projector.skip(name, position, reason=reason, by=by)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    except NotWaiting as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    finally:
        system.close()
    typer.echo(f"已跳过 skipped: {name} moved past {position} ({reason}, {by})")


@project_app.command("run")
def project_run() -> None:
    """Keep every projection up to date until Ctrl-C (or SIGTERM)."""
    s = load_settings(configure_logs=True)
    system = bootstrap_from_settings(s, create_tables=s.create_tables)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        system.projector.stop()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        system.projector.run_forever()
    except KeyboardInterrupt:
        system.projector.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
        system.close()


@tokens_app.command("create")
def tokens_create(
    role: Role = typer.Option(..., help="The role the token acts in."),
    person: UUID = typer.Option(None, help="The person (人员) the token stands for."),
    name: str = typer.Option(None, help="A display name recorded as the actor's name."),
    campaign: UUID = typer.Option(None, help="Bind the token to one campaign (创建活动)."),
    units: list[UUID] = typer.Option(None, "--unit", help="Narrow the token to this unit (repeatable): a unit officer "
                                                          "acts and reads only for these of their units."),
    places: list[UUID] = typer.Option(None, "--place", help="Narrow the token to this place and the places inside "
                                                            "it (repeatable)."),
    expires_in_days: int = typer.Option(90, "--expires-in-days", min=1, help="Refused (401) after this many days."),
    no_expiry: bool = typer.Option(False, "--no-expiry", help="Never expires (a process's token)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the bare token."),
) -> None:
    """Issue a token and print it (it is shown this once; only its hash is stored)."""
    expires_in = None if no_expiry else timedelta(days=expires_in_days)
    with psycopg.connect(database_url_from(load_settings())) as conn:
        ensure_tokens_table(conn)
        token = create_token(conn, role.value, person_id=person, name=name, campaign_id=campaign,
                             unit_ids=units or None, place_ids=places or None, expires_in=expires_in)
    if as_json:
        typer.echo(json.dumps({"token": token, "role": role.value, "person_id": str(person) if person else None,
                               "name": name, "campaign_id": str(campaign) if campaign else None,
                               "unit_ids": [str(u) for u in units or ()] or None,
                               "place_ids": [str(p) for p in places or ()] or None,
                               "expires_in_days": None if no_expiry else expires_in_days}, ensure_ascii=False))
    else:
        typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(token: str = typer.Argument(..., help="The token to revoke.")) -> None:
    """Revoke a token; requests with it get 401 from then on."""
    with psycopg.connect(database_url_from(load_settings())) as conn:
        ensure_tokens_table(conn)
        revoked = revoke_token(conn, token)
    typer.echo("revoked" if revoked else "no such live token")
    if not revoked:
        raise typer.Exit(1)


def _register_subsystems() -> None:
    from infra.cli import consumers, duties, escalation, problems, streams, system

    from infra.cli import audit
    from infra.cli import tasks

    for module in (system, problems, streams, consumers, escalation, duties, audit, tasks):
        module.register(app)


_register_subsystems()


def main() -> None:
    app()
