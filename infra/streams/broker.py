"""Broker helpers shared by the relay, `dudao migrate`/`dudao run` and `dudao status`: topics, partitioning,
partition ends and tails.

Topics are made only here, with the configured partition count (`create_event_topics`, called by the
relay on every session and by `dudao migrate`/`dudao run` before any consumer starts). Every client we
open that reads metadata is `consumers.topics.never_creating`: a broker that auto-creates would
otherwise make a topic with *its* default partition count the first time a consumer, a lag probe or
`dudao status` asked about it — and murmur2 keys would then land on other partitions than the relay's.

kafka-python against Tansu needs two workarounds, both harmless on Apache Kafka: ListOffsets
(end offsets) answers the base offset of the last record batch + 1, so ends and tails are read
from a fetch (`scan_partitions`); and `KafkaProducer.close(0)` raises while batches are pending,
so a producer is discarded by force-closing its sender (`discard_producer`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import suppress
from functools import lru_cache
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

from consumers.registry import load_events
from consumers.topics import never_creating
from domain.kernel.base import event_registry
from infra.streams.cloudevents import notification_id_of, topic_for

CONNECT_TIMEOUT_MS = 3_000  # first contact with the broker; an unreachable one fails fast, then back-off
TOPIC_ALREADY_EXISTS = 36


@lru_cache(maxsize=65536)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), so any client agrees where a key lives."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def discard_producer(producer: KafkaProducer) -> None:
    """Close without sending what is pending (kafka-python's close(0) raises while batches wait)."""
    sender = producer._sender  # no public force-close; pending batches are aborted, never sent later
    if sender is not None:
        sender.force_close()
        sender.join(5)
    with suppress(KafkaError):
        producer.close(timeout=0)


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout_s: float) -> None:
    """Create the topics that do not exist yet (an existing topic keeps its partition count)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="dudao-relay-admin",
                             request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=CONNECT_TIMEOUT_MS)
    try:
        names = list(topics)
        result = admin.create_topics({t: {"num_partitions": partitions} for t in names}, raise_errors=False)
        for topic in result.get("topics", []):
            if topic["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise KafkaError(f"cannot create topic {topic['name']}: {topic['error_message']}")
        admin.wait_for_topics(names, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()


def event_topics(prefix: str) -> list[str]:
    """Every `<prefix>.<kind>` topic the relay publishes to: one per aggregate kind of the domain."""
    load_events()
    return sorted({topic_for(cls.kind, prefix) for cls in event_registry().values()
                   if cls.__module__.startswith("domain.")})


def create_event_topics(bootstrap: str, prefix: str, partitions: int, timeout_s: float = 10.0) -> list[str]:
    """Create every event topic that does not exist yet with `partitions` partitions; the topics' names."""
    topics = event_topics(prefix)
    ensure_topics(bootstrap, topics, partitions, timeout_s)
    return topics


def topic_partitions(bootstrap: str, prefix: str, timeout_s: float) -> dict[str, int]:
    """The partition count of every existing `<prefix>.*` topic (read without creating any)."""
    consumer = tail_consumer(bootstrap, timeout_s)
    try:
        names = sorted(t for t in consumer.topics() if t.startswith(f"{prefix}."))
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in names}
    finally:
        consumer.close()


def read_tails(bootstrap: str, partitions: dict[str, int], timeout_s: float) -> dict[tuple[str, int], int]:
    """The notification id of the last message of every non-empty partition."""
    consumer = tail_consumer(bootstrap, timeout_s)
    try:
        tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
        tails = {}
        for tp, (_, last) in scan_partitions(consumer, tps, timeout_s).items():
            nid = notification_id_of(last.headers, last.value) if last is not None else None
            if nid is not None:
                tails[(tp.topic, tp.partition)] = nid
        return tails
    finally:
        consumer.close()


def tail_consumer(bootstrap: str, timeout_s: float) -> KafkaConsumer:
    return never_creating(KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="dudao-tails",
        fetch_max_wait_ms=50, bootstrap_timeout_ms=CONNECT_TIMEOUT_MS, request_timeout_ms=int(timeout_s * 1000) + 1000,
        allow_auto_create_topics=False))


def scan_partitions(consumer: KafkaConsumer, tps: list[TopicPartition],
                    timeout_s: float) -> dict[TopicPartition, tuple[int, Any]]:
    """End offset and last message (None when empty) of each partition.

    ListOffsets alone is not trusted: Tansu answers the base offset of the last record batch + 1,
    not the last offset + 1. So seek one before that answer and fetch: the batch fetched holds the
    last message, and the fetch response carries the true high watermark.
    """
    consumer.assign(tps)
    listed = consumer.end_offsets(tps)
    starts = consumer.beginning_offsets(tps)
    found: dict[TopicPartition, tuple[int, Any]] = {tp: (listed[tp], None) for tp in tps if listed[tp] <= starts[tp]}
    wanted = {tp: listed[tp] - 1 for tp in tps if tp not in found}
    for tp, offset in wanted.items():
        consumer.seek(tp, offset)
    last: dict[TopicPartition, Any] = {}
    deadline = time.monotonic() + timeout_s
    while wanted:
        for tp, messages in consumer.poll(timeout_ms=100).items():
            for m in messages:
                if m.offset >= wanted.get(tp, m.offset + 1) and (tp not in last or m.offset > last[tp].offset):
                    last[tp] = m
        for tp in [tp for tp in wanted if tp in last and consumer.position(tp) >= (consumer.highwater(tp) or 0)]:
            found[tp] = (consumer.position(tp), last[tp])
            del wanted[tp]
        if wanted and time.monotonic() > deadline:
            raise KafkaTimeoutError(f"could not read the end of {sorted(map(str, wanted))}")
    return found
