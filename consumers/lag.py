"""Consumer lag (消费积压) for `dudao status` and /metrics: how many messages each group has not applied.

Measured against the offsets stored in PostgreSQL (the truth), not Kafka's committed hints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from psycopg import Connection

from consumers import offsets
from consumers.offsets import Key
from consumers.topics import never_creating


def end_offsets(bootstrap_servers: str, topics: Iterable[str], timeout_ms: int = 5000) -> dict[Key, int]:
    """The end offset (next offset to be written) of every partition of `topics` that exists."""
    probe = never_creating(KafkaConsumer(bootstrap_servers=bootstrap_servers, request_timeout_ms=max(timeout_ms, 1000),
                                         isolation_level="read_committed", allow_auto_create_topics=False))
    try:
        tps = [TopicPartition(t, p) for t in set(topics) for p in sorted(probe.partitions_for_topic(t) or ())]
        ends = probe.end_offsets(tps, timeout_ms=timeout_ms) if tps else {}
        return {(tp.topic, tp.partition): int(n) for tp, n in ends.items()}
    finally:
        probe.close()


def consumer_lag(conn: Connection[Any], bootstrap_servers: str, schema: str = "public") -> dict[str, dict[str, Any]]:
    """Per group: `lag` (messages) and `partitions` {"topic:partition": {"next_offset", "end_offset"}}."""
    groups = offsets.stored(conn, schema)
    ends = end_offsets(bootstrap_servers, {t for g in groups.values() for t, _ in g})
    report: dict[str, dict[str, Any]] = {}
    for group, stored in sorted(groups.items()):
        topics = {t for t, _ in stored}
        partitions = {f"{t}:{p}": {"next_offset": stored.get((t, p), 0), "end_offset": end}
                      for (t, p), end in sorted(ends.items()) if t in topics}
        report[group] = {"lag": offsets.lag(stored, ends), "partitions": partitions}
    return report
