"""Relay throughput beside raw kafka-python producer throughput, on the same broker in the same run.

`python -m tests.bench_relay [EVENTS]` starts an embedded PostgreSQL and a Tansu broker in a
temporary directory, stores EVENTS mixed events (default 20,000), then measures:
- the relay publishing them all (read the log, decode, build envelopes, send, flush, checkpoint);
- the same envelopes sent by a plain kafka-python producer (default settings, then relay-like
  batching) to a fresh topic, i.e. the broker+client ceiling;
- building the envelopes alone (the relay's CPU share).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer

from infra.bootstrap import bootstrap
from infra.streams.cloudevents import KafkaRecord, to_kafka_record
from infra.runtime.embedded import start_kafka, start_postgres
from infra.streams.broker import ensure_topics
from infra.streams.relay import Relay
from tests.conftest import with_dbname
from tests.integration.test_relay import mixed_events


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def raw_send(bootstrap_servers: str, topic: str, records: list[KafkaRecord], **config: Any) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, **config)
    try:
        def send_all() -> None:
            for r in records:
                producer.send(topic, key=r.key, value=r.value, headers=r.headers)
            producer.flush()
        return timed(send_all)
    finally:
        producer.close()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory(prefix="dudao-bench-") as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        kafka = start_kafka(Path(tmp) / "kafka")
        try:
            with psycopg.connect(pg.uri, autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            system = bootstrap(with_dbname(pg.uri, "bench"), pool_size=4)
            events = mixed_events(count)
            for i in range(0, count, 500):
                system.app.save(*events[i:i + 500])
            notifications = system.app.recorder.select_notifications(1, limit=count)
            records = [to_kafka_record(system.app.decode(n), n.id) for n in notifications]
            size = sum(len(r.value) for r in records) / len(records)
            relay_s = timed(lambda: Relay(system.app, system.database_url, kafka.bootstrap).run_until())
            encode_s = timed(lambda: [to_kafka_record(system.app.decode(n), n.id) for n in notifications])
            ensure_topics(kafka.bootstrap, ["bench.raw1", "bench.raw2"], 3, 10)
            raw_default_s = raw_send(kafka.bootstrap, "bench.raw1", records)
            raw_batched_s = raw_send(kafka.bootstrap, "bench.raw2", records, batch_size=1 << 20, linger_ms=5,
                                     acks="all")
            system.close()
        finally:
            kafka.stop()
            pg.stop()
    print(f"events: {count}, mean envelope {size:.0f} bytes, broker: embedded Tansu (memory), 3 partitions/topic")
    print(f"relay (read log + envelopes + send + flush + checkpoint): {count / relay_s:8.0f} events/s  ({relay_s:.2f} s)")
    print(f"raw kafka-python producer, default settings:              {count / raw_default_s:8.0f} events/s  ({raw_default_s:.2f} s)")
    print(f"raw kafka-python producer, 1 MiB batches, linger 5 ms:    {count / raw_batched_s:8.0f} events/s  ({raw_batched_s:.2f} s)")
    print(f"envelope building alone (decode + CloudEvent + JSON):     {count / encode_s:8.0f} events/s  ({encode_s:.2f} s)")


if __name__ == "__main__":
    main()
