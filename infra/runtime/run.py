"""`dudao run`: the whole system on one machine, as `make run` starts it.

Starts the embedded PostgreSQL (under <var>/pg) and the Tansu broker (on DUDAO_KAFKA_PORT) unless
DUDAO_DATABASE_URL / DUDAO_KAFKA_BOOTSTRAP point elsewhere, creates the tables once, issues an
admin token, creates every `dudao.<kind>` topic with DUDAO_KAFKA_PARTITIONS partitions (before any
consumer starts, so no topic is ever made with the broker's own default count), then supervises the
processes (API, projector, and the other workers registered in WORKERS): one that exits is restarted with backoff while the others keep running, so a crashed
worker never takes the API down. Only Ctrl-C (or SIGTERM) stops every child and the servers it started.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from kafka.errors import KafkaError

from infra.http.auth import create_token
from infra.bootstrap import bootstrap
from infra.clock import start_drill
from infra.streams.broker import create_event_topics
from infra.runtime.embedded import EmbeddedKafka, EmbeddedPostgres, start_kafka, start_postgres
from infra.settings import Settings
from infra.runtime.supervisor import Supervisor

# name → dudao sub-command argv; each runs as its own process (API workers are stateless).
WORKERS: dict[str, list[str]] = {
    "api": ["serve"],
    "projector": ["project", "run"],
    "relay": ["relay"],
    "escalator": ["escalate", "--interval", "30"],
    "chain": ["chain"],
    "projection-workers": ["consume", "projections"],
    "notice-gateway": ["consume", "notices"],
    "szcg-export": ["consume", "szcg"],
}


def run(settings: Settings, say: Callable[[str], None] = print) -> int:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    pg: EmbeddedPostgres | None = None
    kafka: EmbeddedKafka | None = None
    try:
        database_url = settings.database_url
        if not database_url:
            pg = start_postgres(settings.var_dir / "pg")
            database_url = pg.uri
        bootstrap_servers = settings.kafka_bootstrap
        if not bootstrap_servers:
            kafka = start_kafka(settings.var_dir / "kafka", settings.kafka_port)
            bootstrap_servers = kafka.bootstrap
        if settings.drill_clock is not None:
            start_drill(database_url, settings.drill_clock)  # refused (DrillRefused) on a history without it
        token = prepare(database_url)
        prepare_topics(bootstrap_servers, settings, say)
        return supervise(settings, database_url, bootstrap_servers, token, say)
    finally:
        if kafka is not None:
            kafka.stop()
        if pg is not None:
            pg.stop()


def prepare(database_url: str) -> str:
    """Create every table once (workers then start with CREATE_TABLE off) and issue an admin token."""
    system = bootstrap(database_url)
    system.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        return create_token(conn, role="admin", name="make run 管理员")


def prepare_topics(bootstrap_servers: str, settings: Settings, say: Callable[[str], None]) -> None:
    """Create the event topics with the configured partition count; if the broker does not answer, the relay
    creates them when it connects (consumers never create a topic, so none is made with another count)."""
    try:
        create_event_topics(bootstrap_servers, settings.topic_prefix, settings.kafka_partitions)
    except (KafkaError, OSError) as exc:
        say(f"Kafka topics not created yet ({type(exc).__name__}: {exc}); the relay creates them when it connects")


def supervise(settings: Settings, database_url: str, bootstrap_servers: str, token: str, say: Callable[[str], None]) -> int:
    env = {**os.environ, "DUDAO_DATABASE_URL": database_url, "DUDAO_KAFKA_BOOTSTRAP": bootstrap_servers,
           "DUDAO_VAR_DIR": str(settings.var_dir), "DUDAO_CREATE_TABLES": "n"}
    if settings.drill_clock is not None:
        env["DUDAO_DRILL_CLOCK"] = settings.drill_clock.isoformat()
    supervisor = Supervisor()
    exe = str(Path(sys.executable).with_name("dudao"))
    for name, argv in WORKERS.items():
        supervisor.add(name, [exe, *argv], env)
    base = f"http://{settings.http_host}:{settings.http_port}"
    say("\n".join([
        "dudao 督导 is running:",
        f"  API          {base}",
        f"  API docs     {base}/docs   (OpenAPI: {base}/openapi.json)",
        f"  health       {base}/health",
        f"  dashboard    {base}/ui/   (督导驾驶舱: log in with the admin token below)",
        f"  admin token  {token}",
        f"  PostgreSQL   {database_url}",
        f"  Kafka        {bootstrap_servers}",
        "  load the 高安 demo:  .venv/bin/dudao demo",
        *(["  演练模式 drill mode: one shared clock (POST /drill/clock, admin)"] if settings.drill_clock else []),
        "  Ctrl-C stops everything.",
    ]))
    return supervisor.run_until_stopped()
