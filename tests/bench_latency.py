"""End-to-end latency at a steady command rate: command accepted → relay → Kafka → consumer effect committed.

Commands are issued at 100/s (StartCampaign, one event each) through the command service; the relay
and a tracked consumer run in threads of the same process against a real embedded PostgreSQL and
Tansu. The consumer's effect row records `clock_timestamp()` in the transaction that also stores
its offset; latency = that commit time − the moment the service returned. Prints p50/p99.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import Cursor

from consumers.base import KafkaOptions, TrackedConsumer
from consumers.envelope import Delivery
from domain.kernel.base import Actor
from domain.structure.campaign import StartCampaign
from infra.bootstrap import bootstrap
from infra.runtime.embedded import start_kafka, start_postgres
from infra.streams.relay import Relay

RATE, SECONDS = 100, 20
ADMIN = Actor(role="admin", name="bench")


class EffectRecorder(TrackedConsumer):
    """Stores one row per campaign event, stamped when its transaction writes it."""

    ddl = ("CREATE TABLE IF NOT EXISTS bench_effects (event_id text PRIMARY KEY,"
           " committed_at timestamptz NOT NULL DEFAULT clock_timestamp())",)

    def wants(self, event_type: str) -> bool:
        return event_type.startswith("dudao.campaign.")

    def handle(self, curs: Cursor[Any], delivery: Delivery) -> None:
        curs.execute("INSERT INTO bench_effects (event_id) VALUES (%s)", (delivery.event_id,))


def run_effect_recorder(database_url: str, bootstrap_servers: str, group: str, topics: list[str]) -> None:
    """An EffectRecorder consuming until its process is terminated: a consumer in a process of its own, as
    production runs consumers, so it does not share the GIL with the threads issuing commands."""
    consumer = EffectRecorder(database_url, KafkaOptions(bootstrap_servers, session_timeout_ms=6000, poll_timeout_ms=50),
                              group, topics)
    consumer.run()


def issue(system: Any, accepted: dict[str, datetime]) -> None:
    interval = 1.0 / RATE
    started = time.perf_counter()
    for i in range(RATE * SECONDS):
        time.sleep(max(0.0, started + i * interval - time.perf_counter()))
        result = system.service.handle(StartCampaign(command_id=str(uuid4()), campaign_id=uuid4(), name="延迟测试",
                                                     jurisdiction="测试市", launched_on=date(2021, 12, 3)), ADMIN)
        accepted[result.events[0]["event_id"]] = datetime.now(timezone.utc)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        pg, kafka = start_postgres(Path(tmp) / "pg"), start_kafka(Path(tmp) / "kafka")
        try:
            system = bootstrap(pg.uri, pool_size=10)
            relay = Relay(system.app, pg.uri, kafka.bootstrap, poll_seconds=0.01)
            consumer = EffectRecorder(pg.uri, KafkaOptions(kafka.bootstrap, session_timeout_ms=6000,
                                                           poll_timeout_ms=50), "bench-latency", ["dudao.campaign"])
            consumer.create_tables()
            threads = [threading.Thread(target=relay.run_forever, daemon=True),
                       threading.Thread(target=consumer.run, daemon=True)]
            for t in threads:
                t.start()
            system.service.handle(StartCampaign(command_id="warm", campaign_id=uuid4(), name="预热", jurisdiction="测试市",
                                                launched_on=date(2021, 12, 3)), ADMIN)
            wait_for_rows(pg.uri, 1, 60)  # group join and topic creation happen before measuring
            accepted: dict[str, datetime] = {}
            issue(system, accepted)
            wait_for_rows(pg.uri, len(accepted) + 1, 60)
            with psycopg.connect(pg.uri) as conn:
                done: dict[str, datetime] = dict(conn.execute("SELECT event_id, committed_at FROM bench_effects").fetchall())
            ms = sorted((done[e] - t).total_seconds() * 1000 for e, t in accepted.items())
            p99 = ms[int(len(ms) * 0.99) - 1]
            print(f"end-to-end latency at {RATE} commands/s over {len(ms)} commands: "
                  f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")
            relay.stop()
            consumer.stop()
            system.close()
        finally:
            kafka.stop()
            pg.stop()


def wait_for_rows(url: str, n: int, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with psycopg.connect(url) as conn:
            (count,) = conn.execute("SELECT count(*) FROM bench_effects").fetchall()
            if count[0] >= n:
                return
        time.sleep(0.1)
    raise SystemExit(f"consumer did not reach {n} effects in {deadline_s} s")


if __name__ == "__main__":
    main()
