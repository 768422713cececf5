"""`dudao consume …`: run the Kafka consumers (scale-out projections, notice gateway, 数字城管 export).

Each sub-command runs one consumer-group member until Ctrl-C or SIGTERM; start several processes
with the same `--group` to share the partitions. `register(app)` adds the sub-app to the CLI.
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
from infra.logging import configure_logging
from infra.settings import Settings


def kafka_options(settings: Settings) -> KafkaOptions:
    return KafkaOptions(bootstrap_servers=settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}")


def run_member(consumer: TrackedConsumer) -> None:
    """Create the consumer's tables, then consume until Ctrl-C or SIGTERM."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        consumer.stop()

    consumer.create_tables()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        consumer.run()
    except KeyboardInterrupt:
        consumer.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Add `dudao consume projections|notices|szcg` to the CLI."""
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
        s = Settings.from_env()
        configure_logging(s.log_format)
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
        s = Settings.from_env()
        configure_logging(s.log_format)
        run_member(NoticeGateway(database_url_from(s), kafka_options(s), group_id=group, prefix=s.topic_prefix))

    @consume.command("szcg")
    def szcg(group: str = typer.Option(SZCG_GROUP, help="Consumer group.")) -> None:
        """Keep the 数字城管 case export table (szcg_cases) up to date from problem events."""
        s = Settings.from_env()
        configure_logging(s.log_format)
        run_member(SzcgExport(database_url_from(s), kafka_options(s), group_id=group, prefix=s.topic_prefix))
