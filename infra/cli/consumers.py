"""`dudao consume …`: run the Kafka consumers (scale-out projections, notice gateway, 数字城管 export).

Each sub-command runs one consumer-group member until Ctrl-C or SIGTERM; start several processes
with the same `--group` to share the partitions. `dudao consume retry|skip CONSUMER TOPIC:PARTITION:OFFSET`
acts on a consumer's dead letter (死信) with a recorded reason, the way `dudao project retry|skip`
does for a projection; a running member notices on its next loop. `register(app)` adds the sub-app.
"""

from __future__ import annotations

import signal
from types import FrameType

import typer

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.notice_gateway import DEFAULT_GROUP as NOTICE_GROUP
from consumers.notice_gateway import NoticeGateway
from consumers.projection_worker import DEFAULT_GROUP as PROJECTION_GROUP
from consumers.projection_worker import DEFAULT_SCHEMA, ProjectionWorker, scale_out_projections
from consumers.szcg_export import DEFAULT_GROUP as SZCG_GROUP
from consumers.szcg_export import SzcgExport
from infra.bootstrap import all_projections, database_url_from
from infra.cli import load_settings
from infra.settings import Settings


def kafka_options(settings: Settings) -> KafkaOptions:
    return KafkaOptions(bootstrap_servers=settings.kafka_servers)


def run_member(consumer: TrackedConsumer) -> None:
    """Create the consumer's tables (waiting out a database outage), then consume until Ctrl-C or SIGTERM."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        consumer.stop()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if consumer.create_tables_when_available():
            consumer.run()
    except KeyboardInterrupt:
        consumer.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def member(kind: str, settings: Settings, group: str | None, schema: str = DEFAULT_SCHEMA) -> TrackedConsumer:
    """The consumer of that kind (`projections`, `notices`, `szcg`), in `group` or its default one."""
    url, options, prefix = database_url_from(settings), kafka_options(settings), settings.topic_prefix
    if kind == "projections":
        return ProjectionWorker(url, options, scale_out_projections(all_projections()), schema=schema,
                                group_id=group or PROJECTION_GROUP, prefix=prefix)
    if kind == "notices":
        return NoticeGateway(url, options, group_id=group or NOTICE_GROUP, prefix=prefix)
    if kind == "szcg":
        return SzcgExport(url, options, group_id=group or SZCG_GROUP, prefix=prefix)
    raise typer.BadParameter(f"unknown consumer {kind!r}; one of: projections, notices, szcg")


def dead_letter_at(position: str) -> tuple[str, int, int]:
    """`topic:partition:offset` (as `dudao deadletters` prints it) → its parts."""
    topic, partition, offset = position.rsplit(":", 2) if position.count(":") >= 2 else (position, "", "")
    if not (topic and partition.isdigit() and offset.isdigit()):
        raise typer.BadParameter(f"expected TOPIC:PARTITION:OFFSET, got {position!r}")
    return topic, int(partition), int(offset)


def register(app: typer.Typer) -> None:
    """Add `dudao consume projections|notices|szcg|retry|skip` to the CLI."""
    consume = typer.Typer(no_args_is_help=True, help="Kafka consumers (下游消费者): exactly-once effects, offsets in PostgreSQL.")
    app.add_typer(consume, name="consume")

    @consume.command("projections")
    def projections(
        group: str = typer.Option(PROJECTION_GROUP, help="Consumer group; members of one group share the partitions."),
        schema: str = typer.Option(DEFAULT_SCHEMA, help="PostgreSQL schema the read-model tables are built in."),
        projection: list[str] = typer.Option(None, "--projection", "-p",
                                             help="Only these projections (default: every one that can scale out)."),
    ) -> None:
        """Build the read models from Kafka in a schema of their own (scale-out mode)."""
        s = load_settings(configure_logs=True)
        chosen = [p for p in scale_out_projections(all_projections()) if not projection or p.name in projection]
        unknown = set(projection or ()) - {p.name for p in chosen}
        if unknown:
            raise typer.BadParameter(f"cannot scale out (unknown, or reads other aggregates' rows while applying):"
                                     f" {', '.join(sorted(unknown))}")
        run_member(ProjectionWorker(database_url_from(s), kafka_options(s), chosen, group_id=group, schema=schema,
                                    prefix=s.topic_prefix))

    @consume.command("notices")
    def notices(group: str = typer.Option(NOTICE_GROUP, help="Consumer group.")) -> None:
        """Queue an outbound message per recipient and channel of every issued notice (通知网关)."""
        s = load_settings(configure_logs=True)
        run_member(NoticeGateway(database_url_from(s), kafka_options(s), group_id=group, prefix=s.topic_prefix))

    @consume.command("szcg")
    def szcg(group: str = typer.Option(SZCG_GROUP, help="Consumer group.")) -> None:
        """Keep the 数字城管 case export table (szcg_cases) up to date from problem events."""
        s = load_settings(configure_logs=True)
        run_member(SzcgExport(database_url_from(s), kafka_options(s), group_id=group, prefix=s.topic_prefix))

    consumer_arg = typer.Argument(..., help="projections | notices | szcg")
    position_arg = typer.Argument(..., help="TOPIC:PARTITION:OFFSET of the dead letter (see `dudao deadletters`).")
    group_opt = typer.Option(None, help="Consumer group (default: that consumer's default group).")
    schema_opt = typer.Option(DEFAULT_SCHEMA, help="projections only: the schema their tables are in.")
    reason_opt = typer.Option(..., "--reason", help="Why (recorded with the dead letter).")

    @consume.command("retry")
    def retry(consumer: str = consumer_arg, position: str = position_arg, reason: str = reason_opt,
              by: str = typer.Option(None, "--by", help="Who retries (default: the OS user)."),
              group: str = group_opt, schema: str = schema_opt) -> None:
        """Apply a consumer's dead letter now (after fixing its cause); a waiting partition moves on if it applies."""
        import getpass

        from projections.dead_letters import NotWaiting

        reader = member(consumer, load_settings(), group, schema)
        try:
            applied = reader.retry_dead_letter(*dead_letter_at(position), reason=reason, by=by or getpass.getuser())
        except NotWaiting as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        finally:
            reader.close_connection()
        if not applied:
            typer.echo(f"仍然失败 still failing: see `dudao deadletters` for {reader.group_id} {position}", err=True)
            raise typer.Exit(1)
        typer.echo(f"已重试 retried: {reader.group_id} {position}")

    @consume.command("skip")
    def skip(consumer: str = consumer_arg, position: str = position_arg, reason: str = reason_opt,
             by: str = typer.Option(..., "--by", help="Who decides to skip (recorded)."),
             group: str = group_opt, schema: str = schema_opt) -> None:
        """Record a consumer's dead letter as skipped (who, why); a waiting partition moves past it at once."""
        from projections.dead_letters import NotWaiting

        reader = member(consumer, load_settings(), group, schema)
        try:
            reader.skip_dead_letter(*dead_letter_at(position), reason=reason, by=by)
        except NotWaiting as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        finally:
            reader.close_connection()
        typer.echo(f"已跳过 skipped: {reader.group_id} {position} ({reason}, {by})")
